//! Google service-account credentials for Vertex AI: reading the key file, signing the JWT assertion
//! (RS256), the OAuth 2 token exchange's request body and response, and the per-worker table of
//! access tokens. Sans-IO: fetching and the refresh schedule live in `runtime::tokens`.
//!
//! The flow is Google's "server to server" one: a JWT claiming `iss` = the account's e-mail,
//! `scope` = cloud-platform, `aud` = the token URL, valid for at most an hour, is signed with the
//! account's RSA key and posted as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`; the answer
//! carries `access_token` and `expires_in`.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use super::Secret;

/// Where Google exchanges assertions for access tokens when neither the config nor the key file
/// names another URL.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// The scope Vertex AI calls need.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How long an assertion is valid: Google's maximum.
const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// `expires_in` assumed when a token response leaves it out (Google's tokens last an hour).
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    #[error("not a JSON service-account key file: {0}")]
    Json(String),
    #[error("`type` is `{0}`, expected `service_account` (user and external-account credentials are not supported)")]
    WrongType(String),
    #[error("`private_key` is not a PEM PKCS#8 private key")]
    Pem,
    #[error("`private_key` is not an RSA key ring accepts: {0}")]
    Key(String),
}

/// Why a token exchange gave no token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The token endpoint answered with an OAuth error (`invalid_grant`, ...).
    #[error("token endpoint answered {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected { status: u16, error: String, description: Option<String> },
    #[error("token endpoint answered {status} with a body that is not a token response")]
    Malformed { status: u16 },
    #[error("cannot sign the assertion")]
    Signing,
}

/// The fields of a key file Corelay uses; the rest (`client_id`, `auth_uri`, ...) is ignored.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// A service account ready to sign assertions. `Debug` names the account, never the key.
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: Option<String>,
    /// The key file's `token_uri`, used when the config names no `token_url`.
    pub token_uri: Option<String>,
    key: RsaKeyPair,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Parses a key file as Google issues it (`"type": "service_account"`).
    pub fn from_key_file(json: &[u8]) -> Result<ServiceAccount, KeyFileError> {
        let file: KeyFile = serde_json::from_slice(json).map_err(|e| KeyFileError::Json(e.to_string()))?;
        if file.kind != "service_account" {
            return Err(KeyFileError::WrongType(file.kind));
        }
        let der = PrivatePkcs8KeyDer::from_pem_slice(file.private_key.as_bytes()).map_err(|_| KeyFileError::Pem)?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| KeyFileError::Key(e.to_string()))?;
        Ok(ServiceAccount {
            client_email: file.client_email,
            private_key_id: file.private_key_id.filter(|id| !id.is_empty()),
            token_uri: file.token_uri.filter(|uri| !uri.is_empty()),
            key,
        })
    }

    /// The DER `RSAPublicKey` of the account's key (what a verifier checks assertions against).
    pub fn public_key_der(&self) -> &[u8] {
        use ring::signature::KeyPair as _;
        self.key.public_key().as_ref()
    }

    /// A signed JWT asserting this account for `token_url`, issued at `now_unix`.
    pub fn assertion(&self, token_url: &str, now_unix: u64) -> Result<String, TokenError> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = serde_json::Value::from(kid.as_str());
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": token_url,
            "iat": now_unix,
            "exp": now_unix + ASSERTION_LIFETIME_SECS,
        });
        let mut jwt = encode_segment(&header);
        jwt.push('.');
        jwt.push_str(&encode_segment(&claims));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), jwt.as_bytes(), &mut signature)
            .map_err(|_| TokenError::Signing)?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(&signature));
        Ok(jwt)
    }
}

fn encode_segment(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The form body of the token request. A JWT is base64url and dots only, so it needs no escaping.
pub fn token_request_body(assertion: &str) -> String {
    format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}")
}

/// A token as the exchange returned it.
#[derive(PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: Secret,
    pub expires_in_secs: u64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken").field("expires_in_secs", &self.expires_in_secs).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads the token endpoint's answer. Error texts come from the endpoint's `error` fields only, so
/// nothing secret is echoed.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<IssuedToken, TokenError> {
    let parsed: Option<TokenResponse> = serde_json::from_slice(body).ok();
    match parsed {
        Some(TokenResponse { access_token: Some(token), expires_in, .. })
            if (200..300).contains(&status) && !token.is_empty() =>
        {
            Ok(IssuedToken {
                access_token: Secret::new(token),
                expires_in_secs: expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS),
            })
        }
        Some(TokenResponse { error: Some(error), error_description, .. }) => {
            Err(TokenError::Rejected { status, error, description: error_description })
        }
        _ => Err(TokenError::Malformed { status }),
    }
}

/// An access token for one provider, as the refresher publishes it to every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub provider: String,
    pub token: Secret,
    /// Unix time in milliseconds from which the token must not be sent.
    pub expires_at_unix_ms: u64,
}

/// Why a provider has no usable token right now.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MissingToken {
    #[error("no access token yet for its service account (the token endpoint has not answered; see the log)")]
    NotYet,
    #[error("its access token expired and no refresh has succeeded since (see the log)")]
    Expired,
}

/// A worker's access tokens by provider name: its own copy, so the request path touches no shared
/// memory.
#[derive(Debug, Default)]
pub struct TokenTable {
    by_provider: HashMap<String, AccessToken>,
}

impl TokenTable {
    /// Keeps `token` unless the table already holds one for the provider that lasts longer (an
    /// out-of-order delivery never replaces a fresher token).
    pub fn install(&mut self, token: &AccessToken) {
        let fresher =
            self.by_provider.get(&token.provider).is_none_or(|t| t.expires_at_unix_ms <= token.expires_at_unix_ms);
        if fresher {
            self.by_provider.insert(token.provider.clone(), token.clone());
        }
    }

    /// The provider's token if it is still valid at `now_unix_ms`.
    pub fn valid(&self, provider: &str, now_unix_ms: u64) -> Result<&str, MissingToken> {
        match self.by_provider.get(provider) {
            Some(t) if now_unix_ms < t.expires_at_unix_ms => Ok(t.token.expose()),
            Some(_) => Err(MissingToken::Expired),
            None => Err(MissingToken::NotYet),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    fn key_file() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vertex-test-service-account.json")).unwrap()
    }

    fn decode_json(segment: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn a_google_key_file_parses_and_names_its_account() {
        let account = ServiceAccount::from_key_file(&key_file()).unwrap();
        assert_eq!(account.client_email, "corelay-test@corelay-test.iam.gserviceaccount.com");
        assert_eq!(account.token_uri.as_deref(), Some(DEFAULT_TOKEN_URL));
        assert!(!format!("{account:?}").contains("PRIVATE"), "Debug must not print the key");
    }

    #[test]
    fn the_assertion_carries_googles_claims_and_a_valid_rs256_signature() {
        let account = ServiceAccount::from_key_file(&key_file()).unwrap();
        let jwt = account.assertion("http://127.0.0.1:9/token", 1_700_000_000).unwrap();

        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode_json(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], "0123456789abcdef0123456789abcdef01234567");
        let claims = decode_json(parts[1]);
        assert_eq!(claims["iss"], "corelay-test@corelay-test.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_003_600u64);
        let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let verifier = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, account.public_key_der());
        verifier.verify(signed.as_bytes(), &signature).expect("signature verifies with the account's key");
        assert!(verifier.verify(b"something else", &signature).is_err());
    }

    #[test]
    fn key_files_that_cannot_sign_are_refused_with_the_reason() {
        assert!(matches!(ServiceAccount::from_key_file(b"not json"), Err(KeyFileError::Json(_))));
        let user = br#"{"type":"authorized_user","client_email":"a","private_key":"b"}"#;
        assert_eq!(ServiceAccount::from_key_file(user).unwrap_err(), KeyFileError::WrongType("authorized_user".into()));
        let no_pem = br#"{"type":"service_account","client_email":"a","private_key":"b"}"#;
        assert_eq!(ServiceAccount::from_key_file(no_pem).unwrap_err(), KeyFileError::Pem);
        let not_rsa = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let file = serde_json::json!({"type":"service_account","client_email":"a","private_key":not_rsa});
        assert!(matches!(ServiceAccount::from_key_file(file.to_string().as_bytes()), Err(KeyFileError::Key(_))));
    }

    #[test]
    fn the_token_request_is_the_jwt_bearer_grant() {
        assert_eq!(
            token_request_body("a.b.c"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        );
    }

    #[test]
    fn token_responses_give_a_token_or_the_endpoints_reason() {
        let ok = br#"{"access_token":"ya29.c.x","expires_in":3599,"token_type":"Bearer"}"#;
        let token = parse_token_response(200, ok).unwrap();
        assert_eq!(token.access_token.expose(), "ya29.c.x");
        assert_eq!(token.expires_in_secs, 3599);
        assert!(!format!("{token:?}").contains("ya29"), "Debug must not print the token");

        let no_expiry = br#"{"access_token":"t"}"#;
        assert_eq!(parse_token_response(200, no_expiry).unwrap().expires_in_secs, 3600);

        let rejected = br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#;
        let error = parse_token_response(400, rejected).unwrap_err();
        assert_eq!(error.to_string(), "token endpoint answered 400: invalid_grant (Invalid JWT Signature.)");

        assert_eq!(parse_token_response(502, b"<html>").unwrap_err(), TokenError::Malformed { status: 502 });
        assert_eq!(
            parse_token_response(200, br#"{"access_token":""}"#).unwrap_err(),
            TokenError::Malformed { status: 200 }
        );
        // A token in an error status is not trusted.
        assert_eq!(parse_token_response(500, ok).unwrap_err(), TokenError::Malformed { status: 500 });
    }

    fn token(value: &str, expires_at_unix_ms: u64) -> AccessToken {
        AccessToken { provider: "vertex".into(), token: Secret::new(value.into()), expires_at_unix_ms }
    }

    #[test]
    fn the_table_serves_a_token_until_it_expires_and_keeps_the_fresher_one() {
        let mut table = TokenTable::default();
        assert_eq!(table.valid("vertex", 100), Err(MissingToken::NotYet));
        table.install(&token("first", 200));
        assert_eq!(table.valid("vertex", 199), Ok("first"));
        assert_eq!(table.valid("vertex", 200), Err(MissingToken::Expired));
        table.install(&token("second", 300));
        table.install(&token("stale", 250));
        assert_eq!(table.valid("vertex", 200), Ok("second"));
        assert_eq!(table.valid("other", 200), Err(MissingToken::NotYet));
    }
}
