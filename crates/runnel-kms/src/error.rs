/// Every way a KMS operation fails. [`KmsError::aws`] is the one mapping to
/// the KMS `__type` and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    Serialization(String),
    /// Catalog or crypto failure; logged where it happens.
    #[error("{0}")]
    Internal(String),
}

impl KmsError {
    /// The KMS error type and HTTP status.
    pub fn aws(&self) -> (&'static str, u16) {
        match self {
            KmsError::NotFound(_) => ("NotFoundException", 400),
            KmsError::Disabled(_) => ("DisabledException", 400),
            KmsError::InvalidCiphertext(_) => ("InvalidCiphertextException", 400),
            KmsError::IncorrectKey(_) => ("IncorrectKeyException", 400),
            KmsError::Validation(_) => ("ValidationException", 400),
            KmsError::AlreadyExists(_) => ("AlreadyExistsException", 400),
            KmsError::UnsupportedOperation(_) => ("UnsupportedOperationException", 400),
            KmsError::Serialization(_) => ("SerializationException", 400),
            KmsError::Internal(_) => ("KMSInternalException", 500),
        }
    }
}

impl From<runnel_catalog::CatalogError> for KmsError {
    fn from(e: runnel_catalog::CatalogError) -> Self {
        tracing::error!(error = %e, "kms catalog failure");
        KmsError::Internal("Internal service failure.".into())
    }
}

impl runnel_aws::AwsError for KmsError {
    fn error_type(&self) -> &'static str {
        self.aws().0
    }

    fn status(&self) -> u16 {
        self.aws().1
    }

    fn retryable(&self) -> bool {
        matches!(self, KmsError::Internal(_))
    }
}
