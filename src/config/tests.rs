//! Config parsing and validation tests on literal TOML.

use super::*;

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8080"
cores = 2
pin_cores = true

[pool]
max_idle_per_host = 64
idle_timeout_ms = 90000
connect_timeout_ms = 2000

[providers.mock]
kind = "openai"
base_url = "http://127.0.0.1:9000/v1"
api_key_env = "MOCK_KEY"

[models."acme/chat-small"]
endpoints = [{ provider = "mock", model = "gpt-4o-mini" }]
"#;

#[test]
fn the_issue_example_parses_with_its_meanings() {
    let c = Config::parse(MINIMAL).expect("valid");
    assert_eq!(c.listen_addr().to_string(), "127.0.0.1:8080");
    assert_eq!((c.server.cores, c.server.pin_cores, c.worker_count()), (2, true, 2));
    assert_eq!((c.pool.max_idle_per_host, c.pool.idle_timeout_ms, c.pool.connect_timeout_ms), (64, 90000, 2000));
    let p = &c.providers["mock"];
    assert_eq!(
        (p.kind, p.base_url.as_str(), p.api_key_env.as_deref()),
        (ProviderKind::Openai, "http://127.0.0.1:9000/v1", Some("MOCK_KEY"))
    );
    let m = &c.models["acme/chat-small"];
    assert_eq!((m.endpoints[0].provider.as_str(), m.endpoints[0].model.as_str()), ("mock", "gpt-4o-mini"));
}

#[test]
fn every_unknown_key_is_reported_with_its_line() {
    let text = "bogus = 1\n[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n[pool]\nmax_idle = 1\n[providers.p]\nkind = \"openai\"\nbase_url = \"http://h\"\nkey = \"x\"\n[models.m]\nendpoints = [{ provider = \"p\", model = \"x\", wieght = 2 }]\n";
    let issues = Config::parse(text).unwrap_err();
    let found: Vec<(&str, Option<usize>)> = issues.iter().map(|i| (i.key.as_str(), i.line)).collect();
    assert_eq!(
        found,
        vec![
            ("bogus", Some(1)),
            ("server.listen_port", Some(4)),
            ("pool.max_idle", Some(6)),
            ("providers.p.key", Some(10)),
            ("models.\"m\".endpoints[0].wieght", Some(12)),
        ]
    );
    assert!(issues.iter().all(|i| i.message == "unknown key"));
}

#[test]
fn semantic_errors_are_all_collected() {
    let text = r#"
[server]
listen = "nowhere"
io_uring_entries = 1000
[providers.p]
kind = "openai"
base_url = "ftp://h"
[models.a]
endpoints = [{ provider = "missing", model = "x" }]
[models.b]
endpoints = []
[[keys]]
name = "k"
key = "short"
[[keys]]
name = "k"
key_env = "X"
"#;
    let issues = Config::parse(text).unwrap_err();
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "server.listen",
            "server.io_uring_entries",
            "providers.p.base_url",
            "models.\"a\".endpoints[0].provider",
            "models.\"b\".endpoints",
            "keys[0].key",
            "keys[1].name",
        ]
    );
    assert_eq!(issues[0].line, Some(3));
}

#[test]
fn syntax_and_type_errors_name_a_line() {
    let issues = Config::parse("[server]\ncores = \"two\"\n").unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].line, Some(2), "{issues:?}");
    let issues = Config::parse("[server\n").unwrap_err();
    assert_eq!(issues[0].line, Some(1));
}

#[test]
fn unknown_provider_kinds_are_rejected() {
    let issues = Config::parse("[providers.p]\nkind = \"nope\"\nbase_url = \"http://h\"\n").unwrap_err();
    assert!(issues[0].message.contains("nope"), "{issues:?}");
}

#[test]
fn resolve_reads_provider_keys_from_the_environment_and_reports_missing_ones() {
    let text = MINIMAL.replace("MOCK_KEY", "CORELAY_TEST_SURELY_UNSET_VAR");
    let issues = resolve(Config::parse(&text).unwrap()).unwrap_err();
    assert_eq!(issues[0].key, "providers.mock.api_key_env");
    assert!(issues[0].message.contains("CORELAY_TEST_SURELY_UNSET_VAR is not set"));

    let text = MINIMAL.replace("api_key_env = \"MOCK_KEY\"\n", "api_key_env = \"PATH\"\n");
    let resolved = resolve(Config::parse(&text).unwrap()).unwrap();
    let provider = &resolved.providers["mock"];
    assert_eq!(provider.api_key.as_ref().map(|k| k.expose().to_string()), std::env::var("PATH").ok());
    assert!(!format!("{provider:?}").contains(&std::env::var("PATH").unwrap()), "Debug must not print the key");
    assert_eq!(provider.addrs[0].to_string(), "127.0.0.1:9000");
}

#[test]
fn shipped_configs_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            Config::parse(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected the demo and the reference config");
}

#[test]
fn the_reference_config_states_the_real_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/corelay.toml");
    let reference = Config::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let defaults = Config::parse("").unwrap();
    assert_eq!(format!("{:?}", reference.server), format!("{:?}", defaults.server), "[server] in config/corelay.toml");
    assert_eq!(format!("{:?}", reference.pool), format!("{:?}", defaults.pool), "[pool] in config/corelay.toml");
    assert_eq!(format!("{:?}", reference.routing), format!("{:?}", defaults.routing), "[routing]");
    assert_eq!(format!("{:?}", reference.health), format!("{:?}", defaults.health), "[health]");
    assert_eq!(format!("{:?}", reference.governance), format!("{:?}", defaults.governance), "[governance]");
    assert_eq!(format!("{:?}", reference.history), format!("{:?}", defaults.history), "[history]");
    assert_eq!(reference.tracing.describe(), defaults.tracing.describe(), "[tracing]");
    assert_eq!(format!("{:?}", reference.cache), format!("{:?}", defaults.cache), "[cache]");
}

fn vertex_provider(auth: &str) -> String {
    format!(
        "[providers.v]\nkind = \"vertex\"\nbase_url = \"http://127.0.0.1:9\"\nproject = \"p\"\nlocation = \"us-east5\"\n{auth}\n[models.m]\nendpoints = [{{ provider = \"v\", model = \"gemini-2.5-flash\" }}]\n"
    )
}

fn issue_keys(text: &str) -> Vec<(String, String)> {
    Config::parse(text).map_or_else(|issues| issues.into_iter().map(|i| (i.key, i.message)).collect(), |_| Vec::new())
}

#[test]
fn vertex_takes_a_service_account_or_a_static_token_and_a_safe_token_url() {
    assert!(Config::parse(&vertex_provider("service_account_file = \"/etc/corelay/sa.json\"")).is_ok());
    let loopback = "service_account_file = \"/sa.json\"\ntoken_url = \"http://127.0.0.1:8089/token\"";
    assert!(Config::parse(&vertex_provider(loopback)).is_ok());

    let both = issue_keys(&vertex_provider("service_account_file = \"/sa.json\"\napi_key_env = \"T\""));
    assert_eq!(both[0].0, "providers.v.service_account_file");
    assert!(both[0].1.contains("not both"), "{both:?}");
    let plain_remote =
        issue_keys(&vertex_provider("service_account_file = \"/sa.json\"\ntoken_url = \"http://oauth.example/token\""));
    assert_eq!(plain_remote[0].0, "providers.v.token_url");
    assert!(plain_remote[0].1.contains("must be https://"), "{plain_remote:?}");
    let orphan = issue_keys(&vertex_provider("token_url = \"https://oauth.example/token\""));
    assert_eq!(
        orphan,
        vec![("providers.v.token_url".to_string(), "only applies with service_account_file".to_string())]
    );
    let wrong_kind = MINIMAL.replace("api_key_env = \"MOCK_KEY\"", "service_account_file = \"/sa.json\"");
    assert_eq!(issue_keys(&wrong_kind)[0].0, "providers.mock.service_account_file");
}

#[test]
fn an_unreadable_or_invalid_key_file_is_a_resolve_error_naming_the_key() {
    let missing = Config::parse(&vertex_provider("service_account_file = \"/nonexistent/corelay-sa.json\"")).unwrap();
    let issues = resolve::resolve(missing).unwrap_err();
    assert_eq!(issues[0].key, "providers.v.service_account_file");
    assert!(issues[0].message.contains("cannot read /nonexistent/corelay-sa.json"), "{issues:?}");

    let not_a_key = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let invalid = Config::parse(&vertex_provider(&format!("service_account_file = \"{not_a_key}\""))).unwrap();
    let issues = resolve::resolve(invalid).unwrap_err();
    assert!(issues[0].message.contains("not a JSON service-account key file"), "{issues:?}");
}

#[test]
fn a_key_files_token_uri_is_used_unless_the_config_names_a_token_url() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vertex-test-service-account.json");
    let token_url_of = |auth: String| {
        let resolved = resolve::resolve(Config::parse(&vertex_provider(&auth)).unwrap()).unwrap();
        let vertex = resolved.providers["v"].vertex.clone().unwrap();
        vertex.service_account.unwrap().token_url
    };
    assert_eq!(token_url_of(format!("service_account_file = \"{key}\"")), "https://oauth2.googleapis.com/token");
    let configured = format!("service_account_file = \"{key}\"\ntoken_url = \"https://sts.example/token\"");
    assert_eq!(token_url_of(configured), "https://sts.example/token");
}

/// A host no resolver can answer for, refused before any packet is sent: a DNS label may have at
/// most 63 characters, and `.invalid` is reserved (RFC 2606) besides.
fn unresolvable_host() -> String {
    format!("{}.invalid", "a".repeat(64))
}

#[test]
fn a_failed_lookup_is_reported_as_dns_and_does_not_hide_the_same_providers_missing_key() {
    let text =
        MINIMAL.replace("127.0.0.1:9000", &unresolvable_host()).replace("MOCK_KEY", "CORELAY_TEST_SURELY_UNSET_VAR");
    let issues = resolve(Config::parse(&text).unwrap()).unwrap_err();
    let found: Vec<(&str, bool)> = issues.iter().map(|i| (i.key.as_str(), resolve::is_dns_failure(i))).collect();
    assert_eq!(found, vec![("providers.mock.base_url", true), ("providers.mock.api_key_env", false)]);
    assert!(issues[0].message.starts_with(&format!("DNS lookup of `{}` failed: ", unresolvable_host())), "{issues:?}");

    let offline = resolve::resolve_with(Config::parse(&text).unwrap(), HostLookup::Skip).unwrap_err();
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert_eq!(offline[0].key, "providers.mock.api_key_env");

    let with_key = text.replace("CORELAY_TEST_SURELY_UNSET_VAR", "PATH");
    let resolved = resolve::resolve_with(Config::parse(&with_key).unwrap(), HostLookup::Skip).unwrap();
    assert!(resolved.providers["mock"].addrs.is_empty(), "nothing is looked up offline");
}

#[test]
fn loading_reports_semantic_and_environment_issues_together_in_file_order() {
    let text = MINIMAL
        .replace("MOCK_KEY", "CORELAY_TEST_SURELY_UNSET_VAR")
        .replace("cores = 2", "cores = 2\nmax_body_bytes = 0");
    let path = std::env::temp_dir().join(format!("corelay-config-test-{}.toml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let error = load_resolved_with(&path, HostLookup::Skip).unwrap_err();
    let _ = std::fs::remove_file(&path);
    let keys: Vec<&str> = error.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, vec!["server.max_body_bytes", "providers.mock.api_key_env"], "{error}");
    let lines: Vec<Option<usize>> = error.issues.iter().map(|i| i.line).collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "in file order: {lines:?}");
}

#[test]
fn the_demo_config_prices_every_model_and_fits_a_default_descriptor_limit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let demo = Config::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let unpriced: Vec<&String> = demo.models.iter().filter(|(_, m)| m.price.is_none()).map(|(id, _)| id).collect();
    assert!(unpriced.is_empty(), "the demo's spend would show $0 for {unpriced:?}");
    // 4096 is the smallest hard RLIMIT_NOFILE common on Linux; above it the demo would start with
    // a descriptor warning.
    let needed = crate::runtime::limits::descriptors_needed(demo.worker_count(), demo.server.max_connections_per_core);
    assert!(needed <= 4096, "the demo needs {needed} descriptors");
}

#[test]
fn key_limits_weights_and_fallbacks_are_validated() {
    let text = r#"
[providers.p]
kind = "openai"
base_url = "http://h"
[models."a/m"]
endpoints = [{ provider = "p", model = "x", weight = 0 }]
fallbacks = ["a/m", "a/none"]
[[keys]]
name = "team"
key_sha256 = "abc"
rpm = 0
models = ["a/*", "a/m-*"]
expires_at = 2027-01-01T00:00:00
[[keys]]
name = "both"
key = "0123456789abcdef"
key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
[governance]
local_share = 0
redis_url = "http://nope"
"#;
    let issues = Config::parse(text).unwrap_err();
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "models.\"a/m\".endpoints[0].weight",
            "models.\"a/m\".fallbacks",
            "models.\"a/m\".fallbacks",
            "keys[0].key_sha256",
            "keys[0].rpm",
            "keys[0].expires_at",
            "keys[0].models",
            "keys[1]",
            "governance.local_share",
            "governance.redis_url",
        ]
    );
}

#[test]
fn a_key_with_limits_parses_and_old_keys_stay_valid() {
    let text = format!(
        "{MINIMAL}\n[[keys]]\nname = \"plain\"\nkey = \"0123456789abcdef\"\n[[keys]]\nname = \"team\"\n\
         key_sha256 = \"{}\"\nmodels = [\"acme/*\"]\nrpm = 60\ntpm = 1000\nmax_concurrent = 2\n\
         budget_micros_per_day = 5000000\nexpires_at = 2027-01-01\n",
        "ab".repeat(32)
    );
    let c = Config::parse(&text).expect("valid");
    let team = &c.keys[1];
    assert_eq!(
        (team.rpm, team.tpm, team.max_concurrent, team.budget_micros_per_day),
        (Some(60), Some(1000), Some(2), Some(5_000_000))
    );
    assert_eq!(c.keys[0].rpm, None);
}

/// Writes `text` to a temporary file named for this test process and `name`; removed by the caller.
fn temp_path(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("corelay-config-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn env_references_in_string_values_are_expanded_and_an_unset_one_names_file_line_key_and_variable() {
    let home = std::env::var("HOME").expect("HOME is set for tests");
    let text =
        MINIMAL.replace("[models.\"acme/chat-small\"]\n", "[models.\"acme/chat-small\"]\nowned_by = \"${HOME}\"\n");
    let config = Config::parse(&text).unwrap();
    assert_eq!(config.models["acme/chat-small"].owned_by.as_deref(), Some(home.as_str()));

    let text = MINIMAL.replace("gpt-4o-mini", "${CORELAY_TEST_SURELY_UNSET_VAR}");
    let path = temp_path("unset.toml", &text);
    let error = load_resolved_with(&path, HostLookup::Skip).unwrap_err();
    let _ = std::fs::remove_file(&path);
    let shown = error.to_string();
    let expected = format!(
        "{}:18: models.\"acme/chat-small\".endpoints[0].model: environment variable CORELAY_TEST_SURELY_UNSET_VAR is not set",
        path.display()
    );
    assert!(shown.contains(&expected), "{shown}");
}

#[test]
fn provider_admin_and_gateway_keys_are_read_from_files_without_the_trailing_newline() {
    let provider_key = temp_path("provider.key", "sk-from-a-file-0123\n");
    let admin_key = temp_path("admin.key", "admin-from-a-file-0123\n");
    let gateway_key = temp_path("gateway.key", "  gw-from-a-file-0123  \n");
    let text = MINIMAL.replace("api_key_env = \"MOCK_KEY\"", &format!("api_key_file = \"{}\"", provider_key.display()))
        + &format!(
            "[admin]\nkey_file = \"{}\"\n[[keys]]\nname = \"team\"\nkey_file = \"{}\"\n",
            admin_key.display(),
            gateway_key.display()
        );
    let resolved = resolve::resolve_with(Config::parse(&text).unwrap(), HostLookup::Skip).unwrap();
    for path in [&provider_key, &admin_key, &gateway_key] {
        let _ = std::fs::remove_file(path);
    }
    assert_eq!(resolved.providers["mock"].api_key.as_ref().map(|k| k.expose()), Some("sk-from-a-file-0123"));
    assert_eq!(resolved.admin_key.as_ref().map(|k| k.expose()), Some("admin-from-a-file-0123"));
    assert_eq!(resolved.keys[0].secret.expose(), "gw-from-a-file-0123");
}

#[test]
fn a_missing_or_empty_key_file_is_a_resolve_error_and_two_sources_a_config_error() {
    let missing = MINIMAL.replace("api_key_env = \"MOCK_KEY\"", "api_key_file = \"/nonexistent/corelay.key\"");
    let issues = resolve::resolve_with(Config::parse(&missing).unwrap(), HostLookup::Skip).unwrap_err();
    assert_eq!(issues[0].key, "providers.mock.api_key_file");
    assert!(issues[0].message.contains("cannot read /nonexistent/corelay.key"), "{issues:?}");

    let empty = temp_path("empty.key", "\n");
    let text = MINIMAL.replace("api_key_env = \"MOCK_KEY\"", &format!("api_key_file = \"{}\"", empty.display()));
    let issues = resolve::resolve_with(Config::parse(&text).unwrap(), HostLookup::Skip).unwrap_err();
    let _ = std::fs::remove_file(&empty);
    assert_eq!(issues[0].key, "providers.mock.api_key_file");
    assert!(issues[0].message.ends_with("is empty"), "{issues:?}");

    let both = MINIMAL.replace("api_key_env = \"MOCK_KEY\"", "api_key_env = \"K\"\napi_key_file = \"/k\"");
    assert_eq!(issue_keys(&both)[0].0, "providers.mock.api_key_file");
    let admin = MINIMAL.to_string() + "[admin]\nkey_env = \"A\"\nkey_file = \"/a\"\n";
    assert_eq!(issue_keys(&admin)[0].0, "admin");
}

#[test]
fn bedrock_credentials_come_from_files_or_the_environment_both_or_neither() {
    let bedrock = |auth: &str| {
        format!(
            "[providers.b]\nkind = \"bedrock\"\nbase_url = \"http://127.0.0.1:9\"\nregion = \"us-east-1\"\n{auth}\n[models.m]\nendpoints = [{{ provider = \"b\", model = \"x\" }}]\n"
        )
    };
    let id = temp_path("aws-id", "AKIDFROMFILE\n");
    let secret = temp_path("aws-secret", "secret-from-file\n");
    let files =
        format!("aws_access_key_id_file = \"{}\"\naws_secret_access_key_file = \"{}\"", id.display(), secret.display());
    let resolved = resolve::resolve_with(Config::parse(&bedrock(&files)).unwrap(), HostLookup::Skip).unwrap();
    let _ = (std::fs::remove_file(&id), std::fs::remove_file(&secret));
    let credentials = resolved.providers["b"].bedrock.clone().unwrap().credentials.unwrap();
    assert_eq!(credentials.access_key_id.expose(), "AKIDFROMFILE");
    assert_eq!(credentials.secret_access_key.expose(), "secret-from-file");
    assert!(credentials.session_token.is_none());

    let half = issue_keys(&bedrock("aws_access_key_id_file = \"/id\""));
    assert!(half[0].1.contains("both the AWS access key id and secret access key"), "{half:?}");
    let doubled = issue_keys(&bedrock(
        "aws_access_key_id_file = \"/id\"\naws_access_key_id_env = \"I\"\naws_secret_access_key_env = \"S\"",
    ));
    assert!(doubled[0].1.contains("not both"), "{doubled:?}");
    let wrong_kind = MINIMAL.replace("api_key_env = \"MOCK_KEY\"", "aws_secret_access_key_file = \"/s\"");
    assert_eq!(issue_keys(&wrong_kind)[0].0, "providers.mock.aws_secret_access_key_file");
}
