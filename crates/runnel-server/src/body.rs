//! Bounded request-body reads: a body over the limit is refused as soon as
//! its declared length or its received bytes cross the limit, never buffered
//! whole, and a body must arrive whole within the body deadline.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("failed to read request body: {0}")]
    Read(String),
    #[error("the request body did not arrive within {0} ms")]
    TimedOut(u64),
}

/// [`read_limited_by`] with the default body deadline.
pub async fn read_limited(
    body: Incoming,
    declared_len: Option<u64>,
    max: usize,
) -> Result<Bytes, BodyError> {
    read_limited_by(body, declared_len, max, BODY_TIMEOUT_DEFAULT).await
}

/// The body deadline where no configuration reaches (`body_timeout_ms`).
pub const BODY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

pub async fn read_limited_by(
    body: Incoming,
    declared_len: Option<u64>,
    max: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    if declared_len.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    #[allow(clippy::disallowed_methods)] // this is the bounded read
    let collect = Limited::new(body, max).collect();
    let Ok(collected) = tokio::time::timeout(deadline, collect).await else {
        return Err(BodyError::TimedOut(deadline.as_millis() as u64));
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}
