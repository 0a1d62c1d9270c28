//! The server's settings, read from the reference PDS's `PDS_*`
//! variables (the process environment, optionally over an env file), with
//! development defaults when nothing is configured.
//!
//! Every problem is collected before giving up, so one start names every
//! missing or malformed variable ([`Error::Settings`](crate::error::Error::Settings)). Variables the
//! reference knows but this server does not use, and unknown `PDS_*`
//! variables, become warnings.
//!
//! One module per idea: [`variables`] lists the names, `environment` holds
//! their values, `read` turns them into [`Settings`] (with the checks of
//! `reader`), and `settings` defines what comes out.

mod environment;
mod read;
mod reader;
mod settings;
#[cfg(test)]
mod tests;
pub mod variables;

pub use environment::Environment;
pub use reader::is_loopback_host;
pub use settings::{BlobstoreSettings, EmailSettings, PlcSettings, S3Settings, Settings};
pub use variables::{IGNORED_REFERENCE_VARIABLES, SUPPORTED_VARIABLES};

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
