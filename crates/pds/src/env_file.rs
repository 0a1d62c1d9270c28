//! Settings files in the format of the reference PDS's `pds.env`: one
//! `KEY=VALUE` a line, `#` comments, blank lines ignored.
//!
//! Values may be wrapped in single or double quotes (removed); an
//! `export ` prefix (shell style) is accepted. There is no variable
//! expansion and no escaping: a value is the text after the first `=`.

use std::path::Path;

use crate::error::Error;

/// Reads the `KEY=VALUE` pairs of the file at `path`, in file order.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read env file {}: {e}", path.display())))?;
    parse(&text).map_err(|e| Error::Config(format!("env file {}: {e}", path.display())))
}

/// Parses the text of an env file; errors name the line.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected KEY=VALUE, found {line:?}",
                index + 1
            ));
        };
        let key = key.trim();
        if !is_variable_name(key) {
            return Err(format!(
                "line {}: {key:?} is not a variable name (letters, digits and _, not starting with a digit)",
                index + 1
            ));
        }
        pairs.push((key.to_owned(), unquote(value.trim()).to_owned()));
    }
    Ok(pairs)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_comments_quotes_and_blank_lines() {
        let text = "# a comment\n\nPDS_HOSTNAME=pds.example.com\n  PDS_PORT = 3000 \nexport PDS_ADMIN_PASSWORD='p=w'\nPDS_EMAIL_FROM_ADDRESS=\"PDS <pds@example.com>\"\nPDS_EMPTY=\n";
        let pairs = parse(text).unwrap();
        let expected = [
            ("PDS_HOSTNAME", "pds.example.com"),
            ("PDS_PORT", "3000"),
            ("PDS_ADMIN_PASSWORD", "p=w"),
            ("PDS_EMAIL_FROM_ADDRESS", "PDS <pds@example.com>"),
            ("PDS_EMPTY", ""),
        ];
        assert_eq!(pairs.len(), expected.len());
        for ((k, v), (ek, ev)) in pairs.iter().zip(expected) {
            assert_eq!((k.as_str(), v.as_str()), (ek, ev));
        }
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let err = parse("PDS_PORT=1\nnot a setting\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse("1PDS=x\n").unwrap_err();
        assert!(err.contains("not a variable name"), "{err}");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("absent.env")).unwrap_err();
        assert!(err.to_string().contains("cannot read env file"), "{err}");
    }
}
