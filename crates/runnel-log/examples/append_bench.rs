//! Measures append throughput and commit latency with fsync, shards
//! interleaved in one log. Used for the numbers in docs/storage.md.
//!
//! cargo run --release -p runnel-log --example append_bench -- [seconds] [dir]

use runnel_log::{Durability, Log, LogConfig, RecordIn, ShardKey};
use runnel_types::{Clock, SystemClock};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORDS_PER_APPEND: usize = 10;
const RECORD_BYTES: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = args
        .get(2)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("durability shards producers | records/s  appends/s  syncs/s | append p50 ms  p99 ms");
    for durability in [Durability::Fsync, Durability::None] {
        for shards in [1u32, 4, 1000] {
            for producers in [1usize, 64] {
                let dir = tempfile::tempdir_in(&base)?;
                let config = LogConfig {
                    dir: dir.path().to_path_buf(),
                    durability,
                    ..LogConfig::default()
                };
                let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                let log = Arc::new(Log::open(config, clock)?);
                let started = Instant::now();
                let deadline = started + Duration::from_secs(secs);
                let lat = rt.block_on(async {
                    let mut tasks = Vec::new();
                    for p in 0..producers {
                        let log = log.clone();
                        tasks.push(tokio::spawn(async move {
                            let mut lat = Vec::new();
                            let mut i = 0usize;
                            while Instant::now() < deadline {
                                let shard = ((p + i * producers) % shards as usize) as u32;
                                let recs = (0..RECORDS_PER_APPEND)
                                    .map(|r| RecordIn {
                                        partition_key: format!("pk-{r}"),
                                        data: bytes::Bytes::from(vec![b'x'; RECORD_BYTES]),
                                    })
                                    .collect();
                                let t = Instant::now();
                                log.append(vec![(
                                    ShardKey {
                                        stream_uid: 1,
                                        shard_index: shard,
                                    },
                                    recs,
                                )])
                                .await?;
                                lat.push(t.elapsed());
                                i += 1;
                            }
                            Ok::<_, runnel_log::LogError>(lat)
                        }));
                    }
                    let mut all = Vec::new();
                    for t in tasks {
                        all.extend(t.await.map_err(|e| e.to_string())??);
                    }
                    Ok::<_, Box<dyn std::error::Error>>(all)
                })?;
                let elapsed = started.elapsed().as_secs_f64();
                let mut lat = lat;
                lat.sort();
                let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
                let s = log.stats();
                println!(
                    "{:<10} {:>6} {:>9} | {:>9.0} {:>10.0} {:>8.0} | {:>13.3} {:>7.3}",
                    format!("{durability:?}"),
                    shards,
                    producers,
                    s.records as f64 / elapsed,
                    lat.len() as f64 / elapsed,
                    s.syncs as f64 / elapsed,
                    pct(0.5),
                    pct(0.99)
                );
            }
        }
    }
    Ok(())
}
