//! Finds the line a config key sits on, so errors can say `file:line: key: message`.
//!
//! A best-effort text search over the TOML source: it handles `[table]`, `[table."quoted id"]` and
//! `[[array]]` headers and `key = value` lines, which is all our config uses. It never fails; it only
//! returns `None` when it cannot tell.

/// One step of a key path such as `models."a/b".endpoints[0].provider`.
#[derive(Debug, PartialEq, Eq)]
struct Segment<'a> {
    name: &'a str,
    index: Option<usize>,
}

/// 1-based line number of the byte at `offset`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// 1-based line of the deepest part of `path` that can be found in `text`.
pub fn line_of_key(text: &str, path: &str) -> Option<usize> {
    let segments = split_path(path)?;
    let lines: Vec<&str> = text.lines().collect();
    for table_len in (0..segments.len()).rev() {
        let Some(section) = find_section(&lines, &segments[..table_len]) else { continue };
        let key = segments.get(table_len).map(|s| s.name);
        return Some(match key.and_then(|k| find_key_in_section(&lines, section, k)) {
            Some(found) => found + 1,
            None if table_len == 0 => return None,
            None => section,
        });
    }
    None
}

fn split_path(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut segments = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let (name, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        let (index, after) = match after.strip_prefix('[') {
            Some(idx) => {
                let end = idx.find(']')?;
                (Some(idx[..end].parse().ok()?), &idx[end + 1..])
            }
            None => (None, after),
        };
        segments.push(Segment { name, index });
        rest = after.strip_prefix('.').unwrap_or(after);
    }
    Some(segments)
}

/// The line index just after the header of the table named by `table`; 0 for the root table.
fn find_section(lines: &[&str], table: &[Segment<'_>]) -> Option<usize> {
    if table.is_empty() {
        return Some(0);
    }
    let wanted: Vec<&str> = table.iter().map(|s| s.name).collect();
    let occurrence = table.last().and_then(|s| s.index).unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| header_names(line).is_some_and(|names| names == wanted))
        .nth(occurrence)
        .map(|(i, _)| i + 1)
}

/// The dotted names of a `[a."b"]` or `[[a]]` header line, without quotes.
fn header_names(line: &str) -> Option<Vec<&str>> {
    let line = line.trim();
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
    let segments = split_path(inner.trim())?;
    Some(segments.iter().map(|s| s.name.trim()).collect())
}

fn find_key_in_section(lines: &[&str], start: usize, key: &str) -> Option<usize> {
    for (i, line) in lines.iter().enumerate().skip(start) {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            return None;
        }
        let name = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
        if trimmed.contains('=') && name == key {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "listen_typo = 1\n[server]\nlisten = \"x\"\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"u\"\n[models.\"acme/chat\"]\nendpoints = []\n[[keys]]\nname = \"a\"\n[[keys]]\nname = \"b\"\n";

    #[test]
    fn finds_keys_in_tables_quoted_tables_and_arrays() {
        assert_eq!(line_of_key(TEXT, "listen_typo"), Some(1));
        assert_eq!(line_of_key(TEXT, "server.listen"), Some(3));
        assert_eq!(line_of_key(TEXT, "providers.mock.base_url"), Some(7));
        assert_eq!(line_of_key(TEXT, "models.\"acme/chat\".endpoints"), Some(9));
        assert_eq!(line_of_key(TEXT, "keys[1].name"), Some(13));
    }

    #[test]
    fn falls_back_to_the_table_header_and_then_to_none() {
        assert_eq!(line_of_key(TEXT, "providers.mock.missing"), Some(5));
        assert_eq!(line_of_key(TEXT, "nowhere"), None);
    }

    #[test]
    fn offsets_map_to_lines() {
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 99), 3);
    }
}
