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
