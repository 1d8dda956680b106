//! runnel-testkit
