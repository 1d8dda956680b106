//! CloudWatch `AWS/Kinesis` metrics, stream level (dimension StreamName)
//! and, where EnableEnhancedMonitoring turned them on, shard level
//! (StreamName + ShardId).

use runnel_metrics::SeriesKey;
use runnel_types::ShardId;

use crate::api::*;
use crate::error::Result;
use crate::service::{StreamEntry, StreamsService};
use crate::validate::Violations;

pub const NAMESPACE: &str = "AWS/Kinesis";
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// Per shard figures of one request, for shard-level metrics.
#[derive(Default, Clone, Copy)]
pub(crate) struct ShardFigures {
    pub bytes: u64,
    pub records: u64,
    pub throttled: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOp {
    Record,
    Records,
}

impl StreamsService {
    /// Records a stream-level datapoint through the entry's resolved handle.
    pub(crate) fn metric(&self, entry: &StreamEntry, name: &'static str, value: f64, unit: &str) {
        let cached = entry
            .metric_handles
            .read()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h.clone());
        let handle = match cached {
            Some(h) => h,
            None => {
                let key = SeriesKey::new(NAMESPACE, name, &[("StreamName", &entry.rec.name)]);
                let Some(h) = self.metrics.handle(key, unit) else {
                    return;
                };
                entry.metric_handles.write().push((name, h.clone()));
                h
            }
        };
        handle.record(value);
    }

    pub(crate) fn shard_metric(
        &self,
        entry: &StreamEntry,
        shard: u32,
        name: &str,
        value: f64,
        unit: &str,
    ) {
        if entry.rec.shard_level_metrics.iter().any(|m| m == name) {
            let id = ShardId(shard).to_string();
            self.metrics.record(
                SeriesKey::new(
                    NAMESPACE,
                    name,
                    &[("StreamName", &entry.rec.name), ("ShardId", &id)],
                ),
                value,
                unit,
            );
        }
    }

    pub(crate) fn record_put(
        &self,
        entry: &StreamEntry,
        op: PutOp,
        shards: &[(u32, ShardFigures)],
        latency_ms: f64,
    ) {
        let (bytes, records, throttled) = shards.iter().fold((0u64, 0u64, 0u64), |a, (_, f)| {
            (a.0 + f.bytes, a.1 + f.records, a.2 + f.throttled)
        });
        let ok = records > 0 || throttled == 0;
        let (bytes_name, latency_name, success_name) = match op {
            PutOp::Record => ("PutRecord.Bytes", "PutRecord.Latency", "PutRecord.Success"),
            PutOp::Records => (
                "PutRecords.Bytes",
                "PutRecords.Latency",
                "PutRecords.Success",
            ),
        };
        self.metric(entry, bytes_name, bytes as f64, "Bytes");
        self.metric(entry, latency_name, latency_ms, "Milliseconds");
        self.metric(entry, success_name, if ok { 1.0 } else { 0.0 }, "Count");
        if op == PutOp::Records {
            self.metric(
                entry,
                "PutRecords.TotalRecords",
                (records + throttled) as f64,
                "Count",
            );
            self.metric(
                entry,
                "PutRecords.SuccessfulRecords",
                records as f64,
                "Count",
            );
            self.metric(entry, "PutRecords.FailedRecords", throttled as f64, "Count");
            self.metric(
                entry,
                "PutRecords.ThrottledRecords",
                throttled as f64,
                "Count",
            );
        }
        self.metric(entry, "IncomingBytes", bytes as f64, "Bytes");
        self.metric(entry, "IncomingRecords", records as f64, "Count");
        self.metric(
            entry,
            "WriteProvisionedThroughputExceeded",
            throttled as f64,
            "Count",
        );
        for (shard, f) in shards {
            self.shard_metric(entry, *shard, "IncomingBytes", f.bytes as f64, "Bytes");
            self.shard_metric(entry, *shard, "IncomingRecords", f.records as f64, "Count");
            self.shard_metric(
                entry,
                *shard,
                "WriteProvisionedThroughputExceeded",
                f.throttled as f64,
                "Count",
            );
        }
    }

    pub(crate) fn record_get(
        &self,
        entry: &StreamEntry,
        shard: u32,
        bytes: u64,
        records: u64,
        age_ms: u64,
        latency_ms: f64,
    ) {
        self.metric(entry, "GetRecords.Bytes", bytes as f64, "Bytes");
        self.metric(entry, "GetRecords.Records", records as f64, "Count");
        self.metric(entry, "GetRecords.Latency", latency_ms, "Milliseconds");
        self.metric(entry, "GetRecords.Success", 1.0, "Count");
        self.metric(
            entry,
            "GetRecords.IteratorAgeMilliseconds",
            age_ms as f64,
            "Milliseconds",
        );
        self.metric(entry, "OutgoingBytes", bytes as f64, "Bytes");
        self.metric(entry, "OutgoingRecords", records as f64, "Count");
        self.metric(entry, "ReadProvisionedThroughputExceeded", 0.0, "Count");
        self.shard_metric(entry, shard, "OutgoingBytes", bytes as f64, "Bytes");
        self.shard_metric(entry, shard, "OutgoingRecords", records as f64, "Count");
        self.shard_metric(
            entry,
            shard,
            "IteratorAgeMilliseconds",
            age_ms as f64,
            "Milliseconds",
        );
    }

    pub(crate) fn record_read_throttle(&self, entry: &StreamEntry, shard: u32) {
        self.metric(entry, "GetRecords.Success", 0.0, "Count");
        self.metric(entry, "ReadProvisionedThroughputExceeded", 1.0, "Count");
        self.shard_metric(
            entry,
            shard,
            "ReadProvisionedThroughputExceeded",
            1.0,
            "Count",
        );
    }

    pub fn enable_enhanced_monitoring(
        &self,
        input: EnhancedMonitoringInput,
    ) -> Result<EnhancedMonitoringOutput> {
        self.change_monitoring(input, true)
    }

    pub fn disable_enhanced_monitoring(
        &self,
        input: EnhancedMonitoringInput,
    ) -> Result<EnhancedMonitoringOutput> {
        self.change_monitoring(input, false)
    }

    fn change_monitoring(
        &self,
        input: EnhancedMonitoringInput,
        enable: bool,
    ) -> Result<EnhancedMonitoringOutput> {
        let mut v = Violations::new();
        v.required("shardLevelMetrics", &input.shard_level_metrics);
        let names = input.shard_level_metrics.clone().unwrap_or_default();
        v.list_len("shardLevelMetrics", Some(names.len()), 1, 7, "[…]");
        let mut allowed: Vec<&str> = SHARD_LEVEL_METRICS.to_vec();
        allowed.push("ALL");
        for (i, n) in names.iter().enumerate() {
            v.one_of(
                &format!("shardLevelMetrics.{}.member", i + 1),
                Some(n),
                &allowed,
            );
        }
        let entry = self.resolve(&input, v)?;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) != runnel_catalog::StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        let expanded: Vec<String> = if names.iter().any(|n| n == "ALL") {
            SHARD_LEVEL_METRICS.iter().map(|s| s.to_string()).collect()
        } else {
            names
        };
        let current = entry.rec.shard_level_metrics.clone();
        let mut desired: Vec<String> = if enable {
            current.iter().cloned().chain(expanded).collect()
        } else {
            current
                .iter()
                .filter(|m| !expanded.contains(m))
                .cloned()
                .collect()
        };
        desired.sort_by_key(|m| SHARD_LEVEL_METRICS.iter().position(|s| s == m));
        desired.dedup();
        let mut rec = entry.rec.clone();
        rec.shard_level_metrics = desired.clone();
        self.commit(rec)?;
        Ok(EnhancedMonitoringOutput {
            stream_name: entry.rec.name.clone(),
            stream_arn: self.arn(&entry.rec.name),
            current_shard_level_metrics: current,
            desired_shard_level_metrics: desired,
        })
    }
}
