//! Every syntax fixture of the shared interop test vectors: each line of a
//! `*_valid.txt` file must parse, each line of a `*_invalid.txt` file must
//! be rejected.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::str::FromStr;

use atp_syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
};
use atp_test_vectors::{interop_dir, interop_lines, report};

fn path(file: &str) -> String {
    format!("syntax/{file}")
}

/// Every line of `file` parses as `T` and displays back to itself (or, for
/// types that normalize, to `expected(line)`).
fn all_valid<T>(file: &str, expected: impl Fn(&str) -> String)
where
    T: FromStr + Debug + ToString,
    T::Err: Debug,
{
    let lines = interop_lines(&path(file));
    for line in &lines {
        let parsed = line
            .parse::<T>()
            .unwrap_or_else(|e| panic!("{file}: {line:?} should be valid: {e:?}"));
        assert_eq!(parsed.to_string(), expected(line), "{file}: {line:?}");
    }
    report(file, lines.len());
}

/// Every line of `file` is rejected by `parse`.
fn all_invalid<T: Debug>(file: &str, parse: impl Fn(&str) -> Result<T, atp_syntax::Error>) {
    let lines = interop_lines(&path(file));
    for line in &lines {
        if let Ok(parsed) = parse(line) {
            panic!("{file}: {line:?} should be invalid, parsed as {parsed:?}");
        }
    }
    report(file, lines.len());
}

fn same(line: &str) -> String {
    line.to_owned()
}

fn lower(line: &str) -> String {
    line.to_ascii_lowercase()
}

#[test]
fn did_syntax() {
    all_valid::<Did>("did_syntax_valid.txt", same);
    all_invalid("did_syntax_invalid.txt", Did::new);
}

#[test]
fn handle_syntax() {
    all_valid::<Handle>("handle_syntax_valid.txt", lower);
    all_invalid("handle_syntax_invalid.txt", Handle::new);
}

#[test]
fn at_identifier_syntax() {
    all_valid::<AtIdentifier>("atidentifier_syntax_valid.txt", |line| {
        if line.starts_with("did:") {
            line.to_owned()
        } else {
            line.to_ascii_lowercase()
        }
    });
    all_invalid("atidentifier_syntax_invalid.txt", AtIdentifier::new);
}

#[test]
fn nsid_syntax() {
    all_valid::<Nsid>("nsid_syntax_valid.txt", same);
    all_invalid("nsid_syntax_invalid.txt", Nsid::new);
}

#[test]
fn at_uri_syntax() {
    all_valid::<AtUri>("aturi_syntax_valid.txt", same);
    all_invalid("aturi_syntax_invalid.txt", AtUri::new);
}

#[test]
fn tid_syntax() {
    all_valid::<Tid>("tid_syntax_valid.txt", same);
    all_invalid("tid_syntax_invalid.txt", Tid::new);
}

#[test]
fn record_key_syntax() {
    all_valid::<RecordKey>("recordkey_syntax_valid.txt", same);
    all_invalid("recordkey_syntax_invalid.txt", RecordKey::new);
}

#[test]
fn datetime_syntax() {
    all_valid::<Datetime>("datetime_syntax_valid.txt", same);
    all_invalid("datetime_syntax_invalid.txt", Datetime::new);
}

#[test]
fn datetime_parse() {
    // Syntactically fine but not real instants: both the strict and the
    // lenient parse must refuse them.
    all_invalid("datetime_parse_invalid.txt", Datetime::new);
    all_invalid("datetime_parse_invalid.txt", Datetime::parse_lenient);
}

#[test]
fn datetime_lenient_accepts_every_valid_datetime() {
    let file = "datetime_syntax_valid.txt";
    let lines = interop_lines(&path(file));
    for line in &lines {
        let strict = Datetime::new(line).unwrap();
        let normalized = Datetime::parse_lenient(line)
            .unwrap_or_else(|e| panic!("{line:?} should parse leniently: {e}"));
        // Normalized form: UTC, milliseconds, `Z`, and still strictly valid.
        assert_eq!(normalized.as_str().len(), 24, "{line:?} -> {normalized:?}");
        assert!(normalized.as_str().ends_with('Z'));
        Datetime::new(normalized.as_str()).unwrap();
        let lost = strict.to_utc() - normalized.to_utc();
        assert!(
            lost >= chrono::TimeDelta::zero() && lost < chrono::TimeDelta::milliseconds(1),
            "{line:?} -> {normalized:?}"
        );
    }
    report("datetime_syntax_valid.txt (lenient)", lines.len());
}

#[test]
fn language_syntax() {
    all_valid::<Language>("language_syntax_valid.txt", same);
    all_invalid("language_syntax_invalid.txt", Language::new);
}

#[test]
fn language_parse() {
    // Well-formed by the grammar, but not valid: repeated variants or
    // extension singletons.
    let file = "language_parse_invalid.txt";
    all_invalid(file, Language::new);
    for line in interop_lines(&path(file)) {
        assert!(Language::is_well_formed(&line), "{line:?} is well-formed");
    }
}

#[test]
fn cid_syntax() {
    all_valid::<CidString>("cid_syntax_valid.txt", same);
    all_invalid("cid_syntax_invalid.txt", CidString::new);
}

#[test]
fn uri_syntax() {
    all_valid::<Uri>("uri_syntax_valid.txt", same);
    all_invalid("uri_syntax_invalid.txt", Uri::new);
}

/// A new fixture file must not go unnoticed: every file in the folder is
/// one of those tested above.
#[test]
fn every_fixture_file_is_covered() {
    let covered = [
        "atidentifier_syntax_invalid.txt",
        "atidentifier_syntax_valid.txt",
        "aturi_syntax_invalid.txt",
        "aturi_syntax_valid.txt",
        "cid_syntax_invalid.txt",
        "cid_syntax_valid.txt",
        "datetime_parse_invalid.txt",
        "datetime_syntax_invalid.txt",
        "datetime_syntax_valid.txt",
        "did_syntax_invalid.txt",
        "did_syntax_valid.txt",
        "handle_syntax_invalid.txt",
        "handle_syntax_valid.txt",
        "language_parse_invalid.txt",
        "language_syntax_invalid.txt",
        "language_syntax_valid.txt",
        "nsid_syntax_invalid.txt",
        "nsid_syntax_valid.txt",
        "recordkey_syntax_invalid.txt",
        "recordkey_syntax_valid.txt",
        "tid_syntax_invalid.txt",
        "tid_syntax_valid.txt",
        "uri_syntax_invalid.txt",
        "uri_syntax_valid.txt",
    ];
    let dir = interop_dir().join("syntax");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".txt") {
            found += 1;
            assert!(covered.contains(&name.as_str()), "untested fixture {name}");
        }
    }
    assert_eq!(found, covered.len(), "fixture files in {}", dir.display());
}
