/// Every way a Data Streams operation can fail. The front door maps each
/// variant to an AWS error type and status in one exhaustive `match`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// Constraint violations of the service model (length, range, pattern, enum, required).
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ExpiredIterator(String),
    #[error("{0}")]
    ExpiredNextToken(String),
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    #[error("{0}")]
    KmsDisabled(String),
    #[error("{0}")]
    KmsNotFound(String),
    #[error("{0}")]
    KmsAccessDenied(String),
    #[error("{0}")]
    KmsInvalidState(String),
    /// Storage or catalog failed; the request had no effect that was acknowledged.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

/// The message of an `InternalFailure` caused by a full disk: says what
/// happened and what helps. Writes resume by themselves once space is back.
pub const NO_SPACE_MESSAGE: &str = "Internal service failure: no space left on device. \
     Free disk space (delete streams or decrease their retention period) and retry.";

impl From<runnel_catalog::CatalogError> for StreamsError {
    fn from(e: runnel_catalog::CatalogError) -> Self {
        tracing::error!(error = %e, "catalog failure");
        if e.is_no_space() {
            return StreamsError::Internal(NO_SPACE_MESSAGE.into());
        }
        StreamsError::Internal("Internal service failure.".into())
    }
}

impl From<runnel_log::LogError> for StreamsError {
    fn from(e: runnel_log::LogError) -> Self {
        tracing::error!(error = %e, "log failure");
        if e.is_no_space() {
            return StreamsError::Internal(NO_SPACE_MESSAGE.into());
        }
        StreamsError::Internal("Internal service failure.".into())
    }
}

impl runnel_aws::AwsError for StreamsError {
    fn error_type(&self) -> &'static str {
        match self {
            StreamsError::ResourceNotFound(_) => "ResourceNotFoundException",
            StreamsError::ResourceInUse(_) => "ResourceInUseException",
            StreamsError::InvalidArgument(_) => "InvalidArgumentException",
            StreamsError::Validation(_) => "ValidationException",
            StreamsError::LimitExceeded(_) => "LimitExceededException",
            StreamsError::ExpiredIterator(_) => "ExpiredIteratorException",
            StreamsError::ExpiredNextToken(_) => "ExpiredNextTokenException",
            StreamsError::ProvisionedThroughputExceeded(_) => {
                "ProvisionedThroughputExceededException"
            }
            StreamsError::KmsDisabled(_) => "KMSDisabledException",
            StreamsError::KmsNotFound(_) => "KMSNotFoundException",
            StreamsError::KmsAccessDenied(_) => "KMSAccessDeniedException",
            StreamsError::KmsInvalidState(_) => "KMSInvalidStateException",
            StreamsError::Internal(_) => "InternalFailureException",
        }
    }

    fn status(&self) -> u16 {
        match self {
            StreamsError::Internal(_) => 500,
            StreamsError::ResourceNotFound(_)
            | StreamsError::ResourceInUse(_)
            | StreamsError::InvalidArgument(_)
            | StreamsError::Validation(_)
            | StreamsError::LimitExceeded(_)
            | StreamsError::ExpiredIterator(_)
            | StreamsError::ExpiredNextToken(_)
            | StreamsError::ProvisionedThroughputExceeded(_)
            | StreamsError::KmsDisabled(_)
            | StreamsError::KmsNotFound(_)
            | StreamsError::KmsAccessDenied(_)
            | StreamsError::KmsInvalidState(_) => 400,
        }
    }

    /// Throttling and internal failures; the SDKs retry both.
    fn retryable(&self) -> bool {
        matches!(
            self,
            StreamsError::ProvisionedThroughputExceeded(_) | StreamsError::Internal(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use runnel_aws::AwsError;

    use super::StreamsError;

    #[test]
    fn aws_error_types_and_statuses() {
        let e = StreamsError::ResourceNotFound("Stream s under account 1 not found.".into());
        assert_eq!(
            (e.error_type(), e.status(), e.retryable()),
            ("ResourceNotFoundException", 400, false)
        );
        assert_eq!(e.message(), "Stream s under account 1 not found.");
        let e = StreamsError::ProvisionedThroughputExceeded("Rate exceeded".into());
        assert_eq!(
            (e.error_type(), e.status(), e.retryable()),
            ("ProvisionedThroughputExceededException", 400, true)
        );
        let e = StreamsError::Internal("x".into());
        assert_eq!(
            (e.error_type(), e.status(), e.retryable()),
            ("InternalFailureException", 500, true)
        );
    }
}
