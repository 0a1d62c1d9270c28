//! An AT Protocol Personal Data Server: storage on embedded SQLite and the
//! XRPC methods ([`http`]) that the `pds` binary serves.
//!
//! * [`db`]: opening SQLite files (WAL, `synchronous=FULL`), versioned
//!   migrations, a writer plus pooled readers usable from async code.
//! * [`account`]: the service-wide account database, with
//!   [`refresh_token`], [`app_password`], [`invite`] and [`email_token`].
//! * [`password`]: scrypt password hashes in a self-describing format.
//! * [`actor_store`]: one SQLite file per account holding its repository
//!   blocks ([`block_store`]), root, record index, blob references and
//!   preferences, written in atomic commits.
//! * [`keys`]: each account's signing key in a 0600 file.
//! * [`service`]: the settings storage needs.
//! * [`storage`]: the whole, with account creation (directory registration
//!   included) and deletion.
//! * [`repo_writer`]: the write path: one writer per repository, records
//!   prepared and validated, commits signed and stored atomically, then
//!   announced.
//! * [`blob_store`] (disk or S3), [`blob_index`] and [`blob_refs`]: blob
//!   bytes, their metadata, and the blobs a record references.
//! * [`sequencer`]: the durable event log behind the firehose;
//!   [`crawlers`]: telling relays to crawl.
//! * [`mailer`]: email over SMTP; [`handle_resolver`]: DNS and HTTPS handle
//!   resolution with SSRF guards.
//! * [`http`]: the XRPC methods, one module per group.
//!
//! Build note for programs that depend on this crate: build the bundled
//! SQLite with `LIBSQLITE3_FLAGS=-USQLITE_ENABLE_MEMORY_MANAGEMENT` (an
//! `[env]` entry in `.cargo/config.toml`, as this workspace does), so
//! that each connection's page cache keeps its own limit (see [`db`]).
//!
//! ```
//! use std::collections::BTreeMap;
//! use atp_crypto::Ipld;
//! use atp_pds::actor_store::ActorStores;
//! use atp_pds::keys::generate_signing_key;
//!
//! let data = tempfile::tempdir()?;
//! let stores = ActorStores::new(data.path().join("actors"))?;
//! let key = generate_signing_key();
//! let store = stores.create("did:plc:ewvi7nxzyoun6zhxrhs64oiz", &key)?;
//!
//! let mut repo = store.open_repo()?;
//! let post = Ipld::Map(BTreeMap::from([(
//!     "$type".to_owned(),
//!     Ipld::String("app.bsky.feed.post".to_owned()),
//! )]));
//! repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post)?;
//! let commit = store.commit(&mut repo, &key, "3jzfcijpj2z2b", &BTreeMap::new())?;
//!
//! // Blocks, root and record index were stored in one transaction.
//! assert_eq!(store.root()?.map(|root| root.cid), Some(commit.cid));
//! assert!(store.get_record("app.bsky.feed.post", "3jzfcijpj2z2a")?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod account;
pub mod actor_store;
pub mod app_password;
pub mod blob_index;
pub mod blob_refs;
pub mod blob_store;
pub mod block_store;
pub mod crawlers;
pub mod db;
pub mod email_token;
pub mod error;
pub mod handle_policy;
pub mod handle_resolver;
pub mod http;
pub mod invite;
pub mod keys;
pub mod mailer;
pub mod password;
pub mod refresh_token;
pub mod repo_car;
pub mod repo_writer;
pub mod sequencer;
pub mod service;
pub mod storage;
pub mod time;

pub use error::{Error, Result};
pub use storage::Storage;
