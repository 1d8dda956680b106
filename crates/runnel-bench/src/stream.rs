//! Stream lifecycle around a run: create if missing, wait for ACTIVE, delete.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use runnel_client::{
    Client, CreateStreamInput, DeleteStreamInput, DescribeStreamSummaryInput, Error, Shard,
};

pub const ACTIVE_WAIT_MS_MAX: u64 = 120_000;
pub const LIMIT_WAIT_MS_MAX: u64 = 10_000;
const POLL_MS: u64 = 50;

/// Stream status, or `None` if the stream does not exist.
async fn status(client: &Client, stream: &str) -> anyhow::Result<Option<String>> {
    let input = DescribeStreamSummaryInput {
        stream_name: stream.to_owned(),
    };
    match client.describe_stream_summary(&input).await {
        Ok(out) => Ok(Some(out.stream_description_summary.stream_status)),
        Err(e) if e.kind() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e).with_context(|| format!("describing stream {stream}")),
    }
}

/// Like [`status`], but retryable failures read as "not known yet".
async fn status_patient(client: &Client, stream: &str) -> anyhow::Result<Option<String>> {
    match status(client, stream).await {
        Err(e) if e.downcast_ref::<Error>().is_some_and(Error::is_retryable) => {
            Ok(Some("UNKNOWN".to_owned()))
        }
        other => other,
    }
}

/// Makes sure `stream` exists and is ACTIVE. Returns true if this call
/// created it (so the caller should delete it afterwards).
pub async fn ensure(client: &Client, stream: &str, shards: u32) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_millis(ACTIVE_WAIT_MS_MAX);
    let mut created = false;
    let mut limited_since: Option<Instant> = None;
    loop {
        match status_patient(client, stream).await?.as_deref() {
            Some("ACTIVE") => return Ok(created),
            None if !created => {
                let input = CreateStreamInput {
                    stream_name: stream.to_owned(),
                    shard_count: Some(shards),
                    stream_mode_details: None,
                };
                match client.create_stream(&input).await {
                    Ok(()) => created = true,
                    // Someone else (or our own earlier retry) created it.
                    Err(e) if e.kind() == Some("ResourceInUseException") => {}
                    // Shards of streams still DELETING may count against the
                    // account limit for a moment; anything longer is real.
                    Err(e) if e.kind() == Some("LimitExceededException") => {
                        let since = *limited_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_millis(LIMIT_WAIT_MS_MAX) {
                            return Err(e).with_context(|| {
                                format!(
                                    "creating stream {stream} with {shards} shards (shard limit)"
                                )
                            });
                        }
                    }
                    Err(e) if e.is_retryable() => {}
                    Err(e) => return Err(e).with_context(|| format!("creating stream {stream}")),
                }
            }
            _ => {} // CREATING, UPDATING, DELETING (then re-create), or not visible yet
        }
        if Instant::now() > deadline {
            bail!("stream {stream} did not become ACTIVE within {ACTIVE_WAIT_MS_MAX} ms");
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Requires an existing ACTIVE stream (for readers that must not create one).
pub async fn require(client: &Client, stream: &str) -> anyhow::Result<()> {
    match status(client, stream).await?.as_deref() {
        Some("ACTIVE") | Some("UPDATING") => Ok(()),
        Some(other) => bail!("stream {stream} is {other}, not ACTIVE"),
        None => bail!("stream {stream} does not exist (run `put --keep` first)"),
    }
}

pub async fn delete(client: &Client, stream: &str) -> anyhow::Result<()> {
    let input = DeleteStreamInput {
        stream_name: stream.to_owned(),
        enforce_consumer_deletion: Some(true),
    };
    match client.delete_stream(&input).await {
        Ok(()) => Ok(()),
        Err(Error::Service { kind, .. }) if kind == "ResourceNotFoundException" => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting stream {stream}")),
    }
}

/// Open shards (no ending sequence number) first, in listing order; closed
/// ones are included too since they still hold readable records.
pub async fn shards(client: &Client, stream: &str) -> anyhow::Result<Vec<Shard>> {
    let shards = client
        .list_all_shards(stream)
        .await
        .with_context(|| format!("listing shards of {stream}"))?;
    if shards.is_empty() {
        bail!("stream {stream} has no shards");
    }
    Ok(shards)
}

/// Exponential backoff with equal jitter: `base·2^(attempt-1)` capped at
/// `cap`, half fixed and half random.
pub fn backoff(attempt: u32, base_ms: u64, cap_ms: u64) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let d = exp.min(cap_ms).max(1);
    let jitter = rand::random::<u64>() % (d / 2 + 1);
    Duration::from_millis(d / 2 + jitter)
}
