//! The headers of a Bedrock request: its content headers and its authentication, SigV4 (signing
//! name `bedrock`, any region) or a Bedrock API key (`Authorization: Bearer`). The SigV4 algorithm
//! is `aws::sigv4`'s; this module only decides what is signed, which must be exactly what is sent.
//!
//! It reads no clock and no environment: the caller passes the time and the credentials, and writes
//! `host` itself (it must be the `host` given here, port included when not the default).

use super::{Api, SIGNING_SERVICE};
use crate::aws::sigv4::{self, Credentials, Payload, SignError, SignableRequest, SigningParams, SigningTime};

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth<'a> {
    /// IAM credentials, signed for `region` at `time` (the caller's clock, UTC).
    SigV4 { region: &'a str, credentials: &'a Credentials, time: SigningTime },
    /// A Bedrock API key (what `AWS_BEARER_TOKEN_BEDROCK` holds).
    Bearer(&'a str),
}

impl std::fmt::Debug for Auth<'_> {
    // Leaves out the API key; `Credentials` redacts its own secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SigV4 { region, credentials, time } => f
                .debug_struct("SigV4")
                .field("region", region)
                .field("credentials", credentials)
                .field("time", time)
                .finish(),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// The parts of a request a signature covers besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// As sent on the request line, e.g. from [`super::path`].
    pub path: &'a str,
    /// The `host` header's value: `bedrock-runtime.{region}.amazonaws.com`, or a test server's
    /// `127.0.0.1:9000`.
    pub host: &'a str,
    pub body: &'a [u8],
}

/// The content headers of `api`, as the AWS SDKs send them: JSON in; JSON or an event stream out.
/// InvokeModelWithResponseStream states the model's body type in `x-amzn-bedrock-accept` instead,
/// since `accept` there is the event stream's.
pub fn content_headers(api: Api, stream: bool) -> [(&'static str, &'static str); 2] {
    let accept = match (api, stream) {
        (_, false) => ("accept", "application/json"),
        (Api::Converse, true) => ("accept", "application/vnd.amazon.eventstream"),
        (Api::InvokeAnthropic, true) => ("x-amzn-bedrock-accept", "*/*"),
    };
    [("content-type", "application/json"), accept]
}

/// Every header the request needs except `host` (and framing): [`content_headers`], then
/// `x-amz-date`, `x-amz-security-token` (with a session token) and `authorization` for SigV4, or
/// `authorization: Bearer` for an API key. Lowercase names, values as bytes for the head writer.
pub fn request_headers(
    api: Api,
    stream: bool,
    auth: &Auth<'_>,
    request: &SignedRequest<'_>,
) -> Result<Vec<(&'static str, Vec<u8>)>, SignError> {
    let content = content_headers(api, stream);
    let mut headers: Vec<(&'static str, Vec<u8>)> =
        content.iter().map(|(name, value)| (*name, value.as_bytes().to_vec())).collect();
    match auth {
        Auth::SigV4 { region, credentials, time } => {
            let signed = sign(region, credentials, request, &content, time.clone())?;
            headers.extend(signed.into_iter().map(|(name, value)| (name, value.into_bytes())));
        }
        Auth::Bearer(token) => headers.push(("authorization", format!("Bearer {token}").into_bytes())),
    }
    Ok(headers)
}

/// SigV4 for a Bedrock Runtime request carrying `headers` (and `host`): the headers to add,
/// `x-amz-date`, then `x-amz-security-token` with a session token, then `authorization`.
pub fn sign(
    region: &str,
    credentials: &Credentials,
    request: &SignedRequest<'_>,
    headers: &[(&str, &str)],
    time: SigningTime,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let mut all = Vec::with_capacity(headers.len() + 1);
    all.push(("host", request.host));
    all.extend_from_slice(headers);
    let signable = SignableRequest {
        method: request.method,
        path: request.path,
        query: &[],
        headers: &all,
        payload: Payload::Bytes(request.body),
    };
    let params = SigningParams {
        credentials,
        region,
        service: SIGNING_SERVICE,
        time,
        settings: sigv4::SigningSettings::standard(),
    };
    Ok(sigv4::sign(&signable, &params)?.into_headers())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> SigningTime {
        SigningTime::from_amz_date("20250102T030405Z").unwrap()
    }

    #[test]
    fn content_headers_per_operation() {
        assert_eq!(content_headers(Api::Converse, false)[1], ("accept", "application/json"));
        assert_eq!(content_headers(Api::Converse, true)[1], ("accept", "application/vnd.amazon.eventstream"));
        assert_eq!(content_headers(Api::InvokeAnthropic, false)[1], ("accept", "application/json"));
        assert_eq!(content_headers(Api::InvokeAnthropic, true)[1], ("x-amzn-bedrock-accept", "*/*"));
    }

    #[test]
    fn bearer_keys_need_no_signature() {
        let request = SignedRequest { method: "POST", path: "/model/m/converse", host: "h", body: b"{}" };
        let headers = request_headers(Api::Converse, false, &Auth::Bearer("bedrock-api-key"), &request).unwrap();
        assert_eq!(
            headers,
            vec![
                ("content-type", b"application/json".to_vec()),
                ("accept", b"application/json".to_vec()),
                ("authorization", b"Bearer bedrock-api-key".to_vec()),
            ]
        );
    }

    #[test]
    fn the_session_token_is_sent_and_signed() {
        let credentials = Credentials::new("AKID", "secret").with_session_token("token");
        let request = SignedRequest { method: "POST", path: "/model/m/converse", host: "127.0.0.1:9000", body: b"{}" };
        let auth = Auth::SigV4 { region: "us-west-2", credentials: &credentials, time: time() };
        let headers = request_headers(Api::Converse, true, &auth, &request).unwrap();
        let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["content-type", "accept", "x-amz-date", "x-amz-security-token", "authorization"]);
        let authorization = String::from_utf8(headers[4].1.clone()).unwrap();
        let expected_prefix = concat!(
            "AWS4-HMAC-SHA256 Credential=AKID/20250102/us-west-2/bedrock/aws4_request, ",
            "SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature="
        );
        assert!(authorization.starts_with(expected_prefix), "{authorization}");
    }

    #[test]
    fn debug_output_keeps_secrets_out() {
        let credentials = Credentials::new("AKID", "wJalrXUtnFEMI").with_session_token("session-secret");
        let sigv4 = format!("{:?}", Auth::SigV4 { region: "us-east-1", credentials: &credentials, time: time() });
        assert!(!sigv4.contains("wJalrXUtnFEMI") && !sigv4.contains("session-secret"), "{sigv4}");
        assert_eq!(format!("{:?}", Auth::Bearer("key-secret")), "Bearer(<redacted>)");
    }

    #[test]
    fn signing_errors_surface() {
        let credentials = Credentials::new("AKID", "secret");
        let request = SignedRequest { method: "POST", path: "no-slash", host: "h", body: b"" };
        let auth = Auth::SigV4 { region: "us-east-1", credentials: &credentials, time: time() };
        assert_eq!(request_headers(Api::Converse, false, &auth, &request), Err(SignError::InvalidPath));
        let bad_region = Auth::SigV4 { region: "us east", credentials: &credentials, time: time() };
        let request = SignedRequest { path: "/", ..request };
        assert_eq!(request_headers(Api::Converse, false, &bad_region, &request), Err(SignError::InvalidScope));
    }
}
