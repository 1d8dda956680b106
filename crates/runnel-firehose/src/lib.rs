//! Amazon Data Firehose (`firehose/2015-08-04`).
//!
//! [`model`] is generated from the vendored botocore model by
//! `runnel-codegen` (docs/codegen.md): every operation's input and output
//! shapes, the model's enums, and `runnel_aws::Validate` impls for the
//! input side. [`FirehoseError`] is the service's one error enum.
//!
//! [`FirehoseService`] serves the API and owns the delivery streams: their
//! definitions live in the catalog (`firehose/*` keyspaces), Direct PUT
//! records in a hidden internal stream of the log (runnel-streams'
//! `internal` module), and each delivery stream has one delivery task under
//! the server's supervisor ([`delivery`]), which writes buffered objects
//! exactly once. docs/firehose.md says what is supported.

mod control;
pub mod delivery;
mod describe;
mod error;
#[rustfmt::skip]
pub mod model;
mod put;
mod record;
mod service;
#[cfg(test)]
mod tests;

pub use error::FirehoseError;
pub use service::{FirehoseConfig, FirehoseService};
