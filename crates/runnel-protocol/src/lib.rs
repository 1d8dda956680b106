//! runnel-protocol
