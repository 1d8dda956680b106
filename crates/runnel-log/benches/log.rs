//! Append (one commit of 500 x 100 B records across 4 shards, fsync on and
//! off) and sequential read. Kept small so it runs in seconds.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use runnel_log::{Durability, Log, LogConfig, RecordIn, ShardKey};
use runnel_types::{Clock, SystemClock};
use std::sync::Arc;
use std::time::Duration;

const RECORDS_PER_COMMIT: usize = 500;
const RECORD_BYTES: usize = 100;
const SHARDS: u32 = 4;

fn groups() -> Vec<(ShardKey, Vec<RecordIn>)> {
    let per = RECORDS_PER_COMMIT / SHARDS as usize;
    (0..SHARDS)
        .map(|s| {
            let key = ShardKey {
                stream_uid: 1,
                shard_index: s,
            };
            let recs = (0..per)
                .map(|i| RecordIn {
                    partition_key: format!("pk-{i}"),
                    data: bytes::Bytes::from(vec![b'x'; RECORD_BYTES]),
                })
                .collect();
            (key, recs)
        })
        .collect()
}

fn open(dir: &std::path::Path, durability: Durability) -> Log {
    let config = LogConfig {
        dir: dir.to_path_buf(),
        durability,
        ..LogConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Log::open(config, clock).expect("open log")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("append_500x100B_4_shards");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(RECORDS_PER_COMMIT as u64));
    for (name, durability) in [("fsync", Durability::Fsync), ("none", Durability::None)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), durability);
        g.bench_function(name, |b| {
            b.iter_batched(
                groups,
                |g| rt.block_on(log.append(g)).expect("append"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), Durability::None);
    for _ in 0..20 {
        rt.block_on(log.append(groups())).expect("append");
    }
    let key = ShardKey {
        stream_uid: 1,
        shard_index: 0,
    };
    let mut g = c.benchmark_group("read");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_records_from_position_0", |b| {
        b.iter(|| {
            let o = log.read(key, 0, 1000, 1 << 20, 0).expect("read");
            assert_eq!(o.records.len(), 1000);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
