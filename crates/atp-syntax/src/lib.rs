//! atp-syntax (work in progress).
