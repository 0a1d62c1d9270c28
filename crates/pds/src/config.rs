//! The server's settings, read from `PDS_*` environment variables with
//! development defaults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::error::Error;

/// Everything `pds serve` needs to know before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where the server listens (`PDS_BIND_ADDRESS`, default `127.0.0.1`,
    /// and `PDS_PORT`, default 2583).
    pub listen: SocketAddr,
    /// The public host name (`PDS_HOSTNAME`, default `localhost`).
    pub hostname: String,
    /// The data directory (`PDS_DATA_DIRECTORY`, default `./pds-data`).
    pub data_dir: PathBuf,
    /// The JWT secret (`PDS_JWT_SECRET`); `None`: generated and kept in the
    /// data directory.
    pub jwt_secret: Option<String>,
    /// The PLC directory (`PDS_DID_PLC_URL`); `None`: an embedded directory
    /// on a loopback port (development only).
    pub plc_url: Option<String>,
    /// Handle domains (`PDS_SERVICE_HANDLE_DOMAINS`, comma-separated;
    /// default `.test` on `localhost`, else `.<hostname>`).
    pub handle_domains: Vec<String>,
    /// Whether account creation needs an invite code
    /// (`PDS_INVITE_REQUIRED`, default false).
    pub invite_required: bool,
    /// The service DID (`PDS_SERVICE_DID`, default `did:web:<hostname>`).
    pub service_did: String,
    /// The contact email shown by `describeServer` (`PDS_CONTACT_EMAIL_ADDRESS`).
    pub contact_email: Option<String>,
    /// Privacy policy URL (`PDS_PRIVACY_POLICY_URL`).
    pub privacy_policy: Option<String>,
    /// Terms of service URL (`PDS_TERMS_OF_SERVICE_URL`).
    pub terms_of_service: Option<String>,
}

impl Settings {
    /// Reads the settings through `var` (the process environment in
    /// `main`, a map in tests). Empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let port = match get("PDS_PORT") {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| Error::Config(format!("PDS_PORT is not a port number: {port:?}")))?,
            None => 2583,
        };
        let ip = match get("PDS_BIND_ADDRESS") {
            Some(ip) => ip.parse::<IpAddr>().map_err(|_| {
                Error::Config(format!("PDS_BIND_ADDRESS is not an IP address: {ip:?}"))
            })?,
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let hostname = get("PDS_HOSTNAME").unwrap_or_else(|| "localhost".to_owned());
        let handle_domains = match get("PDS_SERVICE_HANDLE_DOMAINS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| {
                    if d.starts_with('.') {
                        d.to_owned()
                    } else {
                        format!(".{d}")
                    }
                })
                .collect(),
            None if hostname == "localhost" => vec![".test".to_owned()],
            None => vec![format!(".{hostname}")],
        };
        let invite_required = match get("PDS_INVITE_REQUIRED").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(Error::Config(format!(
                    "PDS_INVITE_REQUIRED must be true or false, not {other:?}"
                )))
            }
        };
        Ok(Settings {
            listen: SocketAddr::new(ip, port),
            service_did: get("PDS_SERVICE_DID").unwrap_or_else(|| format!("did:web:{hostname}")),
            hostname,
            data_dir: get("PDS_DATA_DIRECTORY")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("pds-data")),
            jwt_secret: get("PDS_JWT_SECRET"),
            plc_url: get("PDS_DID_PLC_URL"),
            handle_domains,
            invite_required,
            contact_email: get("PDS_CONTACT_EMAIL_ADDRESS"),
            privacy_policy: get("PDS_PRIVACY_POLICY_URL"),
            terms_of_service: get("PDS_TERMS_OF_SERVICE_URL"),
        })
    }

    /// The public URL written into new DID documents: `http://localhost:<port>`
    /// on `localhost`, else `https://<hostname>`.
    pub fn public_url(&self) -> String {
        if self.hostname == "localhost" {
            format!("http://localhost:{}", self.listen.port())
        } else {
            format!("https://{}", self.hostname)
        }
    }

    /// Whether this is a development setup (local host name or embedded
    /// PLC directory).
    pub fn is_development(&self) -> bool {
        self.hostname == "localhost" || self.plc_url.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_a_local_development_server() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:2583".parse().unwrap());
        assert_eq!(s.hostname, "localhost");
        assert_eq!(s.data_dir, PathBuf::from("pds-data"));
        assert_eq!(s.handle_domains, vec![".test".to_owned()]);
        assert_eq!(s.service_did, "did:web:localhost");
        assert_eq!(s.public_url(), "http://localhost:2583");
        assert!(s.jwt_secret.is_none() && s.plc_url.is_none());
        assert!(s.is_development());
    }

    #[test]
    fn variables_are_honoured() {
        let s = settings(&[
            ("PDS_PORT", "3000"),
            ("PDS_HOSTNAME", "pds.example.com"),
            ("PDS_DATA_DIRECTORY", "/var/pds"),
            ("PDS_JWT_SECRET", "s3cret"),
            ("PDS_DID_PLC_URL", "https://plc.directory"),
            (
                "PDS_SERVICE_HANDLE_DOMAINS",
                "example.com, .pds.example.com",
            ),
            ("PDS_INVITE_REQUIRED", "true"),
        ])
        .unwrap();
        assert_eq!(s.listen.port(), 3000);
        assert_eq!(s.data_dir, PathBuf::from("/var/pds"));
        assert_eq!(s.jwt_secret.as_deref(), Some("s3cret"));
        assert_eq!(s.plc_url.as_deref(), Some("https://plc.directory"));
        assert_eq!(s.handle_domains, vec![".example.com", ".pds.example.com"]);
        assert_eq!(s.service_did, "did:web:pds.example.com");
        assert_eq!(s.public_url(), "https://pds.example.com");
        assert!(s.invite_required);
        assert!(!s.is_development());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            settings(&[("PDS_PORT", "http")]),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            settings(&[("PDS_PORT", "70000")]),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            settings(&[("PDS_INVITE_REQUIRED", "maybe")]),
            Err(Error::Config(_))
        ));
    }
}
