//! The server's settings, read from the reference PDS's `PDS_*`
//! variables (the process environment, optionally over an env file), with
//! development defaults when nothing is configured.
//!
//! Every problem is collected before giving up, so one start names every
//! missing or malformed variable ([`Error::Settings`]). Variables the
//! reference knows but this server does not use, and unknown `PDS_*`
//! variables, become warnings.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use atp_crypto::{Algorithm, SigningKey};
use atp_pds::http::ServiceEndpoint;

use crate::env_file;
use crate::error::Error;

/// The reference PDS's default port.
pub const DEFAULT_PORT: u16 = 2583;
/// The reference's default PLC directory (used outside development mode).
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";
/// The reference's default blob upload limit (5 MiB).
pub const DEFAULT_BLOB_UPLOAD_LIMIT: u64 = 5 * 1024 * 1024;
/// The reference's default subscription buffer (events).
pub const DEFAULT_MAX_SUBSCRIPTION_BUFFER: u64 = 500;
/// The reference's default backfill window of `subscribeRepos` (one day).
pub const DEFAULT_REPO_BACKFILL_LIMIT_MS: u64 = 24 * 60 * 60 * 1000;
/// The reference's default S3 upload timeout.
pub const DEFAULT_S3_UPLOAD_TIMEOUT_MS: u64 = 20_000;

/// Variables this server reads.
pub const SUPPORTED_VARIABLES: &[&str] = &[
    "PDS_PORT",
    "PDS_BIND_ADDRESS",
    "PDS_HOSTNAME",
    "PDS_SERVICE_DID",
    "PDS_DEV_MODE",
    "PDS_DATA_DIRECTORY",
    "PDS_BLOBSTORE_DISK_LOCATION",
    "PDS_BLOBSTORE_DISK_TMP_LOCATION",
    "PDS_BLOBSTORE_S3_BUCKET",
    "PDS_BLOBSTORE_S3_REGION",
    "PDS_BLOBSTORE_S3_ENDPOINT",
    "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE",
    "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
    "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
    "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS",
    "PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS",
    "PDS_DID_PLC_URL",
    "PDS_RECOVERY_DID_KEY",
    "PDS_SERVICE_HANDLE_DOMAINS",
    "PDS_JWT_SECRET",
    "PDS_ADMIN_PASSWORD",
    "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
    "PDS_INVITE_REQUIRED",
    "PDS_EMAIL_SMTP_URL",
    "PDS_EMAIL_FROM_ADDRESS",
    "PDS_CRAWLERS",
    "PDS_BSKY_APP_VIEW_URL",
    "PDS_BSKY_APP_VIEW_DID",
    "PDS_BLOB_UPLOAD_LIMIT",
    "PDS_MAX_SUBSCRIPTION_BUFFER",
    "PDS_REPO_BACKFILL_LIMIT_MS",
    "PDS_RATE_LIMITS_ENABLED",
    "PDS_CONTACT_EMAIL_ADDRESS",
    "PDS_PRIVACY_POLICY_URL",
    "PDS_TERMS_OF_SERVICE_URL",
];

/// Variables the reference PDS reads that this server accepts but ignores
/// (a warning names each one that is set).
pub const IGNORED_REFERENCE_VARIABLES: &[&str] = &[
    "PDS_SERVICE_NAME",
    "PDS_VERSION",
    "PDS_HOME_URL",
    "PDS_LOGO_URL",
    "PDS_SUPPORT_URL",
    "PDS_ACCEPTING_REPO_IMPORTS",
    "PDS_MAX_REPO_IMPORT_SIZE",
    "PDS_HCAPTCHA_SITE_KEY",
    "PDS_HCAPTCHA_SECRET_KEY",
    "PDS_HCAPTCHA_TOKEN_SALT",
    "PDS_OAUTH_TRUSTED_CLIENTS",
    "PDS_PRIMARY_COLOR",
    "PDS_ERROR_COLOR",
    "PDS_WARNING_COLOR",
    "PDS_INFO_COLOR",
    "PDS_SUCCESS_COLOR",
    "PDS_BACKGROUND_LIGHT_URL",
    "PDS_BACKGROUND_DARK_URL",
    "PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT",
    "PDS_ACCOUNT_DB_LOCATION",
    "PDS_SEQUENCER_DB_LOCATION",
    "PDS_DID_CACHE_DB_LOCATION",
    "PDS_ACTOR_STORE_DIRECTORY",
    "PDS_ACTOR_STORE_CACHE_SIZE",
    "PDS_DID_CACHE_STALE_TTL",
    "PDS_DID_CACHE_MAX_TTL",
    "PDS_ID_RESOLVER_TIMEOUT",
    "PDS_HANDLE_BACKUP_NAMESERVERS",
    "PDS_ENABLE_DID_DOC_WITH_SESSION",
    "PDS_ENTRYWAY_URL",
    "PDS_ENTRYWAY_DID",
    "PDS_ENTRYWAY_JWT_VERIFY_KEY_K256_PUBLIC_KEY_HEX",
    "PDS_ENTRYWAY_PLC_ROTATION_KEY",
    "PDS_ENTRYWAY_ADMIN_TOKEN",
    "PDS_INVITE_INTERVAL",
    "PDS_INVITE_EPOCH",
    "PDS_EMAIL_DISABLE_CONFIRMATION_LINK",
    "PDS_MODERATION_EMAIL_SMTP_URL",
    "PDS_MODERATION_EMAIL_ADDRESS",
    "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN",
    "PDS_MOD_SERVICE_URL",
    "PDS_MOD_SERVICE_DID",
    "PDS_REPORT_SERVICE_URL",
    "PDS_REPORT_SERVICE_DID",
    "PDS_RATE_LIMIT_BYPASS_KEY",
    "PDS_RATE_LIMIT_BYPASS_IPS",
    "PDS_REDIS_SCRATCH_ADDRESS",
    "PDS_REDIS_SCRATCH_PASSWORD",
    "PDS_DPOP_SECRET",
    "PDS_PLC_ROTATION_KEY_KMS_KEY_ID",
    "PDS_DISABLE_SSRF_PROTECTION",
    "PDS_FETCH_MAX_RESPONSE_SIZE",
    "PDS_PROXY_ALLOW_HTTP2",
    "PDS_PROXY_HEADERS_TIMEOUT",
    "PDS_PROXY_BODY_TIMEOUT",
    "PDS_PROXY_MAX_RESPONSE_SIZE",
    "PDS_PROXY_MAX_RETRIES",
    "PDS_PROXY_PREFER_COMPRESSED",
    "PDS_LEXICON_AUTHORITY_DID",
];

/// The variables in force: the process environment over an optional env
/// file. Empty values count as unset, as in the reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The process environment over the env file at `env_file`, if any
    /// (values already in the process environment win).
    pub fn load(env_file: Option<&Path>) -> Result<Environment, Error> {
        let file = match env_file {
            Some(path) => env_file::read(path)?,
            None => Vec::new(),
        };
        Ok(Environment::layered(file, std::env::vars()))
    }

    /// `process` over `file`: a name set in both takes its `process` value
    /// (an empty `process` value counts as unset and leaves the file's).
    pub fn layered(
        file: impl IntoIterator<Item = (String, String)>,
        process: impl IntoIterator<Item = (String, String)>,
    ) -> Environment {
        let mut vars: BTreeMap<String, String> = file.into_iter().collect();
        vars.extend(process.into_iter().filter(|(_, v)| !v.trim().is_empty()));
        Environment { vars }
    }

    /// An environment of exactly these pairs.
    #[cfg(test)]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment::layered(
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())),
            std::iter::empty(),
        )
    }

    /// The value of `name`, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Names of the `PDS_*` variables that are set (non-empty).
    pub fn pds_names(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|(k, v)| k.starts_with("PDS_") && !v.trim().is_empty())
            .map(|(k, _)| k.as_str())
    }
}

/// Where blob bytes are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobstoreSettings {
    /// Files under a directory (`PDS_BLOBSTORE_DISK_LOCATION`, default
    /// `<data>/blocks`).
    Disk {
        /// Permanent blobs.
        location: PathBuf,
        /// Temporary uploads (`PDS_BLOBSTORE_DISK_TMP_LOCATION`).
        tmp_location: Option<PathBuf>,
    },
    /// An S3 bucket (`PDS_BLOBSTORE_S3_*`).
    S3(S3Settings),
}

/// The `PDS_BLOBSTORE_S3_*` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name (`PDS_BLOBSTORE_S3_BUCKET`).
    pub bucket: String,
    /// Region (`PDS_BLOBSTORE_S3_REGION`).
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible services (`PDS_BLOBSTORE_S3_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Path-style addressing (`PDS_BLOBSTORE_S3_FORCE_PATH_STYLE`).
    pub force_path_style: bool,
    /// Access key id and secret (`PDS_BLOBSTORE_S3_ACCESS_KEY_ID`,
    /// `PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY`); `None`: ambient credentials.
    pub credentials: Option<(String, String)>,
    /// Upload timeout in milliseconds (`PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS`,
    /// default 20000).
    pub upload_timeout_ms: u64,
    /// Timeout of other requests in milliseconds
    /// (`PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS`; default: the store's).
    pub request_timeout_ms: Option<u64>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("force_path_style", &self.force_path_style)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(id, _)| (id, "<secret>")),
            )
            .field("upload_timeout_ms", &self.upload_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}

/// Which `did:plc` directory new DIDs are registered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlcSettings {
    /// A directory at this URL (`PDS_DID_PLC_URL`).
    Url(String),
    /// A directory embedded in the process on a loopback port (development
    /// mode without `PDS_DID_PLC_URL`).
    Embedded,
}

/// Outgoing mail (`PDS_EMAIL_SMTP_URL` and `PDS_EMAIL_FROM_ADDRESS`).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// `smtp://` or `smtps://` URL, credentials included.
    pub smtp_url: String,
    /// The `From` address.
    pub from_address: String,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_url", &"<hidden>")
            .field("from_address", &self.from_address)
            .finish()
    }
}

/// Everything `pds serve` needs to know before it starts.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the server listens (`PDS_BIND_ADDRESS`, default `127.0.0.1` in
    /// development mode, else all interfaces as the reference; `PDS_PORT`,
    /// default 2583).
    pub listen: SocketAddr,
    /// The public host name (`PDS_HOSTNAME`, default `localhost`).
    pub hostname: String,
    /// The service DID (`PDS_SERVICE_DID`, default `did:web:<hostname>`).
    pub service_did: String,
    /// Development mode (`PDS_DEV_MODE`; default: on for `localhost`):
    /// generated secrets, embedded PLC directory, loopback addresses
    /// allowed.
    pub dev_mode: bool,
    /// The data directory (`PDS_DATA_DIRECTORY`, default `./pds-data`).
    pub data_dir: PathBuf,
    /// Where blob bytes live.
    pub blobstore: BlobstoreSettings,
    /// The PLC directory.
    pub plc: PlcSettings,
    /// The JWT secret (`PDS_JWT_SECRET`); `None` (development mode only):
    /// generated and kept in the data directory.
    pub jwt_secret: Option<String>,
    /// The admin password (`PDS_ADMIN_PASSWORD`); `None` (development mode
    /// only): generated and kept in the data directory.
    pub admin_password: Option<String>,
    /// The PLC rotation key (`PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX`,
    /// validated hex); `None` (development mode only): generated and kept
    /// in the data directory.
    pub plc_rotation_key_hex: Option<String>,
    /// An extra rotation key put first in new DIDs (`PDS_RECOVERY_DID_KEY`).
    pub recovery_did_key: Option<String>,
    /// Handle domains (`PDS_SERVICE_HANDLE_DOMAINS`, comma-separated;
    /// default `.test` on `localhost`, else `.<hostname>`).
    pub handle_domains: Vec<String>,
    /// Whether account creation needs an invite code
    /// (`PDS_INVITE_REQUIRED`; default: true as the reference, false in
    /// development mode).
    pub invite_required: bool,
    /// Outgoing mail; `None`: mail is only logged.
    pub email: Option<EmailSettings>,
    /// The AppView (`PDS_BSKY_APP_VIEW_URL` and `PDS_BSKY_APP_VIEW_DID`).
    pub appview: Option<ServiceEndpoint>,
    /// Relays told about this PDS (`PDS_CRAWLERS`, comma-separated URLs).
    pub crawlers: Vec<String>,
    /// Largest blob upload in bytes (`PDS_BLOB_UPLOAD_LIMIT`, default 5 MiB).
    pub blob_upload_limit: u64,
    /// Events buffered per subscriber (`PDS_MAX_SUBSCRIPTION_BUFFER`,
    /// default 500).
    pub max_subscription_buffer: u64,
    /// How far back `subscribeRepos` replays, in milliseconds
    /// (`PDS_REPO_BACKFILL_LIMIT_MS`, default one day).
    pub repo_backfill_limit_ms: u64,
    /// `PDS_RATE_LIMITS_ENABLED`: limits on `createSession` and
    /// `createAccount`. On by default, as the reference's installer sets
    /// it, except in development mode (tests and bulk imports on loopback
    /// would trip them).
    pub rate_limits_enabled: bool,
    /// The contact email shown by `describeServer` (`PDS_CONTACT_EMAIL_ADDRESS`).
    pub contact_email: Option<String>,
    /// Privacy policy URL (`PDS_PRIVACY_POLICY_URL`).
    pub privacy_policy: Option<String>,
    /// Terms of service URL (`PDS_TERMS_OF_SERVICE_URL`).
    pub terms_of_service: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<secret>");
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("hostname", &self.hostname)
            .field("service_did", &self.service_did)
            .field("dev_mode", &self.dev_mode)
            .field("data_dir", &self.data_dir)
            .field("blobstore", &self.blobstore)
            .field("plc", &self.plc)
            .field("jwt_secret", &hidden(&self.jwt_secret))
            .field("admin_password", &hidden(&self.admin_password))
            .field("plc_rotation_key_hex", &hidden(&self.plc_rotation_key_hex))
            .field("recovery_did_key", &self.recovery_did_key)
            .field("handle_domains", &self.handle_domains)
            .field("invite_required", &self.invite_required)
            .field("email", &self.email)
            .field("appview", &self.appview)
            .field("crawlers", &self.crawlers)
            .field("blob_upload_limit", &self.blob_upload_limit)
            .field("max_subscription_buffer", &self.max_subscription_buffer)
            .field("repo_backfill_limit_ms", &self.repo_backfill_limit_ms)
            .field("rate_limits_enabled", &self.rate_limits_enabled)
            .field("contact_email", &self.contact_email)
            .field("privacy_policy", &self.privacy_policy)
            .field("terms_of_service", &self.terms_of_service)
            .finish()
    }
}

/// Reads variables and collects every problem found.
struct Reader<'a> {
    env: &'a Environment,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_owned)
    }

    fn fail(&mut self, message: String) {
        self.errors.push(message);
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str, what: &str) -> Option<T> {
        let text = self.env.get(name)?;
        match text.parse::<T>() {
            Ok(value) => Some(value),
            Err(_) => {
                self.fail(format!("{name} must be {what}, not {text:?}"));
                None
            }
        }
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.env.get(name)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            other => {
                self.fail(format!("{name} must be true, false, 1 or 0, not {other:?}"));
                None
            }
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
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

    fn http_url(&mut self, name: &str) -> Option<String> {
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

    fn did(&mut self, name: &str) -> Option<String> {
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

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace))
}

fn is_did(did: &str) -> bool {
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
fn is_hostname(name: &str) -> bool {
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

impl Settings {
    /// Reads the settings from `env`; also returns warnings (ignored and
    /// unknown variables, settings accepted but without effect). Every
    /// problem is reported at once in [`Error::Settings`].
    pub fn from_env(env: &Environment) -> Result<(Settings, Vec<String>), Error> {
        let mut r = Reader {
            env,
            errors: Vec::new(),
        };
        let mut warnings = Vec::new();

        let port = r
            .number::<u16>("PDS_PORT", "a port number (0 to 65535)")
            .unwrap_or(DEFAULT_PORT);
        let hostname = match r.text("PDS_HOSTNAME") {
            Some(name) if is_hostname(&name) => name.to_ascii_lowercase(),
            Some(name) => {
                r.fail(format!(
                    "PDS_HOSTNAME must be a host name without scheme, port or path (like pds.example.com), not {name:?}"
                ));
                "localhost".to_owned()
            }
            None => "localhost".to_owned(),
        };
        let dev_mode = r.boolean("PDS_DEV_MODE").unwrap_or(hostname == "localhost");
        let bind_ip = match r.text("PDS_BIND_ADDRESS") {
            Some(text) => match text.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    r.fail(format!(
                        "PDS_BIND_ADDRESS must be an IP address (like 127.0.0.1 or ::), not {text:?}"
                    ));
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                }
            },
            None if dev_mode => IpAddr::V4(Ipv4Addr::LOCALHOST),
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let service_did = r
            .did("PDS_SERVICE_DID")
            .unwrap_or_else(|| format!("did:web:{hostname}"));
        let data_dir = r
            .text("PDS_DATA_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("pds-data"));

        let blobstore = read_blobstore(&mut r, &data_dir);
        if let BlobstoreSettings::Disk {
            location,
            tmp_location: Some(_),
        } = &blobstore
        {
            warnings.push(format!(
                "PDS_BLOBSTORE_DISK_TMP_LOCATION is ignored: uploads not yet referenced are kept in {}/tmp",
                location.display()
            ));
        }

        let plc = match r.http_url("PDS_DID_PLC_URL") {
            Some(url) => PlcSettings::Url(url),
            None if env.get("PDS_DID_PLC_URL").is_some() => PlcSettings::Embedded,
            None if dev_mode => PlcSettings::Embedded,
            None => PlcSettings::Url(DEFAULT_PLC_URL.to_owned()),
        };

        let jwt_secret = r.text("PDS_JWT_SECRET");
        let admin_password = r.text("PDS_ADMIN_PASSWORD");
        let plc_rotation_key_hex = r
            .text("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
            .and_then(|hex| match SigningKey::from_hex(Algorithm::K256, &hex) {
                Ok(_) => Some(hex),
                Err(e) => {
                    r.fail(format!(
                        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX must be a secp256k1 private key as 64 hex digits ({e})"
                    ));
                    None
                }
            });
        if !dev_mode {
            for (name, value) in [
                ("PDS_JWT_SECRET", &jwt_secret),
                ("PDS_ADMIN_PASSWORD", &admin_password),
            ] {
                if value.is_none() && env.get(name).is_none() {
                    r.fail(format!(
                        "{name} is required outside development mode (set PDS_DEV_MODE=true to generate one)"
                    ));
                }
            }
            if plc_rotation_key_hex.is_none()
                && env
                    .get("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
                    .is_none()
            {
                r.fail("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX is required outside development mode (64 hex digits; `openssl ecparam --name secp256k1 --genkey --noout --outform DER | tail --bytes=+8 | head --bytes=32 | xxd --plain --cols 32` makes one)".to_owned());
            }
            if env.get("PDS_BLOBSTORE_DISK_LOCATION").is_none()
                && env.get("PDS_BLOBSTORE_S3_BUCKET").is_none()
            {
                r.fail("PDS_BLOBSTORE_DISK_LOCATION or PDS_BLOBSTORE_S3_BUCKET is required outside development mode".to_owned());
            }
        }

        let recovery_did_key =
            r.text("PDS_RECOVERY_DID_KEY")
                .and_then(|key| match atp_crypto::did_key::parse(&key) {
                    Ok(_) => Some(key),
                    Err(e) => {
                        r.fail(format!(
                        "PDS_RECOVERY_DID_KEY must be a did:key (did:key:z...), not {key:?} ({e})"
                    ));
                        None
                    }
                });

        let mut handle_domains = Vec::new();
        for domain in r.list("PDS_SERVICE_HANDLE_DOMAINS") {
            let bare = domain.trim_start_matches('.');
            if is_hostname(bare) && bare.contains(|c: char| c.is_ascii_alphabetic()) {
                handle_domains.push(format!(".{}", bare.to_ascii_lowercase()));
            } else {
                r.fail(format!(
                    "PDS_SERVICE_HANDLE_DOMAINS has an invalid domain {domain:?} (expected like .example.com)"
                ));
            }
        }
        if handle_domains.is_empty() {
            handle_domains.push(if hostname == "localhost" {
                ".test".to_owned()
            } else {
                format!(".{hostname}")
            });
        }

        let invite_required = r.boolean("PDS_INVITE_REQUIRED").unwrap_or(!dev_mode);

        let smtp_url = r.text("PDS_EMAIL_SMTP_URL");
        let from_address = r.text("PDS_EMAIL_FROM_ADDRESS");
        let email = match (smtp_url, from_address) {
            (None, None) => None,
            (Some(_), None) => {
                r.fail(
                    "PDS_EMAIL_FROM_ADDRESS is required when PDS_EMAIL_SMTP_URL is set".to_owned(),
                );
                None
            }
            (None, Some(_)) => {
                r.fail(
                    "PDS_EMAIL_SMTP_URL is required when PDS_EMAIL_FROM_ADDRESS is set".to_owned(),
                );
                None
            }
            (Some(smtp_url), Some(from_address)) => {
                let mut ok = true;
                if !(smtp_url.starts_with("smtp://") || smtp_url.starts_with("smtps://")) {
                    r.fail("PDS_EMAIL_SMTP_URL must be an smtp:// or smtps:// URL (like smtps://user:pass@mail.example.com)".to_owned());
                    ok = false;
                }
                if !from_address.contains('@') {
                    r.fail(format!(
                        "PDS_EMAIL_FROM_ADDRESS must be an email address, not {from_address:?}"
                    ));
                    ok = false;
                }
                ok.then_some(EmailSettings {
                    smtp_url,
                    from_address,
                })
            }
        };

        let appview_url = r.http_url("PDS_BSKY_APP_VIEW_URL");
        let appview_did = r.did("PDS_BSKY_APP_VIEW_DID");
        let appview = match (appview_url, appview_did) {
            (Some(url), Some(did)) => Some(ServiceEndpoint { url, did }),
            (Some(_), None) if env.get("PDS_BSKY_APP_VIEW_DID").is_none() => {
                r.fail("PDS_BSKY_APP_VIEW_DID is required when PDS_BSKY_APP_VIEW_URL is set (like did:web:api.bsky.app)".to_owned());
                None
            }
            (None, Some(_)) if env.get("PDS_BSKY_APP_VIEW_URL").is_none() => {
                r.fail("PDS_BSKY_APP_VIEW_URL is required when PDS_BSKY_APP_VIEW_DID is set (like https://api.bsky.app)".to_owned());
                None
            }
            _ => None,
        };

        let mut crawlers = Vec::new();
        for url in r.list("PDS_CRAWLERS") {
            if is_http_url(&url) {
                crawlers.push(url.trim_end_matches('/').to_owned());
            } else {
                r.fail(format!(
                    "PDS_CRAWLERS must be comma-separated http(s) URLs; {url:?} is not one"
                ));
            }
        }

        let blob_upload_limit = r
            .number::<u64>("PDS_BLOB_UPLOAD_LIMIT", "a number of bytes")
            .unwrap_or(DEFAULT_BLOB_UPLOAD_LIMIT);
        let max_subscription_buffer = r
            .number::<u64>("PDS_MAX_SUBSCRIPTION_BUFFER", "a number of events")
            .unwrap_or(DEFAULT_MAX_SUBSCRIPTION_BUFFER);
        let repo_backfill_limit_ms = r
            .number::<u64>("PDS_REPO_BACKFILL_LIMIT_MS", "a number of milliseconds")
            .unwrap_or(DEFAULT_REPO_BACKFILL_LIMIT_MS);
        let rate_limits_enabled = r.boolean("PDS_RATE_LIMITS_ENABLED").unwrap_or(!dev_mode);

        let contact_email = r.text("PDS_CONTACT_EMAIL_ADDRESS");
        if let Some(address) = &contact_email {
            if !address.contains('@') {
                r.fail(format!(
                    "PDS_CONTACT_EMAIL_ADDRESS must be an email address, not {address:?}"
                ));
            }
        }
        let privacy_policy = r.http_url("PDS_PRIVACY_POLICY_URL");
        let terms_of_service = r.http_url("PDS_TERMS_OF_SERVICE_URL");

        for name in env.pds_names() {
            if SUPPORTED_VARIABLES.contains(&name) {
                continue;
            }
            if IGNORED_REFERENCE_VARIABLES.contains(&name) {
                warnings.push(format!(
                    "{name} is a setting of the reference PDS that this server does not use; ignored"
                ));
            } else {
                warnings.push(format!(
                    "{name} is not a known PDS setting; ignored (a typo?)"
                ));
            }
        }

        if !r.errors.is_empty() {
            return Err(Error::Settings(r.errors));
        }
        Ok((
            Settings {
                listen: SocketAddr::new(bind_ip, port),
                hostname,
                service_did,
                dev_mode,
                data_dir,
                blobstore,
                plc,
                jwt_secret,
                admin_password,
                plc_rotation_key_hex,
                recovery_did_key,
                handle_domains,
                invite_required,
                email,
                appview,
                crawlers,
                blob_upload_limit,
                max_subscription_buffer,
                repo_backfill_limit_ms,
                rate_limits_enabled,
                contact_email,
                privacy_policy,
                terms_of_service,
            },
            warnings,
        ))
    }

    /// The public URL written into new DID documents: `https://<hostname>`,
    /// except `http://localhost:<port>` on `localhost` (as the reference)
    /// and `http://<host>:<port>` for other loopback names in development
    /// mode.
    pub fn public_url(&self) -> String {
        if self.hostname == "localhost" {
            format!("http://localhost:{}", self.listen.port())
        } else if self.dev_mode && is_loopback_host(&self.hostname) {
            let host = match self.hostname.parse::<IpAddr>() {
                Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
                _ => self.hostname.clone(),
            };
            format!("http://{host}:{}", self.listen.port())
        } else {
            format!("https://{}", self.hostname)
        }
    }
}

fn read_blobstore(r: &mut Reader<'_>, data_dir: &Path) -> BlobstoreSettings {
    let disk = r.text("PDS_BLOBSTORE_DISK_LOCATION").map(PathBuf::from);
    let tmp = r.text("PDS_BLOBSTORE_DISK_TMP_LOCATION").map(PathBuf::from);
    let bucket = r.text("PDS_BLOBSTORE_S3_BUCKET");
    let region = r.text("PDS_BLOBSTORE_S3_REGION");
    let endpoint = r.http_url("PDS_BLOBSTORE_S3_ENDPOINT");
    let force_path_style = r.boolean("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE");
    let access_key_id = r.text("PDS_BLOBSTORE_S3_ACCESS_KEY_ID");
    let secret_access_key = r.text("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY");
    let upload_timeout_ms = r.number::<u64>(
        "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS",
        "a number of milliseconds",
    );
    let request_timeout_ms = r.number::<u64>(
        "PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS",
        "a number of milliseconds",
    );
    let default_disk = || BlobstoreSettings::Disk {
        location: data_dir.join("blocks"),
        tmp_location: None,
    };
    match (disk, bucket) {
        (Some(_), Some(_)) => {
            r.fail(
                "set PDS_BLOBSTORE_DISK_LOCATION or PDS_BLOBSTORE_S3_BUCKET, not both".to_owned(),
            );
            default_disk()
        }
        (Some(location), None) => BlobstoreSettings::Disk {
            location,
            tmp_location: tmp,
        },
        (None, Some(bucket)) => {
            let credentials = match (access_key_id, secret_access_key) {
                (Some(id), Some(secret)) => Some((id, secret)),
                (None, None) => None,
                (Some(_), None) => {
                    r.fail("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY is required when PDS_BLOBSTORE_S3_ACCESS_KEY_ID is set".to_owned());
                    None
                }
                (None, Some(_)) => {
                    r.fail("PDS_BLOBSTORE_S3_ACCESS_KEY_ID is required when PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY is set".to_owned());
                    None
                }
            };
            BlobstoreSettings::S3(S3Settings {
                bucket,
                region,
                endpoint,
                force_path_style: force_path_style.unwrap_or(false),
                credentials,
                upload_timeout_ms: upload_timeout_ms
                    .filter(|ms| *ms > 0)
                    .unwrap_or(DEFAULT_S3_UPLOAD_TIMEOUT_MS),
                request_timeout_ms: request_timeout_ms.filter(|ms| *ms > 0),
            })
        }
        (None, None) => {
            for name in [
                "PDS_BLOBSTORE_S3_REGION",
                "PDS_BLOBSTORE_S3_ENDPOINT",
                "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
                "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
            ] {
                if r.env.get(name).is_some() {
                    r.fail(format!("{name} is set but PDS_BLOBSTORE_S3_BUCKET is not"));
                }
            }
            match tmp {
                Some(tmp) => BlobstoreSettings::Disk {
                    location: data_dir.join("blocks"),
                    tmp_location: Some(tmp),
                },
                None => default_disk(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "9d2a3f1c7e5b4a6d8c0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3";

    fn settings(vars: &[(&str, &str)]) -> Result<(Settings, Vec<String>), Error> {
        Settings::from_env(&Environment::from_pairs(vars.iter().copied()))
    }

    fn errors(vars: &[(&str, &str)]) -> Vec<String> {
        match settings(vars) {
            Err(Error::Settings(errors)) => errors,
            other => panic!("expected settings errors, got {other:?}"),
        }
    }

    fn production() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PDS_HOSTNAME", "pds.example.com"),
            ("PDS_DATA_DIRECTORY", "/pds"),
            ("PDS_BLOBSTORE_DISK_LOCATION", "/pds/blocks"),
            ("PDS_JWT_SECRET", "s3cret"),
            ("PDS_ADMIN_PASSWORD", "admin-pw"),
            ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", KEY_HEX),
        ]
    }

    #[test]
    fn no_configuration_is_a_local_development_server() {
        let (s, warnings) = settings(&[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(s.listen, "127.0.0.1:2583".parse().unwrap());
        assert_eq!(s.hostname, "localhost");
        assert!(s.dev_mode);
        assert_eq!(s.data_dir, PathBuf::from("pds-data"));
        assert_eq!(
            s.blobstore,
            BlobstoreSettings::Disk {
                location: PathBuf::from("pds-data/blocks"),
                tmp_location: None
            }
        );
        assert_eq!(s.plc, PlcSettings::Embedded);
        assert_eq!(s.handle_domains, vec![".test".to_owned()]);
        assert_eq!(s.service_did, "did:web:localhost");
        assert_eq!(s.public_url(), "http://localhost:2583");
        assert!(!s.invite_required);
        assert!(s.jwt_secret.is_none() && s.admin_password.is_none());
        assert!(s.plc_rotation_key_hex.is_none());
        assert_eq!(s.blob_upload_limit, 5 * 1024 * 1024);
        assert_eq!(s.max_subscription_buffer, 500);
        assert_eq!(s.repo_backfill_limit_ms, 86_400_000);
        assert!(s.email.is_none() && s.appview.is_none() && s.crawlers.is_empty());
    }

    #[test]
    fn a_reference_production_configuration_is_honoured() {
        let recovery: &'static str = Box::leak(
            SigningKey::generate(Algorithm::P256)
                .did_key()
                .into_boxed_str(),
        );
        let recovery_key = recovery;
        let mut vars = production();
        vars.extend([
            ("PDS_PORT", "3000"),
            ("PDS_DID_PLC_URL", "https://plc.example.org/"),
            (
                "PDS_SERVICE_HANDLE_DOMAINS",
                "example.com, .pds.example.com",
            ),
            ("PDS_INVITE_REQUIRED", "false"),
            (
                "PDS_CRAWLERS",
                "https://bsky.network,https://relay.example.net",
            ),
            ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"),
            ("PDS_BSKY_APP_VIEW_DID", "did:web:api.bsky.app"),
            ("PDS_BLOB_UPLOAD_LIMIT", "52428800"),
            ("PDS_RECOVERY_DID_KEY", recovery_key),
            ("PDS_EMAIL_SMTP_URL", "smtps://user:pw@mail.example.com"),
            ("PDS_EMAIL_FROM_ADDRESS", "admin@example.com"),
            ("PDS_CONTACT_EMAIL_ADDRESS", "contact@example.com"),
            ("PDS_PRIVACY_POLICY_URL", "https://example.com/privacy"),
            ("PDS_TERMS_OF_SERVICE_URL", "https://example.com/tos"),
            ("PDS_MAX_SUBSCRIPTION_BUFFER", "200"),
            ("PDS_REPO_BACKFILL_LIMIT_MS", "60000"),
        ]);
        let (s, warnings) = settings(&vars).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!s.dev_mode);
        assert_eq!(s.listen, "[::]:3000".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/pds"));
        assert_eq!(
            s.blobstore,
            BlobstoreSettings::Disk {
                location: PathBuf::from("/pds/blocks"),
                tmp_location: None
            }
        );
        assert_eq!(s.plc, PlcSettings::Url("https://plc.example.org".into()));
        assert_eq!(s.jwt_secret.as_deref(), Some("s3cret"));
        assert_eq!(s.admin_password.as_deref(), Some("admin-pw"));
        assert_eq!(s.plc_rotation_key_hex.as_deref(), Some(KEY_HEX));
        assert_eq!(s.handle_domains, vec![".example.com", ".pds.example.com"]);
        assert_eq!(s.service_did, "did:web:pds.example.com");
        assert_eq!(s.public_url(), "https://pds.example.com");
        assert!(!s.invite_required);
        assert_eq!(
            s.crawlers,
            vec!["https://bsky.network", "https://relay.example.net"]
        );
        assert_eq!(
            s.appview,
            Some(ServiceEndpoint {
                url: "https://api.bsky.app".into(),
                did: "did:web:api.bsky.app".into()
            })
        );
        assert_eq!(s.blob_upload_limit, 52_428_800);
        assert_eq!(s.recovery_did_key.as_deref(), Some(recovery));
        let email = s.email.as_ref().unwrap();
        assert_eq!(email.from_address, "admin@example.com");
        assert_eq!(s.contact_email.as_deref(), Some("contact@example.com"));
        assert_eq!(s.max_subscription_buffer, 200);
        assert_eq!(s.repo_backfill_limit_ms, 60_000);
        // Secrets stay out of debug output.
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("admin-pw") && !debug.contains(KEY_HEX)
        );
        assert!(!debug.contains("user:pw"));
    }

    #[test]
    fn production_defaults_follow_the_reference() {
        let (s, _) = settings(&production()).unwrap();
        assert_eq!(s.plc, PlcSettings::Url(DEFAULT_PLC_URL.into()));
        assert!(s.invite_required);
        assert_eq!(s.handle_domains, vec![".pds.example.com"]);
        assert_eq!(s.listen.port(), 2583);
    }

    #[test]
    fn production_names_every_missing_secret() {
        let errors = errors(&[("PDS_HOSTNAME", "pds.example.com")]);
        for name in [
            "PDS_JWT_SECRET",
            "PDS_ADMIN_PASSWORD",
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
            "PDS_BLOBSTORE_DISK_LOCATION or PDS_BLOBSTORE_S3_BUCKET",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(name)),
                "{name} missing from {errors:?}"
            );
        }
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn every_malformed_value_is_reported_at_once() {
        let errors = errors(&[
            ("PDS_PORT", "http"),
            ("PDS_HOSTNAME", "https://pds.example.com"),
            ("PDS_INVITE_REQUIRED", "maybe"),
            ("PDS_DEV_MODE", "yes"),
            ("PDS_BLOB_UPLOAD_LIMIT", "5MB"),
            ("PDS_DID_PLC_URL", "plc.directory"),
            ("PDS_SERVICE_DID", "web:example.com"),
            ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "xyz"),
            ("PDS_RECOVERY_DID_KEY", "zQ3sh"),
            ("PDS_CRAWLERS", "bsky.network"),
            ("PDS_BIND_ADDRESS", "everywhere"),
            ("PDS_SERVICE_HANDLE_DOMAINS", ".exa mple.com"),
        ]);
        for name in [
            "PDS_PORT must be a port number",
            "PDS_HOSTNAME must be a host name",
            "PDS_INVITE_REQUIRED must be true, false",
            "PDS_DEV_MODE must be true, false",
            "PDS_BLOB_UPLOAD_LIMIT must be a number of bytes",
            "PDS_DID_PLC_URL must be an http:// or https:// URL",
            "PDS_SERVICE_DID must be a DID",
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX must be",
            "PDS_RECOVERY_DID_KEY must be a did:key",
            "PDS_CRAWLERS must be",
            "PDS_BIND_ADDRESS must be an IP address",
            "PDS_SERVICE_HANDLE_DOMAINS has an invalid domain",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(name)),
                "{name:?} missing from {errors:?}"
            );
        }
        assert_eq!(errors.len(), 12, "{errors:?}");
        let shown = Error::Settings(errors).to_string();
        assert!(shown.contains("\n  - PDS_PORT"), "{shown}");
    }

    #[test]
    fn paired_settings_name_the_missing_half() {
        let errors = errors(&[
            ("PDS_EMAIL_SMTP_URL", "smtp://localhost:25"),
            ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"),
            ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKIA"),
        ]);
        assert!(errors
            .iter()
            .any(|e| e.starts_with("PDS_EMAIL_FROM_ADDRESS is required")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("PDS_BSKY_APP_VIEW_DID is required")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY is required")));
        assert_eq!(errors.len(), 3, "{errors:?}");

        let errors = errors_of_both_blobstores();
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    fn errors_of_both_blobstores() -> Vec<String> {
        errors(&[
            ("PDS_BLOBSTORE_DISK_LOCATION", "/blobs"),
            ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
        ])
    }

    #[test]
    fn s3_settings_are_read() {
        let (s, _) = settings(&[
            ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
            ("PDS_BLOBSTORE_S3_REGION", "eu-west-1"),
            ("PDS_BLOBSTORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true"),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKIA"),
            ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "secret-key"),
            ("PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS", "5000"),
        ])
        .unwrap();
        let BlobstoreSettings::S3(s3) = &s.blobstore else {
            panic!("expected S3: {:?}", s.blobstore)
        };
        assert_eq!(s3.bucket, "blobs");
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.force_path_style);
        assert_eq!(s3.credentials, Some(("AKIA".into(), "secret-key".into())));
        assert_eq!(s3.upload_timeout_ms, 5000);
        assert_eq!(s3.request_timeout_ms, None);
        assert!(!format!("{s3:?}").contains("secret-key"));
    }

    #[test]
    fn unknown_and_ignored_variables_are_warned_about() {
        let (_, warnings) = settings(&[
            ("PDS_HOSTNAM", "typo.example.com"),
            ("PDS_SERVICE_NAME", "My PDS"),
            ("PDS_RATE_LIMITS_ENABLED", "true"),
            ("PDS_EMPTY_IS_UNSET", ""),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .any(|w| w.starts_with("PDS_HOSTNAM is not a known PDS setting")));
        assert!(warnings
            .iter()
            .any(|w| w.starts_with("PDS_SERVICE_NAME is a setting of the reference PDS")));
    }

    #[test]
    fn process_environment_wins_over_the_env_file() {
        let env = Environment::layered(
            [
                ("PDS_PORT".to_owned(), "3000".to_owned()),
                ("PDS_HOSTNAME".to_owned(), "localhost".to_owned()),
            ],
            [
                ("PDS_PORT".to_owned(), "4000".to_owned()),
                ("PDS_HOSTNAME".to_owned(), String::new()),
            ],
        );
        let (s, _) = Settings::from_env(&env).unwrap();
        assert_eq!(s.listen.port(), 4000);
        assert_eq!(env.get("PDS_HOSTNAME"), Some("localhost"));
    }

    #[test]
    fn public_url_of_loopback_names_in_development_mode() {
        let (s, _) = settings(&[("PDS_HOSTNAME", "127.0.0.1"), ("PDS_DEV_MODE", "true")]).unwrap();
        assert_eq!(s.public_url(), "http://127.0.0.1:2583");
        let (s, _) = settings(&[("PDS_HOSTNAME", "localhost"), ("PDS_PORT", "8080")]).unwrap();
        assert_eq!(s.public_url(), "http://localhost:8080");
        let mut vars = production();
        vars.push(("PDS_HOSTNAME", "127.0.0.1"));
        let (s, _) = settings(&vars).unwrap();
        assert_eq!(s.public_url(), "https://127.0.0.1");
    }
}
