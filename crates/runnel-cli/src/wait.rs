//! Polling a stream until it reaches a state, as the AWS CLI's waiters do.

use std::time::{Duration, Instant};

use runnel_client::{DescribeStreamSummaryInput, StreamDescriptionSummary};

use crate::{CliError, Ctx};

/// How long `--wait` waits; AWS's own waiter gives up after 18 × 10 s.
pub const WAIT_MS_MAX: u64 = 180_000;
const POLL_MS: u64 = 100;

pub async fn summary(ctx: &Ctx, stream: &str) -> Result<StreamDescriptionSummary, CliError> {
    let out = ctx
        .client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream_name: stream.to_owned(),
        })
        .await
        .map_err(ctx.err(format!("describe stream {stream}")))?;
    Ok(out.stream_description_summary)
}

/// Polls until the stream is ACTIVE.
pub async fn active(ctx: &Ctx, stream: &str) -> Result<StreamDescriptionSummary, CliError> {
    let start = Instant::now();
    loop {
        let s = summary(ctx, stream).await?;
        if s.stream_status == "ACTIVE" {
            return Ok(s);
        }
        if start.elapsed() > Duration::from_millis(WAIT_MS_MAX) {
            return Err(CliError::WaitTimeout {
                stream: stream.to_owned(),
                status: s.stream_status,
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Polls until describing the stream answers ResourceNotFoundException.
pub async fn gone(ctx: &Ctx, stream: &str) -> Result<(), CliError> {
    let start = Instant::now();
    loop {
        match summary(ctx, stream).await {
            Err(e) if e.kind() == Some("ResourceNotFoundException") => return Ok(()),
            Err(e) => return Err(e),
            Ok(s) if start.elapsed() > Duration::from_millis(WAIT_MS_MAX) => {
                return Err(CliError::WaitTimeout {
                    stream: stream.to_owned(),
                    status: s.stream_status,
                    waited: start.elapsed(),
                })
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(POLL_MS)).await,
        }
    }
}
