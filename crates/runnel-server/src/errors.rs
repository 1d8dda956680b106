//! The one place a service error becomes an AWS error type and HTTP status.
//! Exhaustive on purpose: a new variant must be mapped here to compile.

use http::StatusCode;
use runnel_streams::StreamsError;

pub fn streams_error(e: &StreamsError) -> (&'static str, StatusCode) {
    match e {
        StreamsError::ResourceNotFound(_) => ("ResourceNotFoundException", StatusCode::BAD_REQUEST),
        StreamsError::ResourceInUse(_) => ("ResourceInUseException", StatusCode::BAD_REQUEST),
        StreamsError::InvalidArgument(_) => ("InvalidArgumentException", StatusCode::BAD_REQUEST),
        StreamsError::Validation(_) => ("ValidationException", StatusCode::BAD_REQUEST),
        StreamsError::LimitExceeded(_) => ("LimitExceededException", StatusCode::BAD_REQUEST),
        StreamsError::ExpiredIterator(_) => ("ExpiredIteratorException", StatusCode::BAD_REQUEST),
        StreamsError::ExpiredNextToken(_) => ("ExpiredNextTokenException", StatusCode::BAD_REQUEST),
        StreamsError::ProvisionedThroughputExceeded(_) => (
            "ProvisionedThroughputExceededException",
            StatusCode::BAD_REQUEST,
        ),
        StreamsError::KmsDisabled(_) => ("KMSDisabledException", StatusCode::BAD_REQUEST),
        StreamsError::KmsNotFound(_) => ("KMSNotFoundException", StatusCode::BAD_REQUEST),
        StreamsError::KmsAccessDenied(_) => ("KMSAccessDeniedException", StatusCode::BAD_REQUEST),
        StreamsError::KmsInvalidState(_) => ("KMSInvalidStateException", StatusCode::BAD_REQUEST),
        StreamsError::Internal(_) => (
            "InternalFailureException",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

/// Errors raised by the front door itself.
#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    BodyTooLarge(String),
    #[error("{0}")]
    Streams(#[from] StreamsError),
    #[error("{0}")]
    Auth(#[from] runnel_auth::AuthError),
}

impl FrontDoorError {
    pub fn aws(&self) -> (&'static str, StatusCode) {
        match self {
            FrontDoorError::Serialization(_) => ("SerializationException", StatusCode::BAD_REQUEST),
            FrontDoorError::UnknownOperation(_) => {
                ("UnknownOperationException", StatusCode::BAD_REQUEST)
            }
            FrontDoorError::BodyTooLarge(_) => {
                ("SerializationException", StatusCode::PAYLOAD_TOO_LARGE)
            }
            FrontDoorError::Streams(e) => streams_error(e),
            FrontDoorError::Auth(e) => {
                let (t, status) = e.aws();
                (
                    t,
                    StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                )
            }
        }
    }
}

impl From<runnel_protocol::ProtocolError> for FrontDoorError {
    fn from(e: runnel_protocol::ProtocolError) -> Self {
        match e {
            runnel_protocol::ProtocolError::Serialization(m) => FrontDoorError::Serialization(m),
        }
    }
}
