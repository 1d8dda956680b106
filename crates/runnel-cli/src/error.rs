//! What can go wrong in a command, phrased as what to do about it.

use std::time::Duration;

/// The failures of one command. `Display` is the message the user sees,
/// including a hint when there is an obvious next step.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A Kinesis call failed; `action` says what we were doing.
    #[error("{}", api_message(.action, .endpoint, .source))]
    Api {
        action: String,
        endpoint: String,
        source: runnel_client::Error,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// An input file or stdin could not be read.
    #[error("cannot read {what}: {source}")]
    Input {
        what: String,
        source: std::io::Error,
    },
    /// A record in the input is malformed (jsonl/csv).
    #[error("{what} line {line}: {reason}")]
    Parse {
        what: String,
        line: u64,
        reason: String,
    },
    /// Some records were still failing after every retry.
    #[error("{failed} of {total} records were not accepted after {attempts} attempts each (last error: {last_error})")]
    Incomplete {
        failed: u64,
        total: u64,
        attempts: u32,
        last_error: String,
    },
    /// A wait for a stream state did not finish in time.
    #[error("stream {stream} is still {status} after {:.0} s; check it with `runnel stream describe {stream}`", .waited.as_secs_f64())]
    WaitTimeout {
        stream: String,
        status: String,
        waited: Duration,
    },
    /// Writing the output failed (other than a closed pipe, which ends quietly).
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

impl CliError {
    pub fn api(action: impl Into<String>, endpoint: &str, source: runnel_client::Error) -> Self {
        CliError::Api {
            action: action.into(),
            endpoint: endpoint.to_owned(),
            source,
        }
    }

    /// The process exit code: 2 for usage errors (as clap uses), else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Api { .. }
            | CliError::Input { .. }
            | CliError::Parse { .. }
            | CliError::Incomplete { .. }
            | CliError::WaitTimeout { .. }
            | CliError::Output(_) => 1,
        }
    }

    /// The service error kind behind this error, if any.
    pub fn kind(&self) -> Option<&str> {
        match self {
            CliError::Api { source, .. } => source.kind(),
            _ => None,
        }
    }
}

fn api_message(action: &str, endpoint: &str, e: &runnel_client::Error) -> String {
    use runnel_client::Error as E;
    match e {
        E::Connection(detail) => {
            let endpoint = endpoint.trim_end_matches('/');
            format!(
                "cannot reach {endpoint} — is `runnel serve` running? \
                 (set --endpoint-url or RUNNEL_ENDPOINT_URL for another server)\n  \
                 while trying to {action}: {detail}"
            )
        }
        E::Timeout { timeout_ms } => format!(
            "{endpoint} did not answer within {timeout_ms} ms while trying to {action}; \
             is the server overloaded or the address wrong?"
        ),
        E::Service { kind, message, .. } => {
            let hint = match kind.as_str() {
                "ResourceNotFoundException" => "\n  hint: list streams with `runnel stream list`",
                "ResourceInUseException" => {
                    "\n  hint: the stream exists or is changing state; \
                     see `runnel stream describe NAME`"
                }
                "LimitExceededException" => {
                    "\n  hint: an account or stream limit was reached, or the stream is \
                     busy resharding; wait and retry"
                }
                "ProvisionedThroughputExceededException" => {
                    "\n  hint: the shard's throughput quota was exceeded; add shards with \
                     `runnel stream scale`"
                }
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "IncompleteSignature"
                | "MissingAuthenticationToken" => {
                    "\n  hint: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and --region"
                }
                _ => "",
            };
            format!("cannot {action}: {message} ({kind}){hint}")
        }
        E::Endpoint { url, reason } => {
            format!("invalid --endpoint-url {url:?}: {reason}")
        }
        E::BodyTooLarge { .. } | E::Decode { .. } => format!("cannot {action}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_refused_says_what_to_do() {
        let e = CliError::api(
            "list streams",
            "http://127.0.0.1:4567/",
            runnel_client::Error::Connection("tcp connect error: Connection refused".into()),
        );
        let text = e.to_string();
        assert!(text.starts_with("cannot reach http://127.0.0.1:4567 — is `runnel serve` running?"));
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn not_found_points_at_stream_list() {
        let e = CliError::api(
            "describe stream x",
            "http://h",
            runnel_client::Error::Service {
                kind: "ResourceNotFoundException".into(),
                message: "Stream x under account 0 not found.".into(),
                status: 400,
            },
        );
        assert!(e
            .to_string()
            .contains("Stream x under account 0 not found."));
        assert!(e.to_string().contains("`runnel stream list`"));
        assert_eq!(e.kind(), Some("ResourceNotFoundException"));
    }
}
