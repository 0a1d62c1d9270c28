//! atp-did-plc (work in progress).
