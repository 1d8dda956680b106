//! The internal reader against a real streams service over a temporary
//! directory: resharding followed parents-first, every record once, and
//! resuming from a saved checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use runnel_catalog::RedbCatalog;
use runnel_log::{Durability, Log, LogConfig};
use runnel_runtime::reader::{
    Checkpoint, ReadBatch, ReadRecord, ReaderError, StartingPosition, StreamReader,
};
use runnel_streams::api::{CreateStreamInput, MergeShardsInput, PutRecordInput, SplitShardInput};
use runnel_streams::{StreamsConfig, StreamsError, StreamsService};
use runnel_types::{Blob, Clock, ManualClock};

struct Fixture {
    service: Arc<StreamsService>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

fn open() -> Fixture {
    open_with(ManualClock::offset(), None)
}

fn open_with(clock: ManualClock, quotas: runnel_streams::quota::QuotaSetting) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let log = Log::open(
        LogConfig {
            dir: dir.path().join("log"),
            durability: Durability::None,
            preallocate_segments: false,
            ..LogConfig::default()
        },
        shared.clone(),
    )
    .unwrap();
    let catalog = RedbCatalog::open(&dir.path().join("catalog.redb")).unwrap();
    let service = StreamsService::new(
        StreamsConfig {
            account_id: "123456789012".into(),
            stream_transition_ms: 0,
            quotas,
            ..StreamsConfig::default()
        },
        shared.clone(),
        Arc::new(catalog),
        Arc::new(log),
        Arc::new(runnel_metrics::Registry::new(shared)),
    )
    .unwrap();
    Fixture {
        service: Arc::new(service),
        clock,
        _dir: dir,
    }
}

fn create(service: &StreamsService, name: &str, shards: i64) {
    service
        .create_stream(CreateStreamInput {
            stream_name: Some(name.into()),
            shard_count: Some(shards),
            ..Default::default()
        })
        .unwrap();
}

/// Puts `data` under partition key `pk`; returns the shard it went to.
async fn put(service: &StreamsService, stream: &str, pk: &str, data: &str) -> String {
    service
        .put_record(PutRecordInput {
            stream_name: Some(stream.into()),
            partition_key: Some(pk.into()),
            data: Some(Blob(data.as_bytes().to_vec())),
            ..Default::default()
        })
        .await
        .unwrap()
        .shard_id
}

/// Partition keys spread over the hash space (keys 0 and 2 hash into the
/// lower half, 1 and 3 into the upper, checked in `put_round`).
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];

async fn put_round(service: &StreamsService, stream: &str, tag: &str, n: usize) -> Vec<String> {
    let mut shards = Vec::new();
    for i in 0..n {
        let pk = KEYS[i % KEYS.len()];
        shards.push(put(service, stream, pk, &format!("{tag}{i:02}:{pk}")).await);
    }
    shards
}

/// Reads batches of at most `max` until one comes back empty.
fn drain(reader: &mut StreamReader, max: usize) -> (Vec<ReadRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut finished = Vec::new();
    for _ in 0..1_000 {
        let batch: ReadBatch = reader.read(max).unwrap();
        assert!(batch.records.len() <= max);
        assert!(!batch.throttled);
        if batch.records.is_empty() && batch.finished_shards.is_empty() {
            return (records, finished);
        }
        records.extend(batch.records);
        finished.extend(batch.finished_shards);
    }
    panic!("the reader never ran dry");
}

fn data(records: &[ReadRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
        .collect()
}

/// Per partition key, the data in the order it was read.
fn by_key(records: &[ReadRecord]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (r, d) in records.iter().zip(data(records)) {
        out.entry(r.partition_key.clone()).or_default().push(d);
    }
    out
}

fn expected(tags: &[(&str, usize)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tag, n) in tags {
        for i in 0..*n {
            let pk = KEYS[i % KEYS.len()];
            out.entry(pk.to_string())
                .or_default()
                .push(format!("{tag}{i:02}:{pk}"));
        }
    }
    out
}

#[tokio::test]
async fn reads_across_a_split_and_a_merge_once_in_order_and_resumes() {
    let f = open();
    let s = &*f.service;
    create(s, "orders", 1);
    let before = put_round(s, "orders", "a", 20).await;
    assert!(before.iter().all(|id| id == "shardId-000000000000"));
    let svc = f.service.clone();
    // Control-plane calls block (catalog fsync, the write gate): off the runtime.
    tokio::task::spawn_blocking(move || {
        svc.split_shard(SplitShardInput {
            stream_name: Some("orders".into()),
            shard_to_split: Some("shardId-000000000000".into()),
            new_starting_hash_key: Some((1u128 << 127).to_string()),
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let after = put_round(s, "orders", "b", 20).await;
    let children: BTreeSet<&String> = after.iter().collect();
    assert_eq!(
        children.into_iter().cloned().collect::<Vec<_>>(),
        ["shardId-000000000001", "shardId-000000000002"],
        "the keys must spread over both children"
    );

    let mut reader = StreamReader::new(
        f.service.clone(),
        "orders",
        StartingPosition::TrimHorizon,
        None,
    );
    let (records, finished) = drain(&mut reader, 7);
    assert_eq!(records.len(), 40);
    assert_eq!(finished, ["shardId-000000000000"]);
    // Every record once, each key's records in the order they were put.
    assert_eq!(by_key(&records), expected(&[("a", 20), ("b", 20)]));
    // All of the parent before anything of a child.
    let first_child = records
        .iter()
        .position(|r| r.shard_id != "shardId-000000000000")
        .unwrap();
    assert_eq!(first_child, 20);
    assert!(records[..20].iter().all(|r| r.data.starts_with(b"a")));
    // Sequence numbers grow within each shard; arrival times are real.
    for shard in ["shardId-000000000001", "shardId-000000000002"] {
        let seqs: Vec<u128> = records
            .iter()
            .filter(|r| r.shard_id == shard)
            .map(|r| r.sequence_number.parse().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{shard}: {seqs:?}");
    }
    let now = f.clock.now_ms();
    assert!(records
        .iter()
        .all(|r| r.approximate_arrival_ms <= now && r.approximate_arrival_ms + 60_000 > now));

    let checkpoint = reader.checkpoint().clone();
    assert_eq!(checkpoint.start, Some(StartingPosition::TrimHorizon));
    assert_eq!(
        checkpoint.finished.iter().collect::<Vec<_>>(),
        ["shardId-000000000000"]
    );
    let last_of = |shard: &str| {
        records
            .iter()
            .rev()
            .find(|r| r.shard_id == shard)
            .map(|r| r.sequence_number.clone())
    };
    assert_eq!(
        checkpoint.shards,
        ["shardId-000000000001", "shardId-000000000002"]
            .into_iter()
            .map(|s| (s.to_string(), last_of(s).unwrap()))
            .collect::<BTreeMap<_, _>>()
    );
    let saved = serde_json::to_string(&checkpoint).unwrap();

    // Newer records, then a merge of the two children, then more.
    put_round(s, "orders", "c", 8).await;
    let svc = f.service.clone();
    tokio::task::spawn_blocking(move || {
        svc.merge_shards(MergeShardsInput {
            stream_name: Some("orders".into()),
            shard_to_merge: Some("shardId-000000000001".into()),
            adjacent_shard_to_merge: Some("shardId-000000000002".into()),
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let merged = put_round(s, "orders", "d", 8).await;
    assert!(merged.iter().all(|id| id == "shardId-000000000003"));

    let restored: Checkpoint = serde_json::from_str(&saved).unwrap();
    // The configured start does not matter once the checkpoint has one.
    let mut resumed = StreamReader::new(
        f.service.clone(),
        "orders",
        StartingPosition::Latest,
        Some(restored),
    );
    let (records, finished) = drain(&mut resumed, 5);
    assert_eq!(by_key(&records), expected(&[("c", 8), ("d", 8)]));
    let mut finished = finished;
    finished.sort();
    assert_eq!(finished, ["shardId-000000000001", "shardId-000000000002"]);
    let first_merged = records
        .iter()
        .position(|r| r.shard_id == "shardId-000000000003")
        .unwrap();
    assert_eq!(first_merged, 8, "both parents before the merged child");

    // The caller's copy, advanced batch by batch, ends where the reader is.
    let mut copy: Checkpoint = serde_json::from_str(&saved).unwrap();
    let mut again = StreamReader::new(
        f.service.clone(),
        "orders",
        StartingPosition::TrimHorizon,
        Some(copy.clone()),
    );
    loop {
        let batch = again.read(3).unwrap();
        if batch.records.is_empty() && batch.finished_shards.is_empty() {
            break;
        }
        copy.apply(&batch);
    }
    assert_eq!(&copy, again.checkpoint());
    assert_eq!(&copy, resumed.checkpoint());
}

#[tokio::test]
async fn latest_reads_only_what_arrives_after_the_start_and_resumes_there() {
    let f = open();
    let s = &*f.service;
    create(s, "events", 2);
    put_round(s, "events", "old", 8).await;
    let mut reader = StreamReader::new(f.service.clone(), "events", StartingPosition::Latest, None);
    let batch = reader.read(100).unwrap();
    assert!(batch.records.is_empty());
    assert_eq!(batch.start, Some(StartingPosition::Latest));
    assert_eq!(batch.start_positions.len(), 2);
    // Persisted before anything arrived: a resumed reader starts there.
    let saved = reader.checkpoint().clone();
    let mut applied = Checkpoint::default();
    applied.apply(&batch);
    assert_eq!(applied, saved);
    put_round(s, "events", "new", 8).await;
    let (records, _) = drain(&mut reader, 100);
    assert_eq!(by_key(&records), expected(&[("new", 8)]));
    // A shard created after the start is new: read from its beginning.
    let svc = f.service.clone();
    tokio::task::spawn_blocking(move || {
        svc.split_shard(SplitShardInput {
            stream_name: Some("events".into()),
            shard_to_split: Some("shardId-000000000001".into()),
            new_starting_hash_key: Some(((1u128 << 127) + (1u128 << 126)).to_string()),
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    let shards = put_round(s, "events", "newer", 8).await;
    assert!(
        shards.iter().any(|id| id == "shardId-000000000003"),
        "{shards:?}"
    );
    let (records, finished) = drain(&mut reader, 100);
    assert_eq!(by_key(&records), expected(&[("newer", 8)]));
    assert_eq!(finished, ["shardId-000000000001"]);

    let mut resumed = StreamReader::new(
        f.service.clone(),
        "events",
        StartingPosition::TrimHorizon,
        Some(saved),
    );
    let (records, _) = drain(&mut resumed, 100);
    assert_eq!(by_key(&records), expected(&[("new", 8), ("newer", 8)]));
}

#[tokio::test]
async fn at_timestamp_and_a_missing_stream() {
    let f = open();
    let s = &*f.service;
    create(s, "t", 1);
    put_round(s, "t", "early", 4).await;
    f.clock.advance_ms(10_000);
    let from = f.clock.now_ms();
    put_round(s, "t", "late", 4).await;
    let mut reader = StreamReader::new(
        f.service.clone(),
        "arn:aws:kinesis:us-east-1:123456789012:stream/t",
        StartingPosition::AtTimestamp { ms: from },
        None,
    );
    let (records, _) = drain(&mut reader, 100);
    assert_eq!(by_key(&records), expected(&[("late", 4)]));

    let mut missing = StreamReader::new(
        f.service.clone(),
        "nope",
        StartingPosition::TrimHorizon,
        None,
    );
    let err = missing.read(10).unwrap_err();
    assert!(
        matches!(err, ReaderError::List { ref source, .. } if matches!(source, StreamsError::ResourceNotFound(_))),
        "{err:?}"
    );
    assert_eq!(
        err.streams_error().to_string(),
        "Stream nope under account 123456789012 not found."
    );
}

#[tokio::test]
async fn a_throttled_shard_is_skipped_and_continues_where_it_was() {
    let f = open_with(ManualClock::frozen(1_700_000_000_000), Some(1.0));
    let s = &*f.service;
    create(s, "q", 1);
    put_round(s, "q", "r", 12).await;
    let mut reader = StreamReader::new(f.service.clone(), "q", StartingPosition::TrimHorizon, None);
    let mut got = Vec::new();
    let mut throttled = 0;
    // AWS's 5 GetRecords per second per shard; the clock stands still.
    for _ in 0..8 {
        let batch = reader.read(1).unwrap();
        throttled += usize::from(batch.throttled);
        got.extend(batch.records);
    }
    assert_eq!(got.len(), 5);
    assert_eq!(throttled, 3);
    f.clock.advance_ms(1_000);
    let (rest, _) = drain(&mut reader, 100);
    got.extend(rest);
    assert_eq!(by_key(&got), expected(&[("r", 12)]));
}
