//! Consumer load: read every shard from TRIM_HORIZON to the tip, verify
//! count and per-shard order.

use std::cmp::Ordering;
use std::time::Instant;

use anyhow::{bail, Context};
use runnel_client::{
    Client, GetRecordsInput, GetRecordsOutput, GetShardIteratorInput, ShardIteratorType,
};
use serde::Serialize;

use crate::report;
use crate::stream::{self, backoff};

/// Kinesis caps GetRecords at 10,000 records.
pub const GET_RECORDS_LIMIT_MAX: u32 = 10_000;
/// Consecutive failed calls on one shard before the run fails.
pub const READ_RETRIES_MAX: u32 = 30;
/// Empty responses that still claim to be behind the tip before we stop anyway.
pub const EMPTY_READS_MAX: u32 = 100;

#[derive(Debug, Clone)]
pub struct GetLoad {
    pub limit: u32,
    /// Count only records stamped with this run id (others are still read
    /// and order-checked).
    pub run_id: Option<u64>,
    pub expect: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardRead {
    pub shard_id: String,
    pub records: u64,
    pub requests: u64,
    pub order_violations: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GetReport {
    /// All records read.
    pub records: u64,
    /// Records stamped with this run's id (equals `records` without a run id).
    pub matching: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests: u64,
    pub throttled: u64,
    pub order_violations: u64,
    pub expected: Option<u64>,
    /// `None` when there was nothing to compare against.
    pub count_ok: Option<bool>,
    pub shards: Vec<ShardRead>,
}

impl GetReport {
    pub fn ok(&self) -> bool {
        self.order_violations == 0 && self.count_ok != Some(false)
    }

    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let verdict = match (self.count_ok, self.expected) {
            (Some(true), Some(e)) => format!("ok ({} of {} expected)", self.matching, e),
            (Some(false), Some(e)) => format!("MISMATCH ({} read, {} expected)", self.matching, e),
            _ => "not checked (no --expect)".to_owned(),
        };
        vec![
            ("records read", report::thousands(self.records as f64)),
            ("elapsed", format!("{:.2} s", self.elapsed_s)),
            (
                "throughput",
                format!("{} records/s", report::thousands(self.records_per_s)),
            ),
            ("bandwidth", format!("{:.2} MB/s", self.mb_per_s)),
            ("requests", report::thousands(self.requests as f64)),
            ("throttled", report::thousands(self.throttled as f64)),
            ("count", verdict),
            (
                "order",
                match self.order_violations {
                    0 => "ok (strictly increasing per shard)".to_owned(),
                    n => format!("{n} VIOLATIONS"),
                },
            ),
        ]
    }
}

/// One GetRecords with retries; refreshes an expired iterator after `last_seq`.
pub async fn get_records_retrying(
    client: &Client,
    stream: &str,
    shard_id: &str,
    iterator: &mut String,
    last_seq: Option<&str>,
    limit: u32,
    throttled: &mut u64,
) -> anyhow::Result<GetRecordsOutput> {
    let mut attempt = 0u32;
    loop {
        let input = GetRecordsInput {
            shard_iterator: iterator.clone(),
            limit: Some(limit),
        };
        let err = match client.get_records(&input).await {
            Ok(out) => return Ok(out),
            Err(e) => e,
        };
        attempt += 1;
        if attempt > READ_RETRIES_MAX {
            return Err(err).with_context(|| format!("GetRecords on {shard_id}"));
        }
        if err.kind() == Some("ExpiredIteratorException") {
            *iterator = match last_seq {
                Some(seq) => {
                    shard_iterator(
                        client,
                        stream,
                        shard_id,
                        ShardIteratorType::AfterSequenceNumber,
                        Some(seq),
                    )
                    .await?
                }
                None => {
                    shard_iterator(
                        client,
                        stream,
                        shard_id,
                        ShardIteratorType::TrimHorizon,
                        None,
                    )
                    .await?
                }
            };
            continue;
        }
        if !err.is_retryable() {
            return Err(err).with_context(|| format!("GetRecords on {shard_id}"));
        }
        if err.is_throttling() {
            *throttled += 1;
        }
        tokio::time::sleep(backoff(attempt, 20, 1_000)).await;
    }
}

pub async fn shard_iterator(
    client: &Client,
    stream: &str,
    shard_id: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
) -> anyhow::Result<String> {
    let input = GetShardIteratorInput {
        stream_name: stream.to_owned(),
        shard_id: shard_id.to_owned(),
        shard_iterator_type: kind,
        starting_sequence_number: seq.map(str::to_owned),
        timestamp: None,
    };
    let mut attempt = 0u32;
    loop {
        match client.get_shard_iterator(&input).await {
            Ok(out) => return Ok(out.shard_iterator),
            Err(e) if e.is_retryable() && attempt < READ_RETRIES_MAX => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt, 20, 1_000)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("GetShardIterator on {shard_id}")),
        }
    }
}

struct ShardTotals {
    read: ShardRead,
    matching: u64,
    bytes: u64,
    throttled: u64,
}

async fn read_shard(
    client: Client,
    stream: String,
    shard_id: String,
    load: GetLoad,
) -> anyhow::Result<ShardTotals> {
    let mut iterator = shard_iterator(
        &client,
        &stream,
        &shard_id,
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await?;
    let mut totals = ShardTotals {
        read: ShardRead {
            shard_id: shard_id.clone(),
            records: 0,
            requests: 0,
            order_violations: 0,
        },
        matching: 0,
        bytes: 0,
        throttled: 0,
    };
    let mut last_seq: Option<String> = None;
    let mut empty_reads = 0u32;
    loop {
        let out = get_records_retrying(
            &client,
            &stream,
            &shard_id,
            &mut iterator,
            last_seq.as_deref(),
            load.limit,
            &mut totals.throttled,
        )
        .await?;
        totals.read.requests += 1;
        let empty = out.records.is_empty();
        for r in &out.records {
            if let Some(prev) = &last_seq {
                if report::seq_cmp(prev, &r.sequence_number) != Ordering::Less {
                    totals.read.order_violations += 1;
                }
            }
            totals.read.records += 1;
            totals.bytes += r.data.len() as u64;
            let mine = match load.run_id {
                Some(run) => report::parse_stamp(&r.data).is_some_and(|(id, _)| id == run),
                None => true,
            };
            totals.matching += u64::from(mine);
        }
        if let Some(r) = out.records.last() {
            last_seq = Some(r.sequence_number.clone());
        }
        let Some(next) = out.next_shard_iterator else {
            return Ok(totals); // closed shard, fully read
        };
        iterator = next;
        if empty {
            empty_reads += 1;
            // At the tip: nothing returned and nothing behind.
            if out.millis_behind_latest.unwrap_or(0) == 0 || empty_reads > EMPTY_READS_MAX {
                return Ok(totals);
            }
        } else {
            empty_reads = 0;
        }
    }
}

/// Reads all shards concurrently, one task per shard.
pub async fn run(client: &Client, stream_name: &str, load: &GetLoad) -> anyhow::Result<GetReport> {
    let shards = stream::shards(client, stream_name).await?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(shards.len());
    for shard in shards {
        tasks.push(tokio::spawn(read_shard(
            client.clone(),
            stream_name.to_owned(),
            shard.shard_id,
            load.clone(),
        )));
    }
    let mut parts = Vec::with_capacity(tasks.len());
    for task in tasks {
        parts.push(task.await.context("reader task panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let records: u64 = parts.iter().map(|p| p.read.records).sum();
    let matching: u64 = parts.iter().map(|p| p.matching).sum();
    let bytes: u64 = parts.iter().map(|p| p.bytes).sum();
    let count_ok = load.expect.map(|e| e == matching);
    Ok(GetReport {
        records,
        matching,
        bytes,
        elapsed_s: elapsed,
        records_per_s: report::per_sec(records, elapsed),
        mb_per_s: report::mb_per_sec(bytes, elapsed),
        requests: parts.iter().map(|p| p.read.requests).sum(),
        throttled: parts.iter().map(|p| p.throttled).sum(),
        order_violations: parts.iter().map(|p| p.read.order_violations).sum(),
        expected: load.expect,
        count_ok,
        shards: parts.into_iter().map(|p| p.read).collect(),
    })
}

pub fn check(report: &GetReport) -> anyhow::Result<()> {
    if !report.ok() {
        bail!(
            "verification failed: {} records of this run read, {:?} expected, {} order violations",
            report.matching,
            report.expected,
            report.order_violations
        );
    }
    Ok(())
}
