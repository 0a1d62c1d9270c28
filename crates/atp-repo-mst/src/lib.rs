//! AT Protocol repositories: the Merkle Search Tree (MST), block storage,
//! signed commits, CAR files, diffs and proofs, byte-exact with the
//! reference implementation.
//!
//! * [`mst`]: the tree mapping `<collection>/<rkey>` to record CIDs; nodes
//!   load lazily from a [`blockstore::BlockStore`], CIDs are computed only
//!   for changed nodes, and only new blocks are written.
//! * [`commit`]: version-3 signed commits.
//! * [`repo`]: a repository tying a store, its tree and its head commit.
//! * [`car`]: CAR v1 reading and writing.
//!
//! ```
//! use std::collections::BTreeMap;
//! use atp_crypto::{Algorithm, Ipld, SigningKey};
//! use atp_repo_mst::blockstore::MemoryBlockStore;
//! use atp_repo_mst::mst::Mst;
//! use atp_repo_mst::repo::Repo;
//!
//! let key = SigningKey::generate(Algorithm::K256);
//! let store = MemoryBlockStore::new();
//! let mut repo = Repo::create(&store, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")?;
//! let like = Ipld::Map(BTreeMap::from([(
//!     "$type".to_owned(),
//!     Ipld::String("app.bsky.feed.like".to_owned()),
//! )]));
//! repo.create_record("app.bsky.feed.like", "3jzfcijpj2z2a", &like)?;
//! let commit = repo.commit(&key, "3jzfcijpj2z2b")?;
//! commit.commit.verify_did_key(&key.did_key())?;
//!
//! // The commit's data is the root of the MST of the records.
//! let tree = Mst::load(&store, commit.commit.data);
//! assert_eq!(tree.len()?, 1);
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
