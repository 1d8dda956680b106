//! Bounded request-body reads: a body over the limit is refused as soon as
//! its declared length or its received bytes cross the limit, never buffered whole.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("failed to read request body: {0}")]
    Read(String),
}

pub async fn read_limited(
    body: Incoming,
    declared_len: Option<u64>,
    max: usize,
) -> Result<Bytes, BodyError> {
    if declared_len.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    #[allow(clippy::disallowed_methods)] // this is the bounded read
    let collected = Limited::new(body, max).collect().await;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}
