//! Who is calling, and may they?
//!
//! - [`sigv4`]: verifies AWS Signature Version 4 (the `Authorization` header
//!   and presigned query strings) against the caller's secret.
//! - [`policy`]: evaluates IAM-style policy documents: explicit deny wins,
//!   then any allow, else deny.
//!
//! Errors carry AWS's error types (`UnrecognizedClientException`,
//! `InvalidSignatureException`, `MissingAuthenticationTokenException`,
//! `IncompleteSignatureException`, `AccessDeniedException`).

pub mod policy;
pub mod principals;
pub mod sigv4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    AccessDenied(String),
}

impl AuthError {
    /// AWS error type and HTTP status (the JSON protocols answer all of
    /// these with 400; only non-JSON requests get 403 and an XML body).
    pub fn aws(&self) -> (&'static str, u16) {
        match self {
            AuthError::MissingAuthenticationToken => ("MissingAuthenticationTokenException", 400),
            AuthError::IncompleteSignature(_) => ("IncompleteSignatureException", 400),
            AuthError::UnrecognizedClient => ("UnrecognizedClientException", 400),
            AuthError::InvalidSignature(_) => ("InvalidSignatureException", 400),
            AuthError::AccessDenied(_) => ("AccessDeniedException", 400),
        }
    }
}
