//! Resharding: SplitShard, MergeShards, UpdateShardCount.
//!
//! A reshard is one catalog transaction: parents get their ending position
//! (the log's end position, read while the stream's write gate is held
//! exclusively, so no in-flight put can land after it), children are added
//! with their lineage, and the stream goes UPDATING → ACTIVE. A crash leaves
//! either the old shard map or the new one, never a mix.

use runnel_catalog::{ShardRecord, StreamMode, StreamRecord, StreamState};
use runnel_types::{HashKeyRange, ShardId, HASH_KEY_MAX};

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::service::{StreamEntry, StreamsService};
use crate::validate::Violations;

const DAY_MS: u64 = 24 * 3600 * 1000;
/// AWS's default limit on UpdateShardCount calls per stream and rolling day.
const SCALINGS_PER_DAY_MAX: usize = 10;

/// One step of a reshard plan, applied to a copy of the stream record.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Split { index: u32, at: u128 },
    Merge { index: u32, adjacent: u32 },
}

fn range_of(s: &ShardRecord) -> (u128, u128) {
    (
        s.hash_start.parse().unwrap_or(0),
        s.hash_end.parse().unwrap_or(0),
    )
}

impl StreamsService {
    fn reshard_target(&self, entry: &StreamEntry, op: &str) -> Result<()> {
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        if entry.rec.mode == StreamMode::OnDemand {
            return Err(StreamsError::InvalidArgument(format!(
                "{op} is not supported for stream {} under account {} because it is in ON_DEMAND capacity mode.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        Ok(())
    }

    fn open_shard(
        &self,
        entry: &StreamEntry,
        shard_id: &str,
        op: &str,
    ) -> Result<(u32, u128, u128)> {
        let index = ShardId::parse(shard_id)
            .map(|s| s.0)
            .filter(|i| {
                entry
                    .shard(*i)
                    .is_some_and(|s| !entry.expired(s, self.now_ms()))
            })
            .ok_or_else(|| {
                StreamsError::ResourceNotFound(format!(
                    "Could not find shard {shard_id} in stream {} under account {}.",
                    entry.rec.name, self.cfg.account_id
                ))
            })?;
        let shard = entry
            .shard(index)
            .ok_or_else(|| self.shard_not_found(&entry.rec.name, shard_id))?;
        if shard.closed_at_position.is_some() {
            return Err(StreamsError::ResourceInUse(format!(
                "Shard {shard_id} in stream {} under account {} has already been merged or split, and thus is not eligible for {op}.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        let (start, end) = range_of(shard);
        Ok((index, start, end))
    }

    fn check_shard_quota(&self, added: u32, removed: u32) -> Result<()> {
        let maps = self.maps.read();
        let open: u32 = maps
            .by_name
            .values()
            .filter(|e| !self.is_gone(&e.rec))
            .map(|e| e.routes.len() as u32)
            .sum();
        drop(maps);
        let after = u64::from(open) + u64::from(added) - u64::from(removed.min(open + added));
        if added > removed && after > u64::from(self.cfg.account_shards_max) {
            return Err(StreamsError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {}. Number of additional shards that would have resulted from this request: {}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                self.cfg.account_id, self.cfg.region, self.cfg.account_shards_max, added - removed
            )));
        }
        Ok(())
    }

    pub fn split_shard(&self, input: SplitShardInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("shardToSplit", &input.shard_to_split);
        v.required("newStartingHashKey", &input.new_starting_hash_key);
        v.shard_id("shardToSplit", input.shard_to_split.as_deref());
        v.decimal(
            "newStartingHashKey",
            input.new_starting_hash_key.as_deref(),
            39,
        );
        let entry = self.resolve(&input, v)?;
        let shard_id = input.shard_to_split.unwrap_or_default();
        let key_text = input.new_starting_hash_key.unwrap_or_default();
        self.reshard_target(&entry, "splitting")?;
        let (index, start, end) = self.open_shard(&entry, &shard_id, "splitting")?;
        let key = key_text.parse::<u128>().ok().filter(|k| start.checked_add(1).is_some_and(|s1| *k > s1) && *k < end).ok_or_else(|| {
            StreamsError::InvalidArgument(format!(
                "NewStartingHashKey {key_text} used in SplitShard() on shard {shard_id} in stream {} under account {} is not both greater than one plus the shard's StartingHashKey {start} and less than the shard's EndingHashKey {end}.",
                entry.rec.name, self.cfg.account_id
            ))
        })?;
        self.check_shard_quota(2, 1)?;
        self.apply(&entry, &[Step::Split { index, at: key }])?;
        Ok(Empty {})
    }

    pub fn merge_shards(&self, input: MergeShardsInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("shardToMerge", &input.shard_to_merge);
        v.required("adjacentShardToMerge", &input.adjacent_shard_to_merge);
        v.shard_id("shardToMerge", input.shard_to_merge.as_deref());
        v.shard_id(
            "adjacentShardToMerge",
            input.adjacent_shard_to_merge.as_deref(),
        );
        let entry = self.resolve(&input, v)?;
        let (a_id, b_id) = (
            input.shard_to_merge.unwrap_or_default(),
            input.adjacent_shard_to_merge.unwrap_or_default(),
        );
        self.reshard_target(&entry, "merging")?;
        let (a, a_start, a_end) = self.open_shard(&entry, &a_id, "merging")?;
        let (b, b_start, b_end) = self.open_shard(&entry, &b_id, "merging")?;
        let adjacent = a != b
            && ((a_end < HASH_KEY_MAX && a_end + 1 == b_start)
                || (b_end < HASH_KEY_MAX && b_end + 1 == a_start));
        if !adjacent {
            return Err(StreamsError::InvalidArgument(format!(
                "Shards {a_id} and {b_id} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
                entry.rec.name, self.cfg.account_id
            )));
        }
        self.apply(
            &entry,
            &[Step::Merge {
                index: a,
                adjacent: b,
            }],
        )?;
        Ok(Empty {})
    }

    pub fn update_shard_count(
        &self,
        input: UpdateShardCountInput,
    ) -> Result<UpdateShardCountOutput> {
        let mut v = Violations::new();
        v.required("targetShardCount", &input.target_shard_count);
        v.required("scalingType", &input.scaling_type);
        v.int("targetShardCount", input.target_shard_count, 1, None);
        v.one_of(
            "scalingType",
            input.scaling_type.as_deref(),
            &["UNIFORM_SCALING"],
        );
        let entry = self.resolve(&input, v)?;
        self.reshard_target(&entry, "UpdateShardCount")?;
        let current = entry.routes.len() as u32;
        let target = input
            .target_shard_count
            .unwrap_or(1)
            .clamp(1, i64::from(u32::MAX)) as u32;
        let (low, high) = (current.div_ceil(2), current.saturating_mul(2));
        if target < low || target > high {
            return Err(StreamsError::LimitExceeded(format!(
                "UpdateShardCount cannot scale stream {} under account {} from {current} to {target} shards: the target must be between half ({low}) and double ({high}) the current open shard count.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        self.check_shard_quota(target, current)?;
        let plan = uniform_plan(&entry, target);
        let now = self.now_ms();
        let recent = entry
            .rec
            .scaling_events_ms
            .iter()
            .filter(|t| now.saturating_sub(**t) < DAY_MS)
            .count();
        if recent >= SCALINGS_PER_DAY_MAX {
            return Err(StreamsError::LimitExceeded(format!(
                "UpdateShardCount may run at most {SCALINGS_PER_DAY_MAX} times per rolling 24 hours on stream {} under account {}.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        if !plan.is_empty() {
            self.apply(&entry, &plan)?;
        }
        {
            let _guard = self.control.lock();
            let latest = self.lookup(&entry.rec.name)?;
            let mut rec = latest.rec.clone();
            rec.scaling_events_ms
                .retain(|t| now.saturating_sub(*t) < DAY_MS);
            rec.scaling_events_ms.push(now);
            self.commit(rec)?;
        }
        Ok(UpdateShardCountOutput {
            stream_name: entry.rec.name.clone(),
            current_shard_count: current,
            target_shard_count: target,
            stream_arn: self.arn(&entry.rec.name),
        })
    }

    /// Runs a plan under the stream's exclusive write gate and commits it.
    pub(crate) fn apply(&self, entry: &StreamEntry, plan: &[Step]) -> Result<()> {
        let _control = self.control.lock();
        let gate = self.write_gate(entry.rec.uid);
        let _writers = gate.blocking_write();
        // Re-read under the locks: another reshard may have won the race.
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        let mut rec = entry.rec.clone();
        let now = self.now_ms();
        for step in plan {
            apply_step(&mut rec, *step, now, |index| {
                self.log.end_position(runnel_log::ShardKey {
                    stream_uid: rec_uid(&entry),
                    shard_index: index,
                })
            })?;
        }
        rec.state = if self.cfg.stream_transition_ms == 0 {
            StreamState::Active
        } else {
            StreamState::Updating
        };
        rec.state_since_ms = now;
        let closed: Vec<u32> = rec
            .shards
            .iter()
            .filter(|s| {
                s.closed_ms == Some(now)
                    && entry
                        .shard(s.index)
                        .is_some_and(|old| old.closed_at_position.is_none())
            })
            .map(|s| s.index)
            .collect();
        self.commit(rec)?;
        // Subscribers of closed shards send their final event now, not at the next heartbeat.
        for index in closed {
            self.fanout.nudge(entry.shard_key(index));
        }
        tracing::info!(stream = %entry.rec.name, steps = plan.len(), "resharded");
        Ok(())
    }

    /// Children of a shard, as GetRecords reports them at the shard's end.
    pub(crate) fn child_shards(&self, entry: &StreamEntry, index: u32) -> Vec<ChildShardOut> {
        entry
            .rec
            .shards
            .iter()
            .filter(|s| s.parent == Some(index) || s.adjacent_parent == Some(index))
            .map(|s| ChildShardOut {
                shard_id: ShardId(s.index).to_string(),
                parent_shards: s
                    .parent
                    .iter()
                    .chain(s.adjacent_parent.iter())
                    .map(|p| ShardId(*p).to_string())
                    .collect(),
                hash_key_range: HashKeyRangeOut {
                    starting_hash_key: s.hash_start.clone(),
                    ending_hash_key: s.hash_end.clone(),
                },
            })
            .collect()
    }
}

fn rec_uid(entry: &StreamEntry) -> u64 {
    entry.rec.uid
}

fn new_shard(
    rec: &StreamRecord,
    start: u128,
    end: u128,
    parent: u32,
    adjacent: Option<u32>,
    now: u64,
) -> ShardRecord {
    let index = rec.shards.iter().map(|s| s.index + 1).max().unwrap_or(0);
    ShardRecord {
        index,
        hash_start: start.to_string(),
        hash_end: end.to_string(),
        parent: Some(parent),
        adjacent_parent: adjacent,
        starting_position: 0,
        closed_at_position: None,
        created_ms: now,
        closed_ms: None,
    }
}

fn close(rec: &mut StreamRecord, index: u32, position: u64, now: u64) -> Result<()> {
    let shard = rec
        .shards
        .iter_mut()
        .find(|s| s.index == index && s.closed_at_position.is_none())
        .ok_or_else(|| {
            StreamsError::Internal(format!(
                "reshard plan names shard {index}, which is not open"
            ))
        })?;
    shard.closed_at_position = Some(position);
    shard.closed_ms = Some(now);
    Ok(())
}

fn apply_step(
    rec: &mut StreamRecord,
    step: Step,
    now: u64,
    end_of: impl Fn(u32) -> u64,
) -> Result<()> {
    let find = |rec: &StreamRecord, i: u32| rec.shards.iter().find(|s| s.index == i).map(range_of);
    match step {
        Step::Split { index, at } => {
            let (start, end) = find(rec, index)
                .ok_or_else(|| StreamsError::Internal("split of unknown shard".into()))?;
            close(rec, index, end_of(index), now)?;
            let low = new_shard(rec, start, at - 1, index, None, now);
            rec.shards.push(low);
            let high = new_shard(rec, at, end, index, None, now);
            rec.shards.push(high);
        }
        Step::Merge { index, adjacent } => {
            let (a_start, a_end) = find(rec, index)
                .ok_or_else(|| StreamsError::Internal("merge of unknown shard".into()))?;
            let (b_start, b_end) = find(rec, adjacent)
                .ok_or_else(|| StreamsError::Internal("merge of unknown shard".into()))?;
            close(rec, index, end_of(index), now)?;
            close(rec, adjacent, end_of(adjacent), now)?;
            let child = new_shard(
                rec,
                a_start.min(b_start),
                a_end.max(b_end),
                index,
                Some(adjacent),
                now,
            );
            rec.shards.push(child);
        }
    }
    Ok(())
}

/// Splits and merges that turn the open shards into `target` evenly sized
/// ones, as UNIFORM_SCALING does: first split every open shard at each target
/// boundary inside it, then merge the pieces of each target range in order.
fn uniform_plan(entry: &StreamEntry, target: u32) -> Vec<Step> {
    let goal = HashKeyRange::split_even(target);
    if entry.routes.len() == goal.len()
        && entry
            .routes
            .iter()
            .zip(&goal)
            .all(|(r, g)| r.0 == g.start && r.1 == g.end)
    {
        return Vec::new();
    }
    // Simulate on a copy so the plan's indices are the ones apply() will create.
    let mut rec = entry.rec.clone();
    let mut plan = Vec::new();
    let mut next_index = rec.shards.iter().map(|s| s.index + 1).max().unwrap_or(0);
    // Pieces: (start, end, index), open, sorted by start.
    let mut pieces: Vec<(u128, u128, u32)> = entry.routes.clone();
    for g in goal.iter().skip(1) {
        let cut = g.start;
        if let Some(pos) = pieces.iter().position(|(s, e, _)| *s < cut && cut <= *e) {
            let (s, e, i) = pieces[pos];
            plan.push(Step::Split { index: i, at: cut });
            let (lo, hi) = (next_index, next_index + 1);
            next_index += 2;
            pieces.splice(pos..=pos, [(s, cut - 1, lo), (cut, e, hi)]);
        }
    }
    for g in &goal {
        let mut inside: Vec<(u128, u128, u32)> = pieces
            .iter()
            .copied()
            .filter(|(s, e, _)| *s >= g.start && *e <= g.end)
            .collect();
        while inside.len() > 1 {
            let (a, b) = (inside[0], inside[1]);
            plan.push(Step::Merge {
                index: a.2,
                adjacent: b.2,
            });
            let merged = (a.0, b.1, next_index);
            next_index += 1;
            inside.splice(0..2, [merged]);
        }
    }
    // The simulated indices must match what apply() assigns; check on the copy.
    for step in &plan {
        if apply_step(&mut rec, *step, 0, |_| 0).is_err() {
            return Vec::new();
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_catalog::StreamMode;

    fn entry(count: u32) -> StreamEntry {
        let shards = HashKeyRange::split_even(count)
            .into_iter()
            .zip(0u32..)
            .map(|(r, index)| ShardRecord {
                index,
                hash_start: r.start.to_string(),
                hash_end: r.end.to_string(),
                parent: None,
                adjacent_parent: None,
                starting_position: 0,
                closed_at_position: None,
                created_ms: 0,
                closed_ms: None,
            })
            .collect();
        StreamEntry::new(StreamRecord {
            name: "s".into(),
            uid: 1,
            created_ms: 0,
            state: StreamState::Active,
            state_since_ms: 0,
            mode: StreamMode::Provisioned,
            retention_hours: 24,
            shards,
            tags: Default::default(),
            max_record_size_kib: 1024,
            shard_level_metrics: vec![],
            warm_throughput_mibps: None,
            consumers: vec![],
            scaling_events_ms: vec![],
            resource_policies: Default::default(),
            encryption: vec![],
        })
    }

    fn run(from: u32, to: u32) -> StreamEntry {
        let e = entry(from);
        let plan = uniform_plan(&e, to);
        let mut rec = e.rec.clone();
        for step in plan {
            apply_step(&mut rec, step, 1, |_| 0).unwrap();
        }
        StreamEntry::new(rec)
    }

    #[test]
    fn uniform_scaling_lands_on_even_ranges() {
        for (from, to) in [
            (4, 8),
            (8, 4),
            (4, 3),
            (3, 5),
            (5, 3),
            (1, 2),
            (2, 1),
            (7, 13),
            (13, 7),
            (4, 4),
        ] {
            let after = run(from, to);
            let goal: Vec<(u128, u128)> = HashKeyRange::split_even(to)
                .iter()
                .map(|r| (r.start, r.end))
                .collect();
            let got: Vec<(u128, u128)> = after.routes.iter().map(|r| (r.0, r.1)).collect();
            assert_eq!(got, goal, "{from} -> {to}");
            // Every child names parents that are closed.
            for s in &after.rec.shards {
                for p in s.parent.iter().chain(s.adjacent_parent.iter()) {
                    assert!(after.shard(*p).unwrap().closed_at_position.is_some());
                }
            }
        }
    }

    #[test]
    fn split_and_merge_lineage() {
        let mut rec = entry(1).rec;
        apply_step(
            &mut rec,
            Step::Split {
                index: 0,
                at: 1 << 127,
            },
            5,
            |_| 42,
        )
        .unwrap();
        assert_eq!(rec.shards[0].closed_at_position, Some(42));
        assert_eq!(rec.shards[1].parent, Some(0));
        assert_eq!(rec.shards[1].hash_end, ((1u128 << 127) - 1).to_string());
        assert_eq!(rec.shards[2].hash_start, (1u128 << 127).to_string());
        apply_step(
            &mut rec,
            Step::Merge {
                index: 1,
                adjacent: 2,
            },
            6,
            |_| 7,
        )
        .unwrap();
        let child = &rec.shards[3];
        assert_eq!((child.parent, child.adjacent_parent), (Some(1), Some(2)));
        assert_eq!(child.hash_start, "0");
        assert_eq!(child.hash_end, HASH_KEY_MAX.to_string());
    }
}
