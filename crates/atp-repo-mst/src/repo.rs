//! A repository: a block store, its MST and the latest signed commit.
//!
//! Record writes (create, update, delete) change the tree in memory and
//! keep the new record blocks aside; [`Repo::commit`] signs a new commit
//! and writes exactly the new blocks (MST nodes, records, the commit) to
//! the store, returning them with the record operations, as a sync event
//! needs them.
//!
//! ```
//! use std::collections::BTreeMap;
//! use atp_crypto::{Algorithm, Ipld, SigningKey};
//! use atp_repo_mst::blockstore::MemoryBlockStore;
//! use atp_repo_mst::repo::Repo;
//!
//! let key = SigningKey::generate(Algorithm::K256);
//! let store = MemoryBlockStore::new();
//! let mut repo = Repo::create(&store, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")?;
//! let post = Ipld::Map(BTreeMap::from([
//!     ("$type".to_owned(), Ipld::String("app.bsky.feed.post".to_owned())),
//!     ("text".to_owned(), Ipld::String("hello".to_owned())),
//! ]));
//! let cid = repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post)?;
//! let first = repo.commit(&key, "3jzfcijpj2z2b")?;
//! assert_eq!(first.ops.len(), 1);
//! first.commit.verify(&key.public_key())?;
//!
//! // Reopen from the head commit; records are read from the store.
//! let reopened = Repo::load(&store, first.cid)?;
//! let (found, record) = reopened.get_record("app.bsky.feed.post", "3jzfcijpj2z2a")?.unwrap();
//! assert_eq!((found, record), (cid, post));
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::{cid_for_dag_cbor, dagcbor, Cid, Ipld, PublicKey, SigningKey};
use atp_syntax::{Nsid, RecordKey};

use crate::blockstore::BlockStore;
use crate::car::BlockMap;
use crate::commit::{ensure_rev_after, Commit, UnsignedCommit};
use crate::mst::{record_key, Mst};
use crate::Error;

/// What a write did to a record path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    /// A record appeared.
    Create,
    /// A record was replaced.
    Update,
    /// A record was removed.
    Delete,
}

/// The net change of one record path in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWriteOp {
    /// Create, update or delete.
    pub action: WriteAction,
    /// The MST key, `<collection>/<rkey>`.
    pub path: String,
    /// The new record CID (`None` for a delete).
    pub cid: Option<Cid>,
    /// The record CID before the commit (`None` for a create).
    pub prev: Option<Cid>,
}

impl From<&RecordWriteOp> for crate::diff::RecordOp {
    /// The op as a change of one key, for the proof and diff functions.
    fn from(op: &RecordWriteOp) -> Self {
        crate::diff::RecordOp {
            path: op.path.clone(),
            old: op.prev,
            new: op.cid,
        }
    }
}

/// A commit just written by [`Repo::commit`].
#[derive(Debug, Clone)]
pub struct CommitData {
    /// CID of the signed commit block: the new head.
    pub cid: Cid,
    /// The signed commit.
    pub commit: Commit,
    /// The commit's rev.
    pub rev: String,
    /// The previous commit's rev (`None` for the first commit).
    pub since: Option<String>,
    /// The previous commit's CID.
    pub prev: Option<Cid>,
    /// The previous commit's MST root (`None` for the first commit).
    pub prev_data: Option<Cid>,
    /// Every block new in this commit: MST nodes, records and the commit.
    pub blocks: BlockMap,
    /// The net record changes since the previous commit, by path.
    pub ops: Vec<RecordWriteOp>,
    /// The blocks of the previous state this commit no longer reaches:
    /// the previous commit block and the MST nodes the commit replaced or
    /// removed (as the reference implementation's `removedCids`, without
    /// record blocks: a replaced or deleted record's CID, the `prev` of
    /// its op, may still be the value of another record, which only the
    /// store can tell).
    pub removed: BTreeSet<Cid>,
}

/// A repository over the block store `S`.
#[derive(Debug)]
pub struct Repo<S> {
    did: String,
    mst: Mst<S>,
    head: Option<(Cid, Commit)>,
    /// Record blocks written since the last commit.
    pending_records: BlockMap,
    /// For each path written since the last commit, its value before.
    touched: BTreeMap<String, Option<Cid>>,
}

fn path_for(collection: &str, rkey: &str) -> Result<String, Error> {
    Nsid::new(collection)?;
    RecordKey::new(rkey)?;
    record_key(collection, rkey)
}

impl<S: BlockStore> Repo<S> {
    /// A new, empty repository for `did` (no commit until [`Repo::commit`]).
    pub fn create(store: S, did: &str) -> Result<Self, Error> {
        atp_syntax::Did::new(did)?;
        Ok(Repo {
            did: did.to_owned(),
            mst: Mst::new(store),
            head: None,
            pending_records: BlockMap::new(),
            touched: BTreeMap::new(),
        })
    }

    /// The repository whose head commit is `commit_cid` in `store`. The
    /// tree is loaded lazily; the signature is not checked (see
    /// [`Repo::verify_head`]).
    pub fn load(store: S, commit_cid: Cid) -> Result<Self, Error> {
        let commit = Commit::from_block(&store.get_required(&commit_cid)?)?;
        Ok(Repo {
            did: commit.did.clone(),
            mst: Mst::load(store, commit.data),
            head: Some((commit_cid, commit)),
            pending_records: BlockMap::new(),
            touched: BTreeMap::new(),
        })
    }

    /// The repository's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The head commit's CID and contents, if there is a commit.
    pub fn head(&self) -> Option<(&Cid, &Commit)> {
        self.head.as_ref().map(|(cid, commit)| (cid, commit))
    }

    /// The MST (read access; writes go through the record methods).
    pub fn mst(&self) -> &Mst<S> {
        &self.mst
    }

    /// The block store.
    pub fn store(&self) -> &S {
        self.mst.store()
    }

    /// Checks the head commit's signature against `key`.
    pub fn verify_head(&self, key: &PublicKey) -> Result<(), Error> {
        match &self.head {
            Some((_, commit)) => commit.verify(key),
            None => Err(Error::InvalidCommit(
                "the repository has no commit".to_owned(),
            )),
        }
    }

    fn write(
        &mut self,
        path: String,
        record: Option<&Ipld>,
    ) -> Result<(Option<Cid>, Option<Cid>), Error> {
        let new = match record {
            Some(record) => {
                let bytes = dagcbor::encode_ipld(record)?;
                let cid = cid_for_dag_cbor(&bytes);
                self.pending_records.insert(cid, bytes);
                Some(cid)
            }
            None => None,
        };
        let before = match new {
            Some(cid) => self.mst.insert(&path, cid)?,
            None => self.mst.remove(&path)?,
        };
        self.touched.entry(path).or_insert(before);
        Ok((new, before))
    }

    /// Adds a record; fails with [`Error::RecordExists`] if the path holds
    /// one. Returns the record's CID.
    pub fn create_record(
        &mut self,
        collection: &str,
        rkey: &str,
        record: &Ipld,
    ) -> Result<Cid, Error> {
        let path = path_for(collection, rkey)?;
        if self.mst.get_loading(&path)?.is_some() {
            return Err(Error::RecordExists(path));
        }
        let (cid, _) = self.write(path, Some(record))?;
        cid.ok_or_else(|| Error::InvalidCommit("record write lost its CID".to_owned()))
    }

    /// Replaces a record; fails with [`Error::RecordNotFound`] if the path
    /// holds none. Returns the new and the previous CID.
    pub fn update_record(
        &mut self,
        collection: &str,
        rkey: &str,
        record: &Ipld,
    ) -> Result<(Cid, Cid), Error> {
        let path = path_for(collection, rkey)?;
        if self.mst.get_loading(&path)?.is_none() {
            return Err(Error::RecordNotFound(path));
        }
        match self.write(path.clone(), Some(record))? {
            (Some(cid), Some(prev)) => Ok((cid, prev)),
            _ => Err(Error::RecordNotFound(path)),
        }
    }

    /// Creates or replaces a record. Returns the new CID and the previous
    /// one, if any.
    pub fn put_record(
        &mut self,
        collection: &str,
        rkey: &str,
        record: &Ipld,
    ) -> Result<(Cid, Option<Cid>), Error> {
        let path = path_for(collection, rkey)?;
        match self.write(path.clone(), Some(record))? {
            (Some(cid), prev) => Ok((cid, prev)),
            (None, _) => Err(Error::RecordNotFound(path)),
        }
    }

    /// Deletes a record; fails with [`Error::RecordNotFound`] if absent.
    /// Returns the deleted record's CID.
    pub fn delete_record(&mut self, collection: &str, rkey: &str) -> Result<Cid, Error> {
        let path = path_for(collection, rkey)?;
        if self.mst.get_loading(&path)?.is_none() {
            return Err(Error::RecordNotFound(path));
        }
        match self.write(path.clone(), None)? {
            (_, Some(prev)) => Ok(prev),
            (_, None) => Err(Error::RecordNotFound(path)),
        }
    }

    /// The CID of a record, if present.
    pub fn get_record_cid(&self, collection: &str, rkey: &str) -> Result<Option<Cid>, Error> {
        self.mst.get(&record_key(collection, rkey)?)
    }

    /// The CID of a record, if present, like [`Repo::get_record_cid`], but
    /// keeping the tree's nodes it reads in memory: for a check right
    /// before a write of the same record.
    pub fn record_cid_loading(
        &mut self,
        collection: &str,
        rkey: &str,
    ) -> Result<Option<Cid>, Error> {
        self.mst.get_loading(&record_key(collection, rkey)?)
    }

    /// The CIDs of the tree's nodes on the covering proofs of `paths` (see
    /// [`Mst::covering_proof_nodes`]). Called right after
    /// [`Repo::commit`] with the paths of its ops, these are the existing
    /// nodes the commit's `#commit` event carries besides its new blocks,
    /// read from the tree in memory instead of from blocks.
    pub fn covering_proof_nodes<'k>(
        &mut self,
        paths: impl IntoIterator<Item = &'k str>,
    ) -> Result<BTreeSet<Cid>, Error> {
        self.mst.covering_proof_nodes(paths)
    }

    /// A record's CID and contents, if present (uncommitted writes
    /// included).
    pub fn get_record(&self, collection: &str, rkey: &str) -> Result<Option<(Cid, Ipld)>, Error> {
        let Some(cid) = self.get_record_cid(collection, rkey)? else {
            return Ok(None);
        };
        let bytes = match self.pending_records.get(&cid) {
            Some(bytes) => bytes.clone(),
            None => self.store().get_required(&cid)?,
        };
        Ok(Some((cid, dagcbor::decode_ipld(&bytes)?)))
    }

    /// One page of a collection: `(rkey, cid)` after the record key
    /// `cursor` (before it when `reverse`), at most `limit` entries.
    pub fn list_records(
        &self,
        collection: &str,
        cursor: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(String, Cid)>, Error> {
        self.mst.list_collection(collection, cursor, limit, reverse)
    }

    /// Whether there are writes not committed yet.
    pub fn has_pending_writes(&self) -> bool {
        !self.touched.is_empty()
    }

    /// The encoded size of the records written since the last commit
    /// (which the next commit's blocks will hold, besides its MST nodes
    /// and the commit itself).
    pub fn pending_record_bytes(&self) -> usize {
        self.pending_records.values().map(Vec::len).sum()
    }

    /// Signs a commit of the current tree with `key` at `rev` (a TID
    /// greater than the previous commit's rev) and writes the new blocks:
    /// MST nodes and records first, the commit last.
    pub fn commit(&mut self, key: &SigningKey, rev: &str) -> Result<CommitData, Error> {
        let (since, prev, prev_data) = match &self.head {
            Some((cid, commit)) => {
                ensure_rev_after(rev, &commit.rev)?;
                (Some(commit.rev.clone()), Some(*cid), Some(commit.data))
            }
            None => (None, None, None),
        };
        let data = self.mst.root()?;
        let commit = UnsignedCommit::new(&self.did, data, rev)?.sign(key)?;
        let (commit_cid, commit_bytes) = commit.to_block()?;

        let mut ops = Vec::new();
        let mut records = BlockMap::new();
        for (path, before) in &self.touched {
            let now = self.mst.get(path)?;
            let action = match (before, now) {
                (None, Some(_)) => WriteAction::Create,
                (Some(a), Some(b)) if *a != b => WriteAction::Update,
                (Some(_), None) => WriteAction::Delete,
                _ => continue,
            };
            if let Some(cid) = now {
                if let Some(bytes) = self.pending_records.get(&cid) {
                    records.insert(cid, bytes.clone());
                }
            }
            ops.push(RecordWriteOp {
                action,
                path: path.clone(),
                cid: now,
                prev: *before,
            });
        }

        let (_, mut blocks) = self.mst.flush()?;
        let mut removed = self.mst.take_replaced();
        if let Some(prev) = prev {
            removed.insert(prev);
        }
        // A block this commit writes is reachable whatever it replaced.
        removed.retain(|cid| !blocks.contains_key(cid) && *cid != commit_cid);
        self.store().put_many(&records)?;
        self.store().put(&commit_cid, &commit_bytes)?;
        blocks.append(&mut records);
        blocks.insert(commit_cid, commit_bytes);

        self.pending_records.clear();
        self.touched.clear();
        self.head = Some((commit_cid, commit.clone()));
        Ok(CommitData {
            cid: commit_cid,
            commit,
            rev: rev.to_owned(),
            since,
            prev,
            prev_data,
            blocks,
            ops,
            removed,
        })
    }
}
