//! Differential test against the reference implementation: the same
//! inputs go through our parsers and through `@atproto/syntax` (and the TID
//! encoder of `@atproto/common-web`), run by Node.js, and the answers must
//! agree, except where a documented, deliberate difference applies.
//!
//! Inputs: every line of every syntax fixture, mutations of each (case
//! changes, characters added and removed), and pseudo-random strings.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use atp_syntax::{AtIdentifier, AtUri, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri};
use atp_test_vectors::{interop_dir, read_interop, report, run_node, TestRng};
use serde_json::{json, Value};

const SCRIPT: &str = "syntax-reference.mjs";

fn fixture_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let dir = interop_dir().join("syntax");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    for name in names {
        for line in read_interop(&format!("syntax/{name}")).lines() {
            if !line.is_empty() && !line.starts_with('#') {
                lines.push(line.to_owned());
            }
        }
    }
    lines
}

fn candidates() -> Vec<String> {
    let mut rng = TestRng::new(0x5eed_1234_abcd_ef01);
    let mut set = BTreeSet::new();
    let extra = [
        ".", "-", ":", "/", "#", "%", "a", "A", "0", "~", "_", "?", " ", "Z", "+01:00", "%20",
        "#/a", "/self", "-x-abc",
    ];
    for line in fixture_lines() {
        set.insert(line.to_ascii_uppercase());
        set.insert(line.to_ascii_lowercase());
        let chars: Vec<char> = line.chars().collect();
        if chars.len() > 1 {
            set.insert(chars[1..].iter().collect());
            set.insert(chars[..chars.len() - 1].iter().collect());
            for _ in 0..3 {
                let mut c = chars.clone();
                c.remove(rng.below(c.len()));
                set.insert(c.into_iter().collect());
            }
        }
        for add in extra {
            set.insert(format!("{line}{add}"));
            set.insert(format!("{add}{line}"));
        }
        for _ in 0..3 {
            let mut c = chars.clone();
            let at = rng.below(c.len() + 1);
            let add = extra[rng.below(extra.len())];
            for (i, ch) in add.chars().enumerate() {
                c.insert(at + i, ch);
            }
            set.insert(c.into_iter().collect());
        }
        set.insert(line);
    }
    // Random strings over an alphabet that hits the interesting characters.
    let alphabet: Vec<char> = "abcxyzABCXYZ0123456789.-_:~/%#?@+ TZtz".chars().collect();
    for _ in 0..3_000 {
        let len = 1 + rng.below(24);
        let s: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        set.insert(s.clone());
        set.insert(format!("did:{s}"));
        set.insert(format!("at://{s}"));
    }
    // Datetimes with random fields, in and out of range.
    for _ in 0..2_000 {
        let year = rng.below(10_000);
        let month = rng.below(14);
        let day = rng.below(33);
        let hour = rng.below(26);
        let minute = rng.below(61);
        let second = rng.below(62);
        let tz = [
            "Z", "+00:00", "-07:00", "+14:00", "+23:59", "-23:59", "", "z",
        ][rng.below(8)];
        set.insert(format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}{tz}",
            rng.below(1000)
        ));
    }
    set.into_iter().collect()
}

/// Whether the scheme of a URI candidate is in the subset where the RFC
/// 3986 rule we follow and the reference's `\w+` agree.
fn scheme_in_common_subset(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => true,
    }
}

#[test]
fn validators_agree_with_the_reference() {
    let strings = candidates();
    let answer = run_node(
        SCRIPT,
        &json!({ "strings": strings, "tids": [], "decode": [] }),
    );
    let valid = &answer["valid"];
    let reference = |kind: &str, i: usize| -> bool {
        valid[kind][i]
            .as_bool()
            .unwrap_or_else(|| panic!("no answer for {kind} #{i}"))
    };

    let mut compared = 0;
    let mut mismatches = Vec::new();
    let mut check = |kind: &str, i: usize, ours: bool| {
        compared += 1;
        if ours != reference(kind, i) {
            let shown: String = strings[i].chars().take(100).collect();
            mismatches.push(format!(
                "{kind}: {shown:?} ({} bytes) ours={ours}",
                strings[i].len()
            ));
        }
    };
    let mut day_overflows = 0;
    for (i, s) in strings.iter().enumerate() {
        check("did", i, Did::is_valid(s));
        check("handle", i, Handle::is_valid(s));
        check("at_identifier", i, AtIdentifier::is_valid(s));
        check("nsid", i, Nsid::is_valid(s));
        check("at_uri", i, AtUri::is_valid(s));
        check("tid", i, Tid::is_valid(s));
        check("record_key", i, RecordKey::is_valid(s));
        check("language", i, Language::is_valid(s));
        check("language_well_formed", i, Language::is_well_formed(s));
        // The reference's `uri` check has no length limit; the spec (and
        // the interop vectors) cap URIs at 8 KiB.
        if scheme_in_common_subset(s) && s.len() <= 8192 {
            check("uri", i, Uri::is_valid(s));
        }
        // Datetimes: the reference lets JavaScript roll impossible days
        // over (Feb 30 becomes Mar 2); we refuse them, as the spec asks.
        match Datetime::new(s) {
            Ok(_) => check("datetime", i, true),
            Err(e) if e.reason() == "no such day" && reference("datetime", i) => {
                day_overflows += 1;
            }
            Err(_) => check("datetime", i, false),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} disagreements with the reference, e.g. {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(40)]
    );
    // The comparison must have had something to compare, valid and not.
    for kind in [
        "did",
        "handle",
        "nsid",
        "at_uri",
        "tid",
        "record_key",
        "datetime",
        "language",
        "uri",
    ] {
        let yes = valid[kind]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v.as_bool() == Some(true))
            .count();
        assert!(yes > 10, "{kind}: only {yes} valid candidates");
    }
    println!(
        "{day_overflows} datetimes with impossible days refused (the reference rolls them over)"
    );
    report("syntax validators vs @atproto/syntax", compared);
}

#[test]
fn lenient_datetimes_normalize_like_the_reference() {
    let strings = candidates();
    let answer = run_node(
        SCRIPT,
        &json!({ "strings": strings, "tids": [], "decode": [] }),
    );
    let mut agreed = 0;
    for (i, s) in strings.iter().enumerate() {
        let reference = &answer["normalized"][i];
        // Whatever we accept, the reference accepts, with the same result.
        // We refuse more than the reference (its JavaScript Date parser
        // takes almost anything); refusals are checked by the fixtures.
        if let Ok(ours) = Datetime::parse_lenient(s) {
            assert_eq!(
                reference,
                &Value::String(ours.as_str().to_owned()),
                "normalizing {s:?}"
            );
            agreed += 1;
        }
    }
    assert!(
        agreed > 1_000,
        "only {agreed} normalized datetimes compared"
    );
    report("lenient datetimes vs normalizeDatetime", agreed);
}

#[test]
fn tid_encoding_agrees_with_the_reference() {
    let mut rng = TestRng::new(0x0dd_ba11);
    // The reference encoder only pads the clock identifier, so timestamps
    // need 11 base32 digits: at least 2^50 microseconds (year 2005).
    let mut parts: Vec<(u64, u16)> = vec![(1 << 50, 0), ((1 << 53) - 1, 1023)];
    for _ in 0..500 {
        let micros = (1u64 << 50) + rng.next_u64() % ((1 << 53) - (1 << 50));
        parts.push((micros, (rng.next_u64() % 1024) as u16));
    }
    let ours: Vec<Tid> = parts
        .iter()
        .map(|&(m, c)| Tid::from_parts(m, c).unwrap())
        .collect();
    let answer = run_node(
        SCRIPT,
        &json!({
            "strings": [],
            "tids": parts.iter().map(|&(m, c)| json!([m, c])).collect::<Vec<_>>(),
            "decode": ours.iter().map(Tid::as_str).collect::<Vec<_>>(),
        }),
    );
    for (i, tid) in ours.iter().enumerate() {
        assert_eq!(
            answer["tids"][i],
            json!(tid.as_str()),
            "encoding {:?}",
            parts[i]
        );
        assert_eq!(
            answer["decoded"][i],
            json!([parts[i].0, parts[i].1]),
            "decoding {tid:?}"
        );
    }
    report("TID encoding vs @atproto/common-web", ours.len());
}
