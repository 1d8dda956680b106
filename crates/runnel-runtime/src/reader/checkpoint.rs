//! Where a reader is in a stream: what the caller persists and resumes from.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Where shards with no position of their own start reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    /// The oldest record still retained.
    TrimHorizon,
    /// Only records that arrive after the reader first reads.
    Latest,
    /// Records that arrived at or after `ms` (ms since the epoch).
    AtTimestamp { ms: u64 },
}

/// Per shard, the sequence number of the last record handed over, and the
/// shards read to their end. Serialises to JSON (or anything serde speaks);
/// where it is stored is the caller's business.
///
/// `start` is fixed when a reader first uses the checkpoint; a reader
/// resumed from it ignores its own. A `Latest` start records every open
/// shard's end as its position at that moment (so a checkpoint saved before
/// anything arrived still resumes exactly there), and shards created later
/// are read from their start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Checkpoint {
    pub start: Option<StartingPosition>,
    /// Shard id → sequence number of the last record delivered from it.
    pub shards: BTreeMap<String, String>,
    /// Shards read to their end (closed by resharding).
    pub finished: BTreeSet<String>,
}

impl Checkpoint {
    /// Records that `sequence_number` of `shard_id` was delivered.
    pub fn advance(&mut self, shard_id: &str, sequence_number: &str) {
        self.shards
            .insert(shard_id.to_owned(), sequence_number.to_owned());
    }

    /// Records that `shard_id` was read to its end.
    pub fn finish(&mut self, shard_id: &str) {
        self.shards.remove(shard_id);
        self.finished.insert(shard_id.to_owned());
    }

    /// Applies what a batch delivered: callers that acknowledge a whole
    /// batch at once (after their destination took it) use this on their
    /// persisted copy.
    pub fn apply(&mut self, batch: &super::ReadBatch) {
        for (shard, seq) in &batch.start_positions {
            self.advance(shard, seq);
        }
        for r in &batch.records {
            self.advance(&r.shard_id, &r.sequence_number);
        }
        for s in &batch.finished_shards {
            self.finish(s);
        }
        if self.start.is_none() {
            self.start = batch.start;
        }
    }
}
