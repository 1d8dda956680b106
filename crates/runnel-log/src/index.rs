//! In-memory state, in two levels so that memory does not grow with the
//! amount of data kept:
//! - always in memory: per shard its counters and the frame index of the
//!   active segment; per sealed segment its size and, per stream with data
//!   in it, bytes and first/last timestamps (all retention and compaction
//!   planning need); and the sorted list of sealed segment ids;
//! - on demand, in caches bounded in bytes: a sealed segment's detail (its
//!   per-shard spans and its shard end table, from the sidecar), a shard's
//!   frame list in a sealed segment, and open segment files.
//!
//! The shard end table of a sealed segment gives every shard's next position
//! (and last timestamp) when it was sealed. It never decreases from one
//! segment to the next, so the segment holding a position is found by a
//! binary search over the sealed ids (`read.rs`).

use crate::fs::FsFile;
use crate::ShardKey;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Where one frame lives in a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLoc {
    pub first_position: u64,
    pub record_count: u32,
    pub len: u32,
    pub offset: u64,
    pub timestamp_ms: u64,
}

impl FrameLoc {
    pub fn end_position(&self) -> u64 {
        self.first_position + u64::from(self.record_count)
    }
}

/// Summary of one shard's frames in one sealed segment; the frames
/// themselves are in the segment's sidecar at `frames_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedSpan {
    pub segment_id: u64,
    pub first_position: u64,
    pub end_position: u64,
    pub first_timestamp_ms: u64,
    pub last_timestamp_ms: u64,
    pub frames_offset: u64,
    pub frame_count: u32,
    pub frames_crc: u32,
    /// Bytes of this shard's frames in the segment; 0 if unknown (version 1 sidecar).
    pub bytes: u32,
}

/// One stream's data in one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamAgg {
    /// Bytes of its frames; 0 if unknown (read from a version 1 sidecar).
    pub bytes: u64,
    pub first_ts: u64,
    pub last_ts: u64,
}

impl StreamAgg {
    pub fn add(&mut self, bytes: u64, first_ts: u64, last_ts: u64) {
        if self.bytes == 0 && self.last_ts == 0 {
            self.first_ts = first_ts;
        }
        self.bytes += bytes;
        self.first_ts = self.first_ts.min(first_ts);
        self.last_ts = self.last_ts.max(last_ts);
    }
}

/// The second level for one sealed segment, read from its sidecar.
#[derive(Debug, Default)]
pub struct SegmentDetail {
    /// Sorted by shard.
    pub spans: Vec<(ShardKey, SealedSpan)>,
    /// Every shard's (next position, last timestamp) when the segment was
    /// sealed, sorted by shard.
    pub ends: Vec<(ShardKey, u64, u64)>,
}

impl SegmentDetail {
    pub fn span(&self, shard: ShardKey) -> Option<SealedSpan> {
        self.spans
            .binary_search_by_key(&shard, |(k, _)| *k)
            .ok()
            .map(|i| self.spans[i].1)
    }

    /// (next position, last timestamp) of `shard` at the end of the segment;
    /// zeros for a shard that did not exist yet.
    pub fn end(&self, shard: ShardKey) -> (u64, u64) {
        self.ends
            .binary_search_by_key(&shard, |(k, _, _)| *k)
            .ok()
            .map_or((0, 0), |i| (self.ends[i].1, self.ends[i].2))
    }

    fn weight(&self) -> usize {
        64 + self.spans.len() * std::mem::size_of::<(ShardKey, SealedSpan)>()
            + self.ends.len() * std::mem::size_of::<(ShardKey, u64, u64)>()
    }
}

#[derive(Default, Debug)]
pub struct ShardState {
    pub next_position: u64,
    pub last_timestamp_ms: u64,
    /// Frames of this shard in the active segment, sorted by position.
    pub active: Vec<FrameLoc>,
}

pub struct SegmentMeta {
    pub bytes: u64,
    /// Each stream with data in this segment; all retention and compaction
    /// planning need to decide what can go.
    pub streams: HashMap<u64, StreamAgg>,
}

pub struct Index {
    pub shards: HashMap<ShardKey, ShardState>,
    pub segments: BTreeMap<u64, SegmentMeta>,
    pub active_id: u64,
    pub active_file: Option<Arc<dyn FsFile>>,
    /// Ids of the sealed segments, ascending; replaced (not edited) on change
    /// so a reader can take it and let go of the lock.
    pub sealed_ids: Arc<Vec<u64>>,
    /// Bumped whenever the set of sealed segments or a sealed segment's
    /// content changes (seal, deletion, compaction).
    pub sealed_epoch: u64,
    /// Streams dropped since start; appends to them are refused.
    pub dropped: HashSet<u64>,
}

impl Index {
    /// Every shard's (next position, last timestamp), sorted: the shard
    /// table a new segment starts with.
    pub fn shard_table(&self) -> Vec<(ShardKey, u64, u64)> {
        let mut table: Vec<(ShardKey, u64, u64)> = self
            .shards
            .iter()
            .map(|(k, s)| (*k, s.next_position, s.last_timestamp_ms))
            .collect();
        table.sort_unstable_by_key(|(k, _, _)| *k);
        table
    }

    pub fn active_file(&self) -> Option<Arc<dyn FsFile>> {
        self.active_file.clone()
    }

    /// Recomputes `sealed_ids` from `segments` and bumps the epoch.
    pub fn sealed_changed(&mut self) {
        let active = self.active_id;
        self.sealed_ids = Arc::new(
            self.segments
                .keys()
                .copied()
                .filter(|id| *id != active)
                .collect(),
        );
        self.sealed_epoch += 1;
    }
}

/// A FIFO cache bounded by the total weight of its entries, each tagged
/// with a check value; `get` only serves an entry whose check matches.
pub struct WeightedCache<K, V> {
    map: HashMap<K, (u64, V, usize)>,
    order: VecDeque<K>,
    weight: usize,
    weight_max: usize,
}

impl<K: std::hash::Hash + Eq + Copy, V: Clone> WeightedCache<K, V> {
    pub fn new(weight_max: usize) -> Self {
        WeightedCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            weight_max: weight_max.max(1),
        }
    }

    pub fn get(&self, k: &K, check: u64) -> Option<V> {
        match self.map.get(k) {
            Some((c, v, _)) if *c == check => Some(v.clone()),
            _ => None,
        }
    }

    pub fn insert(&mut self, k: K, check: u64, v: V, weight: usize) {
        if let Some((_, _, w)) = self.map.insert(k, (check, v, weight)) {
            self.weight -= w;
        } else {
            self.order.push_back(k);
        }
        self.weight += weight;
        while self.weight > self.weight_max && self.map.len() > 1 {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, _, w)) = self.map.remove(&old) {
                self.weight -= w;
            }
        }
    }

    pub fn remove_where(&mut self, f: impl Fn(&K) -> bool) {
        let mut freed = 0;
        self.map.retain(|k, (_, _, w)| {
            let drop = f(k);
            if drop {
                freed += *w;
            }
            !drop
        });
        self.weight -= freed;
        self.order.retain(|k| !f(k));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn weight(&self) -> usize {
        self.weight
    }
}

/// The caches of the second level, all keyed by segment id first.
pub struct Caches {
    /// (segment, shard) → frame list, checked by the list's checksum.
    pub frames: WeightedCache<(u64, ShardKey), Arc<Vec<FrameLoc>>>,
    /// segment → detail. Like `files`, filled only by a load that no
    /// deletion or compaction ran across (`Shared::layout_generation`), and
    /// emptied for a segment when one changes it.
    pub details: WeightedCache<u64, Arc<SegmentDetail>>,
    /// segment → open file (weight 1 each).
    pub files: WeightedCache<u64, Arc<dyn FsFile>>,
}

impl Caches {
    pub fn new(frames_bytes_max: usize, details_bytes_max: usize, files_max: usize) -> Self {
        Caches {
            frames: WeightedCache::new(frames_bytes_max),
            details: WeightedCache::new(details_bytes_max),
            files: WeightedCache::new(files_max),
        }
    }

    pub fn frames_weight(frames: &[FrameLoc]) -> usize {
        64 + std::mem::size_of_val(frames)
    }

    pub fn detail_weight(d: &SegmentDetail) -> usize {
        d.weight()
    }

    pub fn remove_segment(&mut self, segment_id: u64) {
        self.frames.remove_where(|k| k.0 == segment_id);
        self.details.remove_where(|k| *k == segment_id);
        self.files.remove_where(|k| *k == segment_id);
    }
}
