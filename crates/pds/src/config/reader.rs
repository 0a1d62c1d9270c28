//! Reading variables one by one: every problem is collected, and the
//! checks of URLs, DIDs and host names.

use std::net::IpAddr;

use super::Environment;

/// Reads variables and collects every problem found.
pub(super) struct Reader<'a> {
    pub(super) env: &'a Environment,
    pub(super) errors: Vec<String>,
}

impl Reader<'_> {
    pub(super) fn text(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_owned)
    }

    pub(super) fn fail(&mut self, message: String) {
        self.errors.push(message);
    }

    pub(super) fn number<T: std::str::FromStr>(&mut self, name: &str, what: &str) -> Option<T> {
        let text = self.env.get(name)?;
        match text.parse::<T>() {
            Ok(value) => Some(value),
            Err(_) => {
                self.fail(format!("{name} must be {what}, not {text:?}"));
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.env.get(name)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            other => {
                self.fail(format!("{name} must be true, false, 1 or 0, not {other:?}"));
                None
            }
        }
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.env
            .get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn http_url(&mut self, name: &str) -> Option<String> {
        let url = self.text(name)?;
        if is_http_url(&url) {
            Some(url.trim_end_matches('/').to_owned())
        } else {
            self.fail(format!(
                "{name} must be an http:// or https:// URL, not {url:?}"
            ));
            None
        }
    }

    pub(super) fn did(&mut self, name: &str) -> Option<String> {
        let did = self.text(name)?;
        if is_did(&did) {
            Some(did)
        } else {
            self.fail(format!(
                "{name} must be a DID (did:web:... or did:plc:...), not {did:?}"
            ));
            None
        }
    }
}

pub(super) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace))
}

pub(super) fn is_did(did: &str) -> bool {
    let mut parts = did.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("did"), Some(method), Some(id))
            if !method.is_empty()
                && method.chars().all(|c| c.is_ascii_lowercase())
                && !id.is_empty()
                && !id.contains(char::is_whitespace)
    )
}

/// A host name or IP address as `PDS_HOSTNAME` wants it: no scheme, port
/// or path.
pub(super) fn is_hostname(name: &str) -> bool {
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Whether `hostname` names this machine (`localhost`, `*.localhost` or a
/// loopback address).
pub fn is_loopback_host(hostname: &str) -> bool {
    hostname == "localhost"
        || hostname.ends_with(".localhost")
        || hostname
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
