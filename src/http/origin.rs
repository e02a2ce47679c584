//! Provider origins parsed from `base_url`: scheme, host, port and the path prefix requests go under.

use std::fmt;

/// Transport security of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// What connections are pooled by: two providers on the same scheme+host+port share warm connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub scheme: Scheme,
    /// Shared: a response's body reader holds a copy of the key to give its connection back.
    pub host: std::sync::Arc<str>,
    pub port: u16,
}

/// For map lookups that insert a copy only when the key is new (`entry_ref`).
impl From<&PoolKey> for PoolKey {
    fn from(key: &PoolKey) -> PoolKey {
        key.clone()
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// A parsed `base_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub key: PoolKey,
    /// Host as written (without brackets for IPv6), used for DNS and TLS server name.
    pub host: String,
    pub port: u16,
    /// Value for the `Host` header: host, plus the port when it is not the scheme's default.
    pub authority: String,
    /// Path prefix without a trailing slash, e.g. `/v1`; empty for the root.
    pub base_path: String,
}

impl Origin {
    /// Parses `http(s)://host[:port][/path]`. No userinfo, query or fragment: credentials belong in
    /// `api_key_env`, not in a URL that may be logged.
    pub fn parse_base_url(url: &str) -> Result<Origin, &'static str> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err("must start with http:// or https://");
        };
        if rest.contains(['?', '#']) {
            return Err("must not contain a query or fragment");
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err("must not contain credentials; use api_key_env");
        }
        let (host, port) = split_host_port(authority, scheme)?;
        let default_port = if scheme == Scheme::Https { 443 } else { 80 };
        let host_for_header = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let authority = if port == default_port { host_for_header } else { format!("{host_for_header}:{port}") };
        Ok(Origin {
            key: PoolKey { scheme, host: host.into(), port },
            host: host.to_string(),
            port,
            authority,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The request target for `suffix` (which starts with `/`) under this origin's base path.
    pub fn target(&self, suffix: &str) -> String {
        let mut target = String::with_capacity(self.base_path.len() + suffix.len());
        target.push_str(&self.base_path);
        target.push_str(suffix);
        target
    }
}

fn split_host_port(authority: &str, scheme: Scheme) -> Result<(&str, u16), &'static str> {
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed [ in IPv6 host")?;
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected text after IPv6 host"),
        };
        (&v6[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or("has an invalid port")?,
        None => default_port,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_tls_ports_paths_and_ipv6() {
        let o = Origin::parse_base_url("http://127.0.0.1:9000/v1/").unwrap();
        assert_eq!((o.host.as_str(), o.port, o.base_path.as_str()), ("127.0.0.1", 9000, "/v1"));
        assert_eq!(o.authority, "127.0.0.1:9000");
        assert_eq!(o.target("/chat/completions"), "/v1/chat/completions");

        let o = Origin::parse_base_url("https://api.openai.com/v1").unwrap();
        assert_eq!((o.key.scheme, o.port, o.authority.as_str()), (Scheme::Https, 443, "api.openai.com"));

        let o = Origin::parse_base_url("http://[::1]:8000").unwrap();
        assert_eq!((o.host.as_str(), o.port, o.authority.as_str()), ("::1", 8000, "[::1]:8000"));
        assert_eq!(o.target("/chat/completions"), "/chat/completions");
    }

    #[test]
    fn rejects_what_it_cannot_call_safely() {
        for bad in [
            "ftp://x",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:99999",
            "http://u:p@h",
            "http://h/v1?x=1",
            "http://[::1",
        ] {
            assert!(Origin::parse_base_url(bad).is_err(), "{bad} should be rejected");
        }
    }
}
