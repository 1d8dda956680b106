//! AWS wire protocols as runnel's front door speaks them.
//!
//! - [`codec`]: request/response bodies in AWS JSON 1.1 and AWS CBOR 1.1.
//! - [`error`]: the error body (`__type`, `message`) in either encoding.
//! - [`sigv4`]: parsing the SigV4 `Authorization` header (who is calling, for
//!   which region). Verification is a later layer; the parsed header is the seam.
//! - [`target`]: `X-Amz-Target` → service + operation.

pub mod codec;
pub mod error;
pub mod eventstream;
pub mod sigv4;
pub mod target;

pub use codec::{decode, encode, Encoding};
pub use error::{AwsErrorBody, ProtocolError};
