//! End-to-end tests: the AWS SDK for Rust against a real `runnel serve`.
//!
//! One test binary (one link of the heavy SDK); each test starts its own
//! server through runnel-testkit, so tests run in parallel without sharing
//! state. Needs `target/release/runnel` (or `RUNNEL_BIN`).

mod common;

mod api;
mod crash;
mod errors;
mod fanout;
mod h2c;
mod restart;
