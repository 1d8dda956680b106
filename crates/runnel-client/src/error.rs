//! Errors of one call, with enough detail to decide whether to retry.

/// The ways a call fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error document.
    #[error("{kind} (HTTP {status}): {message}")]
    Service {
        /// The AWS `__type` without any `namespace#` prefix,
        /// e.g. `ResourceNotFoundException`.
        kind: String,
        message: String,
        status: u16,
    },
    /// No response: connecting, sending, or the connection dropped.
    #[error("connection error: {0}")]
    Connection(String),
    /// The response did not arrive within the client's timeout.
    #[error("request timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// The response body exceeded the client's bound.
    #[error("response body exceeds {limit_bytes} bytes")]
    BodyTooLarge { limit_bytes: usize },
    /// A 2xx response whose body is not the expected shape.
    #[error("cannot decode {operation} response: {reason}")]
    Decode {
        operation: &'static str,
        reason: String,
    },
    /// The endpoint URL cannot be used.
    #[error("invalid endpoint url {url:?}: {reason}")]
    Endpoint { url: String, reason: String },
}

/// Error kinds that mean "slow down and try again".
pub const THROTTLING_KINDS: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
];

impl Error {
    /// Throttling, 5xx, timeouts and connection failures are worth retrying;
    /// anything else is the request's fault and fails the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Service { kind, status, .. } => *status >= 500 || is_throttling(kind),
            Error::Connection(_) | Error::Timeout { .. } => true,
            Error::BodyTooLarge { .. } | Error::Decode { .. } | Error::Endpoint { .. } => false,
        }
    }

    /// True for throughput/limit errors (a subset of retryable ones).
    pub fn is_throttling(&self) -> bool {
        matches!(self, Error::Service { kind, .. } if is_throttling(kind))
    }

    /// The AWS error kind, for service errors.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Service { kind, .. } => Some(kind),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Builds a service error from a non-2xx response.
    pub(crate) fn from_response(status: u16, error_type_header: Option<&str>, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(rename = "__type", default)]
            kind: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(rename = "Message", default)]
            message_upper: Option<String>,
        }
        let doc: Option<Doc> = serde_json::from_slice(body).ok();
        let (kind, message) = match doc {
            Some(d) => (d.kind, d.message.or(d.message_upper)),
            None => (None, None),
        };
        let kind = kind
            .or_else(|| error_type_header.map(str::to_owned))
            .map(|k| normalize_kind(&k))
            .unwrap_or_else(|| format!("Http{status}"));
        let message = message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        Error::Service {
            kind,
            message,
            status,
        }
    }
}

pub fn is_throttling(kind: &str) -> bool {
    THROTTLING_KINDS.contains(&kind)
}

/// `com.amazonaws.kinesis.v20131202#ResourceNotFoundException` and the
/// `x-amzn-ErrorType` form `ResourceNotFoundException:http://…` both become
/// `ResourceNotFoundException`.
pub fn normalize_kind(raw: &str) -> String {
    let after_hash = raw.rsplit('#').next().unwrap_or(raw);
    after_hash
        .split(':')
        .next()
        .unwrap_or(after_hash)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_namespace_prefix() {
        let e = Error::from_response(
            400,
            None,
            br#"{"__type":"com.amazonaws.kinesis.v20131202#ResourceNotFoundException","message":"gone"}"#,
        );
        assert_eq!(e.kind(), Some("ResourceNotFoundException"));
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "ResourceNotFoundException (HTTP 400): gone");
    }

    #[test]
    fn classifies_retryable() {
        let throttled = Error::from_response(
            400,
            None,
            br#"{"__type":"ProvisionedThroughputExceededException","Message":"slow"}"#,
        );
        assert!(throttled.is_retryable() && throttled.is_throttling());
        assert!(Error::from_response(503, None, b"").is_retryable());
        assert!(Error::Connection("reset".into()).is_retryable());
        let header_only = Error::from_response(400, Some("LimitExceededException:http://x"), b"");
        assert_eq!(header_only.kind(), Some("LimitExceededException"));
        assert!(header_only.is_retryable());
    }
}
