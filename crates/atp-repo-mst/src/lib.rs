//! atp-repo-mst (work in progress).

pub mod car;
pub mod error;

pub use error::Error;
