//! Which handles an account may take, checked as the reference PDS checks
//! them on `createAccount`, `updateHandle` and the admin's
//! `updateAccountHandle`, in this order:
//!
//! 1. syntax (normalized to lower case): `InvalidHandle` with the syntax
//!    error's text;
//! 2. the TLD ([`atp_syntax::DISALLOWED_TLDS`]): `InvalidHandle`
//!    "Handle TLD is invalid or disallowed";
//! 3. the operator's banned words ([`HandlePolicy::with_banned_words`],
//!    none by default): `InvalidHandle` "Inappropriate language in
//!    handle" (skipped for the operator);
//! 4. under one of the service's handle domains: one label of 3 to 18
//!    characters in front of the domain (`InvalidHandle` "Invalid
//!    characters in handle", "Handle too short", "Handle too long"), and
//!    not a reserved name ([`RESERVED_NAMES`], `HandleNotAvailable`
//!    "Reserved handle"; skipped for the operator);
//! 5. elsewhere: refused for a new account (`UnsupportedDomain` "Not a
//!    supported handle domain"); for an existing account (or one moving
//!    in with its DID) the caller must then check that the handle
//!    resolves to the account's DID
//!    ([`CheckedHandle::on_service_domain`] is `false`).
//!
//! With no handle domains configured, every handle counts as the
//! service's own (step 4 is skipped: there is no domain to measure the
//! label against).
//!
//! ```
//! use atp_pds::handle_policy::{HandlePolicy, Requester};
//!
//! let domains = vec![".example.com".to_owned()];
//! let policy = HandlePolicy::default().with_banned_words(["badword"]);
//! let checked = policy.check("Alice.Example.com", &domains, Requester::NewAccount).unwrap();
//! assert_eq!(checked.handle, "alice.example.com");
//! assert!(checked.on_service_domain);
//!
//! let refused = policy.check("admin.example.com", &domains, Requester::NewAccount).unwrap_err();
//! assert_eq!((refused.error_name(), refused.to_string().as_str()), ("HandleNotAvailable", "Reserved handle"));
//! // The operator may give reserved names.
//! assert!(policy.check("admin.example.com", &domains, Requester::Operator).is_ok());
//! let refused = policy.check("my-badword.example.com", &domains, Requester::Account).unwrap_err();
//! assert_eq!(refused.to_string(), "Inappropriate language in handle");
//! ```

use std::fmt;

use crate::handle_resolver::HandleResolver;

/// Names reserved on the service's domains: the service's own addresses
/// and roles, common infrastructure host names, and protocol terms that
/// would pass for official accounts.
pub const RESERVED_NAMES: &[&str] = &[
    // The service and its people.
    "about",
    "abuse",
    "account",
    "accounts",
    "admin",
    "administrator",
    "admins",
    "billing",
    "bot",
    "bots",
    "ceo",
    "compliance",
    "contact",
    "copyright",
    "dmca",
    "feedback",
    "help",
    "helpdesk",
    "hostmaster",
    "info",
    "legal",
    "mod",
    "moderation",
    "moderator",
    "moderators",
    "mods",
    "noreply",
    "no-reply",
    "official",
    "operator",
    "owner",
    "postmaster",
    "press",
    "privacy",
    "report",
    "reports",
    "root",
    "safety",
    "sales",
    "security",
    "service",
    "services",
    "staff",
    "support",
    "sysadmin",
    "system",
    "team",
    "terms",
    "tos",
    "trust",
    "webmaster",
    // Infrastructure host names.
    "api",
    "app",
    "assets",
    "auth",
    "autoconfig",
    "autodiscover",
    "blog",
    "cdn",
    "dashboard",
    "dev",
    "dns",
    "docs",
    "download",
    "email",
    "ftp",
    "imap",
    "localhost",
    "login",
    "logout",
    "mail",
    "mx",
    "ns",
    "ns1",
    "ns2",
    "ns3",
    "oauth",
    "pop",
    "pop3",
    "register",
    "settings",
    "signin",
    "signup",
    "smtp",
    "ssl",
    "staging",
    "static",
    "status",
    "test",
    "web",
    "webmail",
    "www",
    // Protocol terms.
    "atp",
    "atproto",
    "bluesky",
    "bsky",
    "did",
    "feed",
    "feeds",
    "firehose",
    "handle",
    "labeler",
    "lexicon",
    "pds",
    "plc",
    "relay",
    "repo",
    "xrpc",
];

/// Whether `name` (the label in front of a service domain, lower case) is
/// one of [`RESERVED_NAMES`].
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// Shortest label in front of a service domain.
pub const MIN_SERVICE_LABEL: usize = 3;
/// Longest label in front of a service domain.
pub const MAX_SERVICE_LABEL: usize = 18;

/// Who asks for a handle: the checks differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester {
    /// `createAccount` without a DID: only handles on the service's
    /// domains.
    NewAccount,
    /// An existing account (`updateHandle`), or one moving in with its
    /// DID: a handle elsewhere must resolve to the DID.
    Account,
    /// The operator (`admin.updateAccountHandle`): reserved names and
    /// banned words are allowed.
    Operator,
}

/// Why a handle was refused: the reference's error name and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandleRefusal {
    /// Not a handle (`InvalidHandle`, the syntax error's text).
    Syntax(String),
    /// A TLD handles may not use.
    DisallowedTld,
    /// Contains one of the operator's banned words.
    BannedWord,
    /// More than one label in front of the service domain.
    DotInName,
    /// The label in front of the service domain is too short.
    TooShort,
    /// The label in front of the service domain is too long.
    TooLong,
    /// A reserved name (`HandleNotAvailable`).
    Reserved,
    /// Not under a service domain, for a new account
    /// (`UnsupportedDomain`).
    UnsupportedDomain,
    /// Not under a service domain, and it does not resolve to the
    /// account's DID (`InvalidRequest`).
    NotResolvingToDid,
}

impl HandleRefusal {
    /// The XRPC error name the reference answers with.
    pub fn error_name(&self) -> &'static str {
        match self {
            HandleRefusal::Reserved => "HandleNotAvailable",
            HandleRefusal::UnsupportedDomain => "UnsupportedDomain",
            HandleRefusal::NotResolvingToDid => "InvalidRequest",
            _ => "InvalidHandle",
        }
    }
}

impl fmt::Display for HandleRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            HandleRefusal::Syntax(text) => text.as_str(),
            HandleRefusal::DisallowedTld => "Handle TLD is invalid or disallowed",
            HandleRefusal::BannedWord => "Inappropriate language in handle",
            HandleRefusal::DotInName => "Invalid characters in handle",
            HandleRefusal::TooShort => "Handle too short",
            HandleRefusal::TooLong => "Handle too long",
            HandleRefusal::Reserved => "Reserved handle",
            HandleRefusal::UnsupportedDomain => "Not a supported handle domain",
            HandleRefusal::NotResolvingToDid => "External handle did not resolve to DID",
        };
        f.write_str(text)
    }
}

impl From<HandleRefusal> for atp_xrpc::server::XrpcError {
    fn from(refusal: HandleRefusal) -> Self {
        atp_xrpc::server::XrpcError::invalid_request(refusal.to_string())
            .with_name(refusal.error_name())
    }
}

/// A handle that passed the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedHandle {
    /// The normalized (lower-case) handle.
    pub handle: String,
    /// Whether it is under one of the service's handle domains; when not,
    /// the caller must check that it resolves to the account's DID.
    pub on_service_domain: bool,
}

/// The service's handle rules: the built-in reserved names plus the
/// operator's banned words (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandlePolicy {
    banned_words: Vec<String>,
}

impl HandlePolicy {
    /// The policy with `words` banned (lower-cased; blank entries
    /// skipped).
    pub fn with_banned_words<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.banned_words = words
            .into_iter()
            .map(|word| word.as_ref().trim().to_lowercase())
            .filter(|word| !word.is_empty())
            .collect();
        self
    }

    /// The banned words of a word list file: one a line, blank lines and
    /// lines starting with `#` skipped.
    pub fn parse_word_list(text: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    /// The operator's banned words.
    pub fn banned_words(&self) -> &[String] {
        &self.banned_words
    }

    /// Whether the (lower-case) handle contains a banned word, as it is or
    /// with its `.` and `-` separators removed (so `bad-word.x` matches
    /// `badword`).
    pub fn has_banned_word(&self, handle: &str) -> bool {
        if self.banned_words.is_empty() {
            return false;
        }
        let joined: String = handle.chars().filter(|c| !matches!(c, '.' | '-')).collect();
        self.banned_words
            .iter()
            .any(|word| handle.contains(word.as_str()) || joined.contains(word.as_str()))
    }

    /// Checks `handle` for `requester` against the service's handle
    /// `domains` (written with their leading dot, as in the configuration)
    /// with the steps of the module documentation.
    pub fn check(
        &self,
        handle: &str,
        domains: &[String],
        requester: Requester,
    ) -> Result<CheckedHandle, HandleRefusal> {
        let parsed = atp_syntax::Handle::new(handle.trim())
            .map_err(|err| HandleRefusal::Syntax(err.to_string()))?;
        if parsed.has_disallowed_tld() {
            return Err(HandleRefusal::DisallowedTld);
        }
        let handle = parsed.into_string();
        let operator = requester == Requester::Operator;
        if !operator && self.has_banned_word(&handle) {
            return Err(HandleRefusal::BannedWord);
        }
        if domains.is_empty() {
            return Ok(CheckedHandle {
                handle,
                on_service_domain: true,
            });
        }
        match service_label(&handle, domains) {
            Some(label) => {
                check_service_label(label, !operator)?;
                Ok(CheckedHandle {
                    handle,
                    on_service_domain: true,
                })
            }
            None if requester == Requester::NewAccount => Err(HandleRefusal::UnsupportedDomain),
            None => Ok(CheckedHandle {
                handle,
                on_service_domain: false,
            }),
        }
    }
}

impl HandlePolicy {
    /// [`check`](HandlePolicy::check) for the account `did`, then, for a
    /// handle outside the service's domains, resolves it with `resolver`
    /// (DNS and HTTPS): it must name `did`. Returns the normalized handle.
    pub async fn check_for_did(
        &self,
        handle: &str,
        domains: &[String],
        requester: Requester,
        did: &str,
        resolver: &HandleResolver,
    ) -> Result<String, HandleRefusal> {
        let checked = self.check(handle, domains, requester)?;
        if !checked.on_service_domain {
            let resolved = resolver.resolve(&checked.handle).await.ok().flatten();
            if resolved.as_deref() != Some(did) {
                return Err(HandleRefusal::NotResolvingToDid);
            }
        }
        Ok(checked.handle)
    }
}

/// The part of `handle` in front of the first service domain it ends
/// with (`None` when it ends with none, or is a domain itself).
fn service_label<'h>(handle: &'h str, domains: &[String]) -> Option<&'h str> {
    domains.iter().find_map(|domain| {
        let domain = domain.to_ascii_lowercase();
        handle
            .strip_suffix(domain.as_str())
            .filter(|label| !label.is_empty())
    })
}

/// The rules for the label in front of a service domain.
fn check_service_label(label: &str, refuse_reserved: bool) -> Result<(), HandleRefusal> {
    if label.contains('.') {
        return Err(HandleRefusal::DotInName);
    }
    if label.len() < MIN_SERVICE_LABEL {
        return Err(HandleRefusal::TooShort);
    }
    if label.len() > MAX_SERVICE_LABEL {
        return Err(HandleRefusal::TooLong);
    }
    if refuse_reserved && is_reserved(label) {
        return Err(HandleRefusal::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec![".test".to_owned()]
    }

    #[test]
    fn reserved_names_are_lower_case_labels_without_repeats() {
        let mut seen = std::collections::HashSet::new();
        for name in RESERVED_NAMES {
            assert!(seen.insert(name), "{name} twice");
            assert!(
                atp_syntax::Handle::new(&format!("{name}.test")).is_ok(),
                "{name}"
            );
            assert_eq!(name.to_lowercase(), *name);
        }
    }

    #[test]
    fn the_checks_in_the_reference_order() {
        let policy = HandlePolicy::default().with_banned_words(["Nasty", " "]);
        assert_eq!(policy.banned_words(), ["nasty"]);
        let check = |handle: &str, requester| policy.check(handle, &domains(), requester);
        for (handle, refusal) in [
            ("nasty.local", HandleRefusal::DisallowedTld),
            ("na-sty.test", HandleRefusal::BannedWord),
            ("a.nasty.test", HandleRefusal::BannedWord),
            ("a.b.test", HandleRefusal::DotInName),
            ("ab.test", HandleRefusal::TooShort),
            ("abcdefghijklmnopqrs.test", HandleRefusal::TooLong),
            ("www.test", HandleRefusal::Reserved),
            ("someone.example.com", HandleRefusal::UnsupportedDomain),
        ] {
            assert_eq!(
                check(handle, Requester::NewAccount),
                Err(refusal),
                "{handle}"
            );
        }
        assert!(matches!(
            check("no_underscores.test", Requester::NewAccount),
            Err(HandleRefusal::Syntax(_))
        ));
        assert_eq!(
            check("someone.example.com", Requester::Account),
            Ok(CheckedHandle {
                handle: "someone.example.com".to_owned(),
                on_service_domain: false
            })
        );
        assert_eq!(
            check("Support.TEST", Requester::Operator).map(|c| c.handle),
            Ok("support.test".to_owned())
        );
        assert_eq!(
            check("nasty-one.test", Requester::Operator).map(|c| c.on_service_domain),
            Ok(true)
        );
        assert_eq!(
            check("alice.test", Requester::NewAccount).map(|c| c.handle),
            Ok("alice.test".to_owned())
        );
        // Reserved names only count in front of a service domain.
        assert!(check("admin.example.com", Requester::Account).is_ok());
    }

    #[test]
    fn word_lists() {
        assert_eq!(
            HandlePolicy::parse_word_list("# banned\n one \n\ntwo\n"),
            ["one", "two"]
        );
        assert!(!HandlePolicy::default().has_banned_word("anything.test"));
    }
}
