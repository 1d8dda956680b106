//! Crash recovery: `kill -9` while producers are mid-flight, restart on the
//! same data directory, and check that every acknowledged record is there,
//! exactly once, unchanged, with the sequence number and shard it was
//! acknowledged with. Repeated for several kill/restart rounds.
//!
//! Producers never retry (a retry after a lost ack may legally duplicate a
//! record in Kinesis, which would hide real duplicates). Records whose ack was
//! lost in the crash may or may not be present; if present they count like
//! any other record (unique, uncorrupted, in order, and from then on stable).

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use rand::{Rng, SeedableRng};

use crate::common::*;

const PRODUCERS_COUNT: u32 = 4;
const BATCH_RECORDS_MIN: usize = 100;
const BATCH_RECORDS_MAX: usize = 500;
const ROUNDS_COUNT: u32 = 3;
/// How long producers run before the kill.
const PRODUCE_BEFORE_KILL_MS: u64 = 1_500;
const SHARDS_COUNT: i32 = 4;
/// Bound on waiting for a request to be in flight before the kill.
const KILL_WAIT_MS_MAX: u64 = 1_000;
const FILLER_BYTES_MAX: u64 = 200;
/// Pacing per producer, so the data volume (and the time and memory to
/// verify it) stays bounded however fast the server gets.
const PRODUCER_RECORDS_PER_SEC_MAX: u64 = 20_000;
/// The whole test must finish well under a minute.
const TEST_DURATION_MAX_MS: u64 = 50_000;

/// What a producer got acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    shard: String,
    seq: String,
}

/// Record identity: (producer, round, counter).
type RecordId = (u32, u32, u64);

fn partition_key(id: RecordId) -> String {
    format!("p{}-r{}-c{}", id.0, id.1, id.2)
}

/// A self-describing payload: header naming the record, then filler derived
/// from the counter, so any byte flip or truncation is detected.
fn payload(id: RecordId) -> Vec<u8> {
    let mut p = format!("{}|", partition_key(id)).into_bytes();
    let filler = (id.2 * 31 + u64::from(id.0) * 7) % FILLER_BYTES_MAX;
    p.extend((0..filler).map(|j| b'a' + ((id.2 + j) % 26) as u8));
    p
}

fn parse_payload(bytes: &[u8]) -> Option<RecordId> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, _) = text.split_once('|')?;
    let mut parts = head.split('-');
    let p = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let r = parts.next()?.strip_prefix('r')?.parse().ok()?;
    let c = parts.next()?.strip_prefix('c')?.parse().ok()?;
    let id = (p, r, c);
    (payload(id) == bytes).then_some(id)
}

#[derive(Default)]
struct RoundStats {
    in_flight: AtomicUsize,
    requests_ok: AtomicUsize,
    requests_failed: AtomicUsize,
    records_rejected: AtomicUsize,
}

async fn producer(
    client: Client,
    stream: String,
    producer_id: u32,
    round: u32,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<RecordId, Placement>>>,
    stats: Arc<RoundStats>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(producer_id * 1000 + round));
    let mut counter: u64 = 0;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let on_schedule_ms = counter * 1000 / PRODUCER_RECORDS_PER_SEC_MAX;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if on_schedule_ms > elapsed_ms {
            tokio::time::sleep(Duration::from_millis(on_schedule_ms - elapsed_ms)).await;
        }
        let n = rng.gen_range(BATCH_RECORDS_MIN..=BATCH_RECORDS_MAX);
        let ids: Vec<RecordId> = (0..n as u64)
            .map(|i| (producer_id, round, counter + i))
            .collect();
        counter += n as u64;
        let entries: Vec<PutRecordsRequestEntry> = ids
            .iter()
            .map(|&id| {
                PutRecordsRequestEntry::builder()
                    .partition_key(partition_key(id))
                    .data(Blob::new(payload(id)))
                    .build()
                    .expect("entry")
            })
            .collect();
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = client
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await;
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok(out) => {
                stats.requests_ok.fetch_add(1, Ordering::Relaxed);
                assert_eq!(out.records().len(), ids.len(), "one result per record");
                let mut acked = acked.lock().expect("acked lock");
                for (id, result) in ids.iter().zip(out.records()) {
                    match (
                        result.shard_id(),
                        result.sequence_number(),
                        result.error_code(),
                    ) {
                        (Some(shard), Some(seq), None) => {
                            acked.insert(
                                *id,
                                Placement {
                                    shard: shard.to_string(),
                                    seq: seq.to_string(),
                                },
                            );
                        }
                        _ => {
                            stats.records_rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Err(_) => {
                // The server is being killed (or throttled us): not acked.
                stats.requests_failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Everything in the stream, by record id, checking per-shard order,
/// uniqueness and integrity on the way.
async fn read_everything(
    client: &Client,
    stream: &str,
    shard_ids: &[String],
) -> (
    HashMap<RecordId, Placement>,
    BTreeMap<String, String>,
    usize,
) {
    let mut found: HashMap<RecordId, Placement> = HashMap::new();
    let mut max_seq_by_shard = BTreeMap::new();
    let mut foreign = 0;
    for shard in shard_ids {
        let records = read_shard(client, stream, shard)
            .await
            .unwrap_or_else(|e| panic!("reading {shard}: {e:#}"));
        let mut previous: Option<String> = None;
        for record in &records {
            let seq = record.sequence_number().to_string();
            if let Some(prev) = &previous {
                assert_eq!(
                    seq_cmp(prev, &seq),
                    CmpOrdering::Less,
                    "{shard}: sequence numbers not strictly increasing ({prev} then {seq})"
                );
            }
            previous = Some(seq.clone());
            let data = record.data().as_ref();
            let Some(id) = parse_payload(data) else {
                // Records written by the post-restart probes.
                if data.starts_with(b"probe-") {
                    foreign += 1;
                    continue;
                }
                panic!(
                    "{shard} seq {seq}: corrupt payload {:?}",
                    String::from_utf8_lossy(&data[..data.len().min(80)])
                );
            };
            assert_eq!(
                record.partition_key(),
                Some(partition_key(id).as_str()),
                "{shard} seq {seq}: partition key does not match payload"
            );
            let placement = Placement {
                shard: shard.clone(),
                seq: seq.clone(),
            };
            if let Some(first) = found.insert(id, placement) {
                panic!("record {id:?} appears twice: {first:?} and {shard}/{seq}");
            }
        }
        if let Some(last) = previous {
            max_seq_by_shard.insert(shard.clone(), last);
        }
    }
    (found, max_seq_by_shard, foreign)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_put_records_loses_no_acked_record() {
    let started = Instant::now();
    let mut server = start_server();
    let reader = sdk_client(&server.endpoint()).await;
    let stream = unique_name("crash");
    create_active(&reader, &stream, SHARDS_COUNT).await.unwrap();
    let shards = list_all_shards(&reader, &stream).await.unwrap();
    let shard_ids: Vec<String> = shards.iter().map(|s| s.shard_id().to_string()).collect();

    // Everything acked so far, and everything ever observed after a restart.
    let acked: Arc<Mutex<HashMap<RecordId, Placement>>> = Arc::default();
    let mut observed: HashMap<RecordId, Placement> = HashMap::new();
    let mut probes_count = 0;

    for round in 0..ROUNDS_COUNT {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RoundStats::default());
        let mut tasks = Vec::new();
        for producer_id in 0..PRODUCERS_COUNT {
            let client = sdk_client_no_retry(&server.endpoint()).await;
            tasks.push(tokio::spawn(producer(
                client,
                stream.clone(),
                producer_id,
                round,
                stop.clone(),
                acked.clone(),
                stats.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(PRODUCE_BEFORE_KILL_MS)).await;
        // Kill while at least one PutRecords is in flight.
        let wait_deadline = Instant::now() + Duration::from_millis(KILL_WAIT_MS_MAX);
        while stats.in_flight.load(Ordering::SeqCst) == 0 && Instant::now() < wait_deadline {
            tokio::task::yield_now().await;
        }
        let in_flight_at_kill = stats.in_flight.load(Ordering::SeqCst);
        server.kill9().expect("kill -9");
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("producer task");
        }
        let acked_now = acked.lock().unwrap().clone();
        eprintln!(
            "crash round {round}: {} acked in total, {in_flight_at_kill} requests in flight at the kill, requests ok {} failed {}, records rejected {}",
            acked_now.len(),
            stats.requests_ok.load(Ordering::Relaxed),
            stats.requests_failed.load(Ordering::Relaxed),
            stats.records_rejected.load(Ordering::Relaxed),
        );
        assert!(
            stats.requests_ok.load(Ordering::Relaxed) > 0,
            "round {round}: nothing acked"
        );

        server.restart().expect("restart after kill -9");
        wait_active(&reader, &stream).await.unwrap();
        let (found, max_seq_by_shard, foreign) =
            read_everything(&reader, &stream, &shard_ids).await;
        assert_eq!(foreign, probes_count, "probe records present exactly once");

        // Every acked record, at its acked place.
        let mut missing = Vec::new();
        for (id, placement) in &acked_now {
            match found.get(id) {
                Some(got) if got == placement => {}
                Some(got) => panic!("record {id:?} acked as {placement:?} but found as {got:?}"),
                None => missing.push((*id, placement.clone())),
            }
        }
        missing.sort_by_key(|m| m.0);
        assert!(
            missing.is_empty(),
            "round {round}: {} acked records lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        // What a reader saw once does not vanish or move later.
        for (id, placement) in &observed {
            assert_eq!(
                found.get(id),
                Some(placement),
                "observed record {id:?} changed"
            );
        }
        let unacked_present = found.len() - acked_now.len();
        eprintln!(
            "crash round {round}: {} records read, {unacked_present} present without ack",
            found.len()
        );
        observed = found;

        // New writes go after everything old, in every shard.
        for shard in &shards {
            let hash = shard
                .hash_key_range()
                .unwrap()
                .starting_hash_key()
                .to_string();
            let out = reader
                .put_record()
                .stream_name(&stream)
                .partition_key("probe")
                .explicit_hash_key(hash)
                .data(Blob::new(format!("probe-{round}-{}", shard.shard_id())))
                .send()
                .await
                .unwrap();
            assert_eq!(out.shard_id(), shard.shard_id());
            if let Some(max_old) = max_seq_by_shard.get(shard.shard_id()) {
                assert_eq!(
                    seq_cmp(max_old, out.sequence_number()),
                    CmpOrdering::Less,
                    "{}: new sequence number {} not after old max {max_old}",
                    shard.shard_id(),
                    out.sequence_number()
                );
            }
            probes_count += 1;
        }
        assert!(
            started.elapsed() < Duration::from_millis(TEST_DURATION_MAX_MS),
            "crash test too slow: {:?} after round {round}",
            started.elapsed()
        );
    }
}

#[test]
fn payload_round_trips_and_detects_corruption() {
    let id = (3, 1, 12345);
    let p = payload(id);
    assert_eq!(parse_payload(&p), Some(id));
    let mut flipped = p.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(parse_payload(&flipped), None);
    assert_eq!(parse_payload(&p[..p.len() - 1]), None);
}
