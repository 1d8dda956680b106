//! Producer load: concurrent PutRecords with per-record retry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use rand::RngCore;
use runnel_client::{is_throttling, Client, PutRecordsInput, PutRecordsRequestEntry};
use serde::Serialize;

use crate::report::{self, Latency};
use crate::stream::backoff;

/// Kinesis caps PutRecords at 500 entries.
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
pub const RETRY_BASE_MS: u64 = 10;
pub const RETRY_CAP_MS: u64 = 1_000;

/// What the producer sends.
#[derive(Debug, Clone)]
pub struct Producer {
    pub client: Client,
    pub stream: String,
    pub record_bytes: usize,
    pub run_id: u64,
    /// Attempts after the first before a record is given up on.
    pub retries_max: u32,
}

/// Counters of one or many producer tasks.
#[derive(Debug, Default, Clone)]
pub struct PutStats {
    pub accepted: u64,
    pub bytes: u64,
    pub requests: u64,
    /// Records rejected with a throttling ErrorCode, plus whole requests throttled.
    pub throttled: u64,
    /// Records rejected with any other ErrorCode (e.g. InternalFailure).
    pub failed: u64,
    /// Whole requests that failed (connection, 5xx, throttling).
    pub request_errors: u64,
    /// Records re-sent.
    pub retried: u64,
    /// Records given up on after `retries_max`.
    pub dropped: u64,
}

impl PutStats {
    pub fn merge(&mut self, o: &PutStats) {
        self.accepted += o.accepted;
        self.bytes += o.bytes;
        self.requests += o.requests;
        self.throttled += o.throttled;
        self.failed += o.failed;
        self.request_errors += o.request_errors;
        self.retried += o.retried;
        self.dropped += o.dropped;
    }
}

impl Producer {
    /// `n` records with random partition keys, each stamped with the run id
    /// and the current time. One allocation for the whole batch.
    pub fn batch(&self, n: usize, filler: &[u8]) -> Vec<PutRecordsRequestEntry> {
        let size = self.record_bytes;
        let mut buf = BytesMut::with_capacity(n * size);
        let now = report::unix_nanos_now();
        let mut rng = rand::thread_rng();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let start = buf.len();
            buf.extend_from_slice(&filler[..size]);
            report::stamp(&mut buf[start..], self.run_id, now);
            out.push(PutRecordsRequestEntry {
                data: Bytes::new(),
                partition_key: format!("{:016x}", rng.next_u64()),
                explicit_hash_key: None,
            });
        }
        let mut all = buf.freeze();
        for entry in &mut out {
            entry.data = all.split_to(size);
        }
        out
    }

    /// Sends `pending` until every record is accepted or out of retries.
    /// Only unretryable request errors (bad stream, bad auth) are returned.
    pub async fn send(
        &self,
        mut pending: Vec<PutRecordsRequestEntry>,
        stats: &mut PutStats,
        latency_us: &mut Histogram<u64>,
    ) -> anyhow::Result<()> {
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let request = PutRecordsInput {
                stream_name: self.stream.clone(),
                records: std::mem::take(&mut pending),
            };
            let started = Instant::now();
            match self.client.put_records(&request).await {
                Ok(out) => {
                    report::record_us(latency_us, started.elapsed().as_micros());
                    stats.requests += 1;
                    if out.records.len() != request.records.len() {
                        bail!(
                            "PutRecords answered {} entries for {} records",
                            out.records.len(),
                            request.records.len()
                        );
                    }
                    for (entry, result) in request.records.into_iter().zip(out.records) {
                        match result.error_code {
                            None => {
                                stats.accepted += 1;
                                stats.bytes += entry.data.len() as u64;
                            }
                            Some(code) => {
                                if is_throttling(&code) {
                                    stats.throttled += 1;
                                } else {
                                    stats.failed += 1;
                                }
                                pending.push(entry);
                            }
                        }
                    }
                }
                Err(e) if e.is_retryable() => {
                    stats.request_errors += 1;
                    if e.is_throttling() {
                        stats.throttled += request.records.len() as u64;
                    }
                    pending = request.records;
                }
                Err(e) => return Err(e).context("PutRecords"),
            }
            if !pending.is_empty() {
                attempt += 1;
                if attempt > self.retries_max {
                    stats.dropped += pending.len() as u64;
                    return Ok(());
                }
                stats.retried += pending.len() as u64;
                tokio::time::sleep(backoff(attempt, RETRY_BASE_MS, RETRY_CAP_MS)).await;
            }
        }
        Ok(())
    }
}

pub fn filler(record_bytes: usize) -> Arc<Vec<u8>> {
    let mut v = vec![0u8; record_bytes];
    rand::thread_rng().fill_bytes(&mut v);
    Arc::new(v)
}

#[derive(Debug, Clone)]
pub struct PutLoad {
    pub concurrency: usize,
    pub batch: usize,
    pub duration: Duration,
    /// Stop after this many records instead of after `duration`.
    pub records: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PutReport {
    pub records: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests: u64,
    pub throttled: u64,
    pub failed: u64,
    pub request_errors: u64,
    pub retried: u64,
    pub dropped: u64,
    pub concurrency: usize,
    pub batch: usize,
    pub record_bytes: usize,
    pub latency: Latency,
}

impl PutReport {
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
            ("records accepted", report::thousands(self.records as f64)),
            ("elapsed", format!("{:.2} s", self.elapsed_s)),
            (
                "throughput",
                format!("{} records/s", report::thousands(self.records_per_s)),
            ),
            ("bandwidth", format!("{:.2} MB/s", self.mb_per_s)),
            ("requests", report::thousands(self.requests as f64)),
            ("throttled", report::thousands(self.throttled as f64)),
            ("failed records", report::thousands(self.failed as f64)),
            (
                "request errors",
                report::thousands(self.request_errors as f64),
            ),
            (
                "retried / dropped",
                format!("{} / {}", self.retried, self.dropped),
            ),
            ("PutRecords latency", self.latency.line()),
        ]
    }
}

/// Runs `load.concurrency` producer tasks until the deadline or the record budget.
pub async fn run(producer: &Producer, load: &PutLoad) -> anyhow::Result<PutReport> {
    let batch = load.batch.clamp(1, PUT_RECORDS_COUNT_MAX);
    let concurrency = load.concurrency.max(1);
    let budget = Arc::new(AtomicU64::new(load.records.unwrap_or(u64::MAX)));
    let filler = filler(producer.record_bytes);
    let started = Instant::now();
    let deadline = match load.records {
        Some(_) => None,
        None => Some(started + load.duration),
    };
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let producer = producer.clone();
        let budget = budget.clone();
        let filler = filler.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = PutStats::default();
            let mut hist = report::histogram();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let n = match budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    (left > 0).then(|| left.saturating_sub(batch as u64))
                }) {
                    Ok(left) => left.min(batch as u64) as usize,
                    Err(_) => break,
                };
                let entries = producer.batch(n, &filler);
                producer.send(entries, &mut stats, &mut hist).await?;
            }
            anyhow::Ok((stats, hist))
        }));
    }
    let mut stats = PutStats::default();
    let mut hist = report::histogram();
    for task in tasks {
        let (s, h) = task.await.context("producer task panicked")??;
        stats.merge(&s);
        hist.add(&h).context("merging histograms")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(PutReport {
        records: stats.accepted,
        bytes: stats.bytes,
        elapsed_s: elapsed,
        records_per_s: report::per_sec(stats.accepted, elapsed),
        mb_per_s: report::mb_per_sec(stats.bytes, elapsed),
        requests: stats.requests,
        throttled: stats.throttled,
        failed: stats.failed,
        request_errors: stats.request_errors,
        retried: stats.retried,
        dropped: stats.dropped,
        concurrency,
        batch,
        record_bytes: producer.record_bytes,
        latency: Latency::from_us(&hist),
    })
}
