//! An AT Protocol Personal Data Server built on the workspace crates.
