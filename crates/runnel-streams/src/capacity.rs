//! Capacity modes: UpdateStreamMode, on-demand scaling, warm throughput,
//! UpdateMaxRecordSize and the account settings that gate warm throughput.
//!
//! On-demand streams start with 4 shards (4 MiB/s of writes) and follow
//! demand: every check, the bytes producers *tried* to write to each shard
//! (accepted or throttled) give the stream's write rate. When that rate
//! exceeds half the capacity, the hottest shards are split until capacity
//! covers twice the observed peak (at most doubling per check, as AWS scales
//! to 2× the previous peak). After a quiet period under a quarter of
//! capacity, the coldest adjacent pair is merged, never below 4 shards.

use std::collections::HashMap;

use runnel_catalog::{StreamMode, StreamState};
use runnel_types::limits::{
    MAX_RECORD_SIZE_KIB_MAX, MAX_RECORD_SIZE_KIB_MIN, ON_DEMAND_INITIAL_SHARD_COUNT,
};
use runnel_types::Timestamp;

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::quota::WRITE_BYTES_PER_SEC;
use crate::reshard::Step;
use crate::service::{StreamEntry, StreamsService};
use crate::validate::Violations;

const COMMITMENT_KEY: &str = "minimum_throughput_billing_commitment";
/// Checks under a quarter of capacity before an on-demand stream shrinks.
const QUIET_CHECKS_BEFORE_SCALE_DOWN: u32 = 10;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ScaleState {
    last_check_ms: u64,
    quiet_checks: u32,
}

impl StreamsService {
    pub fn update_stream_mode(&self, input: UpdateStreamModeInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("streamARN", &input.stream_arn);
        v.required("streamModeDetails", &input.stream_mode_details);
        let mode = input
            .stream_mode_details
            .as_ref()
            .and_then(|m| m.stream_mode.as_deref());
        if let Some(d) = &input.stream_mode_details {
            v.required("streamModeDetails.streamMode", &d.stream_mode);
        }
        v.one_of(
            "streamModeDetails.streamMode",
            mode,
            &["PROVISIONED", "ON_DEMAND"],
        );
        v.int("warmThroughputMiBps", input.warm_throughput_mi_bps, 0, None);
        let entry = self.resolve(&ArnOnly(input.stream_arn.as_deref()), v)?;
        let mode = if mode == Some("ON_DEMAND") {
            StreamMode::OnDemand
        } else {
            StreamMode::Provisioned
        };
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        if entry.rec.mode == mode {
            return Err(StreamsError::InvalidArgument(format!(
                "Stream {} under account {} is already in {} mode.",
                entry.rec.name,
                self.cfg.account_id,
                crate::service::mode_name(mode)
            )));
        }
        if mode == StreamMode::OnDemand {
            let on_demand = self
                .maps
                .read()
                .by_name
                .values()
                .filter(|e| !self.is_gone(&e.rec) && e.rec.mode == StreamMode::OnDemand)
                .count() as u32;
            if on_demand >= self.cfg.on_demand_streams_max {
                return Err(StreamsError::LimitExceeded(format!(
                    "This request would exceed the limit of {} on-demand streams for the account {} in {}.",
                    self.cfg.on_demand_streams_max, self.cfg.account_id, self.cfg.region
                )));
            }
        }
        let mut rec = entry.rec.clone();
        rec.mode = mode;
        rec.warm_throughput_mibps = input
            .warm_throughput_mi_bps
            .map(|w| w as u32)
            .filter(|_| mode == StreamMode::OnDemand);
        rec.state = if self.cfg.stream_transition_ms == 0 {
            StreamState::Active
        } else {
            StreamState::Updating
        };
        rec.state_since_ms = self.now_ms();
        self.commit(rec)?;
        Ok(Empty {})
    }

    pub fn update_max_record_size(&self, input: UpdateMaxRecordSizeInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("streamARN", &input.stream_arn);
        v.required("maxRecordSizeInKiB", &input.max_record_size_in_kib);
        v.int(
            "maxRecordSizeInKiB",
            input.max_record_size_in_kib,
            i64::from(MAX_RECORD_SIZE_KIB_MIN),
            Some(i64::from(MAX_RECORD_SIZE_KIB_MAX)),
        );
        let entry = self.resolve(&ArnOnly(input.stream_arn.as_deref()), v)?;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        let mut rec = entry.rec.clone();
        rec.max_record_size_kib = input.max_record_size_in_kib.unwrap_or(1024) as u32;
        self.commit(rec)?;
        Ok(Empty {})
    }

    fn commitment_enabled(&self) -> Result<Option<u64>> {
        Ok(self
            .catalog
            .setting(COMMITMENT_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    fn account_settings(&self) -> Result<AccountSettingsOutput> {
        let started = self.commitment_enabled()?.filter(|ms| *ms > 0);
        Ok(AccountSettingsOutput {
            minimum_throughput_billing_commitment: CommitmentOut {
                status: if started.is_some() {
                    "ENABLED"
                } else {
                    "DISABLED"
                },
                started_at: started.map(Timestamp::from_ms),
            },
        })
    }

    pub fn describe_account_settings(&self) -> Result<AccountSettingsOutput> {
        self.account_settings()
    }

    pub fn update_account_settings(
        &self,
        input: UpdateAccountSettingsInput,
    ) -> Result<AccountSettingsOutput> {
        let mut v = Violations::new();
        v.required(
            "minimumThroughputBillingCommitment",
            &input.minimum_throughput_billing_commitment,
        );
        let status = input
            .minimum_throughput_billing_commitment
            .as_ref()
            .and_then(|c| c.status.as_deref());
        if let Some(c) = &input.minimum_throughput_billing_commitment {
            v.required("minimumThroughputBillingCommitment.status", &c.status);
        }
        v.one_of(
            "minimumThroughputBillingCommitment.status",
            status,
            &["ENABLED", "DISABLED"],
        );
        v.finish()?;
        let _guard = self.control.lock();
        let value = match (status, self.commitment_enabled()?.filter(|ms| *ms > 0)) {
            (Some("ENABLED"), Some(since)) => since,
            (Some("ENABLED"), None) => self.now_ms(),
            _ => 0,
        };
        self.catalog
            .put_setting(COMMITMENT_KEY, &value.to_be_bytes())?;
        self.account_settings()
    }

    pub fn update_stream_warm_throughput(
        &self,
        input: UpdateStreamWarmThroughputInput,
    ) -> Result<UpdateStreamWarmThroughputOutput> {
        let mut v = Violations::new();
        v.required("warmThroughputMiBps", &input.warm_throughput_mi_bps);
        v.int("warmThroughputMiBps", input.warm_throughput_mi_bps, 0, None);
        let entry = self.resolve(&input, v)?;
        if entry.rec.mode != StreamMode::OnDemand {
            return Err(StreamsError::InvalidArgument(format!(
                "Warm throughput applies only to ON_DEMAND streams; stream {} under account {} is PROVISIONED.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        if self.commitment_enabled()?.filter(|ms| *ms > 0).is_none() {
            return Err(StreamsError::InvalidArgument(
                "Warm throughput requires the account's MinimumThroughputBillingCommitment to be ENABLED (UpdateAccountSettings)."
                    .into(),
            ));
        }
        let target = input
            .warm_throughput_mi_bps
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX)) as u32;
        {
            let _guard = self.control.lock();
            let entry = self.lookup(&entry.rec.name)?;
            let mut rec = entry.rec.clone();
            rec.warm_throughput_mibps = Some(target);
            self.commit(rec)?;
        }
        // Scale up now so the stream can take the target at once.
        let entry = self.lookup(&entry.rec.name)?;
        let needed = (target as usize).max(entry.routes.len());
        if needed > entry.routes.len() {
            let plan = self.hot_splits(&entry, &HashMap::new(), needed - entry.routes.len());
            self.apply(&entry, &plan)?;
        }
        let entry = self.lookup(&entry.rec.name)?;
        Ok(UpdateStreamWarmThroughputOutput {
            stream_arn: self.arn(&entry.rec.name),
            stream_name: entry.rec.name.clone(),
            warm_throughput: WarmThroughputOut {
                target_mi_bps: target,
                current_mi_bps: self.capacity_mibps(&entry),
            },
        })
    }

    /// Write capacity of the stream's open shards, in MiB/s.
    pub(crate) fn capacity_mibps(&self, entry: &StreamEntry) -> u32 {
        let m = self.quota_of(entry).unwrap_or(1.0);
        (entry.routes.len() as f64 * m).floor() as u32
    }

    /// Splits, at their midpoints, the `count` open shards with the most demand.
    fn hot_splits(
        &self,
        entry: &StreamEntry,
        demand: &HashMap<u32, u64>,
        count: usize,
    ) -> Vec<Step> {
        let mut open: Vec<(u128, u128, u32)> = entry
            .routes
            .iter()
            .copied()
            .filter(|(s, e, _)| e > s)
            .collect();
        // Hottest first; among equals, the widest range.
        open.sort_by_key(|(s, e, i)| {
            (
                std::cmp::Reverse(demand.get(i).copied().unwrap_or(0)),
                std::cmp::Reverse(e - s),
            )
        });
        open.into_iter()
            .take(count)
            .map(|(s, e, i)| Step::Split {
                index: i,
                at: s + (e - s) / 2 + 1,
            })
            .collect()
    }

    /// One on-demand scaling pass over every on-demand stream.
    pub fn scale_on_demand(&self) -> Result<()> {
        let now = self.now_ms();
        let entries: Vec<std::sync::Arc<StreamEntry>> = self
            .maps
            .read()
            .by_name
            .values()
            .filter(|e| e.rec.mode == StreamMode::OnDemand && !self.is_gone(&e.rec))
            .cloned()
            .collect();
        for entry in entries {
            let demand: HashMap<u32, u64> =
                self.quotas.take_demand(entry.rec.uid).into_iter().collect();
            let state = {
                let mut states = self.scaling.lock();
                let s = states.entry(entry.rec.uid).or_insert(ScaleState {
                    last_check_ms: now,
                    quiet_checks: 0,
                });
                let before = *s;
                s.last_check_ms = now;
                before
            };
            let elapsed_s = now.saturating_sub(state.last_check_ms) as f64 / 1000.0;
            if elapsed_s <= 0.0 || self.state_of(&entry.rec) != StreamState::Active {
                continue;
            }
            let rate = demand.values().sum::<u64>() as f64 / elapsed_s;
            let per_shard = WRITE_BYTES_PER_SEC * self.quota_of(&entry).unwrap_or(1.0);
            let open = entry.routes.len();
            let capacity = open as f64 * per_shard;
            let warm = entry.rec.warm_throughput_mibps.unwrap_or(0) as usize;
            if rate > capacity / 2.0 {
                let wanted = ((2.0 * rate / per_shard).ceil() as usize).min(open * 2);
                let add = wanted.saturating_sub(open);
                if add > 0 && self.check_quota_for_scale(add).is_ok() {
                    let plan = self.hot_splits(&entry, &demand, add);
                    tracing::info!(stream = %entry.rec.name, from = open, to = open + plan.len(), rate_bps = rate as u64, "on-demand scale up");
                    self.apply(&entry, &plan)?;
                }
                self.scaling
                    .lock()
                    .entry(entry.rec.uid)
                    .or_default()
                    .quiet_checks = 0;
            } else if rate < capacity / 4.0
                && open > (ON_DEMAND_INITIAL_SHARD_COUNT as usize).max(warm)
            {
                let quiet = state.quiet_checks + 1;
                self.scaling
                    .lock()
                    .entry(entry.rec.uid)
                    .or_default()
                    .quiet_checks = quiet;
                if quiet >= QUIET_CHECKS_BEFORE_SCALE_DOWN {
                    if let Some(step) = coldest_pair(&entry, &demand) {
                        tracing::info!(stream = %entry.rec.name, from = open, to = open - 1, "on-demand scale down");
                        self.apply(&entry, &[step])?;
                    }
                    self.scaling
                        .lock()
                        .entry(entry.rec.uid)
                        .or_default()
                        .quiet_checks = 0;
                }
            } else {
                self.scaling
                    .lock()
                    .entry(entry.rec.uid)
                    .or_default()
                    .quiet_checks = 0;
            }
        }
        Ok(())
    }

    fn check_quota_for_scale(&self, add: usize) -> Result<()> {
        let open: usize = self
            .maps
            .read()
            .by_name
            .values()
            .filter(|e| !self.is_gone(&e.rec))
            .map(|e| e.routes.len())
            .sum();
        if open + add > self.cfg.account_shards_max as usize {
            tracing::warn!(
                open,
                add,
                limit = self.cfg.account_shards_max,
                "on-demand scale up blocked by the shard limit"
            );
            return Err(StreamsError::LimitExceeded("shard limit".into()));
        }
        Ok(())
    }
}

/// The adjacent open pair with the least combined demand.
fn coldest_pair(entry: &StreamEntry, demand: &HashMap<u32, u64>) -> Option<Step> {
    entry
        .routes
        .windows(2)
        .filter(|w| w[0].1.checked_add(1) == Some(w[1].0))
        .min_by_key(|w| {
            demand.get(&w[0].2).copied().unwrap_or(0) + demand.get(&w[1].2).copied().unwrap_or(0)
        })
        .map(|w| Step::Merge {
            index: w[0].2,
            adjacent: w[1].2,
        })
}
