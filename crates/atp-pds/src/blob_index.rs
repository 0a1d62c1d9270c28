//! The blob metadata of an account, in its actor store: one `blob` row per
//! uploaded blob (CID, MIME type, size, temporary key while no record
//! references it, takedown), next to the `record_blob` references written
//! with each commit.
//!
//! A blob row with a `temp_key` is an upload whose bytes are still in the
//! blob store's temporary area; a row without one is permanent. These
//! functions block (SQLite): async callers run them through
//! [`run_blocking`](crate::db::run_blocking).
//!
//! ```
//! use std::collections::BTreeMap;
//! use atp_pds::actor_store::ActorStores;
//! use atp_pds::blob_index::{self, TrackedUpload};
//!
//! let data = tempfile::tempdir()?;
//! let stores = ActorStores::new(data.path().join("actors"))?;
//! let key = atp_pds::keys::generate_signing_key();
//! let store = stores.create("did:plc:ewvi7nxzyoun6zhxrhs64oiz", &key)?;
//!
//! let cid = atp_crypto::cid_for_raw(b"avatar bytes");
//! let tracked = blob_index::track_upload(&store, &cid, "image/png", 12, "tempkey")?;
//! assert_eq!(tracked, TrackedUpload::Temporary);
//! let row = blob_index::get_blob(&store, &cid)?.expect("tracked");
//! assert_eq!(row.temp_key.as_deref(), Some("tempkey"));
//!
//! // Not referenced by any record yet: neither listed nor missing.
//! assert!(blob_index::list_blobs(&store, None, None, 10)?.is_empty());
//! assert!(blob_index::list_missing_blobs(&store, None, 10)?.is_empty());
//! # Ok::<(), atp_pds::Error>(())
//! ```

use atp_crypto::Cid;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::actor_store::ActorStore;
use crate::error::Result;
use crate::time;

/// SQLite's default cap on bound parameters per statement, kept under.
const MAX_PARAMS: usize = 500;

/// One blob's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRow {
    /// The blob's CID (raw codec, sha2-256).
    pub cid: Cid,
    /// Its MIME type (sniffed, or as declared at upload).
    pub mime_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its key in the temporary area while no record references it.
    pub temp_key: Option<String>,
    /// When it was first uploaded.
    pub created_at: DateTime<Utc>,
    /// Moderation takedown reference, if taken down.
    pub takedown_ref: Option<String>,
}

/// What [`track_upload`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackedUpload {
    /// The upload is tracked under its temporary key.
    Temporary,
    /// The blob was already permanent: the new temporary copy is not
    /// needed.
    AlreadyPermanent,
    /// The blob was taken down: it may not be uploaded again.
    TakenDown,
}

type Row = (String, String, i64, Option<String>, String, Option<String>);

const COLUMNS: &str = "cid, mime_type, size, temp_key, created_at, takedown_ref";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Row::try_from(row)
}

fn from_row(row: Row) -> Result<BlobRow> {
    let (cid, mime_type, size, temp_key, created_at, takedown_ref) = row;
    Ok(BlobRow {
        cid: atp_crypto::parse_cid(&cid)?,
        mime_type,
        size: u64::try_from(size).unwrap_or(0),
        temp_key,
        created_at: time::parse(&created_at)?,
        takedown_ref,
    })
}

fn blob_in(tx: &Transaction<'_>, cid: &str) -> Result<Option<BlobRow>> {
    let sql = format!("SELECT {COLUMNS} FROM blob WHERE cid = ?1");
    tx.query_row(&sql, [cid], read_row)
        .optional()?
        .map(from_row)
        .transpose()
}

/// The metadata of blob `cid`, if the account has it.
pub fn get_blob(store: &ActorStore, cid: &Cid) -> Result<Option<BlobRow>> {
    let cid = cid.to_string();
    store.database().read(|tx| blob_in(tx, &cid))
}

/// Records an upload kept under `temp_key`, as the reference does: a new
/// blob is tracked as temporary; a blob still temporary gets the newer
/// key; a permanent blob stays as it is; a taken-down blob is refused.
pub fn track_upload(
    store: &ActorStore,
    cid: &Cid,
    mime_type: &str,
    size: u64,
    temp_key: &str,
) -> Result<TrackedUpload> {
    let cid = cid.to_string();
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    store.database().write(|tx| {
        if let Some(found) = blob_in(tx, &cid)? {
            if found.takedown_ref.is_some() {
                return Ok(TrackedUpload::TakenDown);
            }
            if found.temp_key.is_none() {
                return Ok(TrackedUpload::AlreadyPermanent);
            }
            tx.execute(
                "UPDATE blob SET temp_key = ?2 WHERE cid = ?1",
                params![cid, temp_key],
            )?;
            return Ok(TrackedUpload::Temporary);
        }
        tx.execute(
            "INSERT INTO blob (cid, mime_type, size, temp_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![cid, mime_type, size, temp_key, time::now_string()],
        )?;
        Ok(TrackedUpload::Temporary)
    })
}

/// The blob kept under the temporary key `temp_key`, if any.
pub fn blob_by_temp_key(store: &ActorStore, temp_key: &str) -> Result<Option<BlobRow>> {
    store.database().read(|tx| {
        let sql = format!("SELECT {COLUMNS} FROM blob WHERE temp_key = ?1");
        tx.query_row(&sql, [temp_key], read_row)
            .optional()?
            .map(from_row)
            .transpose()
    })
}

/// Whether any record references blob `cid`.
pub fn has_records_for_blob(store: &ActorStore, cid: &Cid) -> Result<bool> {
    let cid = cid.to_string();
    store.database().read(|tx| {
        Ok(tx
            .query_row(
                "SELECT 1 FROM record_blob WHERE blob_cid = ?1 LIMIT 1",
                [&cid],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    })
}

/// [`mark_permanent`] inside a write transaction of the store (so that
/// the change is stored together with a commit).
pub fn mark_permanent_in(tx: &rusqlite::Transaction<'_>, temp_key: &str) -> Result<()> {
    tx.execute(
        "UPDATE blob SET temp_key = NULL WHERE temp_key = ?1",
        [temp_key],
    )?;
    Ok(())
}

/// Marks the blob kept under `temp_key` permanent (its bytes were moved).
pub fn mark_permanent(store: &ActorStore, temp_key: &str) -> Result<()> {
    store.database().write(|tx| {
        tx.execute(
            "UPDATE blob SET temp_key = NULL WHERE temp_key = ?1",
            [temp_key],
        )?;
        Ok(())
    })
}

/// Adds references from the record `record_uri` to `cids` (existing ones
/// are kept).
pub fn associate(store: &ActorStore, record_uri: &str, cids: &[Cid]) -> Result<()> {
    if cids.is_empty() {
        return Ok(());
    }
    store.database().write(|tx| {
        let mut stmt =
            tx.prepare("INSERT OR IGNORE INTO record_blob (blob_cid, record_uri) VALUES (?1, ?2)")?;
        for cid in cids {
            stmt.execute(params![cid.to_string(), record_uri])?;
        }
        Ok(())
    })
}

/// The blobs the record `record_uri` references.
pub fn blobs_of_record(store: &ActorStore, record_uri: &str) -> Result<Vec<Cid>> {
    store.database().read(|tx| {
        let mut stmt =
            tx.prepare("SELECT blob_cid FROM record_blob WHERE record_uri = ?1 ORDER BY blob_cid")?;
        let rows = stmt
            .query_map([record_uri], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        rows.iter()
            .map(|cid| Ok(atp_crypto::parse_cid(cid)?))
            .collect()
    })
}

/// Removes and returns the permanent blobs no record references any more
/// (their bytes are for the caller to delete from the blob store).
pub fn take_dereferenced(store: &ActorStore) -> Result<Vec<Cid>> {
    store.database().write(|tx| {
        let cids: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT cid FROM blob WHERE temp_key IS NULL
                 AND NOT EXISTS (SELECT 1 FROM record_blob WHERE record_blob.blob_cid = blob.cid)
                 ORDER BY cid",
            )?;
            let rows = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            rows
        };
        for chunk in cids.chunks(MAX_PARAMS) {
            let marks = vec!["?"; chunk.len()].join(", ");
            tx.execute(
                &format!("DELETE FROM blob WHERE cid IN ({marks})"),
                rusqlite::params_from_iter(chunk),
            )?;
        }
        cids.iter()
            .map(|cid| Ok(atp_crypto::parse_cid(cid)?))
            .collect()
    })
}

/// Forgets the temporary upload `temp_key` (swept from the blob store
/// before any record referenced it); returns whether a row went.
pub fn forget_temp(store: &ActorStore, temp_key: &str) -> Result<bool> {
    store
        .database()
        .write(|tx| Ok(tx.execute("DELETE FROM blob WHERE temp_key = ?1", [temp_key])? > 0))
}

/// The CIDs of the blobs referenced by records, ascending, after `cursor`,
/// at most `limit`; with `since`, only those referenced by records written
/// after that rev (as `com.atproto.sync.listBlobs`).
pub fn list_blobs(
    store: &ActorStore,
    since: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<String>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.database().read(|tx| {
        let mut stmt = tx.prepare(
            "SELECT DISTINCT record_blob.blob_cid FROM record_blob
             LEFT JOIN record ON record.uri = record_blob.record_uri
             WHERE (?1 IS NULL OR record.repo_rev > ?1)
               AND (?2 IS NULL OR record_blob.blob_cid > ?2)
             ORDER BY record_blob.blob_cid LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![since, cursor, limit], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    })
}

/// Blobs referenced by records but never uploaded (after a repository
/// import): `(cid, one referencing record URI)`, ascending by CID, after
/// `cursor`, at most `limit` (as `com.atproto.repo.listMissingBlobs`).
pub fn list_missing_blobs(
    store: &ActorStore,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, String)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.database().read(|tx| {
        let mut stmt = tx.prepare(
            "SELECT blob_cid, MIN(record_uri) FROM record_blob
             WHERE NOT EXISTS (SELECT 1 FROM blob WHERE blob.cid = record_blob.blob_cid)
               AND (?1 IS NULL OR blob_cid > ?1)
             GROUP BY blob_cid ORDER BY blob_cid LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![cursor, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
        Ok(rows)
    })
}

/// Sets or clears the takedown of blob `cid`; returns whether it exists.
pub fn set_takedown(store: &ActorStore, cid: &Cid, takedown_ref: Option<&str>) -> Result<bool> {
    let cid = cid.to_string();
    store.database().write(|tx| {
        Ok(tx.execute(
            "UPDATE blob SET takedown_ref = ?2 WHERE cid = ?1",
            params![cid, takedown_ref],
        )? > 0)
    })
}

/// Number of blobs the account has (temporary ones included).
pub fn blob_count(store: &ActorStore) -> Result<u64> {
    store
        .database()
        .read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM blob", [], |row| row.get(0))?))
}

/// Number of distinct blobs referenced by records.
pub fn record_blob_count(store: &ActorStore) -> Result<u64> {
    store.database().read(|tx| {
        Ok(tx.query_row(
            "SELECT COUNT(DISTINCT blob_cid) FROM record_blob",
            [],
            |row| row.get(0),
        )?)
    })
}
