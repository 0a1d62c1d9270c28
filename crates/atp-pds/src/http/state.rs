//! What the XRPC handlers share.

use std::sync::Arc;

use atp_did_plc::client::PlcClient;
use atp_xrpc::auth::SessionTokenAuthority;

use crate::blob_store::{BlobStore, DiskBlobStore};
use crate::handle_policy::HandlePolicy;
use crate::handle_resolver::HandleResolver;
use crate::invite::InviteSchedule;
use crate::mailer::{LogMailer, Mailer};
use crate::sequencer::Sequencer;
use crate::service::ServiceKeys;
use crate::storage::Storage;

/// The reference PDS's default blob upload limit (5 MiB).
pub const DEFAULT_BLOB_UPLOAD_LIMIT: u64 = 5 * 1024 * 1024;

/// Public facts about the service shown by `describeServer`.
#[derive(Clone, Debug, Default)]
pub struct ServiceInfo {
    /// The service's DID (`did:web:<hostname>` for a PDS).
    pub did: String,
    /// URL of the privacy policy, if any.
    pub privacy_policy: Option<String>,
    /// URL of the terms of service, if any.
    pub terms_of_service: Option<String>,
    /// Contact email address, if any.
    pub contact_email: Option<String>,
}

/// Another service the PDS talks to on behalf of its users (the AppView).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEndpoint {
    /// Base URL, for example `https://api.bsky.app`.
    pub url: String,
    /// The service's DID, the `aud` of the service-auth JWTs sent to it.
    pub did: String,
}

/// Everything the handlers need: storage, keys, the DID directory and the
/// session token authority, plus the optional parts (mail, blobs, the
/// event log, the AppView) with development defaults from
/// [`PdsState::new`].
#[derive(Clone, Debug)]
pub struct PdsState {
    /// Accounts and repositories.
    pub storage: Storage,
    /// The service's secret keys.
    pub keys: ServiceKeys,
    /// The `did:plc` directory new DIDs are registered with.
    pub directory: PlcClient,
    /// Issues and verifies session JWTs.
    pub tokens: SessionTokenAuthority,
    /// What `describeServer` shows.
    pub info: ServiceInfo,
    /// The admin password (HTTP basic auth as `admin`); `None` disables the
    /// admin methods.
    pub admin_password: Option<String>,
    /// Sends the service's emails.
    pub mailer: Arc<dyn Mailer>,
    /// Resolves handles on domains the service does not own.
    pub handles: HandleResolver,
    /// Blob bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// The event log behind `subscribeRepos`.
    pub sequencer: Sequencer,
    /// Where `app.bsky.*` and `chat.bsky.*` reads are forwarded.
    pub appview: Option<ServiceEndpoint>,
    /// Relays told to crawl this PDS (`requestCrawl`).
    pub crawlers: Vec<String>,
    /// Largest accepted blob upload, in bytes.
    pub blob_upload_limit: u64,
    /// Development mode: loopback addresses allowed, tokens logged.
    pub dev_mode: bool,
    /// Rate limits on logins, sign-ups and the email and handle methods
    /// (see [`crate::http::rate_limits`]); on unless turned off.
    pub rate_limits: bool,
    /// The handle rules: reserved names and the operator's banned words
    /// (none by default).
    pub handle_policy: HandlePolicy,
    /// How accounts earn invite codes (`getAccountInviteCodes` with
    /// `createAvailable`, when invites are required); `None`, the default,
    /// gives none.
    pub invite_schedule: Option<InviteSchedule>,
}

impl PdsState {
    /// A state with the required parts and development defaults for the
    /// rest: no admin password, mail only logged, blobs on disk under
    /// `<data>/blobs`, no AppView, no crawlers.
    pub fn new(
        storage: Storage,
        keys: ServiceKeys,
        directory: PlcClient,
        tokens: SessionTokenAuthority,
        info: ServiceInfo,
    ) -> crate::Result<Self> {
        let blobs = DiskBlobStore::new(storage.config().data_dir().join("blobs"));
        let sequencer = Sequencer::open(&storage.config().data_dir().join("sequencer.sqlite"))?
            .with_actor_stores(Arc::clone(storage.actors()));
        // A crash between storing a commit and sequencing it leaves the
        // head unannounced: announce the heads of active accounts with
        // `#sync` now.
        let accounts = Arc::clone(storage.accounts());
        let is_active = |did: &str| {
            let account = accounts.account_by_did(did);
            matches!(account, Ok(Some(account)) if account.is_active())
        };
        match sequencer.announce_unsequenced_heads(is_active) {
            Ok(dids) if !dids.is_empty() => {
                tracing::warn!(
                    ?dids,
                    "repository heads without an event announced with #sync"
                );
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(error = %err, "could not check for unannounced repository heads")
            }
        }
        Ok(PdsState {
            storage,
            keys,
            directory,
            tokens,
            info,
            admin_password: None,
            mailer: Arc::new(LogMailer),
            handles: HandleResolver::new(false),
            blobs: Arc::new(blobs),
            sequencer,
            appview: None,
            crawlers: Vec::new(),
            blob_upload_limit: DEFAULT_BLOB_UPLOAD_LIMIT,
            dev_mode: false,
            rate_limits: true,
            handle_policy: HandlePolicy::default(),
            invite_schedule: None,
        })
    }
}
