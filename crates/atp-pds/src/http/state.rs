//! What the XRPC handlers share.

use atp_did_plc::client::PlcClient;
use atp_xrpc::auth::SessionTokenAuthority;

use crate::service::ServiceKeys;
use crate::storage::Storage;

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

/// Everything the handlers need: storage, keys, the DID directory and the
/// session token authority.
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
}
