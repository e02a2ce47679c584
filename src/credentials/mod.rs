//! Credentials Corelay holds for providers, below everything that uses them: `Secret` (a string that
//! is never printed) and Vertex service accounts (`vertex`: key files, signed JWT assertions, access
//! tokens). Config reads them; providers and the token refresher use them. No I/O beyond reading a
//! key file the config names.

pub mod vertex;

use std::fmt;

/// A secret string: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
