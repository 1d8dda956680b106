//! Put→visible latency: producers at a fixed rate stamp each record with its
//! send time; one poller per shard measures when it becomes readable.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use runnel_client::ShardIteratorType;
use serde::Serialize;

use crate::fanout::FanoutReport;
use crate::get::{get_records_retrying, shard_iterator};
use crate::put::{filler, Producer, PutStats, PUT_RECORDS_COUNT_MAX};
use crate::report::{self, Latency};
use crate::stream;

#[derive(Debug, Clone)]
pub struct E2eLoad {
    pub rate: u64,
    pub duration: Duration,
    pub producers: usize,
    /// How often each producer sends what has come due.
    pub tick: Duration,
    /// Pause after a GetRecords that returned nothing.
    pub idle_poll: Duration,
    pub limit: u32,
    /// How long readers may keep catching up after producers stop.
    pub drain: Duration,
    /// Enhanced fan-out consumers; 0 polls with GetRecords instead.
    pub fanout: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct E2eReport {
    pub rate_target: u64,
    pub rate_achieved: f64,
    pub sent: u64,
    pub received: u64,
    pub missing: u64,
    pub elapsed_s: f64,
    pub throttled: u64,
    pub dropped: u64,
    pub idle_poll_ms: u64,
    /// From the send timestamp to the record being returned by GetRecords
    /// (or, with fan-out, pushed to a consumer: merged over consumers).
    pub latency: Latency,
    pub put_latency: Latency,
    /// Enhanced fan-out consumers (0: GetRecords polling).
    pub fanout_consumers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<FanoutReport>,
}

impl E2eReport {
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            (
                "rate",
                format!(
                    "{} records/s target, {} achieved",
                    report::thousands(self.rate_target as f64),
                    report::thousands(self.rate_achieved)
                ),
            ),
            (
                "sent / received",
                format!("{} / {}", self.sent, self.received),
            ),
            ("missing", report::thousands(self.missing as f64)),
            ("throttled", report::thousands(self.throttled as f64)),
        ];
        match &self.fanout {
            None => {
                rows.push(("idle poll", format!("{} ms", self.idle_poll_ms)));
                rows.push(("put→visible", self.latency.line()));
            }
            Some(f) => {
                rows.push(("put→push", self.latency.line()));
                rows.extend(f.rows());
            }
        }
        rows.push(("PutRecords", self.put_latency.line()));
        rows
    }
}

struct Shared {
    received: AtomicU64,
    stop: AtomicBool,
}

async fn poll_shard(
    producer: Producer,
    shard_id: String,
    mut iterator: String,
    load: E2eLoad,
    shared: Arc<Shared>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let client = &producer.client;
    let mut hist = report::histogram();
    let mut throttled = 0u64;
    let mut last_seq: Option<String> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let out = get_records_retrying(
            client,
            &producer.stream,
            &shard_id,
            &mut iterator,
            last_seq.as_deref(),
            load.limit,
            &mut throttled,
        )
        .await?;
        let now = report::unix_nanos_now();
        let mut mine = 0;
        for r in &out.records {
            if let Some((run, sent_ns)) = report::parse_stamp(&r.data) {
                if run == producer.run_id {
                    report::record_us(&mut hist, u128::from(now.saturating_sub(sent_ns) / 1000));
                    mine += 1;
                }
            }
        }
        shared.received.fetch_add(mine, Ordering::Relaxed);
        if let Some(r) = out.records.last() {
            last_seq = Some(r.sequence_number.clone());
        }
        match out.next_shard_iterator {
            Some(next) => iterator = next,
            None => break,
        }
        if out.records.is_empty() {
            tokio::time::sleep(load.idle_poll).await;
        }
    }
    Ok((hist, throttled))
}

async fn produce(
    producer: Producer,
    rate: u64,
    load: E2eLoad,
    started: Instant,
) -> anyhow::Result<(PutStats, Histogram<u64>)> {
    let filler = filler(producer.record_bytes);
    let mut stats = PutStats::default();
    let mut hist = report::histogram();
    let mut sent = 0u64;
    loop {
        let elapsed = started.elapsed();
        if elapsed >= load.duration {
            break;
        }
        let due = (rate as f64 * elapsed.as_secs_f64()) as u64;
        let n = due.saturating_sub(sent).min(PUT_RECORDS_COUNT_MAX as u64) as usize;
        if n == 0 {
            tokio::time::sleep(load.tick).await;
            continue;
        }
        let entries = producer.batch(n, &filler);
        sent += n as u64;
        producer.send(entries, &mut stats, &mut hist).await?;
    }
    Ok((stats, hist))
}

pub async fn run(producer: &Producer, load: &E2eLoad) -> anyhow::Result<E2eReport> {
    if load.fanout > 0 {
        return crate::fanout::run(producer, load).await;
    }
    let client = &producer.client;
    let shards = stream::shards(client, &producer.stream).await?;
    let shared = Arc::new(Shared {
        received: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    // Iterators come before the first put so no record can slip past LATEST.
    let mut readers = Vec::with_capacity(shards.len());
    for shard in shards {
        let it = shard_iterator(
            client,
            &producer.stream,
            &shard.shard_id,
            ShardIteratorType::Latest,
            None,
        )
        .await?;
        readers.push(tokio::spawn(poll_shard(
            producer.clone(),
            shard.shard_id,
            it,
            load.clone(),
            shared.clone(),
        )));
    }

    let Produced {
        stats,
        put_hist,
        started,
        produced_s,
        failure,
    } = produce_all(producer, load).await?;
    if failure.is_none() {
        let drain_until = Instant::now() + load.drain;
        while shared.received.load(Ordering::Relaxed) < stats.accepted
            && Instant::now() < drain_until
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut hist = report::histogram();
    let mut throttled = stats.throttled;
    for r in readers {
        let (h, t) = r.await.context("reader task panicked")??;
        hist.add(&h).context("merging histograms")?;
        throttled += t;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let received = shared.received.load(Ordering::Relaxed);
    Ok(E2eReport {
        rate_target: load.rate,
        rate_achieved: report::per_sec(stats.accepted, produced_s),
        sent: stats.accepted,
        received,
        missing: stats.accepted.saturating_sub(received),
        elapsed_s: started.elapsed().as_secs_f64(),
        throttled,
        dropped: stats.dropped,
        idle_poll_ms: load.idle_poll.as_millis() as u64,
        latency: Latency::from_us(&hist),
        put_latency: Latency::from_us(&put_hist),
        fanout_consumers: 0,
        fanout: None,
    })
}

/// What the producers did.
pub(crate) struct Produced {
    pub stats: PutStats,
    pub put_hist: Histogram<u64>,
    pub started: Instant,
    pub produced_s: f64,
    /// A producer's error; readers should not wait for records it never sent.
    pub failure: Option<anyhow::Error>,
}

/// Runs `load.producers` tasks sharing `load.rate` for `load.duration`.
pub(crate) async fn produce_all(producer: &Producer, load: &E2eLoad) -> anyhow::Result<Produced> {
    let producers = load.producers.max(1) as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..producers {
        let rate = load.rate / producers + u64::from(i < load.rate % producers);
        tasks.push(tokio::spawn(produce(
            producer.clone(),
            rate,
            load.clone(),
            started,
        )));
    }
    let mut stats = PutStats::default();
    let mut put_hist = report::histogram();
    let mut failure = None;
    for task in tasks {
        match task.await.context("producer task panicked")? {
            Ok((s, h)) => {
                stats.merge(&s);
                put_hist.add(&h).context("merging histograms")?;
            }
            Err(e) => failure = Some(e),
        }
    }
    Ok(Produced {
        stats,
        put_hist,
        started,
        produced_s: started.elapsed().as_secs_f64(),
        failure,
    })
}
