//! `${VAR}` in config string values: replaced by the environment variable's value before the file
//! is read into a `Config`, so any string (a base URL, a header value, a file path, a key) can come
//! from the environment. `$${` writes a literal `${`.
//!
//! Owns the expansion and its errors (an unset variable, a malformed reference), each reported with
//! the key path it sits under so the caller can add the file and line. It does not read secrets from
//! `*_env` or `*_file` settings (see `config::resolve`), and numbers, booleans and table names are
//! never expanded.

use toml::{Table, Value};

use super::ConfigIssue;

/// Expands every string value in `table`, in place. Strings with a problem are left as written and
/// the problem is added to `issues`.
pub fn expand_table(
    table: &mut Table,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    issues: &mut Vec<ConfigIssue>,
) {
    for (name, value) in table.iter_mut() {
        let key = join(path, name);
        expand_value(value, &key, lookup, issues);
    }
}

fn expand_value(value: &mut Value, key: &str, lookup: &dyn Fn(&str) -> Option<String>, issues: &mut Vec<ConfigIssue>) {
    match value {
        Value::String(text) if text.contains('$') => match expand_str(text, lookup) {
            Ok(expanded) => *text = expanded,
            Err(message) => issues.push(ConfigIssue { key: key.to_string(), line: None, message }),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{key}[{i}]"), lookup, issues);
            }
        }
        Value::Table(table) => expand_table(table, key, lookup, issues),
        _ => {}
    }
}

/// `path.name`, with `name` quoted when it is not a bare TOML key (`models."acme/chat"`), the form
/// `config::locate` finds lines for.
fn join(path: &str, name: &str) -> String {
    let bare = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let name = if bare { name.to_string() } else { format!("\"{name}\"") };
    if path.is_empty() { name } else { format!("{path}.{name}") }
}

/// One string with every `${NAME}` replaced; the error names the variable.
pub fn expand_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(literal) = after.strip_prefix("${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(reference) = after.strip_prefix('{') {
            let end = reference.find('}').ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            let name = &reference[..end];
            if !is_variable_name(name) {
                return Err(format!("`${{{name}}}` is not a variable reference: a name is letters, digits and _"));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set (in `${{{name}}}`)"))?;
            out.push_str(&value);
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("api.example.com".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_and_other_dollars_kept() {
        assert_eq!(expand_str("https://${HOST}/v1", &env).unwrap(), "https://api.example.com/v1");
        assert_eq!(expand_str("${HOST}${EMPTY}:${HOST}", &env).unwrap(), "api.example.com:api.example.com");
        assert_eq!(expand_str("cost $5, $HOST, $${HOST}", &env).unwrap(), "cost $5, $HOST, ${HOST}");
    }

    #[test]
    fn unset_and_malformed_references_are_errors_naming_them() {
        assert_eq!(expand_str("x${NOPE}", &env).unwrap_err(), "environment variable NOPE is not set (in `${NOPE}`)");
        assert!(expand_str("${HOST", &env).unwrap_err().contains("without a closing"));
        assert!(expand_str("${1X}", &env).unwrap_err().contains("`${1X}` is not a variable reference"));
    }

    #[test]
    fn every_string_in_tables_and_arrays_is_expanded_with_its_key_path() {
        let mut table: Table = toml::from_str(
            "a = \"${HOST}\"\nn = 5\n[models.\"acme/x\"]\nendpoints = [{ provider = \"${NOPE}\", model = \"${HOST}\" }]\n",
        )
        .unwrap();
        let mut issues = Vec::new();
        expand_table(&mut table, "", &env, &mut issues);
        assert_eq!(table["a"].as_str(), Some("api.example.com"));
        assert_eq!(table["models"]["acme/x"]["endpoints"][0]["model"].as_str(), Some("api.example.com"));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key, "models.\"acme/x\".endpoints[0].provider");
        assert!(issues[0].message.contains("NOPE"));
    }
}
