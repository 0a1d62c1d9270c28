//! Service-level settings the storage layer needs, as plain structs (the
//! `pds` binary fills them from `PDS_*` environment variables).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atp_crypto::SigningKey;

/// Where and how the PDS stores its data.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Directory holding `account.sqlite` and `actors/`; created if missing.
    pub data_dir: PathBuf,
    /// The PDS's public URL, written as the `atproto_pds` endpoint of new
    /// DID documents (for example `https://pds.example.com`).
    pub public_url: String,
    /// Domains under which users may take handles, with their leading dot
    /// (for example `.pds.example.com`). Empty: any handle is accepted.
    pub handle_domains: Vec<String>,
    /// Whether account creation needs an invite code.
    pub invite_required: bool,
    /// A `did:key` placed first among the rotation keys of new DIDs, so the
    /// user (or an operator) can recover the identity without this PDS.
    pub recovery_did_key: Option<String>,
    /// Lifetime of a refresh token.
    pub refresh_token_lifetime: Duration,
    /// How long a rotated refresh token may still be presented (it yields
    /// the same successor), for clients that retried a refresh.
    pub refresh_grace_period: Duration,
    /// Lifetime of an email token (confirmation, reset, ...).
    pub email_token_lifetime: Duration,
}

impl ServiceConfig {
    /// Settings with the reference PDS's defaults (90-day refresh tokens,
    /// a 2-hour rotation grace period, 15-minute email tokens), no
    /// invite codes and no handle domain restriction.
    pub fn new(data_dir: impl Into<PathBuf>, public_url: impl Into<String>) -> Self {
        ServiceConfig {
            data_dir: data_dir.into(),
            public_url: public_url.into(),
            handle_domains: Vec::new(),
            invite_required: false,
            recovery_did_key: None,
            refresh_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            refresh_grace_period: Duration::from_secs(2 * 3600),
            email_token_lifetime: Duration::from_secs(15 * 60),
        }
    }

    /// The service-wide account database.
    pub fn account_db_path(&self) -> PathBuf {
        self.data_dir.join("account.sqlite")
    }

    /// The directory of the per-account stores.
    pub fn actors_dir(&self) -> PathBuf {
        self.data_dir.join("actors")
    }

    /// Whether `handle` (normalized) may be taken on this service.
    pub fn handle_allowed(&self, handle: &str) -> bool {
        self.handle_domains.is_empty()
            || self.handle_domains.iter().any(|domain| {
                let domain = domain.to_ascii_lowercase();
                handle.ends_with(&domain) && handle.len() > domain.len()
            })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// The service's secret keys. `Debug` shows only public keys.
#[derive(Clone)]
pub struct ServiceKeys {
    /// The PDS's `did:plc` rotation key: signs genesis and later operations
    /// of the accounts it hosts.
    pub plc_rotation_key: SigningKey,
}

impl fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKeys")
            .field("plc_rotation_key", &self.plc_rotation_key.did_key())
            .finish()
    }
}
