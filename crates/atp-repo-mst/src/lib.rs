//! atp-repo-mst (work in progress).

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
