//! What the settings are: the values `pds serve` starts with.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use atp_pds::http::ServiceEndpoint;

use super::is_loopback_host;

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
    /// Account age, in milliseconds, that earns one invite code
    /// (`PDS_INVITE_INTERVAL`; default none: no codes are earned).
    pub invite_interval_ms: Option<u64>,
    /// Codes are earned only for time after this instant, in milliseconds
    /// since the Unix epoch (`PDS_INVITE_EPOCH`, default 0).
    pub invite_epoch_ms: u64,
    /// Words refused inside new handles, one per line in the file
    /// `PDS_HANDLE_BANNED_WORDS_FILE` (`#` starts a comment; default none).
    pub handle_banned_words: Vec<String>,
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
            .field("invite_interval_ms", &self.invite_interval_ms)
            .field("invite_epoch_ms", &self.invite_epoch_ms)
            .field("handle_banned_words", &self.handle_banned_words.len())
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

impl Settings {
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
