//! Where blob bytes live: a [`BlobStore`] keeps temporary uploads and
//! permanent blobs of each account.

use std::fmt;
use std::path::PathBuf;

/// Storage of blob bytes.
pub trait BlobStore: Send + Sync + fmt::Debug {}

/// Blobs as files under one directory.
#[derive(Clone, Debug)]
pub struct DiskBlobStore {
    root: PathBuf,
}

impl DiskBlobStore {
    /// A store under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskBlobStore { root: root.into() }
    }

    /// The directory holding the blobs.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }
}

impl BlobStore for DiskBlobStore {}
