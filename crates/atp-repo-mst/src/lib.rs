//! AT Protocol repositories: the Merkle Search Tree (MST), block storage,
//! signed commits, CAR files, diffs and proofs, byte-exact with the
//! reference implementation.
//!
//! # Modules
//!
//! * [`mst`]: the tree mapping `<collection>/<rkey>` to record CIDs; nodes
//!   load lazily from a [`blockstore::BlockStore`], CIDs are computed only
//!   for changed nodes, and only new blocks are written. Also the MST
//!   rules shared by every other module: key validation
//!   ([`mst::is_valid_key`]), key layers ([`mst::key_height`]) and the one
//!   node codec ([`mst::decode_node`], [`mst::encode_node`]).
//! * [`blockstore`]: where blocks live, by CID: the [`blockstore::BlockStore`]
//!   trait and an in-memory store.
//! * [`commit`]: signed commits ([`commit::Commit`]), written as version 3;
//!   version-2 commits of old repositories can be read.
//! * [`repo`]: a repository tying a store, its tree and its head commit:
//!   record writes, reads and listing, and signing commits.
//! * [`car`]: CAR v1 reading (with limits against hostile input) and
//!   writing.
//! * [`import`]: importing a repository CAR with full verification
//!   (commit, signature, the whole MST, records), and exporting whole
//!   repositories, diffs, proofs and `#commit` event blocks as CARs.
//! * [`diff`]: the nodes and record operations between two trees.
//! * [`proof`]: inclusion and exclusion proofs, and checking a commit by
//!   inverting its operations on a partial tree
//!   ([`proof::partial_tree::PartialTree`]).
//! * [`error`]: the crate's [`Error`].
//!
//! # Example
//!
//! Write a record and commit, export the repository as a CAR, import it
//! back with full verification, then diff and prove.
//!
//! ```
//! use std::collections::BTreeMap;
//! use atp_crypto::{Algorithm, Ipld, SigningKey};
//! use atp_repo_mst::blockstore::MemoryBlockStore;
//! use atp_repo_mst::diff::mst_diff;
//! use atp_repo_mst::import::{export_repo_car, import_car, ImportOptions};
//! use atp_repo_mst::mst::{is_valid_key, Mst};
//! use atp_repo_mst::proof::key_proof;
//! use atp_repo_mst::repo::Repo;
//!
//! const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
//! let key = SigningKey::generate(Algorithm::K256);
//! let store = MemoryBlockStore::new();
//! let mut repo = Repo::create(&store, DID)?;
//! let like = Ipld::Map(BTreeMap::from([(
//!     "$type".to_owned(),
//!     Ipld::String("app.bsky.feed.like".to_owned()),
//! )]));
//! repo.create_record("app.bsky.feed.like", "3jzfcijpj2z2a", &like)?;
//! let first = repo.commit(&key, "3jzfcijpj2z2b")?;
//! first.commit.verify_did_key(&key.did_key())?;
//!
//! // The commit's data is the root of the MST of the records.
//! let tree = Mst::load(&store, first.commit.data);
//! assert_eq!(tree.len()?, 1);
//! assert!(is_valid_key("app.bsky.feed.like/3jzfcijpj2z2a"));
//!
//! // Export as a CAR and import it back, checking the DID and signature.
//! let car = export_repo_car(&store, first.cid, Vec::new())?;
//! let options = ImportOptions {
//!     did: Some(DID.to_owned()),
//!     signing_key: Some(key.public_key()),
//!     ..ImportOptions::default()
//! };
//! let imported = import_car(car.as_slice(), &options)?;
//! assert_eq!(imported.commit, first.commit);
//! assert_eq!(imported.records.len(), 1);
//!
//! // A second commit; the diff between the trees is one created record.
//! repo.create_record("app.bsky.feed.like", "3jzfcijpj2z2c", &like)?;
//! let second = repo.commit(&key, "3jzfcijpj2z2d")?;
//! let diff = mst_diff(&store, Some(first.commit.data), second.commit.data)?;
//! assert_eq!(diff.record_ops.len(), 1);
//! assert_eq!(diff.record_ops[0].path, "app.bsky.feed.like/3jzfcijpj2z2c");
//!
//! // An inclusion proof: the nodes from the root to the record.
//! let (nodes, found) = key_proof(&store, second.commit.data, "app.bsky.feed.like/3jzfcijpj2z2a")?;
//! assert!(nodes.contains(&second.commit.data));
//! assert_eq!(found, repo.get_record_cid("app.bsky.feed.like", "3jzfcijpj2z2a")?);
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

pub mod blockstore;
pub mod car;
pub mod commit;
pub mod diff;
pub mod error;
pub mod import;
pub mod mst;
pub mod proof;
pub mod repo;

pub use error::Error;
