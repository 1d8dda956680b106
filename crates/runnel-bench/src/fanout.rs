//! `e2e --fanout N`: put→push latency through enhanced fan-out. N consumers
//! are registered on the stream, each subscribes to every shard at LATEST,
//! then producers run at the fixed rate as in polling e2e. Every consumer
//! must receive every record exactly once; latency is measured from the
//! send stamp to the moment the event carrying the record is decoded.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use runnel_client::{
    Client, ConsumerRef, DescribeStreamSummaryInput, EventStream, RegisterStreamConsumerInput,
    ShardIteratorType, StartingPosition,
};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::e2e::{produce_all, E2eLoad, E2eReport};
use crate::put::{Producer, PutStats};
use crate::report::{self, Latency};
use crate::stream;

const POLL_MS: u64 = 50;
/// Attempts to (re)subscribe after a retryable failure before giving up.
const SUBSCRIBE_ATTEMPTS_MAX: u32 = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReport {
    pub name: String,
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub events: u64,
    pub latency: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub consumers: usize,
    pub subscriptions: usize,
    /// Records each consumer should have received (= accepted puts).
    pub expected_per_consumer: u64,
    /// Distinct records delivered, summed over consumers.
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Events received (with records or empty heartbeats), all subscriptions.
    pub events: u64,
    pub empty_events: u64,
    pub records_per_event_mean: f64,
    pub resubscribes: u64,
    /// Registering the consumers until all were ACTIVE.
    pub register_ms: f64,
    /// Server arrival timestamp (ms resolution) → push decoded: the
    /// server-side share of put→push, without the PutRecords round trip.
    pub arrival_to_push: Latency,
    pub per_consumer: Vec<ConsumerReport>,
}

impl FanoutReport {
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let worst = self
            .per_consumer
            .iter()
            .map(|c| c.latency.p99_ms)
            .fold(0.0, f64::max);
        vec![
            (
                "consumers",
                format!("{} ({} subscriptions)", self.consumers, self.subscriptions),
            ),
            (
                "delivered",
                format!(
                    "{} of {} ({} per consumer)",
                    self.delivered,
                    self.expected_per_consumer * self.consumers as u64,
                    self.expected_per_consumer
                ),
            ),
            (
                "missing / dup",
                format!("{} / {}", self.missing, self.duplicates),
            ),
            (
                "events",
                format!(
                    "{} ({} empty, {:.1} records/event, {} resubscribes)",
                    self.events, self.empty_events, self.records_per_event_mean, self.resubscribes
                ),
            ),
            ("arrival→push", self.arrival_to_push.line()),
            ("worst consumer p99", format!("{worst:.2} ms")),
            ("register", format!("{:.0} ms", self.register_ms)),
        ]
    }
}

/// One subscriber's figures.
struct SubStats {
    consumer: usize,
    hist: Histogram<u64>,
    arrival: Histogram<u64>,
    delivered: u64,
    duplicates: u64,
    events: u64,
    empty_events: u64,
    records: u64,
    resubscribes: u64,
}

struct ConsumerHandle {
    name: String,
    arn: String,
    delivered: AtomicU64,
}

async fn stream_arn(client: &Client, stream: &str) -> anyhow::Result<String> {
    let out = client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream_name: stream.to_owned(),
        })
        .await
        .with_context(|| format!("describing stream {stream}"))?;
    out.stream_description_summary
        .stream_arn
        .context("the endpoint does not report a StreamARN (enhanced fan-out unsupported?)")
}

async fn register(client: &Client, stream_arn: &str, name: &str) -> anyhow::Result<String> {
    let mut attempt = 0u32;
    loop {
        let input = RegisterStreamConsumerInput {
            stream_arn: stream_arn.to_owned(),
            consumer_name: name.to_owned(),
        };
        match client.register_stream_consumer(&input).await {
            Ok(out) => return Ok(out.consumer.consumer_arn),
            Err(e) if e.is_retryable() && attempt < SUBSCRIBE_ATTEMPTS_MAX => {
                attempt += 1;
                tokio::time::sleep(stream::backoff(attempt, 50, 1_000)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("registering consumer {name}")),
        }
    }
}

async fn wait_active(client: &Client, arn: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(stream::ACTIVE_WAIT_MS_MAX);
    loop {
        match client
            .describe_stream_consumer(&ConsumerRef::arn(arn))
            .await
        {
            Ok(out) if out.consumer_description.consumer_status == "ACTIVE" => return Ok(()),
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e).with_context(|| format!("describing consumer {arn}")),
        }
        if Instant::now() > deadline {
            bail!(
                "consumer {arn} did not become ACTIVE within {} ms",
                stream::ACTIVE_WAIT_MS_MAX
            );
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

async fn deregister(client: &Client, consumers: &[Arc<ConsumerHandle>]) {
    for c in consumers {
        match client
            .deregister_stream_consumer(&ConsumerRef::arn(&c.arn))
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == Some("ResourceNotFoundException") => {}
            Err(e) => eprintln!("warning: deregistering consumer {}: {e}", c.name),
        }
    }
}

/// Subscribes, retrying retryable failures (including ResourceInUse while
/// the server still holds a previous subscription of this consumer).
async fn subscribe(
    client: &Client,
    arn: &str,
    shard_id: &str,
    position: &StartingPosition,
) -> anyhow::Result<EventStream> {
    let mut attempt = 0u32;
    loop {
        match client
            .subscribe_to_shard(arn, shard_id, position.clone())
            .await
        {
            Ok(s) => return Ok(s),
            Err(e)
                if (e.is_retryable() || e.kind() == Some("ResourceInUseException"))
                    && attempt < SUBSCRIBE_ATTEMPTS_MAX =>
            {
                attempt += 1;
                tokio::time::sleep(stream::backoff(attempt, 20, 1_000)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("subscribing {arn} to {shard_id}"));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn subscriber(
    client: Client,
    consumer: usize,
    handle: Arc<ConsumerHandle>,
    shard_id: String,
    run_id: u64,
    ready: oneshot::Sender<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SubStats> {
    let mut st = SubStats {
        consumer,
        hist: report::histogram(),
        arrival: report::histogram(),
        delivered: 0,
        duplicates: 0,
        events: 0,
        empty_events: 0,
        records: 0,
        resubscribes: 0,
    };
    let mut position = StartingPosition::of(ShardIteratorType::Latest);
    let mut events = match subscribe(&client, &handle.arn, &shard_id, &position).await {
        Ok(s) => {
            let _ = ready.send(Ok(()));
            s
        }
        Err(e) => {
            let text = format!("{e:#}");
            let _ = ready.send(Err(e));
            bail!(text);
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut failures = 0u32;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return Ok(st),
            next = events.next_event() => next,
        };
        let resubscribe = match next {
            Some(Ok(event)) => {
                failures = 0;
                let now_ns = report::unix_nanos_now();
                st.events += 1;
                if event.records.is_empty() {
                    st.empty_events += 1;
                }
                st.records += event.records.len() as u64;
                let mut fresh = 0;
                for r in &event.records {
                    let Some((run, sent_ns)) = report::parse_stamp(&r.data) else {
                        continue;
                    };
                    if run != run_id {
                        continue;
                    }
                    if !seen.insert(r.sequence_number.clone()) {
                        st.duplicates += 1;
                        continue;
                    }
                    fresh += 1;
                    report::record_us(
                        &mut st.hist,
                        u128::from(now_ns.saturating_sub(sent_ns) / 1000),
                    );
                    if let Some(ts) = r.approximate_arrival_timestamp {
                        let arrival_ns = (ts * 1e9) as u64;
                        report::record_us(
                            &mut st.arrival,
                            u128::from(now_ns.saturating_sub(arrival_ns) / 1000),
                        );
                    }
                }
                st.delivered += fresh;
                handle.delivered.fetch_add(fresh, Ordering::Relaxed);
                if let Some(c) = event.continuation_sequence_number {
                    position = StartingPosition::after(&c);
                } else if !event.child_shards.is_empty() {
                    // A closed shard's end: nothing more to read here.
                    let _ = stop.wait_for(|s| *s).await;
                    return Ok(st);
                }
                false
            }
            // The subscription ended (it lives 5 minutes) or the connection
            // failed: carry on after the last continuation.
            None => true,
            Some(Err(e)) if e.is_retryable() => {
                failures += 1;
                if failures > SUBSCRIBE_ATTEMPTS_MAX {
                    return Err(e).context("subscription keeps failing");
                }
                true
            }
            Some(Err(e)) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("subscription of {} to {shard_id}", handle.name)));
            }
        };
        if resubscribe {
            if *stop.borrow() {
                return Ok(st);
            }
            // Before the first event there is no continuation and LATEST is
            // reused: records put in between would be missed (and reported).
            st.resubscribes += 1;
            events = subscribe(&client, &handle.arn, &shard_id, &position).await?;
        }
    }
}

pub async fn run(producer: &Producer, load: &E2eLoad) -> anyhow::Result<E2eReport> {
    let client = &producer.client;
    let shards = stream::shards(client, &producer.stream).await?;
    let arn = stream_arn(client, &producer.stream).await?;

    let register_started = Instant::now();
    let mut consumers: Vec<Arc<ConsumerHandle>> = Vec::with_capacity(load.fanout);
    let result = async {
        for i in 0..load.fanout {
            let name = format!("runnel-bench-{:016x}-{i}", producer.run_id);
            let consumer_arn = register(client, &arn, &name).await?;
            consumers.push(Arc::new(ConsumerHandle {
                name,
                arn: consumer_arn,
                delivered: AtomicU64::new(0),
            }));
        }
        for c in &consumers {
            wait_active(client, &c.arn).await?;
        }
        anyhow::Ok(())
    }
    .await;
    let register_ms = register_started.elapsed().as_secs_f64() * 1000.0;
    let report = match result {
        Ok(()) => measure(producer, load, &shards, &consumers, register_ms).await,
        Err(e) => Err(e),
    };
    deregister(client, &consumers).await;
    report
}

async fn measure(
    producer: &Producer,
    load: &E2eLoad,
    shards: &[runnel_client::Shard],
    consumers: &[Arc<ConsumerHandle>],
    register_ms: f64,
) -> anyhow::Result<E2eReport> {
    let client = &producer.client;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut readies = Vec::new();
    for (i, c) in consumers.iter().enumerate() {
        for shard in shards {
            let (tx, rx) = oneshot::channel();
            readies.push(rx);
            tasks.push(tokio::spawn(subscriber(
                client.clone(),
                i,
                c.clone(),
                shard.shard_id.clone(),
                producer.run_id,
                tx,
                stop_rx.clone(),
            )));
        }
    }
    let subscriptions = tasks.len();
    // Every subscription must have its LATEST position before the first put.
    let mut not_ready = None;
    for rx in readies {
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                not_ready.get_or_insert(e);
            }
            Err(_) => {
                not_ready.get_or_insert(anyhow::anyhow!("subscriber task ended early"));
            }
        }
    }
    let produced = match not_ready {
        Some(e) => Err(e),
        None => produce_all(producer, load).await,
    };
    if let Ok(p) = &produced {
        if p.failure.is_none() {
            let drain_until = Instant::now() + load.drain;
            while consumers
                .iter()
                .any(|c| c.delivered.load(Ordering::Relaxed) < p.stats.accepted)
                && Instant::now() < drain_until
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let _ = stop_tx.send(true);
    let mut subs = Vec::with_capacity(tasks.len());
    let mut sub_failure = None;
    for t in tasks {
        match t.await.context("subscriber task panicked")? {
            Ok(s) => subs.push(s),
            Err(e) => {
                sub_failure.get_or_insert(e);
            }
        }
    }
    let produced = produced?;
    if let Some(e) = produced.failure {
        return Err(e);
    }
    if let Some(e) = sub_failure {
        return Err(e);
    }
    let stats: PutStats = produced.stats;
    let sent = stats.accepted;

    let mut hist = report::histogram();
    let mut arrival = report::histogram();
    let mut per: Vec<(Histogram<u64>, u64, u64, u64)> = (0..consumers.len())
        .map(|_| (report::histogram(), 0, 0, 0))
        .collect();
    let (mut events, mut empty, mut records, mut resubscribes) = (0u64, 0u64, 0u64, 0u64);
    for s in &subs {
        hist.add(&s.hist).context("merging histograms")?;
        arrival.add(&s.arrival).context("merging histograms")?;
        let p = &mut per[s.consumer];
        p.0.add(&s.hist).context("merging histograms")?;
        p.1 += s.delivered;
        p.2 += s.duplicates;
        p.3 += s.events;
        events += s.events;
        empty += s.empty_events;
        records += s.records;
        resubscribes += s.resubscribes;
    }
    let per_consumer: Vec<ConsumerReport> = consumers
        .iter()
        .zip(per)
        .map(|(c, (h, delivered, duplicates, events))| ConsumerReport {
            name: c.name.clone(),
            delivered,
            missing: sent.saturating_sub(delivered),
            duplicates,
            events,
            latency: Latency::from_us(&h),
        })
        .collect();
    let delivered: u64 = per_consumer.iter().map(|c| c.delivered).sum();
    let missing: u64 = per_consumer.iter().map(|c| c.missing).sum();
    let duplicates: u64 = per_consumer.iter().map(|c| c.duplicates).sum();
    let fanout = FanoutReport {
        consumers: consumers.len(),
        subscriptions,
        expected_per_consumer: sent,
        delivered,
        missing,
        duplicates,
        events,
        empty_events: empty,
        records_per_event_mean: if events > empty {
            records as f64 / (events - empty) as f64
        } else {
            0.0
        },
        resubscribes,
        register_ms,
        arrival_to_push: Latency::from_us(&arrival),
        per_consumer,
    };
    Ok(E2eReport {
        rate_target: load.rate,
        rate_achieved: report::per_sec(sent, produced.produced_s),
        sent,
        received: delivered,
        missing,
        elapsed_s: produced.started.elapsed().as_secs_f64(),
        throttled: stats.throttled,
        dropped: stats.dropped,
        idle_poll_ms: 0,
        latency: Latency::from_us(&hist),
        put_latency: Latency::from_us(&produced.put_hist),
        fanout_consumers: consumers.len(),
        fanout: Some(fanout),
    })
}
