//! Runnable examples: `cargo run -p atp-examples --example <name>`.
//!
//! Services the examples serve live here as library modules, so that tests
//! (in `examples/tests/`) exercise exactly what the examples run.

pub mod embedded_pds_tour;
pub mod hello_service;
