//! Start-up time, memory and open files against the size of the log
//! (docs/storage.md, "Bounded by design"). Two steps, run as separate
//! processes so the second one's memory is its own:
//!
//! cargo run --release -p runnel-log --example scale -- write DIR GIB SHARDS SEGMENT_MIB
//! cargo run --release -p runnel-log --example scale -- open DIR SHARDS [READS]
//!
//! `write` fills DIR with GIB GiB of 1 KiB records spread evenly over
//! SHARDS shards (one stream per 100 shards) in segments of SEGMENT_MIB MiB.
//! `open` opens it and prints the open time, resident memory, open file
//! descriptors, then the same after READS random reads (default 2000) and
//! after reading 20 shards through from the start.

use runnel_log::{Durability, Log, LogConfig, RecordIn, ShardKey};
use runnel_types::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const RECORD_BYTES: usize = 1024;
const RECORDS_PER_GROUP: usize = 4;
const GROUPS_PER_APPEND: usize = 128;

fn key(shard: u32) -> ShardKey {
    ShardKey {
        stream_uid: u64::from(shard / 100) + 1,
        shard_index: shard % 100,
    }
}

fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn report(what: &str, started: Instant) {
    println!(
        "{what}: {:.3} s, rss {} MiB (peak {} MiB), open fds {}",
        started.elapsed().as_secs_f64(),
        proc_status("VmRSS:") / 1024,
        proc_status("VmHWM:") / 1024,
        open_fds()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: scale write DIR GIB SHARDS SEGMENT_MIB | scale open DIR SHARDS [READS]";
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let num = |i: usize| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(args.get(i).ok_or(usage)?.parse::<u64>()?)
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match mode.as_str() {
        "write" => {
            let (gib, shards, seg_mib) = (num(3)?, num(4)? as u32, num(5)?);
            let config = LogConfig {
                dir: PathBuf::from(dir),
                durability: Durability::None,
                segment_bytes_max: seg_mib << 20,
                ..LogConfig::default()
            };
            let log = Log::open(config, clock)?;
            let total = gib << 30;
            let data = bytes::Bytes::from(vec![b'x'; RECORD_BYTES]);
            let started = Instant::now();
            let mut written = 0u64;
            let mut shard = 0u32;
            rt.block_on(async {
                while written < total {
                    let groups = (0..GROUPS_PER_APPEND)
                        .map(|_| {
                            shard = (shard + 1) % shards;
                            let recs = (0..RECORDS_PER_GROUP)
                                .map(|_| RecordIn {
                                    partition_key: "k".into(),
                                    data: data.clone(),
                                })
                                .collect();
                            (key(shard), recs)
                        })
                        .collect();
                    log.append(groups).await?;
                    written += (GROUPS_PER_APPEND * RECORDS_PER_GROUP * RECORD_BYTES) as u64;
                }
                Ok::<_, runnel_log::LogError>(())
            })?;
            let stats = log.stats();
            drop(log);
            println!(
                "wrote {} MiB in {} segments over {shards} shards in {:.1} s",
                written >> 20,
                stats.segments,
                started.elapsed().as_secs_f64()
            );
        }
        "open" => {
            let shards = num(3)? as u32;
            let reads = num(4).unwrap_or(2000);
            let config = LogConfig {
                dir: PathBuf::from(dir),
                ..LogConfig::default()
            };
            report("before open", Instant::now());
            let started = Instant::now();
            let log = Log::open(config, clock)?;
            report("open", started);
            let started = Instant::now();
            let mut got = 0usize;
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..reads {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = key((x % u64::from(shards)) as u32);
                let end = log.end_position(k);
                let pos = if end == 0 { 0 } else { (x >> 20) % end };
                got += log.read(k, pos, 10, 1 << 20, 0)?.records.len();
            }
            report(&format!("{reads} random reads ({got} records)"), started);
            // Consumers reading shards through from the start, 500 records a call.
            let started = Instant::now();
            let mut got = 0usize;
            for shard in 0..shards.min(20) {
                let (k, mut pos) = (key(shard), 0u64);
                loop {
                    let o = log.read(k, pos, 500, 1 << 20, 0)?;
                    if o.records.is_empty() {
                        break;
                    }
                    got += o.records.len();
                    pos = o.next_position;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            report(
                &format!(
                    "20 shards read through ({got} records, {:.0} records/s)",
                    got as f64 / secs
                ),
                started,
            );
            println!("segments {}", log.stats().segments);
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
