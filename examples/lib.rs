//! Runnable examples: `cargo run -p atp-examples --example <name>`.
