//! Where blob bytes live: a [`BlobStore`] keeps each account's temporary
//! uploads and permanent blobs.
//!
//! An upload is first stored under a random *temporary key*
//! ([`BlobStore::put_temp`]). When a record that references it is
//! committed, the blob is moved to its permanent place, named by its CID
//! ([`BlobStore::make_permanent`]). Temporary uploads that no record ever
//! referenced are removed after a while ([`BlobStore::stale_temp`],
//! [`BlobStore::sweep_temp`]).
//!
//! Two stores are provided:
//!
//! * [`DiskBlobStore`]: files under one directory, `<root>/<did>/<cid>`
//!   for permanent blobs and `<root>/tmp/<did>/<key>` for temporary ones,
//!   each written to a side file, flushed to disk and renamed into place.
//! * [`S3BlobStore`]: objects in an S3-compatible bucket,
//!   `blocks/<did>/<cid>` and `tmp/<did>/<key>` (the reference PDS's
//!   layout), configured like the reference's `PDS_BLOBSTORE_S3_*`
//!   settings ([`S3Config`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atp_pds::Error> {
//! use atp_pds::blob_store::{BlobStore, DiskBlobStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = DiskBlobStore::new(dir.path());
//! let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
//! let bytes = b"hello blob".to_vec();
//! let cid = atp_crypto::cid_for_raw(&bytes);
//!
//! let key = store.put_temp_bytes(did, bytes.clone().into()).await?;
//! assert!(store.has_temp(did, &key).await?);
//! store.make_permanent(did, &key, &cid).await?;
//! assert!(!store.has_temp(did, &key).await?);
//! assert_eq!(store.get_bytes(did, &cid).await?.as_deref(), Some(&bytes[..]));
//!
//! store.delete(did, &cid).await?;
//! assert!(store.get_bytes(did, &cid).await?.is_none());
//! # Ok(())
//! # }
//! ```

mod disk;
mod s3;
mod sniff;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use atp_crypto::Cid;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::{Error, Result};

pub use disk::DiskBlobStore;
pub use s3::{S3BlobStore, S3Config};
pub use sniff::{sniff_mime_type, SNIFF_BYTES};

/// A boxed future, as the store's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of blob bytes, read or written chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// How long an unreferenced temporary upload is kept (the reference PDS:
/// one hour).
pub const TEMP_BLOB_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// A temporary upload, as [`BlobStore::stale_temp`] lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempUpload {
    /// The account that uploaded it.
    pub did: String,
    /// Its temporary key.
    pub key: String,
}

/// Storage of blob bytes, per account.
///
/// Methods are asynchronous (a remote store does HTTP). "Not found" is an
/// answer (`None`, `false`), not an error; errors are I/O or remote
/// failures.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Stores `bytes` as a new temporary upload of `did` and returns its
    /// key. The stream is consumed to its end; an error from it aborts the
    /// upload (nothing is kept) and is returned.
    fn put_temp<'a>(&'a self, did: &'a str, bytes: ByteStream) -> BoxFuture<'a, Result<String>>;

    /// Moves the temporary upload `key` of `did` to its permanent place as
    /// `cid`. When the blob is already permanent (a concurrent move, or the
    /// same bytes uploaded twice) the temporary copy is just dropped.
    fn make_permanent<'a>(
        &'a self,
        did: &'a str,
        key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>>;

    /// Stores `bytes` directly as the permanent blob `cid` of `did`
    /// (repository imports).
    fn put_permanent<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<()>>;

    /// The permanent blob `cid` of `did` as a stream, `None` if absent.
    fn get_stream<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<Option<ByteStream>>>;

    /// Whether the temporary upload `key` of `did` exists.
    fn has_temp<'a>(&'a self, did: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Whether the permanent blob `cid` of `did` exists.
    fn has_stored<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>>;

    /// Deletes the permanent blob `cid` of `did` (no error if absent).
    fn delete<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<()>>;

    /// Deletes the temporary upload `key` of `did` (no error if absent).
    fn delete_temp<'a>(&'a self, did: &'a str, key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Moves the permanent blob `cid` of `did` out of reach (a moderation
    /// takedown): it is no longer served, but kept. `false` if absent.
    fn quarantine<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>>;

    /// Puts a quarantined blob back in place. `false` if it was not
    /// quarantined.
    fn unquarantine<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>>;

    /// Deletes every blob of `did`, temporary, permanent or quarantined
    /// (account deletion).
    fn delete_all<'a>(&'a self, did: &'a str) -> BoxFuture<'a, Result<()>>;

    /// The temporary uploads of every account last written before
    /// `cutoff` (side files of interrupted writes that old are removed on
    /// the way).
    fn stale_temp(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<Vec<TempUpload>>>;

    /// Deletes the temporary uploads last written before `cutoff` and
    /// returns them.
    fn sweep_temp(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<Vec<TempUpload>>> {
        Box::pin(async move {
            let stale = self.stale_temp(cutoff).await?;
            for temp in &stale {
                self.delete_temp(&temp.did, &temp.key).await?;
            }
            Ok(stale)
        })
    }

    /// Stores `bytes` as a new temporary upload (see
    /// [`BlobStore::put_temp`]).
    fn put_temp_bytes<'a>(&'a self, did: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<String>> {
        let stream: ByteStream = Box::pin(futures_util::stream::iter([Ok(bytes)]));
        self.put_temp(did, stream)
    }

    /// The whole permanent blob `cid` of `did`, `None` if absent.
    fn get_bytes<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(async move {
            let Some(mut stream) = self.get_stream(did, cid).await? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&chunk?);
            }
            Ok(Some(Bytes::from(out)))
        })
    }

    /// Deletes several permanent blobs of `did`; every deletion is tried
    /// and the first error, if any, is returned.
    fn delete_many<'a>(&'a self, did: &'a str, cids: &'a [Cid]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut first_error = None;
            for cid in cids {
                if let Err(err) = self.delete(did, cid).await {
                    tracing::error!(%did, %cid, error = %err, "could not delete blob");
                    first_error.get_or_insert(err);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

/// A new random temporary key: 32 lower-case base32 characters (160 bits).
pub(crate) fn new_temp_key() -> String {
    use rand_core::RngCore;
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut random = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut random);
    random
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte & 31)]))
        .collect()
}

/// Checks that `did` can name a directory or key prefix: a valid DID (no
/// `/`, no `..`).
pub(crate) fn check_did(did: &str) -> Result<()> {
    atp_syntax::Did::new(did)?;
    if did.contains('/') || did.contains("..") {
        return Err(Error::InvalidInput(format!(
            "unusable DID for blob storage: {did}"
        )));
    }
    Ok(())
}

/// Checks that `key` looks like a key made by [`new_temp_key`].
pub(crate) fn check_temp_key(key: &str) -> Result<()> {
    let well_formed = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    if !well_formed {
        return Err(Error::InvalidInput(format!(
            "malformed temporary blob key: {key:?}"
        )));
    }
    Ok(())
}

/// An I/O error for a remote store's failure.
pub(crate) fn remote_error(message: impl Into<String>) -> Error {
    Error::Io(io::Error::other(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_keys_are_distinct_and_well_formed() {
        let a = new_temp_key();
        let b = new_temp_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(check_temp_key(&a).is_ok());
        assert!(check_temp_key("../etc").is_err());
        assert!(check_temp_key("").is_err());
    }

    #[test]
    fn dids_that_could_escape_are_refused() {
        assert!(check_did("did:plc:ewvi7nxzyoun6zhxrhs64oiz").is_ok());
        assert!(check_did("did:web:a/../b").is_err());
        assert!(check_did("tmp").is_err());
    }
}
