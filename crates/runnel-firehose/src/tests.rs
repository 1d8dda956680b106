//! The service over a real streams service in a temporary directory: a
//! crash after an object is in place but before its position is saved
//! rewrites that same object, once, and nothing else.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runnel_catalog::RedbCatalog;
use runnel_log::{Durability, Log, LogConfig};
use runnel_runtime::{FunctionRegistry, Supervisor};
use runnel_streams::{StreamsConfig, StreamsService};
use runnel_types::{Clock, ManualClock};

use crate::delivery::sink::{LocalDirectory, ObjectSink, SinkError};
use crate::{FirehoseConfig, FirehoseService};

/// Writes every object; the first call then waits for `release` and fails,
/// as if the process died between the rename and saving the position.
struct CrashOnce {
    inner: LocalDirectory,
    calls: AtomicUsize,
    release: AtomicBool,
}

impl ObjectSink for CrashOnce {
    fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), SinkError> {
        self.inner.put_object(bucket, key, body)?;
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            while !self.release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(SinkError::Io {
                bucket: bucket.into(),
                key: key.into(),
                source: std::io::Error::other("simulated crash after the rename"),
            });
        }
        Ok(())
    }
}

fn objects(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

async fn call(svc: &Arc<FirehoseService>, op: &str, body: serde_json::Value) -> serde_json::Value {
    let out = svc.handle(op, body.to_string().as_bytes()).await.unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn batch(tag: &str, n: usize) -> (serde_json::Value, Vec<u8>) {
    use base64::Engine as _;
    let mut all = Vec::new();
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let data = format!("{tag}-{i}\n").into_bytes();
            all.extend_from_slice(&data);
            serde_json::json!({ "Data": base64::engine::general_purpose::STANDARD.encode(&data) })
        })
        .collect();
    (
        serde_json::json!({ "DeliveryStreamName": "d", "Records": records }),
        all,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_rename_rewrites_the_same_object_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::offset());
    let log = Log::open(
        LogConfig {
            dir: dir.path().join("log"),
            durability: Durability::None,
            preallocate_segments: false,
            ..LogConfig::default()
        },
        clock.clone(),
    )
    .unwrap();
    let catalog = RedbCatalog::open(&dir.path().join("catalog.redb")).unwrap();
    let streams = Arc::new(
        StreamsService::new(
            StreamsConfig {
                account_id: "123456789012".into(),
                stream_transition_ms: 0,
                ..StreamsConfig::default()
            },
            clock.clone(),
            Arc::new(catalog),
            Arc::new(log),
            Arc::new(runnel_metrics::Registry::new(clock.clone())),
        )
        .unwrap(),
    );
    let buckets = dir.path().join("buckets");
    let sink = Arc::new(CrashOnce {
        inner: LocalDirectory::new(&buckets),
        calls: AtomicUsize::new(0),
        release: AtomicBool::new(false),
    });
    let svc = FirehoseService::open_with_sink(
        FirehoseConfig {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            buckets_dir: buckets.clone(),
            transition_ms: 0,
        },
        streams,
        Supervisor::new(clock),
        Arc::new(FunctionRegistry::new("us-east-1", "123456789012")),
        sink.clone(),
    )
    .unwrap();
    call(
        &svc,
        "CreateDeliveryStream",
        serde_json::json!({
            "DeliveryStreamName": "d",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::123456789012:role/r",
                "BucketARN": "arn:aws:s3:::bkt",
                "BufferingHints": {"IntervalInSeconds": 0}
            }
        }),
    )
    .await;
    let (first, first_bytes) = batch("one", 20);
    let out = call(&svc, "PutRecordBatch", first).await;
    assert_eq!(out["FailedPutCount"], 0);
    // The first object is in place; its position is not saved yet.
    while sink.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (second, second_bytes) = batch("two", 7);
    call(&svc, "PutRecordBatch", second).await;
    sink.release.store(true, Ordering::SeqCst);
    let bucket = buckets.join("bkt");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sink.calls.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            objects(&bucket)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = objects(&bucket);
    let bodies: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(bodies.contains(&first_bytes.as_slice()));
    assert!(bodies.contains(&second_bytes.as_slice()));
    let health = svc.supervisor.health("firehose/d").unwrap();
    assert_eq!(health.restarts, 1);
    // Nothing more is written later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.calls.load(Ordering::SeqCst), 3);
    svc.supervisor.shutdown().await;
}
