//! runnel-server
