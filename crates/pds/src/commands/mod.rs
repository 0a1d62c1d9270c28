//! The operator commands: XRPC calls to a running server, as the
//! reference's `pdsadmin` makes them.
//!
//! * [`account`]: `pds account create|list|info|delete|takedown|reset-password`
//!   and `pds invite create`.
//! * [`repo`]: `pds repo export|import` and `pds post`.
//! * [`bulk_import`]: `pds accounts import FILE.csv`.

pub mod account;
pub mod bulk_import;
pub mod repo;
