//! atp-repo-mst (work in progress).

pub mod car;
pub mod diff;
pub mod error;
pub mod proof;

pub use error::Error;
