//! `corelay keys ...`: virtual keys kept in Redis, created, listed and revoked from the command line,
//! and `keys hash` to put a key's SHA-256 in a config file. Owns argument parsing and output only;
//! the records themselves are `records`.

use std::time::Duration;

use super::policy::{KeyPolicy, Limits, hash_hex, sha256};
use super::records::{self, KeyRecord};
use super::resp::Connection;
use crate::config::Config;

pub const USAGE: &str = "\
    corelay keys create --config FILE --name NAME [--models ID,creator/*,...] [--rpm N] [--tpm N]
                        [--max-concurrent N] [--budget-day MICROS] [--budget-month MICROS]
                        [--budget-total MICROS] [--expires-at UNIX_SECONDS]
                                    create a key in the config's Redis; prints its secret once
    corelay keys list --config FILE list the keys in Redis with their spend
    corelay keys rotate --config FILE --name NAME
                                    give a key a new secret, keeping its limits and spend
    corelay keys revoke --config FILE --name NAME
                                    delete a key from Redis (instances drop it within a second)
    corelay keys hash               read a secret on stdin, print its SHA-256 for `key_sha256`
";

/// Runs `corelay keys ARGS`; the text to print on success, the reason on failure.
pub fn run(args: &[String]) -> Result<String, String> {
    let (verb, rest) = args.split_first().ok_or("keys: expected create, list, rotate, revoke or hash")?;
    if verb == "hash" {
        let mut secret = String::new();
        std::io::stdin().read_line(&mut secret).map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(format!("{}\n", hash_hex(&sha256(secret.trim_end_matches(['\r', '\n']).as_bytes()))));
    }
    let options = Options::parse(rest)?;
    let (mut connection, prefix) = connect(&options)?;
    match verb.as_str() {
        "create" => create(&mut connection, &prefix, &options),
        "list" => list(&mut connection, &prefix),
        "rotate" => {
            let name = options.name.as_deref().ok_or("keys rotate: --name is required")?;
            match records::rotate(&mut connection, &prefix, name).map_err(|e| e.to_string())? {
                Some(secret) => Ok(format!("rotated `{name}`; its new secret (shown once):\n{secret}\n")),
                None => Err(format!("no key named `{name}` in Redis")),
            }
        }
        "revoke" => {
            let name = options.name.as_deref().ok_or("keys revoke: --name is required")?;
            match records::revoke(&mut connection, &prefix, name).map_err(|e| e.to_string())? {
                true => Ok(format!("revoked `{name}`\n")),
                false => Err(format!("no key named `{name}` in Redis")),
            }
        }
        other => Err(format!("keys: unknown command `{other}`")),
    }
}

#[derive(Default)]
struct Options {
    config: Option<String>,
    name: Option<String>,
    models: Option<Vec<String>>,
    limits: Limits,
    expires_at: Option<u64>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || value.parse::<u64>().map_err(|_| format!("{flag}: `{value}` is not a whole number"));
            match flag.as_str() {
                "--config" | "-c" => o.config = Some(value.clone()),
                "--name" => o.name = Some(value.clone()),
                "--models" => o.models = Some(value.split(',').map(str::to_string).collect()),
                "--rpm" => o.limits.rpm = Some(number()?),
                "--tpm" => o.limits.tpm = Some(number()?),
                "--max-concurrent" => o.limits.max_concurrent = Some(number()?),
                "--budget-day" => o.limits.budget_micros_per_day = Some(number()?),
                "--budget-month" => o.limits.budget_micros_per_month = Some(number()?),
                "--budget-total" => o.limits.budget_micros_total = Some(number()?),
                "--expires-at" => o.expires_at = Some(number()?),
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        Ok(o)
    }
}

fn connect(options: &Options) -> Result<(Connection, String), String> {
    let path = options.config.as_deref().ok_or("--config FILE is required")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let config = Config::parse(&text)
        .map_err(|issues| format!("{path}: {} config error(s); run corelay check", issues.len()))?;
    let url = config.governance.redis_url.ok_or_else(|| format!("{path}: [governance] redis_url is not set"))?;
    let address = crate::config::parse_redis_url(&url).map_err(|why| format!("{url}: {why}"))?;
    let connection =
        Connection::connect(&address, Duration::from_secs(5)).map_err(|e| format!("redis at {address}: {e}"))?;
    Ok((connection, config.governance.redis_prefix))
}

fn create(connection: &mut Connection, prefix: &str, options: &Options) -> Result<String, String> {
    let name = options.name.clone().ok_or("keys create: --name is required")?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("keys create: --name must be non-empty without whitespace".into());
    }
    let secret = records::new_secret().map_err(|e| e.to_string())?;
    let policy = KeyPolicy {
        name: name.clone(),
        hash: sha256(secret.as_bytes()),
        expires_at: options.expires_at,
        models: options.models.clone(),
        limits: options.limits,
    };
    let record = KeyRecord::from_policy(&policy, crate::clock::unix_now());
    match records::create(connection, prefix, &record).map_err(|e| e.to_string())? {
        true => Ok(format!("created `{name}`; its secret (shown once, only its SHA-256 is stored):\n{secret}\n")),
        false => Err(format!("a key named `{name}` exists; revoke it first to rotate")),
    }
}

fn list(connection: &mut Connection, prefix: &str) -> Result<String, String> {
    let listed = match records::administer(connection, prefix, records::KeyAdmin::List).map_err(|e| e.to_string())? {
        records::KeyAdminAnswer::Listed(listed) => listed,
        other => return Err(format!("unexpected answer {other:?}")),
    };
    let mut out = String::from("NAME\tSHA256\tSPENT_MICROS\tLIMITS\n");
    for (record, spent) in listed {
        let hash = &record.sha256[..12.min(record.sha256.len())];
        out.push_str(&format!("{}\t{hash}…\t{spent}\t{}\n", record.name, describe(&record)));
    }
    Ok(out)
}

fn describe(r: &KeyRecord) -> String {
    let fields = [
        ("rpm", r.rpm),
        ("tpm", r.tpm),
        ("max_concurrent", r.max_concurrent),
        ("budget_day", r.budget_micros_per_day),
        ("budget_month", r.budget_micros_per_month),
        ("budget_total", r.budget_micros_total),
        ("expires_at", r.expires_at),
    ];
    let mut parts: Vec<String> = fields.iter().filter_map(|(n, v)| v.map(|v| format!("{n}={v}"))).collect();
    if let Some(models) = &r.models {
        parts.push(format!("models={}", models.join(",")));
    }
    if parts.is_empty() { "unlimited".into() } else { parts.join(" ") }
}
