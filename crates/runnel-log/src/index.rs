//! In-memory state: per-shard positions, the full frame index of the active
//! segment, one summary span per (shard, sealed segment), and a small
//! bounded cache of sidecar frame indexes loaded on demand.

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

#[derive(Default, Debug)]
pub struct ShardState {
    pub next_position: u64,
    pub last_timestamp_ms: u64,
    /// Sorted by position (and so by segment id).
    pub sealed: Vec<SealedSpan>,
    /// Frames of this shard in the active segment, sorted by position.
    pub active: Vec<FrameLoc>,
}

pub struct SegmentMeta {
    pub file: Arc<dyn FsFile>,
    pub bytes: u64,
    /// Newest frame timestamp of each stream with data in this segment;
    /// all retention needs to decide whether the segment can go.
    pub stream_last_ts: HashMap<u64, u64>,
}

pub struct Index {
    pub shards: HashMap<ShardKey, ShardState>,
    pub segments: BTreeMap<u64, SegmentMeta>,
    pub active_id: u64,
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
        self.segments.get(&self.active_id).map(|m| m.file.clone())
    }
}

/// (checksum of the frame list, the frame list).
type CachedFrames = (u32, Arc<Vec<FrameLoc>>);

/// A FIFO-bounded cache of (segment, shard) frame indexes read from sidecars.
/// Each entry remembers the checksum of the frame list it was read for, so a
/// list read for a span that compaction has since replaced is never served
/// for the new span of the same segment id.
pub struct SidecarCache {
    map: HashMap<(u64, ShardKey), CachedFrames>,
    order: VecDeque<(u64, ShardKey)>,
    entries_max: usize,
}

impl SidecarCache {
    pub fn new(entries_max: usize) -> Self {
        SidecarCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            entries_max: entries_max.max(1),
        }
    }

    pub fn get(&self, span: &SealedSpan, shard: ShardKey) -> Option<Arc<Vec<FrameLoc>>> {
        match self.map.get(&(span.segment_id, shard)) {
            Some((crc, frames)) if *crc == span.frames_crc => Some(frames.clone()),
            _ => None,
        }
    }

    pub fn insert(&mut self, span: &SealedSpan, shard: ShardKey, frames: Arc<Vec<FrameLoc>>) {
        let k = (span.segment_id, shard);
        if self.map.insert(k, (span.frames_crc, frames)).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > self.entries_max {
            match self.order.pop_front() {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => break,
            }
        }
    }

    pub fn remove_segment(&mut self, segment_id: u64) {
        self.map.retain(|k, _| k.0 != segment_id);
        self.order.retain(|k| k.0 != segment_id);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}
