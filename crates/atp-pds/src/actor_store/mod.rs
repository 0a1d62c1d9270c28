//! One SQLite file per account: repository blocks, the repository root,
//! the record index, blob references, record backlinks and preferences.
//!
//! Layout: `<data>/actors/<first 2 hex chars of sha256(did)>/<did>/`
//! holding `store.sqlite` (and its WAL files) and `key`, the account's
//! signing key. The hash prefix spreads accounts evenly over 256
//! directories whatever their DID method.
//!
//! Writes go through [`ActorStore::transact`]: one SQLite transaction in
//! which [`ActorTransaction::apply_commit`] stores a commit's blocks, moves
//! the root and updates the record index. A failure anywhere rolls all of
//! it back, and readers (snapshot transactions) see either the old commit
//! or the new one, never a mix.
//!
//! The file's schema and its migrations are in `schema`
//! ([`MIGRATIONS`]), the backlinks of records in `backlinks`
//! ([`record_backlinks`]), and the set of open stores in `open_stores`
//! ([`ActorStores`]).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use atp_crypto::{Cid, Ipld, SigningKey};
use atp_repo_mst::repo::{CommitData, Repo, WriteAction};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::block_store::{
    delete_blocks, get_block, insert_blocks, SqliteBlockStore, StagedBlockStore,
};
use crate::db::{Database, MemoryBudget};
use crate::error::{Error, Result};
use crate::time;

mod backlinks;
mod open_stores;
mod schema;

use backlinks::backlinked_rkeys;
pub use backlinks::{record_backlinks, Backlink};
pub use open_stores::{ActorStores, MAX_IDLE_OPEN_STORES};
pub use schema::MIGRATIONS;

/// The directory of `did`'s store under `actors_root`.
pub fn actor_dir(actors_root: &Path, did: &str) -> PathBuf {
    let digest = atp_crypto::sha256(did.as_bytes());
    actors_root.join(hex::encode(&digest[..1])).join(did)
}

/// The repository head as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoRoot {
    /// CID of the head commit.
    pub cid: Cid,
    /// Its rev.
    pub rev: String,
}

/// One entry of the record index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    /// The record's CID.
    pub cid: Cid,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// Rev of the commit that wrote it.
    pub repo_rev: String,
    /// When it was indexed.
    pub indexed_at: DateTime<Utc>,
    /// Moderation takedown reference, if taken down.
    pub takedown_ref: Option<String>,
}

/// An account's store.
#[derive(Debug)]
pub struct ActorStore {
    did: String,
    dir: PathBuf,
    db: Arc<Database>,
    recent: Mutex<RecentBlocks>,
}

/// Most blocks each generation of [`RecentBlocks`] holds.
const RECENT_BLOCKS: usize = 64;

/// Largest block kept by [`RecentBlocks`] (tree nodes are far smaller;
/// large records are not worth keeping).
const RECENT_BLOCK_BYTES: usize = 2048;

/// The repository blocks an account's writes used last (its tree's top
/// nodes and the nodes along the keys it writes, its head commit), so the
/// next commit need not read them from the file again. Blocks are named by
/// their content, so a kept block never goes stale. Two generations: a
/// block is looked up in both, and when the newer one is full the older
/// one is dropped.
#[derive(Default)]
struct RecentBlocks {
    newer: HashMap<Cid, Vec<u8>>,
    older: HashMap<Cid, Vec<u8>>,
}

impl std::fmt::Debug for RecentBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentBlocks")
            .field("blocks", &(self.newer.len() + self.older.len()))
            .finish()
    }
}

impl RecentBlocks {
    fn get(&mut self, cid: &Cid) -> Option<Vec<u8>> {
        if let Some(bytes) = self.newer.get(cid) {
            return Some(bytes.clone());
        }
        let bytes = self.older.remove(cid)?;
        self.insert(*cid, bytes.clone());
        Some(bytes)
    }

    fn insert(&mut self, cid: Cid, bytes: Vec<u8>) {
        if bytes.len() > RECENT_BLOCK_BYTES || self.newer.contains_key(&cid) {
            return;
        }
        if self.newer.len() >= RECENT_BLOCKS {
            self.older = std::mem::take(&mut self.newer);
        }
        self.older.remove(&cid);
        self.newer.insert(cid, bytes);
    }
}

fn split_path(path: &str) -> Result<(&str, &str)> {
    path.split_once('/')
        .ok_or_else(|| Error::Corrupt(format!("record path without '/': {path}")))
}

fn get_root(tx: &Transaction<'_>, did: &str) -> Result<Option<RepoRoot>> {
    let row: Option<(String, String)> = tx
        .prepare_cached("SELECT cid, rev FROM repo_root WHERE did = ?1")?
        .query_row([did], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    row.map(|(cid, rev)| {
        Ok(RepoRoot {
            cid: atp_crypto::parse_cid(&cid)?,
            rev,
        })
    })
    .transpose()
}

type RecordRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

/// The cursor condition and the order of one page of `listRecords` on
/// the key column `rkey_column`, the cursor being `?2`: keys after the
/// cursor in ascending order when `reverse`, before it in descending
/// order otherwise, and no bound without a cursor.
fn page_bounds(rkey_column: &str, cursor: Option<&str>, reverse: bool) -> (String, &'static str) {
    let (cmp, order) = if reverse { (">", "ASC") } else { ("<", "DESC") };
    let clause = match cursor {
        Some(_) => format!("AND {rkey_column} {cmp} ?2"),
        None => "AND ?2 IS NULL".to_owned(),
    };
    (clause, order)
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn record_from_columns(row: RecordRow) -> Result<RecordEntry> {
    let (uri, cid, collection, rkey, repo_rev, indexed_at, takedown_ref) = row;
    Ok(RecordEntry {
        uri,
        cid: atp_crypto::parse_cid(&cid)?,
        collection,
        rkey,
        repo_rev,
        indexed_at: time::parse(&indexed_at)?,
        takedown_ref,
    })
}

const RECORD_COLUMNS: &str = "uri, cid, collection, rkey, repo_rev, indexed_at, takedown_ref";

/// The index entry of `row` and its record's block, read in `tx` (a
/// missing block is an error).
fn record_with_block(tx: &Transaction<'_>, row: RecordRow) -> Result<(RecordEntry, Vec<u8>)> {
    let entry = record_from_columns(row)?;
    let bytes = get_block(tx, &entry.cid)?
        .ok_or_else(|| Error::Corrupt(format!("record block missing for {}", entry.uri)))?;
    Ok((entry, bytes))
}

/// Writes to one account's store inside one SQLite transaction (see
/// [`ActorStore::transact`]).
pub struct ActorTransaction<'a> {
    did: &'a str,
    tx: &'a Transaction<'a>,
}

impl ActorTransaction<'_> {
    /// The raw transaction, for statements this type does not offer.
    pub fn sql(&self) -> &Transaction<'_> {
        self.tx
    }

    /// The account's DID.
    pub fn did(&self) -> &str {
        self.did
    }

    /// The current root as seen inside the transaction.
    pub fn root(&self) -> Result<Option<RepoRoot>> {
        get_root(self.tx, self.did)
    }

    /// The CID of the record at `collection`/`rkey` in the record index
    /// (taken-down records included), as seen inside the transaction.
    pub fn record_cid(&self, collection: &str, rkey: &str) -> Result<Option<Cid>> {
        let uri = format!("at://{}/{collection}/{rkey}", self.did);
        let cid: Option<String> = self
            .tx
            .prepare_cached("SELECT cid FROM record WHERE uri = ?1")?
            .query_row([&uri], |row| row.get(0))
            .optional()?;
        cid.map(|cid| Ok(atp_crypto::parse_cid(&cid)?)).transpose()
    }

    /// The record keys of `collection` whose backlink at `path` points to
    /// `link_to`, as seen inside the transaction (see
    /// [`ActorStore::backlink_conflicts`]).
    pub fn backlink_conflicts(
        &self,
        collection: &str,
        path: &str,
        link_to: &str,
    ) -> Result<Vec<String>> {
        backlinked_rkeys(self.tx, collection, path, link_to)
    }

    /// Stores blocks (chunked multi-row inserts), tagged with `rev`.
    pub fn put_blocks(&self, blocks: &atp_repo_mst::car::BlockMap, rev: &str) -> Result<()> {
        insert_blocks(self.tx, blocks, Some(rev))
    }

    /// Deletes the blocks `cids` (those not stored are skipped) and returns
    /// how many were deleted.
    pub fn delete_blocks(&self, cids: &[Cid]) -> Result<usize> {
        delete_blocks(self.tx, cids)
    }

    /// The CIDs among `cids` that no record of the index points to any
    /// more: the record blocks to delete. Asked once a commit's record
    /// index changes are applied, with the previous CIDs of its updated
    /// and deleted records, as the reference deletes a replaced record's
    /// block unless another record has the same contents.
    pub fn unused_record_blocks(&self, cids: &[Cid]) -> Result<Vec<Cid>> {
        let mut used = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM record WHERE cid = ?1)")?;
        let mut unused = Vec::with_capacity(cids.len());
        for cid in cids {
            let still_used: bool = used.query_row([cid.to_string()], |row| row.get(0))?;
            if !still_used {
                unused.push(*cid);
            }
        }
        Ok(unused)
    }

    /// Moves the repository root.
    pub fn set_root(&self, cid: &Cid, rev: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO repo_root (did, cid, rev, indexed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (did) DO UPDATE SET cid = ?2, rev = ?3, indexed_at = ?4",
            )?
            .execute(params![self.did, cid.to_string(), rev, time::now_string()])?;
        Ok(())
    }

    /// Adds or replaces the index entry of the record at `path`
    /// (`<collection>/<rkey>`).
    pub fn index_record(&self, path: &str, cid: &Cid, rev: &str) -> Result<()> {
        let (collection, rkey) = split_path(path)?;
        let uri = format!("at://{}/{path}", self.did);
        self.tx
            .prepare_cached(
                "INSERT INTO record (uri, cid, collection, rkey, repo_rev, indexed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (uri) DO UPDATE SET cid = ?2, repo_rev = ?5, indexed_at = ?6",
            )?
            .execute(params![
                uri,
                cid.to_string(),
                collection,
                rkey,
                rev,
                time::now_string()
            ])?;
        Ok(())
    }

    /// Removes the index entry and blob references of the record at `path`.
    pub fn remove_record(&self, path: &str) -> Result<()> {
        let uri = format!("at://{}/{path}", self.did);
        self.tx
            .prepare_cached("DELETE FROM record WHERE uri = ?1")?
            .execute([&uri])?;
        self.tx
            .prepare_cached("DELETE FROM record_blob WHERE record_uri = ?1")?
            .execute([&uri])?;
        self.tx
            .prepare_cached("DELETE FROM backlink WHERE uri = ?1")?
            .execute([&uri])?;
        Ok(())
    }

    /// Replaces the backlinks of the record at `path` with those of
    /// `record`.
    pub fn set_record_backlinks(&self, path: &str, record: &Ipld) -> Result<()> {
        let uri = format!("at://{}/{path}", self.did);
        self.tx
            .prepare_cached("DELETE FROM backlink WHERE uri = ?1")?
            .execute([&uri])?;
        for link in record_backlinks(record) {
            self.tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO backlink (uri, path, link_to) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![uri, link.path, link.link_to])?;
        }
        Ok(())
    }

    /// Indexes the backlinks of the record whose block is `bytes`, if it
    /// can be one that has any.
    fn index_backlinks(&self, path: &str, bytes: Option<&[u8]>) -> Result<()> {
        let Some(bytes) = bytes else {
            return self.set_record_backlinks(path, &Ipld::Null);
        };
        match atp_crypto::dagcbor::decode_ipld(bytes) {
            Ok(record) => self.set_record_backlinks(path, &record),
            Err(_) => self.set_record_backlinks(path, &Ipld::Null),
        }
    }

    /// Replaces the blobs the record at `path` references.
    pub fn set_record_blobs(&self, path: &str, blobs: &[Cid]) -> Result<()> {
        let uri = format!("at://{}/{path}", self.did);
        self.tx
            .prepare_cached("DELETE FROM record_blob WHERE record_uri = ?1")?
            .execute([&uri])?;
        for blob in blobs {
            self.tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO record_blob (blob_cid, record_uri) VALUES (?1, ?2)",
                )?
                .execute(params![blob.to_string(), uri])?;
        }
        Ok(())
    }

    /// Replaces the whole repository with an imported one: every block,
    /// index entry and blob reference goes, then `blocks` are stored,
    /// `records` (path, CID) indexed with their blob references from
    /// `blobs` (by path), and the root set to `commit_cid` at `rev`.
    pub fn replace_repo(
        &self,
        commit_cid: &Cid,
        rev: &str,
        blocks: &atp_repo_mst::car::BlockMap,
        records: &[(String, Cid)],
        blobs: &BTreeMap<String, Vec<Cid>>,
    ) -> Result<()> {
        self.tx.execute("DELETE FROM record_blob", [])?;
        self.tx.execute("DELETE FROM backlink", [])?;
        self.tx.execute("DELETE FROM record", [])?;
        self.tx.execute("DELETE FROM repo_block", [])?;
        self.put_blocks(blocks, rev)?;
        for (path, cid) in records {
            self.index_record(path, cid, rev)?;
            if let Some(refs) = blobs.get(path) {
                self.set_record_blobs(path, refs)?;
            }
            self.index_backlinks(path, blocks.get(cid).map(Vec::as_slice))?;
        }
        self.set_root(commit_cid, rev)
    }

    /// Stores a commit: its blocks, the new root and the record index
    /// changes of its ops, with the blob references in `blobs` (by record
    /// path). The stored root must be the commit's parent
    /// ([`Error::ConcurrentWrite`] otherwise), so two writers that
    /// prepared commits on the same head cannot both land.
    pub fn apply_commit(
        &self,
        commit: &CommitData,
        blobs: &BTreeMap<String, Vec<Cid>>,
    ) -> Result<()> {
        self.apply_commit_without_blocks(commit, blobs, &|_| None)?;
        self.put_blocks(&commit.blocks, &commit.rev)
    }

    /// [`ActorTransaction::apply_commit`] less the commit's blocks, which
    /// the caller stores: a group of commits stores only the blocks its
    /// last commit still reaches. A record block neither in the commit nor
    /// stored is asked of `unstored` (a block an earlier commit of the
    /// group wrote).
    pub fn apply_commit_without_blocks(
        &self,
        commit: &CommitData,
        blobs: &BTreeMap<String, Vec<Cid>>,
        unstored: &dyn Fn(&Cid) -> Option<Vec<u8>>,
    ) -> Result<()> {
        let current = self.root()?.map(|root| root.cid);
        if current != commit.prev {
            return Err(Error::ConcurrentWrite {
                expected: commit.prev.map(|cid| cid.to_string()),
                found: current.map(|cid| cid.to_string()),
            });
        }
        if commit.commit.did != self.did {
            return Err(Error::InvalidInput(format!(
                "commit for {} applied to the store of {}",
                commit.commit.did, self.did
            )));
        }
        for op in &commit.ops {
            match (op.action, &op.cid) {
                (WriteAction::Delete, _) | (_, None) => self.remove_record(&op.path)?,
                (_, Some(cid)) => {
                    self.index_record(&op.path, cid, &commit.rev)?;
                    let refs = blobs.get(&op.path).map(Vec::as_slice).unwrap_or(&[]);
                    self.set_record_blobs(&op.path, refs)?;
                    let stored;
                    let bytes = match commit.blocks.get(cid) {
                        Some(bytes) => Some(bytes.as_slice()),
                        None => {
                            stored = match unstored(cid) {
                                Some(bytes) => Some(bytes),
                                None => crate::block_store::get_block(self.tx, cid)?,
                            };
                            stored.as_deref()
                        }
                    };
                    self.index_backlinks(&op.path, bytes)?;
                }
            }
        }
        self.set_root(&commit.cid, &commit.rev)
    }
}

impl ActorStore {
    /// Creates the store of `did` in `dir` (which must not hold one) with
    /// its signing key, written atomically with mode 0600.
    pub fn create(dir: &Path, did: &str, key: &SigningKey) -> Result<Self> {
        atp_syntax::Did::new(did)?;
        if dir.join("store.sqlite").exists() || dir.join("key").exists() {
            return Err(Error::AccountExists(did.to_owned()));
        }
        fs::create_dir_all(dir)?;
        crate::keys::write_key_file(&dir.join("key"), key)?;
        let store = Self::open(dir, did)?;
        if let Some(parent) = dir.parent() {
            crate::keys::sync_dir(parent)?;
        }
        Ok(store)
    }

    /// Opens the existing store of `did` in `dir`.
    pub fn open(dir: &Path, did: &str) -> Result<Self> {
        if !dir.join("key").exists() {
            return Err(Error::AccountNotFound(did.to_owned()));
        }
        let db = Database::open_with(
            &dir.join("store.sqlite"),
            MIGRATIONS,
            MemoryBudget::PER_ACCOUNT,
        )?;
        Ok(ActorStore {
            did: did.to_owned(),
            dir: dir.to_owned(),
            db: Arc::new(db),
            recent: Mutex::new(RecentBlocks::default()),
        })
    }

    /// The account's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's database.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// The block `cid` if it is among the blocks the last writes used
    /// (see [`ActorStore::remember_blocks`]); `None` says nothing about
    /// the store.
    pub fn recent_block(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.recent.lock().ok()?.get(cid)
    }

    /// Keeps `blocks` (stored blocks of the repository that a write read
    /// or wrote) in memory for the next writes, up to a small bound.
    pub fn remember_blocks<'a>(&self, blocks: impl IntoIterator<Item = (&'a Cid, &'a Vec<u8>)>) {
        if let Ok(mut recent) = self.recent.lock() {
            for (cid, bytes) in blocks {
                recent.insert(*cid, bytes.clone());
            }
        }
    }

    /// The account's repository signing key.
    pub fn signing_key(&self) -> Result<SigningKey> {
        crate::keys::read_key_file(&self.dir.join("key"))
    }

    /// A block store on this file (each call its own transaction).
    pub fn block_store(&self) -> SqliteBlockStore {
        SqliteBlockStore::new(Arc::clone(&self.db))
    }

    /// Runs `f` in one write transaction: everything it does is stored
    /// together, or (if it returns an error) nothing is.
    pub fn transact<T>(&self, f: impl FnOnce(&ActorTransaction<'_>) -> Result<T>) -> Result<T> {
        self.db
            .write(|tx| f(&ActorTransaction { did: &self.did, tx }))
    }

    /// The repository root, if a commit was stored.
    pub fn root(&self) -> Result<Option<RepoRoot>> {
        self.db.read(|tx| get_root(tx, &self.did))
    }

    /// The repository at its stored head (or a new, empty one), on a
    /// staging store: writes stay in memory until [`ActorStore::commit`].
    pub fn open_repo(&self) -> Result<Repo<StagedBlockStore>> {
        let staged = StagedBlockStore::new(self.block_store());
        Ok(match self.root()? {
            Some(root) => Repo::load(staged, root.cid)?,
            None => Repo::create(staged, &self.did)?,
        })
    }

    /// Signs the pending writes of `repo` at `rev` and stores the commit
    /// atomically ([`ActorTransaction::apply_commit`]). On error nothing is
    /// stored and `repo` must be discarded.
    pub fn commit(
        &self,
        repo: &mut Repo<StagedBlockStore>,
        key: &SigningKey,
        rev: &str,
        blobs: &BTreeMap<String, Vec<Cid>>,
    ) -> Result<CommitData> {
        let commit = repo.commit(key, rev)?;
        self.transact(|tx| tx.apply_commit(&commit, blobs))?;
        Ok(commit)
    }

    /// The index entry and block of one record, read in one snapshot.
    pub fn get_record(
        &self,
        collection: &str,
        rkey: &str,
    ) -> Result<Option<(RecordEntry, Vec<u8>)>> {
        let uri = format!("at://{}/{collection}/{rkey}", self.did);
        self.db.read(|tx| {
            let sql = format!("SELECT {RECORD_COLUMNS} FROM record WHERE uri = ?1");
            tx.prepare_cached(&sql)?
                .query_row([&uri], record_from_row)
                .optional()?
                .map(|row| record_with_block(tx, row))
                .transpose()
        })
    }

    /// One page of a collection's records by record key: after `cursor`
    /// (before it when `reverse`), at most `limit`, descending unless
    /// `reverse` (as `listRecords`).
    pub fn list_records(
        &self,
        collection: &str,
        limit: usize,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Result<Vec<RecordEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.read(|tx| {
            let (cursor_clause, order) = page_bounds("rkey", cursor, reverse);
            let sql = format!(
                "SELECT {RECORD_COLUMNS} FROM record WHERE collection = ?1 {cursor_clause}
                 ORDER BY rkey {order} LIMIT ?3"
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt
                .query_map(params![collection, cursor, limit], record_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter().map(record_from_columns).collect()
        })
    }

    /// Like [`ActorStore::list_records`] with each record's block, leaving
    /// out taken-down records (as `listRecords` shows them). The page and
    /// its blocks are read in one snapshot.
    pub fn list_record_values(
        &self,
        collection: &str,
        limit: usize,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Result<Vec<(RecordEntry, Vec<u8>)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.read(|tx| {
            let (cursor_clause, order) = page_bounds("record.rkey", cursor, reverse);
            let sql = format!(
                "SELECT {RECORD_COLUMNS} FROM record
                 WHERE collection = ?1 AND takedown_ref IS NULL {cursor_clause}
                 ORDER BY rkey {order} LIMIT ?3"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![collection, cursor, limit], record_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|row| record_with_block(tx, row))
                .collect()
        })
    }

    /// The record keys of `collection` whose backlink at `path` points to
    /// `link_to` (an earlier follow, block, like or repost of the same
    /// subject).
    pub fn backlink_conflicts(
        &self,
        collection: &str,
        path: &str,
        link_to: &str,
    ) -> Result<Vec<String>> {
        self.db
            .read(|tx| backlinked_rkeys(tx, collection, path, link_to))
    }

    /// The collections that hold at least one record, sorted.
    pub fn collections(&self) -> Result<Vec<String>> {
        self.db.read(|tx| {
            let mut stmt =
                tx.prepare("SELECT DISTINCT collection FROM record ORDER BY collection")?;
            let rows = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
    }

    /// Number of indexed records.
    pub fn record_count(&self) -> Result<u64> {
        self.db
            .read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM record", [], |row| row.get(0))?))
    }

    /// The records that reference blob `cid` (their AT-URIs).
    pub fn records_for_blob(&self, cid: &Cid) -> Result<Vec<String>> {
        self.db.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT record_uri FROM record_blob WHERE blob_cid = ?1 ORDER BY record_uri",
            )?;
            let rows = stmt
                .query_map([cid.to_string()], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
    }

    /// The account's preferences, in stored order.
    pub fn preferences(&self) -> Result<Vec<serde_json::Value>> {
        self.db.read(|tx| {
            let mut stmt = tx.prepare("SELECT value_json FROM account_pref ORDER BY id")?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.iter()
                .map(|text| {
                    serde_json::from_str(text)
                        .map_err(|err| Error::Corrupt(format!("stored preference: {err}")))
                })
                .collect()
        })
    }

    /// Replaces all preferences; each must be an object with a string
    /// `$type`.
    pub fn put_preferences(&self, prefs: &[serde_json::Value]) -> Result<()> {
        let mut rows = Vec::with_capacity(prefs.len());
        for pref in prefs {
            let name = pref
                .get("$type")
                .and_then(|t| t.as_str())
                .ok_or_else(|| Error::InvalidInput("preference without a $type".to_owned()))?;
            rows.push((name.to_owned(), pref.to_string()));
        }
        self.db.write(|tx| {
            tx.execute("DELETE FROM account_pref", [])?;
            for (name, json) in &rows {
                tx.execute(
                    "INSERT INTO account_pref (name, value_json) VALUES (?1, ?2)",
                    params![name, json],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn block(n: usize) -> (Cid, Vec<u8>) {
        let bytes = n.to_be_bytes().to_vec();
        (atp_crypto::cid_for_dag_cbor(&bytes), bytes)
    }

    #[test]
    fn recent_blocks_keep_the_last_used_within_two_generations() {
        let mut recent = RecentBlocks::default();
        for n in 0..RECENT_BLOCKS * 3 {
            let (cid, bytes) = block(n);
            recent.insert(cid, bytes);
            // The first block stays, being used all along.
            let (first, first_bytes) = block(0);
            assert_eq!(recent.get(&first), Some(first_bytes));
        }
        assert!(recent.newer.len() + recent.older.len() <= 2 * RECENT_BLOCKS);
        let (last, last_bytes) = block(RECENT_BLOCKS * 3 - 1);
        assert_eq!(recent.get(&last), Some(last_bytes));
        // An early block not used since is gone.
        assert_eq!(recent.get(&block(1).0), None);
        // Large blocks are not kept.
        let big = vec![7u8; RECENT_BLOCK_BYTES + 1];
        let big_cid = atp_crypto::cid_for_dag_cbor(&big);
        recent.insert(big_cid, big);
        assert_eq!(recent.get(&big_cid), None);
    }
}
