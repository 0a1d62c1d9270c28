//! Blobs as files under one directory.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use atp_crypto::Cid;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    check_did, check_temp_key, new_temp_key, BlobStore, BoxFuture, ByteStream, TempUpload,
};
use crate::error::Result;

/// Name of the directory of temporary uploads under the root (a DID always
/// starts with `did:`, so it cannot collide with an account's directory).
const TEMP_DIR: &str = "tmp";

/// Name of the directory of quarantined (taken-down) blobs under the root.
const QUARANTINE_DIR: &str = "quarantine";

/// `errno` of a rename across file systems (Linux, macOS and the BSDs).
const EXDEV: i32 = 18;

/// Size of the chunks a blob is read in.
const READ_CHUNK: usize = 64 * 1024;

/// Blobs as files: `<root>/<did>/<cid>` (permanent),
/// `<root>/tmp/<did>/<key>` (temporary) and `<root>/quarantine/<did>/<cid>`
/// (taken down); the temporary area can live elsewhere
/// ([`DiskBlobStore::with_temp_location`]). Every file is written next to
/// its final name, flushed to disk, then renamed into place (and the
/// directory flushed), so a crash never leaves a partial blob under a real
/// name.
#[derive(Clone, Debug)]
pub struct DiskBlobStore {
    root: PathBuf,
    temp_root: PathBuf,
}

impl DiskBlobStore {
    /// A store under `root` (directories are created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let temp_root = root.join(TEMP_DIR);
        DiskBlobStore { root, temp_root }
    }

    /// Keeps temporary uploads under `temp_root` (`<temp_root>/<did>/<key>`)
    /// rather than `<root>/tmp`, as the reference's
    /// `PDS_BLOBSTORE_DISK_TMP_LOCATION`. On another file system, making
    /// a blob permanent copies it (flushed) instead of renaming it.
    pub fn with_temp_location(mut self, temp_root: impl Into<PathBuf>) -> Self {
        self.temp_root = temp_root.into();
        self
    }

    /// The directory holding the blobs.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn stored_dir(&self, did: &str) -> Result<PathBuf> {
        check_did(did)?;
        Ok(self.root.join(did))
    }

    fn stored_path(&self, did: &str, cid: &Cid) -> Result<PathBuf> {
        Ok(self.stored_dir(did)?.join(cid.to_string()))
    }

    fn temp_dir(&self, did: &str) -> Result<PathBuf> {
        check_did(did)?;
        Ok(self.temp_root.join(did))
    }

    fn quarantine_path(&self, did: &str, cid: &Cid) -> Result<PathBuf> {
        check_did(did)?;
        Ok(self
            .root
            .join(QUARANTINE_DIR)
            .join(did)
            .join(cid.to_string()))
    }

    fn temp_path(&self, did: &str, key: &str) -> Result<PathBuf> {
        check_temp_key(key)?;
        Ok(self.temp_dir(did)?.join(key))
    }
}

/// A side file's name for `name` in the same directory.
fn partial_name(name: &str) -> String {
    format!(".{name}.{}.partial", new_temp_key())
}

/// Flushes a directory's entries (a rename or removal in it) to disk.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).await?.sync_all().await
}

/// Writes the chunks of `bytes` to `target` through a side file: written,
/// flushed, renamed, directory flushed. On any error the side file is
/// removed and nothing appears under `target`.
async fn write_atomically(target: &Path, mut bytes: ByteStream) -> Result<()> {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(io::Error::other("blob path without a directory").into());
    };
    fs::create_dir_all(dir).await?;
    let side = dir.join(partial_name(&name.to_string_lossy()));
    let written = async {
        let mut file = fs::File::create(&side).await?;
        while let Some(chunk) = bytes.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        fs::rename(&side, target).await?;
        sync_dir(dir).await
    }
    .await;
    if let Err(err) = written {
        let _ = fs::remove_file(&side).await;
        return Err(err.into());
    }
    Ok(())
}

async fn exists(path: &Path) -> Result<bool> {
    match fs::metadata(path).await {
        Ok(meta) => Ok(meta.is_file()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err.into()),
    }
}

async fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Moves the file `from` to `to` (same file system), creating `to`'s
/// directory and flushing both directories; `false` if `from` is absent.
async fn move_file(from: &Path, to: &Path) -> Result<bool> {
    let (Some(from_dir), Some(to_dir)) = (from.parent(), to.parent()) else {
        return Err(io::Error::other("blob path without a directory").into());
    };
    if !exists(from).await? {
        return Ok(false);
    }
    fs::create_dir_all(to_dir).await?;
    match fs::rename(from, to).await {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err.into()),
    }
    sync_dir(to_dir).await?;
    sync_dir(from_dir).await?;
    Ok(true)
}

/// A file read as a stream of chunks.
fn file_stream(file: fs::File) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        Some(file),
        |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; READ_CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
                Err(err) => Some((Err(err), None)),
            }
        },
    ))
}

/// The temporary uploads under `temp_root` last written before `cutoff`;
/// stale side files are removed (blocking).
fn stale_temp_blocking(temp_root: &Path, cutoff: SystemTime) -> io::Result<Vec<TempUpload>> {
    let mut stale = Vec::new();
    let dids = match std::fs::read_dir(temp_root) {
        Ok(dids) => dids,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(stale),
        Err(err) => return Err(err),
    };
    for did_dir in dids {
        let did_dir = did_dir?;
        let did = did_dir.file_name().to_string_lossy().into_owned();
        if !did_dir.file_type()?.is_dir() || check_did(&did).is_err() {
            continue;
        }
        for entry in std::fs::read_dir(did_dir.path())? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if !meta.is_file() || meta.modified()? >= cutoff {
                continue;
            }
            let key = entry.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') && key.ends_with(".partial") {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            } else if check_temp_key(&key).is_ok() {
                stale.push(TempUpload {
                    did: did.clone(),
                    key,
                });
            }
        }
    }
    Ok(stale)
}

impl BlobStore for DiskBlobStore {
    fn put_temp<'a>(&'a self, did: &'a str, bytes: ByteStream) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let key = new_temp_key();
            write_atomically(&self.temp_path(did, &key)?, bytes).await?;
            Ok(key)
        })
    }

    fn make_permanent<'a>(
        &'a self,
        did: &'a str,
        key: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let temp = self.temp_path(did, key)?;
            let stored_dir = self.stored_dir(did)?;
            let stored = stored_dir.join(cid.to_string());
            if exists(&stored).await? {
                remove_if_exists(&temp).await?;
                return Ok(());
            }
            fs::create_dir_all(&stored_dir).await?;
            // One atomic rename on the same file system, then both
            // directories flushed.
            match fs::rename(&temp, &stored).await {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(EXDEV) => {
                    // Another file system: copy through a side file, then
                    // drop the temporary upload.
                    let file = fs::File::open(&temp).await?;
                    write_atomically(&stored, file_stream(file)).await?;
                    fs::remove_file(&temp).await?;
                }
                Err(err) => return Err(err.into()),
            }
            sync_dir(&stored_dir).await?;
            if let Some(temp_dir) = temp.parent() {
                sync_dir(temp_dir).await?;
            }
            Ok(())
        })
    }

    fn put_permanent<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let stream: ByteStream = Box::pin(futures_util::stream::iter([Ok(bytes)]));
            write_atomically(&self.stored_path(did, cid)?, stream).await
        })
    }

    fn get_stream<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, Result<Option<ByteStream>>> {
        Box::pin(async move {
            match fs::File::open(self.stored_path(did, cid)?).await {
                Ok(file) => Ok(Some(file_stream(file))),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err.into()),
            }
        })
    }

    fn has_temp<'a>(&'a self, did: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { exists(&self.temp_path(did, key)?).await })
    }

    fn has_stored<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { exists(&self.stored_path(did, cid)?).await })
    }

    fn delete<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { remove_if_exists(&self.stored_path(did, cid)?).await })
    }

    fn delete_temp<'a>(&'a self, did: &'a str, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { remove_if_exists(&self.temp_path(did, key)?).await })
    }

    fn quarantine<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            move_file(
                &self.stored_path(did, cid)?,
                &self.quarantine_path(did, cid)?,
            )
            .await
        })
    }

    fn unquarantine<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            move_file(
                &self.quarantine_path(did, cid)?,
                &self.stored_path(did, cid)?,
            )
            .await
        })
    }

    fn delete_all<'a>(&'a self, did: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            remove_dir_if_exists(&self.stored_dir(did)?).await?;
            remove_dir_if_exists(&self.temp_dir(did)?).await?;
            remove_dir_if_exists(&self.root.join(QUARANTINE_DIR).join(did)).await
        })
    }

    fn stale_temp(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<Vec<TempUpload>>> {
        let temp_root = self.temp_root.clone();
        Box::pin(async move {
            let stale =
                tokio::task::spawn_blocking(move || stale_temp_blocking(&temp_root, cutoff))
                    .await
                    .map_err(|err| crate::Error::Internal(format!("temp listing task: {err}")))??;
            Ok(stale)
        })
    }
}
