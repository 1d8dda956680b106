//! runnel-streams
