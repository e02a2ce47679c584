//! AWS Signature Version 4 for one HTTP request, signed in headers: canonical request, string to sign,
//! signing key, and the headers to add (`authorization`, `x-amz-date`, `x-amz-security-token`,
//! `x-amz-content-sha256`). It does not read the clock (the caller passes the time), load credentials,
//! send anything, or do presigned URLs, SigV4a or chunked payload signing; Corelay needs none of them
//! for Bedrock.
//!
//! The secret is used only to derive the signing key and is never formatted: [`Credentials`] and
//! [`SigningOutput`] have `Debug` impls that leave out the secret and the session token.

use std::borrow::Cow;
use std::fmt;

use ring::{digest, hmac};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// SHA-256 of the empty string: the payload hash of every bodiless request.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Headers the signer writes itself; copies passed in by the caller are ignored, so the signed and
/// sent values cannot disagree.
const SIGNER_OWNED: [&str; 4] = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

/// Headers left out of the signature because something between Corelay and AWS may add, drop or
/// rewrite them (hop-by-hop headers, `user-agent`, `expect`, tracing), as the AWS SDKs do.
const UNSIGNED: [&str; 11] = [
    "user-agent",
    "expect",
    "x-amzn-trace-id",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// No `host` header: AWS requires it in every signature.
    MissingHost,
    /// The method is not an HTTP token.
    InvalidMethod,
    /// The path is not empty and does not start with `/`, or it holds `?` or `#`.
    InvalidPath,
    /// A header name is not an HTTP token.
    InvalidHeaderName(String),
    /// Region or service is empty or holds characters that would corrupt the credential scope.
    InvalidScope,
    /// A precomputed payload hash is empty or holds characters other than visible ASCII.
    InvalidPayloadHash,
    /// The time is not representable as `YYYYMMDDTHHMMSSZ` (years 1970 to 9999).
    InvalidTime,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHost => f.write_str("SigV4: the request has no host header"),
            Self::InvalidMethod => f.write_str("SigV4: the method is not an HTTP token"),
            Self::InvalidPath => f.write_str("SigV4: the path must start with '/' and hold no '?' or '#'"),
            Self::InvalidHeaderName(name) => write!(f, "SigV4: header name {name:?} is not an HTTP token"),
            Self::InvalidScope => f.write_str("SigV4: region and service must be non-empty [A-Za-z0-9._-]"),
            Self::InvalidPayloadHash => f.write_str("SigV4: the payload hash must be visible ASCII"),
            Self::InvalidTime => f.write_str("SigV4: the signing time must fall in the years 1970 to 9999"),
        }
    }
}

impl std::error::Error for SignError {}

/// An access key, its secret and an optional session token (temporary credentials).
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self { access_key_id: access_key_id.into(), secret_access_key: secret_access_key.into(), session_token: None }
    }

    /// The same credentials with a session token, sent as `x-amz-security-token`.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The signing instant as SigV4 writes it (`YYYYMMDDTHHMMSSZ`, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningTime {
    amz_date: String,
}

/// 9999-12-31T23:59:59Z, the last second a four-digit year can express.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

impl SigningTime {
    /// From seconds since the Unix epoch (the caller reads its clock, e.g. `SystemTime::now()`).
    pub fn from_unix_seconds(seconds: u64) -> Result<Self, SignError> {
        if seconds > MAX_UNIX_SECONDS {
            return Err(SignError::InvalidTime);
        }
        let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
        let second_of_day = seconds % 86_400;
        let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
        Ok(Self { amz_date: format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z") })
    }

    /// From an `x-amz-date` value such as `20150830T123600Z`.
    pub fn from_amz_date(text: &str) -> Result<Self, SignError> {
        let bytes = text.as_bytes();
        let digits_at = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
        let shaped = bytes.len() == 16 && bytes[8] == b'T' && bytes[15] == b'Z' && digits_at(0..8) && digits_at(9..15);
        if !shaped || !fields_in_range(text) {
            return Err(SignError::InvalidTime);
        }
        Ok(Self { amz_date: text.to_owned() })
    }

    /// `YYYYMMDDTHHMMSSZ`, the `x-amz-date` value.
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// `YYYYMMDD`, the date of the credential scope.
    pub fn date_stamp(&self) -> &str {
        &self.amz_date[..8]
    }
}

/// Calendar sanity for a well-shaped amz date (month, day, hour, minute, second; year 1970+).
fn fields_in_range(text: &str) -> bool {
    let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(u32::MAX);
    field(0..4) >= 1970
        && (1..=12).contains(&field(4..6))
        && (1..=31).contains(&field(6..8))
        && field(9..11) < 24
        && field(11..13) < 60
        && field(13..15) < 61
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Service-dependent canonicalisation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningSettings {
    /// Percent-encode the path as sent once more for the canonical URI (so `%3A` becomes `%253A`).
    /// True for every service except S3; when false the path is encoded exactly once (escapes
    /// already present are kept, raw characters are escaped).
    pub double_encode_path: bool,
    /// Remove `.` and `..` segments and empty segments (`//`) from the canonical URI. True for every
    /// service except S3.
    pub normalize_path: bool,
    /// Add and sign `x-amz-content-sha256` with the payload hash. S3 requires it; other services
    /// accept it.
    pub content_sha256_header: bool,
    /// Sign `x-amz-security-token` (the normal case). When false the token is still added but after
    /// signing, outside `SignedHeaders`, as a few services expect.
    pub sign_session_token: bool,
}

impl SigningSettings {
    /// Every service except S3, Bedrock included.
    pub const fn standard() -> Self {
        Self { double_encode_path: true, normalize_path: true, content_sha256_header: false, sign_session_token: true }
    }

    /// S3: single path encoding, no normalisation, payload hash header.
    pub const fn s3() -> Self {
        Self { double_encode_path: false, normalize_path: false, content_sha256_header: true, sign_session_token: true }
    }
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self::standard()
    }
}

/// What the signature says about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The body itself; it is hashed with SHA-256.
    Bytes(&'a [u8]),
    /// A hash computed by the caller: 64 lowercase hex digits, or a literal such as
    /// `UNSIGNED-PAYLOAD` where the service allows one.
    Precomputed(&'a str),
}

/// The parts of a request that go into the signature.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path exactly as it goes on the request line, percent-encoded, without the query; build
    /// segments with [`encode_path_segment`] (a Bedrock model id's `:` becomes `%3A`). Empty means `/`.
    pub path: &'a str,
    /// Query parameters, not encoded; send them as [`canonical_query_string`] writes them.
    pub query: &'a [(&'a str, &'a str)],
    /// The request headers, `host` included. `authorization`, `x-amz-date`, `x-amz-security-token` and
    /// `x-amz-content-sha256` are ignored (the signer writes them); hop-by-hop headers, `user-agent`,
    /// `expect` and `x-amzn-trace-id` are sent but not signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: Payload<'a>,
}

/// Who signs, for which region and service, and when.
#[derive(Debug, Clone)]
pub struct SigningParams<'a> {
    pub credentials: &'a Credentials,
    /// `us-east-1`, ...
    pub region: &'a str,
    /// The signing name: `bedrock` for bedrock-runtime.
    pub service: &'a str,
    pub time: SigningTime,
    pub settings: SigningSettings,
}

/// The result of signing: headers to add to the request, plus the intermediate strings for tests and
/// debugging.
#[derive(Clone)]
pub struct SigningOutput {
    headers: Vec<(&'static str, String)>,
    canonical_request: String,
    string_to_sign: String,
    signed_headers: String,
    signature: String,
}

impl SigningOutput {
    /// Headers to add, lowercase names: `x-amz-date`, then `x-amz-security-token` and
    /// `x-amz-content-sha256` when they apply, then `authorization`.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    pub fn into_headers(self) -> Vec<(&'static str, String)> {
        self.headers
    }

    /// The value of the `authorization` header.
    pub fn authorization(&self) -> &str {
        self.headers.last().map_or("", |(_, value)| value.as_str())
    }

    /// The canonical request. It contains the session token when one is signed: do not log it in
    /// production.
    pub fn canonical_request(&self) -> &str {
        &self.canonical_request
    }

    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// `;`-separated lowercase names of the signed headers.
    pub fn signed_headers(&self) -> &str {
        &self.signed_headers
    }

    /// Lowercase hex HMAC-SHA256.
    pub fn signature(&self) -> &str {
        &self.signature
    }
}

impl fmt::Debug for SigningOutput {
    // Leaves out the header values and the canonical request: they may carry the session token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("SigningOutput")
            .field("headers", &names)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Signs `request`.
pub fn sign(request: &SignableRequest<'_>, params: &SigningParams<'_>) -> Result<SigningOutput, SignError> {
    validate(request, params)?;
    let payload_hash = payload_hash(request.payload)?;
    let mut headers = signer_headers(params, &payload_hash);
    let signed = canonical_header_list(request.headers, &headers, params.settings.sign_session_token);
    if !signed.iter().any(|(name, _)| name == "host") {
        return Err(SignError::MissingHost);
    }
    let signed_headers = signed.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = [
        request.method,
        &canonical_uri(request.path, params.settings),
        &canonical_query_string(request.query),
        &canonical_header_block(&signed),
        &signed_headers,
        &payload_hash,
    ]
    .join("\n");
    let scope = format!("{}/{}/{}/aws4_request", params.time.date_stamp(), params.region, params.service);
    let string_to_sign =
        format!("{ALGORITHM}\n{}\n{scope}\n{}", params.time.amz_date(), sha256_hex(canonical_request.as_bytes()));
    let signature = hex(hmac::sign(&signing_key(params), string_to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        params.credentials.access_key_id
    );
    headers.push(("authorization", authorization));
    Ok(SigningOutput { headers, canonical_request, string_to_sign, signed_headers, signature })
}

fn validate(request: &SignableRequest<'_>, params: &SigningParams<'_>) -> Result<(), SignError> {
    if !is_token(request.method) {
        return Err(SignError::InvalidMethod);
    }
    let path = request.path;
    if !(path.is_empty() || path.starts_with('/')) || path.contains(['?', '#']) {
        return Err(SignError::InvalidPath);
    }
    if let Some((name, _)) = request.headers.iter().find(|(name, _)| !is_token(name)) {
        return Err(SignError::InvalidHeaderName((*name).to_owned()));
    }
    let scope_part = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !scope_part(params.region) || !scope_part(params.service) {
        return Err(SignError::InvalidScope);
    }
    Ok(())
}

/// RFC 9110 token: what header names and methods are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn payload_hash(payload: Payload<'_>) -> Result<String, SignError> {
    match payload {
        Payload::Bytes(body) => Ok(sha256_hex(body)),
        Payload::Precomputed(hash) if !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(hash.to_owned())
        }
        Payload::Precomputed(_) => Err(SignError::InvalidPayloadHash),
    }
}

/// The headers the signer adds, in the order they are returned (authorization comes last).
fn signer_headers(params: &SigningParams<'_>, payload_hash: &str) -> Vec<(&'static str, String)> {
    let mut added = vec![("x-amz-date", params.time.amz_date().to_owned())];
    if let Some(token) = params.credentials.session_token() {
        added.push(("x-amz-security-token", token.to_owned()));
    }
    if params.settings.content_sha256_header {
        added.push(("x-amz-content-sha256", payload_hash.to_owned()));
    }
    added
}

/// The signed headers, lowercase, values trimmed, sorted by name, repeated names merged with `,` in
/// the order they were given.
fn canonical_header_list(
    caller: &[(&str, &str)],
    added: &[(&'static str, String)],
    sign_session_token: bool,
) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = caller
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), trim_all(value)))
        .filter(|(name, _)| !SIGNER_OWNED.contains(&name.as_str()) && !UNSIGNED.contains(&name.as_str()))
        .collect();
    let signer = added.iter().filter(|(name, _)| sign_session_token || *name != "x-amz-security-token");
    list.extend(signer.map(|(name, value)| ((*name).to_owned(), value.clone())));
    // Stable, so repeated names keep their relative order.
    list.sort_by(|a, b| a.0.cmp(&b.0));
    merge_repeated(list)
}

fn merge_repeated(sorted: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::with_capacity(sorted.len());
    for (name, value) in sorted {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    merged
}

/// SigV4 "trimall": no leading or trailing whitespace, inner runs collapsed to one space. Folded
/// (multi-line) values count their line breaks as whitespace, as the AWS SDKs do.
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn canonical_header_block(headers: &[(String, String)]) -> String {
    let mut block = String::new();
    for (name, value) in headers {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    block
}

/// The canonical URI for `path` as sent on the request line.
fn canonical_uri(path: &str, settings: SigningSettings) -> String {
    let path: Cow<'_, str> = match (path.is_empty(), settings.normalize_path) {
        (true, _) => Cow::Borrowed("/"),
        (false, true) => Cow::Owned(normalize_path(path)),
        (false, false) => Cow::Borrowed(path),
    };
    if settings.double_encode_path {
        // The path on the wire is already encoded once; encoding it again is the "double" encoding.
        let mut out = String::with_capacity(path.len() * 3 / 2);
        percent_encode_into(&mut out, path.as_bytes(), true);
        out
    } else {
        encode_once(&path)
    }
}

/// RFC 3986 dot-segment removal, plus dropping empty segments (`//`), keeping a trailing slash.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// S3's single encoding: each segment decoded, then encoded once, so `%2F` inside a key survives and
/// raw characters are escaped.
fn encode_once(path: &str) -> String {
    let mut out = String::with_capacity(path.len() * 3 / 2);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        percent_encode_into(&mut out, &percent_decode(segment), false);
    }
    out
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays literal.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some([hi, lo]) if bytes[i] == b'%' => hex_value(*hi).zip(hex_value(*lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

/// SigV4 URI encoding: every byte except the unreserved set `A-Z a-z 0-9 - . _ ~` (and `/` when
/// `keep_slash`) becomes `%XX` with uppercase hex.
fn percent_encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
    }
}

/// Encodes one path segment for the request line (every reserved character escaped, `/` included),
/// e.g. a Bedrock model id: `anthropic.claude-3-5-sonnet-20240620-v1:0` becomes
/// `anthropic.claude-3-5-sonnet-20240620-v1%3A0`.
pub fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() + 8);
    percent_encode_into(&mut out, segment.as_bytes(), false);
    out
}

/// The canonical query string, which is also a valid query string to send: each name and value
/// encoded, pairs sorted by name then value, joined with `&`.
pub fn canonical_query_string(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| {
            let (mut n, mut v) = (String::new(), String::new());
            percent_encode_into(&mut n, name.as_bytes(), false);
            percent_encode_into(&mut v, value.as_bytes(), false);
            (n, v)
        })
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded.into_iter().map(|(name, value)| format!("{name}={value}")).collect();
    pairs.join("&")
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn signing_key(params: &SigningParams<'_>) -> hmac::Key {
    let mut seed = Vec::with_capacity(4 + params.credentials.secret_access_key.len());
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(params.credentials.secret_access_key.as_bytes());
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, &seed);
    for part in [params.time.date_stamp(), params.region, params.service, "aws4_request"] {
        key = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&key, part.as_bytes()).as_ref());
    }
    key
}

/// Lowercase hex SHA-256, the form SigV4 uses for payload and canonical-request hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xF)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> Credentials {
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    }

    fn params<'a>(credentials: &'a Credentials, settings: SigningSettings) -> SigningParams<'a> {
        SigningParams {
            credentials,
            region: "us-east-1",
            service: "service",
            time: SigningTime::from_amz_date("20150830T123600Z").unwrap(),
            settings,
        }
    }

    fn get(path: &str) -> SignableRequest<'_> {
        SignableRequest {
            method: "GET",
            path,
            query: &[],
            headers: &[("Host", "example.amazonaws.com")],
            payload: Payload::Bytes(b""),
        }
    }

    fn canonical_uri_line(output: &SigningOutput) -> &str {
        output.canonical_request().lines().nth(1).unwrap()
    }

    #[test]
    fn unix_seconds_format_as_amz_date() {
        assert_eq!(SigningTime::from_unix_seconds(1_440_938_160).unwrap().amz_date(), "20150830T123600Z");
        assert_eq!(SigningTime::from_unix_seconds(0).unwrap().amz_date(), "19700101T000000Z");
        // 2024-02-29 (leap day) and the last representable second.
        assert_eq!(SigningTime::from_unix_seconds(1_709_164_800).unwrap().amz_date(), "20240229T000000Z");
        assert_eq!(SigningTime::from_unix_seconds(MAX_UNIX_SECONDS).unwrap().amz_date(), "99991231T235959Z");
        assert_eq!(SigningTime::from_unix_seconds(MAX_UNIX_SECONDS + 1), Err(SignError::InvalidTime));
        assert_eq!(SigningTime::from_unix_seconds(u64::MAX), Err(SignError::InvalidTime));
    }

    #[test]
    fn amz_date_is_validated() {
        assert_eq!(SigningTime::from_amz_date("20150830T123600Z").unwrap().date_stamp(), "20150830");
        for bad in ["", "2015-08-30T12:36:00Z", "20151330T123600Z", "20150830T243600Z", "20150830T123600", "x"] {
            assert_eq!(SigningTime::from_amz_date(bad), Err(SignError::InvalidTime), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret_or_token() {
        let credentials = example_credentials().with_session_token("TOKEN-VALUE");
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("wJalrXUtnFEMI") && !shown.contains("TOKEN-VALUE"), "{shown}");
        let output = sign(&get("/"), &params(&credentials, SigningSettings::standard())).unwrap();
        let shown = format!("{output:?} {:?}", params(&credentials, SigningSettings::standard()));
        assert!(!shown.contains("wJalrXUtnFEMI") && !shown.contains("TOKEN-VALUE"), "{shown}");
    }

    #[test]
    fn double_encoding_escapes_existing_escapes() {
        let credentials = example_credentials();
        let output = sign(&get("/model/a.b-v1%3A0/converse"), &params(&credentials, SigningSettings::standard()));
        assert_eq!(canonical_uri_line(&output.unwrap()), "/model/a.b-v1%253A0/converse");
    }

    #[test]
    fn single_encoding_keeps_escapes_and_escapes_raw_characters() {
        let credentials = example_credentials();
        let settings = SigningSettings::s3();
        for (path, expected) in [
            ("/bucket/a%2Fb c", "/bucket/a%2Fb%20c"),
            ("/bucket/k%3Ay", "/bucket/k%3Ay"),
            ("/bucket/./x//", "/bucket/./x//"),
            ("/bad%zz", "/bad%25zz"),
        ] {
            let output = sign(&get(path), &params(&credentials, settings)).unwrap();
            assert_eq!(canonical_uri_line(&output), expected, "{path}");
        }
    }

    #[test]
    fn normalisation_removes_dot_and_empty_segments() {
        for (path, expected) in [
            ("/", "/"),
            ("/a/b/../c", "/a/c"),
            ("/a/./b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("//a//b", "/a/b"),
        ] {
            assert_eq!(normalize_path(path), expected, "{path}");
        }
    }

    #[test]
    fn query_is_encoded_and_sorted() {
        assert_eq!(canonical_query_string(&[]), "");
        assert_eq!(
            canonical_query_string(&[("b", "2"), ("a", "x y+z/"), ("a", "1"), ("ሴ", "")]),
            "%E1%88%B4=&a=1&a=x%20y%2Bz%2F&b=2"
        );
    }

    #[test]
    fn signer_owned_and_unsigned_headers_stay_out_of_the_signature() {
        let credentials = example_credentials();
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "19990101T000000Z"),
            ("Authorization", "stale"),
            ("User-Agent", "corelay"),
            ("Transfer-Encoding", "chunked"),
        ];
        let request = SignableRequest { headers: &headers, ..get("/") };
        let output = sign(&request, &params(&credentials, SigningSettings::standard())).unwrap();
        assert_eq!(output.signed_headers(), "host;x-amz-date");
        assert!(output.canonical_request().contains("x-amz-date:20150830T123600Z\n"));
        let names: Vec<&str> = output.headers().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["x-amz-date", "authorization"]);
    }

    #[test]
    fn token_and_payload_hash_headers_are_added_in_order() {
        let credentials = example_credentials().with_session_token("tok");
        let settings = SigningSettings { content_sha256_header: true, ..SigningSettings::standard() };
        let output = sign(&get("/"), &params(&credentials, settings)).unwrap();
        let names: Vec<&str> = output.headers().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "authorization"]);
        assert_eq!(output.signed_headers(), "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
        assert_eq!(output.headers()[2].1, EMPTY_PAYLOAD_SHA256);
        assert!(output.authorization().ends_with(output.signature()));
    }

    #[test]
    fn invalid_inputs_are_errors_not_panics() {
        let credentials = example_credentials();
        let p = params(&credentials, SigningSettings::standard());
        let no_host = SignableRequest { headers: &[("Accept", "x")], ..get("/") };
        assert_eq!(sign(&no_host, &p).unwrap_err(), SignError::MissingHost);
        assert_eq!(sign(&get("relative"), &p).unwrap_err(), SignError::InvalidPath);
        assert_eq!(sign(&get("/a?b=c"), &p).unwrap_err(), SignError::InvalidPath);
        assert_eq!(sign(&SignableRequest { method: "GE T", ..get("/") }, &p).unwrap_err(), SignError::InvalidMethod);
        let bad_name = SignableRequest { headers: &[("Host", "h"), ("Bad Name", "v")], ..get("/") };
        assert_eq!(sign(&bad_name, &p).unwrap_err(), SignError::InvalidHeaderName("Bad Name".into()));
        let bad_scope = SigningParams { region: "us-east-1/x", ..p.clone() };
        assert_eq!(sign(&get("/"), &bad_scope).unwrap_err(), SignError::InvalidScope);
        let bad_hash = SignableRequest { payload: Payload::Precomputed("a b"), ..get("/") };
        assert_eq!(sign(&bad_hash, &p).unwrap_err(), SignError::InvalidPayloadHash);
    }

    #[test]
    fn header_values_are_trimmed_and_inner_whitespace_collapsed() {
        assert_eq!(trim_all("  a   b\t c \n  d  "), "a b c d");
        assert_eq!(trim_all(" \"a   b\" "), "\"a b\"");
        assert_eq!(trim_all("   "), "");
    }

    #[test]
    fn repeated_headers_merge_in_given_order() {
        let credentials = example_credentials();
        let headers = [("Host", "h"), ("X-B", "2"), ("x-a", "1"), ("X-B", " 1 ")];
        let output = sign(
            &SignableRequest { headers: &headers, ..get("/") },
            &params(&credentials, SigningSettings::standard()),
        )
        .unwrap();
        assert!(output.canonical_request().contains("\nhost:h\nx-a:1\nx-amz-date:20150830T123600Z\nx-b:2,1\n"));
        assert_eq!(output.signed_headers(), "host;x-a;x-amz-date;x-b");
    }

    #[test]
    fn empty_path_signs_as_root() {
        let credentials = example_credentials();
        let output = sign(&get(""), &params(&credentials, SigningSettings::standard())).unwrap();
        assert_eq!(canonical_uri_line(&output), "/");
    }

    #[test]
    fn path_segment_encoding_escapes_model_id_colon() {
        assert_eq!(
            encode_path_segment("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(encode_path_segment("a/b c"), "a%2Fb%20c");
    }
}
