//! BCP 47 language tags (Lexicon `language` format).

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;

/// Irregular and regular grandfathered tags of RFC 5646, matched exactly.
const GRANDFATHERED: &[&str] = &[
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

/// A language tag such as `en`, `pt-BR` or `hy-Latn-IT-arevela`.
///
/// Parsing follows the RFC 5646 grammar (language, up to three extlangs,
/// script, region, variants, extensions, private use; or a grandfathered
/// or private-use-only tag), with the checks of the reference's strict
/// parser and the interop vectors: the primary language subtag is two or
/// three lower-case letters, and no variant or extension singleton appears
/// twice (compared without regard to case). The string is kept as written.
///
/// [`Language::is_well_formed`] is the looser grammar-only check that
/// Lexicon validation of older records uses.
///
/// ```
/// use atp_syntax::Language;
/// let lang: Language = "pt-BR".parse()?;
/// assert_eq!(lang.primary(), "pt");
/// assert!("JA".parse::<Language>().is_err());
/// assert!(Language::is_well_formed("JA"));
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

impl Language {
    /// Validates `input` as a language tag (strict).
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_owned(input.to_owned())
    }

    pub(crate) fn parse_owned(input: String) -> Result<Self> {
        match check(&input, Mode::Strict) {
            Ok(()) => Ok(Language(input)),
            Err(reason) => Err(Error::Language { input, reason }),
        }
    }

    /// Whether `input` is a valid language tag (strict, as [`Language::new`]).
    pub fn is_valid(input: &str) -> bool {
        check(input, Mode::Strict).is_ok()
    }

    /// Whether `input` matches the RFC 5646 grammar alone ("well-formed"):
    /// any letter case and length of the primary subtag, repeated variants
    /// and singletons allowed.
    pub fn is_well_formed(input: &str) -> bool {
        check(input, Mode::WellFormed).is_ok()
    }

    /// The tag as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first subtag, such as `pt` in `pt-BR` (`x` or `i` for private-use
    /// and some grandfathered tags).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }

    /// The tag as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl_string_traits!(Language, "a BCP 47 language tag");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    WellFormed,
}

fn is_alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_alnum(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_variant(s: &str) -> bool {
    is_alnum(s)
        && ((5..=8).contains(&s.len()) || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit()))
}

fn is_singleton(s: &str) -> bool {
    s.len() == 1 && is_alnum(s) && !s.eq_ignore_ascii_case("x")
}

/// `x` followed by one or more subtags of 1 to 8 letters or digits.
fn is_private_use(subtags: &[&str]) -> bool {
    subtags.len() >= 2
        && subtags[0].eq_ignore_ascii_case("x")
        && subtags[1..]
            .iter()
            .all(|s| (1..=8).contains(&s.len()) && is_alnum(s))
}

fn check(input: &str, mode: Mode) -> std::result::Result<(), &'static str> {
    if GRANDFATHERED.contains(&input) {
        return Ok(());
    }
    let subtags: Vec<&str> = input.split('-').collect();
    if subtags.iter().any(|s| s.is_empty()) {
        return Err("empty subtag");
    }
    if is_private_use(&subtags) {
        return Ok(());
    }
    let mut i = 0;

    // Primary language subtag.
    let primary = subtags[0];
    let primary_ok = match mode {
        Mode::Strict => {
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase())
        }
        Mode::WellFormed => (2..=8).contains(&primary.len()) && is_alpha(primary),
    };
    if !primary_ok {
        return Err("primary language subtag must be two or three lower-case letters");
    }
    i += 1;

    // Extended language subtags: only after a two- or three-letter primary.
    if primary.len() <= 3 {
        let mut count = 0;
        while count < 3 && i < subtags.len() && subtags[i].len() == 3 && is_alpha(subtags[i]) {
            i += 1;
            count += 1;
        }
    }

    // Script.
    if i < subtags.len() && subtags[i].len() == 4 && is_alpha(subtags[i]) {
        i += 1;
    }

    // Region.
    if i < subtags.len()
        && ((subtags[i].len() == 2 && is_alpha(subtags[i]))
            || (subtags[i].len() == 3 && is_digits(subtags[i])))
    {
        i += 1;
    }

    // Variants.
    let mut variants: Vec<String> = Vec::new();
    while i < subtags.len() && is_variant(subtags[i]) {
        let key = subtags[i].to_ascii_lowercase();
        if mode == Mode::Strict && variants.contains(&key) {
            return Err("repeated variant subtag");
        }
        variants.push(key);
        i += 1;
    }

    // Extensions: a singleton then one or more subtags of 2 to 8 characters.
    let mut singletons: Vec<u8> = Vec::new();
    while i < subtags.len() && is_singleton(subtags[i]) {
        let key = subtags[i].as_bytes()[0].to_ascii_lowercase();
        if mode == Mode::Strict && singletons.contains(&key) {
            return Err("repeated extension singleton");
        }
        singletons.push(key);
        i += 1;
        let start = i;
        while i < subtags.len() && (2..=8).contains(&subtags[i].len()) && is_alnum(subtags[i]) {
            i += 1;
        }
        if i == start {
            return Err("extension singleton without subtags");
        }
    }

    // Private use.
    if i < subtags.len() && is_private_use(&subtags[i..]) {
        return Ok(());
    }
    if i < subtags.len() {
        return Err("subtag out of place or malformed");
    }
    Ok(())
}
