//! Helpers shared by the end-to-end tests: SDK clients pointed at a
//! `TestServer`, stream lifecycle polling, hash-key routing and shard reads.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_kinesis::types::{Record, Shard, ShardIteratorType, StreamStatus};
use aws_sdk_kinesis::Client;
use md5::{Digest, Md5};

pub use runnel_testkit::TestServer;

/// How long a stream may take to become ACTIVE (server transition is 50 ms).
pub const STREAM_ACTIVE_TIMEOUT_MS: u64 = 10_000;
/// Poll interval for state changes.
pub const POLL_INTERVAL_MS: u64 = 20;
/// Largest GetRecords batch AWS allows.
pub const GET_RECORDS_LIMIT_MAX: i32 = 10_000;
/// Bound on one full-shard read in the tests.
pub const SHARD_READ_TIMEOUT_MS: u64 = 30_000;
/// Empty GetRecords answers in a row that end a read even without
/// `MillisBehindLatest == 0`.
const EMPTY_READS_TO_STOP: u32 = 3;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// Start a test server with default options, panicking with context on failure.
pub fn start_server() -> TestServer {
    TestServer::start_default().expect("start runnel test server")
}

/// An SDK client configured the way a user would point it at runnel.
pub async fn sdk_client(endpoint: &str) -> Client {
    sdk_client_with(endpoint, RetryConfig::standard()).await
}

/// An SDK client that never retries: every answer is the server's first one.
/// Used where a retry could duplicate a record whose first ack was lost.
pub async fn sdk_client_no_retry(endpoint: &str) -> Client {
    sdk_client_with(endpoint, RetryConfig::disabled()).await
}

async fn sdk_client_with(endpoint: &str, retry: RetryConfig) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::from_keys(
            "AKIDRUNNELTEST",
            "runnel-test-secret",
            None,
        ))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(15))
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await;
    Client::new(&config)
}

/// A stream name unique within the process (tests share no server, but names
/// also help reading logs).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}")
}

/// Poll DescribeStreamSummary until the stream is ACTIVE.
pub async fn wait_active(client: &Client, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(STREAM_ACTIVE_TIMEOUT_MS);
    loop {
        let out = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .with_context(|| format!("describe_stream_summary {name}"))?;
        let summary = out
            .stream_description_summary()
            .ok_or_else(|| anyhow!("no StreamDescriptionSummary"))?;
        if summary.stream_status() == &StreamStatus::Active {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "stream {name} still {:?} after {STREAM_ACTIVE_TIMEOUT_MS} ms",
                summary.stream_status()
            );
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

/// CreateStream (provisioned) and wait for ACTIVE.
pub async fn create_active(client: &Client, name: &str, shards: i32) -> Result<()> {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .with_context(|| format!("create_stream {name}"))?;
    wait_active(client, name).await
}

/// All shards of a stream via ListShards paging.
pub async fn list_all_shards(client: &Client, name: &str) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut out = client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .context("list_shards")?;
    loop {
        shards.extend_from_slice(out.shards());
        let Some(token) = out.next_token().map(str::to_string) else {
            return Ok(shards);
        };
        out = client
            .list_shards()
            .next_token(token)
            .send()
            .await
            .context("list_shards page")?;
    }
}

/// Kinesis routing: the 128-bit big-endian MD5 of the partition key.
pub fn hash_key_of(partition_key: &str) -> u128 {
    let digest = Md5::digest(partition_key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest);
    u128::from_be_bytes(bytes)
}

/// The shard whose hash key range contains `hash_key`.
pub fn shard_for_hash(shards: &[Shard], hash_key: u128) -> Result<String> {
    for shard in shards {
        let range = shard
            .hash_key_range()
            .ok_or_else(|| anyhow!("shard {} has no HashKeyRange", shard.shard_id()))?;
        let start: u128 = range.starting_hash_key().parse()?;
        let end: u128 = range.ending_hash_key().parse()?;
        if start <= hash_key && hash_key <= end {
            return Ok(shard.shard_id().to_string());
        }
    }
    bail!("no shard covers hash key {hash_key}")
}

/// Numeric order of decimal sequence-number strings (no leading zeros).
pub fn seq_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

pub async fn shard_iterator(
    client: &Client,
    name: &str,
    shard_id: &str,
    kind: ShardIteratorType,
) -> Result<String> {
    let out = client
        .get_shard_iterator()
        .stream_name(name)
        .shard_id(shard_id)
        .shard_iterator_type(kind)
        .send()
        .await
        .with_context(|| format!("get_shard_iterator {name}/{shard_id}"))?;
    out.shard_iterator()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no ShardIterator returned"))
}

/// Follow an iterator until the shard's tip: an empty answer with
/// `MillisBehindLatest == 0` (or a few empty answers in a row), or the end of
/// a closed shard (no next iterator). Bounded by [`SHARD_READ_TIMEOUT_MS`].
pub async fn read_from_iterator(client: &Client, mut iterator: String) -> Result<Vec<Record>> {
    let deadline = Instant::now() + Duration::from_millis(SHARD_READ_TIMEOUT_MS);
    let mut records = Vec::new();
    let mut empty_reads = 0;
    loop {
        let out = client
            .get_records()
            .shard_iterator(iterator)
            .limit(GET_RECORDS_LIMIT_MAX)
            .send()
            .await
            .context("get_records")?;
        if out.records().is_empty() {
            empty_reads += 1;
            if out.millis_behind_latest() == Some(0) || empty_reads >= EMPTY_READS_TO_STOP {
                return Ok(records);
            }
        } else {
            empty_reads = 0;
            records.extend_from_slice(out.records());
        }
        match out.next_shard_iterator() {
            Some(next) => iterator = next.to_string(),
            None => return Ok(records),
        }
        if Instant::now() >= deadline {
            bail!(
                "shard read did not reach the tip within {SHARD_READ_TIMEOUT_MS} ms ({} records so far)",
                records.len()
            );
        }
    }
}

/// Every record of a shard from TRIM_HORIZON to the tip.
pub async fn read_shard(client: &Client, name: &str, shard_id: &str) -> Result<Vec<Record>> {
    let iterator = shard_iterator(client, name, shard_id, ShardIteratorType::TrimHorizon).await?;
    read_from_iterator(client, iterator).await
}
