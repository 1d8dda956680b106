//! One trait every service's error enum implements, so the front door maps
//! any service error to an AWS response the same way.

/// An error as AWS reports it: the `__type` a client matches on, the HTTP
/// status, the message, and whether clients should retry.
///
/// Implement it with one exhaustive `match` over the enum (no `_ =>` arm),
/// so a new variant cannot silently become a 400 or a 500.
pub trait AwsError: std::error::Error {
    /// The AWS error type, e.g. `ResourceNotFoundException`.
    fn error_type(&self) -> &'static str;

    /// The HTTP status AWS answers with for this error.
    fn status(&self) -> u16;

    /// The message (`message` in the JSON error body).
    fn message(&self) -> String {
        self.to_string()
    }

    /// Whether a client may retry the same request unchanged.
    fn retryable(&self) -> bool {
        false
    }

    /// Members of the error shape besides `message` (e.g. Firehose's `code`
    /// on `InvalidKMSResourceException`), as JSON member name and value.
    fn extra_fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
