//! Turns a validated `Config` into what workers run on: secrets read from the environment or from
//! key files, provider hosts resolved, CA files loaded. Every reload runs this again, so a key file
//! rewritten in place rotates the key without a restart.
//!
//! Runs on the control thread, because all of it may block (environment, files, DNS). Workers only
//! ever see the result. Secret values live in `Secret`, whose `Debug` never prints them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::{Config, ConfigIssue};
use crate::http::origin::Origin;

/// `max_tokens` for Anthropic-style providers when neither the client nor the config gives one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Azure OpenAI's `api-version` when the config names none (the current GA version).
pub const AZURE_API_VERSION: &str = "2024-10-21";

pub use crate::credentials::Secret;

/// A provider ready to be called.
#[derive(Debug, Clone)]
pub struct ResolvedProvider {
    /// Shared, not copied, into every call's record.
    pub name: std::sync::Arc<str>,
    pub kind: super::ProviderKind,
    pub origin: Origin,
    /// Socket addresses of the origin's host, resolved at load time.
    pub addrs: Vec<SocketAddr>,
    pub api_key: Option<Secret>,
    /// Extra trust anchors for this provider's TLS, in DER.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// `max_tokens` when the client sent none, as configured; providers that require one (Anthropic)
    /// fall back to `DEFAULT_MAX_TOKENS`, the others send none.
    pub default_max_tokens: Option<u32>,
    /// Bedrock: region, API and SigV4 credentials (absent: the API key, if any, is a bearer token).
    pub bedrock: Option<BedrockSettings>,
    /// Vertex: project, location and how tokens are had.
    pub vertex: Option<VertexSettings>,
    /// Azure: the `api-version` sent with every request.
    pub api_version: Option<String>,
}

/// What stands in for a secret cut out of a provider's text.
const REDACTED: &[u8] = b"[redacted]";
/// Shorter values are not searched for: they would match ordinary words, and no real credential is
/// that short.
const MIN_SCRUBBED_SECRET: usize = 8;

impl ResolvedProvider {
    /// The credentials this provider is configured with (key, AWS secrets): none of them may reach a
    /// client or a log through the provider's own error text.
    fn secrets(&self) -> impl Iterator<Item = &str> {
        let aws = self.bedrock.as_ref().and_then(|b| b.credentials.as_ref());
        let aws = aws.into_iter().flat_map(|c| {
            [Some(&c.access_key_id), Some(&c.secret_access_key), c.session_token.as_ref()].into_iter().flatten()
        });
        self.api_key.iter().chain(aws).map(Secret::expose).filter(|s| s.len() >= MIN_SCRUBBED_SECRET)
    }

    /// `text` from this provider with every configured secret in it replaced by `[redacted]`.
    pub fn scrub<'t>(&self, text: &'t [u8]) -> std::borrow::Cow<'t, [u8]> {
        let mut scrubbed = std::borrow::Cow::Borrowed(text);
        for secret in self.secrets() {
            if memchr::memmem::find(&scrubbed, secret.as_bytes()).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(scrubbed.len());
            let mut rest: &[u8] = &scrubbed;
            while let Some(at) = memchr::memmem::find(rest, secret.as_bytes()) {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(REDACTED);
                rest = &rest[at + secret.len()..];
            }
            out.extend_from_slice(rest);
            scrubbed = std::borrow::Cow::Owned(out);
        }
        scrubbed
    }

    /// [`Self::scrub`] for text already known to be UTF-8.
    pub fn scrub_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.scrub(text.as_bytes())).into_owned()
    }
}

/// Where a Vertex provider's requests go and what authenticates them.
#[derive(Debug, Clone)]
pub struct VertexSettings {
    pub project: String,
    pub location: String,
    /// A service account whose tokens the refresher fetches; absent: `api_key` is a static token.
    pub service_account: Option<ServiceAccountSettings>,
}

/// A service account and the token URL its assertions are exchanged at.
#[derive(Debug, Clone)]
pub struct ServiceAccountSettings {
    pub account: Arc<crate::credentials::vertex::ServiceAccount>,
    pub token_url: String,
    /// The key file, for telling a changed account from an unchanged one on reload.
    pub file: std::path::PathBuf,
}

/// What a Bedrock provider signs with.
#[derive(Debug, Clone)]
pub struct BedrockSettings {
    pub region: String,
    pub api: super::BedrockApi,
    pub credentials: Option<AwsCredentials>,
}

#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// A gateway key clients may present.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub name: String,
    pub secret: Secret,
}

/// The config plus everything read from outside it. Shared read-only with workers through an `Arc`.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub config: Config,
    pub providers: BTreeMap<String, Arc<ResolvedProvider>>,
    pub keys: Vec<ResolvedKey>,
    /// Guards admin endpoints; `None` turns them off.
    pub admin_key: Option<Secret>,
    /// The file this came from, re-read by a reload.
    pub source: Option<std::path::PathBuf>,
}

/// Whether provider hosts are looked up in DNS while resolving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLookup {
    /// Look every provider host up: what a gateway about to run needs.
    Dns,
    /// Look nothing up (`corelay check --offline`): every provider's `addrs` stays empty, so the
    /// result is for checking only, never for running.
    Skip,
}

/// How a failed lookup's message begins, so callers can tell DNS failures from config mistakes.
const DNS_FAILURE: &str = "DNS lookup of";

/// Whether `issue` is a failed DNS lookup rather than something wrong in the file or environment.
pub fn is_dns_failure(issue: &ConfigIssue) -> bool {
    issue.message.starts_with(DNS_FAILURE)
}

/// Resolves secrets, addresses and CA files; collects every failure.
pub fn resolve(config: Config) -> Result<ResolvedConfig, Vec<ConfigIssue>> {
    resolve_with(config, HostLookup::Dns)
}

/// [`resolve`], with DNS lookups done or skipped. Every failure is collected: one provider's
/// failed lookup does not hide its missing key, CA file or credentials.
pub fn resolve_with(config: Config, lookup: HostLookup) -> Result<ResolvedConfig, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut providers = BTreeMap::new();
    for (name, provider) in &config.providers {
        if let Some(resolved) = resolve_provider(name, provider, lookup, &mut issues) {
            providers.insert(name.clone(), Arc::new(resolved));
        }
    }
    let keys = config.keys.iter().enumerate().filter_map(|(i, key)| resolve_key(i, key, &mut issues)).collect();
    let a = &config.admin;
    let admin_key = match (&a.key, SecretSource::of(&a.key_env, &a.key_file)) {
        (Some(inline), _) => Some(Secret(inline.clone())),
        (None, Some(source)) => source.read("admin.key", &mut issues).map(Secret),
        (None, None) => None,
    };
    if issues.is_empty() {
        Ok(ResolvedConfig { config, providers, keys, admin_key, source: None })
    } else {
        Err(issues)
    }
}

/// One provider, every part of it attempted even when an earlier part failed; `None` when any did.
fn resolve_provider(
    name: &str,
    provider: &super::ProviderConfig,
    lookup: HostLookup,
    issues: &mut Vec<ConfigIssue>,
) -> Option<ResolvedProvider> {
    // An invalid base_url was already reported by `Config::parse`.
    let origin = Origin::parse_base_url(&provider.base_url).ok()?;
    let issues_before = issues.len();
    let addrs = lookup_host(&origin, lookup, &format!("providers.{name}.base_url"), issues);
    let api_key = SecretSource::of(&provider.api_key_env, &provider.api_key_file)
        .map(|source| source.read(&format!("providers.{name}.api_key"), issues));
    let bedrock = resolve_bedrock(name, provider, issues);
    let vertex = resolve_vertex(name, provider, issues);
    let extra_roots =
        provider.ca_file.as_ref().map(|path| load_roots(path, &format!("providers.{name}.ca_file"), issues));
    if issues.len() > issues_before {
        return None;
    }
    Some(ResolvedProvider {
        name: name.into(),
        kind: provider.kind,
        origin,
        addrs: addrs.unwrap_or_default(),
        api_key: api_key.flatten().map(Secret),
        extra_roots: extra_roots.flatten().unwrap_or_default(),
        default_max_tokens: provider.default_max_tokens,
        bedrock,
        api_version: (provider.kind == super::ProviderKind::Azure)
            .then(|| provider.api_version.clone().unwrap_or_else(|| AZURE_API_VERSION.to_string())),
        vertex,
    })
}

/// The origin host's addresses (none when lookups are skipped); a failure is reported as DNS's.
fn lookup_host(
    origin: &Origin,
    lookup: HostLookup,
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Vec<SocketAddr>> {
    if lookup == HostLookup::Skip {
        return Some(Vec::new());
    }
    match (origin.host.as_str(), origin.port).to_socket_addrs() {
        Ok(addrs) => Some(addrs.collect()),
        Err(e) => {
            // std prefixes getaddrinfo's own words ("Name or service not known") with this.
            let text = e.to_string();
            let why = text.strip_prefix("failed to lookup address information: ").unwrap_or(&text);
            issues.push(at(key, format!("{DNS_FAILURE} `{}` failed: {why}", origin.host)));
            None
        }
    }
}

fn resolve_vertex(
    name: &str,
    provider: &super::ProviderConfig,
    issues: &mut Vec<ConfigIssue>,
) -> Option<VertexSettings> {
    if provider.kind != super::ProviderKind::Vertex {
        return None;
    }
    let service_account = provider.service_account_file.as_ref().and_then(|path| {
        let key = format!("providers.{name}.service_account_file");
        let account = read_service_account(path, &key, issues)?;
        let token_url = provider
            .token_url
            .clone()
            .or_else(|| account.token_uri.clone())
            .unwrap_or_else(|| crate::credentials::vertex::DEFAULT_TOKEN_URL.to_string());
        if let Err(why) = crate::http::origin::Origin::parse_base_url(&token_url) {
            issues.push(at(&key, format!("the key file's token_uri `{token_url}`: {why}")));
            return None;
        }
        Some(ServiceAccountSettings { account: Arc::new(account), token_url, file: path.clone() })
    });
    Some(VertexSettings {
        project: provider.project.clone().unwrap_or_default(),
        location: provider.location.clone().unwrap_or_default(),
        service_account,
    })
}

fn read_service_account(
    path: &std::path::Path,
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<crate::credentials::vertex::ServiceAccount> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            issues.push(at(key, format!("cannot read {}: {e}", path.display())));
            return None;
        }
    };
    crate::credentials::vertex::ServiceAccount::from_key_file(&bytes)
        .map_err(|e| issues.push(at(key, format!("{}: {e}", path.display()))))
        .ok()
}

fn resolve_bedrock(
    name: &str,
    provider: &super::ProviderConfig,
    issues: &mut Vec<ConfigIssue>,
) -> Option<BedrockSettings> {
    if provider.kind != super::ProviderKind::Bedrock {
        return None;
    }
    let at = format!("providers.{name}");
    let id = SecretSource::of(&provider.aws_access_key_id_env, &provider.aws_access_key_id_file);
    let secret = SecretSource::of(&provider.aws_secret_access_key_env, &provider.aws_secret_access_key_file);
    let credentials = match (id, secret) {
        (Some(id), Some(secret)) => {
            let access_key_id = id.read(&format!("{at}.aws_access_key_id"), issues).map(Secret);
            let secret_access_key = secret.read(&format!("{at}.aws_secret_access_key"), issues).map(Secret);
            let session_token = session_token(provider, &at, issues);
            Some(AwsCredentials { access_key_id: access_key_id?, secret_access_key: secret_access_key?, session_token })
        }
        _ => None,
    };
    Some(BedrockSettings {
        region: provider.region.clone().unwrap_or_default(),
        api: provider.bedrock_api.unwrap_or_default(),
        credentials,
    })
}

/// A session token is optional even when its variable is named (it exists only for temporary
/// credentials); a named file must be readable, and an empty one means no token.
fn session_token(provider: &super::ProviderConfig, at: &str, issues: &mut Vec<ConfigIssue>) -> Option<Secret> {
    if let Some(path) = &provider.aws_session_token_file {
        let key = format!("{at}.aws_session_token_file");
        return read_file(path, &key, issues).filter(|t| !t.is_empty()).map(Secret);
    }
    let var = provider.aws_session_token_env.as_ref()?;
    std::env::var(var).ok().filter(|t| !t.is_empty()).map(Secret)
}

fn resolve_key(index: usize, key: &super::KeyConfig, issues: &mut Vec<ConfigIssue>) -> Option<ResolvedKey> {
    let secret = match (&key.key, SecretSource::of(&key.key_env, &key.key_file)) {
        (Some(inline), _) => inline.clone(),
        (None, Some(source)) => source.read(&format!("keys[{index}].key"), issues)?,
        (None, None) => return None,
    };
    Some(ResolvedKey { name: key.name.clone(), secret: Secret(secret) })
}

/// Where a secret is read from: a `*_env` variable or a `*_file` (validation allows one of them).
enum SecretSource<'a> {
    Env(&'a str),
    File(&'a std::path::Path),
}

impl<'a> SecretSource<'a> {
    /// The variable when named, else the file, else none.
    fn of(env: &'a Option<String>, file: &'a Option<std::path::PathBuf>) -> Option<SecretSource<'a>> {
        match (env, file) {
            (Some(var), _) => Some(SecretSource::Env(var)),
            (None, Some(path)) => Some(SecretSource::File(path)),
            (None, None) => None,
        }
    }

    /// The secret, or an issue under `{setting}_env` / `{setting}_file` (`setting` is the key path
    /// without the suffix: `providers.x.api_key`, `admin.key`).
    fn read(&self, setting: &str, issues: &mut Vec<ConfigIssue>) -> Option<String> {
        let field = |suffix: &str| format!("{setting}{suffix}");
        match self {
            SecretSource::Env(var) => read_env(var, &field("_env"), issues),
            SecretSource::File(path) => {
                let value = read_file(path, &field("_file"), issues)?;
                if value.is_empty() {
                    issues.push(at(&field("_file"), format!("{} is empty", path.display())));
                    return None;
                }
                Some(value)
            }
        }
    }
}

/// A secret file's contents without surrounding whitespace (the newline an editor or `echo` adds is
/// not part of the key).
fn read_file(path: &std::path::Path, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text.trim().to_string()),
        Err(e) => {
            issues.push(at(key, format!("cannot read {}: {e}", path.display())));
            None
        }
    }
}

fn read_env(var: &str, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        Ok(_) => {
            issues.push(at(key, format!("environment variable {var} is empty")));
            None
        }
        Err(_) => {
            issues.push(at(key, format!("environment variable {var} is not set")));
            None
        }
    }
}

fn load_roots(
    path: &std::path::Path,
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Vec<CertificateDer<'static>>> {
    let certs: Result<Vec<_>, _> = match CertificateDer::pem_file_iter(path) {
        Ok(iter) => iter.collect(),
        Err(e) => {
            issues.push(at(key, format!("cannot read {}: {e}", path.display())));
            return None;
        }
    };
    match certs {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            issues.push(at(key, format!("{} holds no PEM certificate", path.display())));
            None
        }
        Err(e) => {
            issues.push(at(key, format!("{}: {e}", path.display())));
            None
        }
    }
}

fn at(key: &str, message: String) -> ConfigIssue {
    ConfigIssue { key: key.to_string(), line: None, message }
}
