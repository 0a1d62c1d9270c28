//! atp-repo-mst (work in progress).
