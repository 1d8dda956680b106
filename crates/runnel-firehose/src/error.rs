//! Every way a Firehose operation fails, with the model's error shapes
//! (`firehose/2015-08-04`) as the AWS types.

use runnel_aws::AwsError;

/// Every way a Firehose operation can fail. [`AwsError`] maps each variant
/// to its AWS error type and HTTP status in one exhaustive `match`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirehoseError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ConcurrentModification(String),
    /// The service cannot take the request now (AWS: a 503 the SDKs retry).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// KMS refused the stream's key; `code` is the KMS error (e.g. `KMS.DisabledException`).
    #[error("{message}")]
    InvalidKmsResource {
        code: Option<String>,
        message: String,
    },
    /// The source (e.g. a Kinesis stream) cannot be read; `code` says why.
    #[error("{message}")]
    InvalidSource {
        code: Option<String>,
        message: String,
    },
    /// Constraint violations of the service model (length, range, pattern, enum, required).
    #[error("{0}")]
    Validation(String),
    /// The body is not JSON, or a member has the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// The target names no Firehose operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// Storage or catalog failed; the request had no acknowledged effect.
    #[error("{0}")]
    Internal(String),
}

impl AwsError for FirehoseError {
    fn error_type(&self) -> &'static str {
        match self {
            FirehoseError::ResourceNotFound(_) => "ResourceNotFoundException",
            FirehoseError::ResourceInUse(_) => "ResourceInUseException",
            FirehoseError::InvalidArgument(_) => "InvalidArgumentException",
            FirehoseError::LimitExceeded(_) => "LimitExceededException",
            FirehoseError::ConcurrentModification(_) => "ConcurrentModificationException",
            FirehoseError::ServiceUnavailable(_) => "ServiceUnavailableException",
            FirehoseError::InvalidKmsResource { .. } => "InvalidKMSResourceException",
            FirehoseError::InvalidSource { .. } => "InvalidSourceException",
            FirehoseError::Validation(_) => "ValidationException",
            FirehoseError::Serialization(_) => "SerializationException",
            FirehoseError::UnknownOperation(_) => "UnknownOperationException",
            FirehoseError::Internal(_) => "InternalFailure",
        }
    }

    fn status(&self) -> u16 {
        match self {
            FirehoseError::ServiceUnavailable(_) => 503,
            FirehoseError::Internal(_) => 500,
            FirehoseError::ResourceNotFound(_)
            | FirehoseError::ResourceInUse(_)
            | FirehoseError::InvalidArgument(_)
            | FirehoseError::LimitExceeded(_)
            | FirehoseError::ConcurrentModification(_)
            | FirehoseError::InvalidKmsResource { .. }
            | FirehoseError::InvalidSource { .. }
            | FirehoseError::Validation(_)
            | FirehoseError::Serialization(_)
            | FirehoseError::UnknownOperation(_) => 400,
        }
    }

    fn retryable(&self) -> bool {
        matches!(
            self,
            FirehoseError::ServiceUnavailable(_) | FirehoseError::Internal(_)
        )
    }

    fn extra_fields(&self) -> Vec<(&'static str, String)> {
        match self {
            FirehoseError::InvalidKmsResource { code, .. }
            | FirehoseError::InvalidSource { code, .. } => {
                code.iter().map(|c| ("code", c.clone())).collect()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OPERATIONS;

    #[test]
    fn every_model_error_has_a_variant() {
        let ours = [
            FirehoseError::ResourceNotFound(String::new()),
            FirehoseError::ResourceInUse(String::new()),
            FirehoseError::InvalidArgument(String::new()),
            FirehoseError::LimitExceeded(String::new()),
            FirehoseError::ConcurrentModification(String::new()),
            FirehoseError::ServiceUnavailable(String::new()),
            FirehoseError::InvalidKmsResource {
                code: None,
                message: String::new(),
            },
            FirehoseError::InvalidSource {
                code: None,
                message: String::new(),
            },
        ]
        .map(|e| e.error_type());
        for op in OPERATIONS {
            for e in op.errors {
                assert!(ours.contains(e), "{} can fail with {e}", op.name);
            }
        }
    }

    #[test]
    fn statuses_as_aws() {
        let e = FirehoseError::ServiceUnavailable("Slow down.".into());
        assert_eq!((e.status(), e.retryable()), (503, true));
        assert_eq!(e.error_type(), "ServiceUnavailableException");
        let e = FirehoseError::ResourceNotFound(
            "Firehose s under account 123456789012 not found.".into(),
        );
        assert_eq!((e.status(), e.retryable()), (400, false));
        assert_eq!(
            e.message(),
            "Firehose s under account 123456789012 not found."
        );
        let e = FirehoseError::InvalidKmsResource {
            code: Some("KMS.DisabledException".into()),
            message: "key disabled".into(),
        };
        assert_eq!(e.error_type(), "InvalidKMSResourceException");
        assert_eq!(
            e.extra_fields(),
            vec![("code", "KMS.DisabledException".into())]
        );
    }
}
