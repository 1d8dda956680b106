use serde::Serialize;

use crate::Encoding;

/// Errors the protocol layer itself raises, before a service sees the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The body could not be decoded into the operation's input shape.
    #[error("{0}")]
    Serialization(String),
}

/// The body of an AWS JSON/CBOR protocol error.
#[derive(Debug, Clone, Serialize)]
pub struct AwsErrorBody<'a> {
    #[serde(rename = "__type")]
    pub error_type: &'a str,
    pub message: &'a str,
}

impl AwsErrorBody<'_> {
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        crate::encode(encoding, self)
    }
}
