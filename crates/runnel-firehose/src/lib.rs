//! Amazon Data Firehose (`firehose/2015-08-04`).
//!
//! [`model`] is generated from the vendored botocore model by
//! `runnel-codegen` (docs/codegen.md): every operation's input and output
//! shapes, the model's enums, and `runnel_aws::Validate` impls for the
//! input side. [`FirehoseError`] is the service's one error enum.

mod error;
#[rustfmt::skip]
pub mod model;

pub use error::FirehoseError;
