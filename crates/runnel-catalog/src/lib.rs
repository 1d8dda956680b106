//! runnel-catalog
