//! In-crate tests: unit, recovery (proptest), fault injection, retention.

mod basic;
mod compact;
mod compact_crash;
mod corruption;
pub(crate) mod faults;
mod index;
mod pipeline;
mod recovery;
mod retention;

use crate::{Log, LogConfig, RecordIn, ShardKey};
use runnel_types::{Clock, ManualClock};
use std::path::Path;
use std::sync::Arc;

/// Segments are not preallocated here, so tests can read commit boundaries
/// off the file length; `pipeline.rs` runs with preallocation.
pub fn cfg(dir: &Path) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        preallocate_segments: false,
        ..Default::default()
    }
}

pub fn key(stream_uid: u64, shard_index: u32) -> ShardKey {
    ShardKey {
        stream_uid,
        shard_index,
    }
}

pub fn rec(s: &str) -> RecordIn {
    RecordIn {
        partition_key: format!("pk-{s}"),
        data: bytes::Bytes::from(s.as_bytes().to_vec()),
    }
}

pub fn clock(ms: u64) -> (Arc<ManualClock>, Arc<dyn Clock>) {
    let c = Arc::new(ManualClock::frozen(ms));
    (c.clone(), c)
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn open(config: LogConfig, clock: &Arc<dyn Clock>) -> Log {
    Log::open(config, clock.clone()).unwrap()
}

/// Every record of a shard, read in small pages to exercise the page logic.
pub fn read_all(log: &Log, k: ShardKey) -> Vec<crate::StoredRecord> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let o = log.read(k, pos, 7, 1 << 20, 0).unwrap();
        if o.records.is_empty() {
            assert_eq!(o.next_position, log.end_position(k).max(pos));
            return out;
        }
        assert!(o.next_position > pos);
        pos = o.next_position;
        out.extend(o.records);
    }
}
