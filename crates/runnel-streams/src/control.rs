//! Stream lifecycle: create, delete, retention, limits, summary.

use runnel_catalog::{ShardRecord, StreamMode, StreamRecord, StreamState};
use runnel_types::limits::{
    MAX_RECORD_SIZE_KIB_MAX, MAX_RECORD_SIZE_KIB_MIN, ON_DEMAND_INITIAL_SHARD_COUNT,
    RETENTION_HOURS_DEFAULT, RETENTION_HOURS_MAX, RETENTION_HOURS_MIN,
};
use runnel_types::{HashKeyRange, Timestamp};

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::service::{mode_name, status_name, StreamsService};
use crate::tags::check_tags;
use crate::validate::Violations;

impl StreamsService {
    pub fn create_stream(&self, input: CreateStreamInput) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("streamName", &input.stream_name);
        let internal = crate::internal::internal_caller()
            && input
                .stream_name
                .as_deref()
                .is_some_and(crate::internal::is_internal_name);
        if !internal {
            v.stream_name("streamName", input.stream_name.as_deref());
        }
        v.int("shardCount", input.shard_count, 1, None);
        let mode_str = input
            .stream_mode_details
            .as_ref()
            .and_then(|m| m.stream_mode.as_deref());
        if let Some(details) = &input.stream_mode_details {
            v.required("streamModeDetails.streamMode", &details.stream_mode);
        }
        v.one_of(
            "streamModeDetails.streamMode",
            mode_str,
            &["PROVISIONED", "ON_DEMAND"],
        );
        v.int(
            "maxRecordSizeInKiB",
            input.max_record_size_in_ki_b,
            i64::from(MAX_RECORD_SIZE_KIB_MIN),
            Some(i64::from(MAX_RECORD_SIZE_KIB_MAX)),
        );
        v.int("warmThroughputMiBps", input.warm_throughput_mi_bps, 0, None);
        v.one_of(
            "recordDistributionStrategy",
            input.record_distribution_strategy.as_deref(),
            &["AUTO", "USER_PARTITION_KEY"],
        );
        crate::tags::check_tag_map(&mut v, input.tags.as_ref());
        v.finish()?;
        let name = input.stream_name.unwrap_or_default();

        let mode = match (mode_str, input.shard_count) {
            (Some("ON_DEMAND"), _) => StreamMode::OnDemand,
            (Some(_), None) => {
                return Err(StreamsError::InvalidArgument(
                    "ShardCount is required for streams in PROVISIONED mode.".into(),
                ))
            }
            (Some(_), Some(_)) => StreamMode::Provisioned,
            // No mode and no count: AWS creates an on-demand stream.
            (None, None) => StreamMode::OnDemand,
            (None, Some(_)) => StreamMode::Provisioned,
        };
        let shard_count = match mode {
            StreamMode::OnDemand => ON_DEMAND_INITIAL_SHARD_COUNT,
            StreamMode::Provisioned => {
                input.shard_count.unwrap_or(1).clamp(1, i64::from(u32::MAX)) as u32
            }
        };
        if let Some(tags) = &input.tags {
            check_tags(tags, &name, &self.cfg.account_id, tags.len())?;
        }

        let _guard = self.control.lock();
        if self.lookup(&name).is_ok() {
            return Err(StreamsError::ResourceInUse(format!(
                "Stream {name} under account {} already exists.",
                self.cfg.account_id
            )));
        }
        let (open_shards, on_demand_streams) = self.account_usage();
        let limit = self.cfg.account_shards_max;
        if u64::from(open_shards) + u64::from(shard_count) > u64::from(limit) {
            return Err(StreamsError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open_shards}. Limit: {limit}. Number of additional shards that would have resulted from this request: {shard_count}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                self.cfg.account_id, self.cfg.region
            )));
        }
        if mode == StreamMode::OnDemand && on_demand_streams >= self.cfg.on_demand_streams_max {
            return Err(StreamsError::LimitExceeded(format!(
                "This request would exceed the limit of {} on-demand streams for the account {} in {}.",
                self.cfg.on_demand_streams_max, self.cfg.account_id, self.cfg.region
            )));
        }

        let now = self.now_ms();
        let uid = self.catalog.next_stream_uid()?;
        let shards = HashKeyRange::split_even(shard_count)
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
                closed_ms: None,
                created_ms: now,
            })
            .collect();
        let rec = StreamRecord {
            name: name.clone(),
            uid,
            created_ms: now,
            state: if self.cfg.stream_transition_ms == 0 {
                StreamState::Active
            } else {
                StreamState::Creating
            },
            state_since_ms: now,
            mode,
            retention_hours: RETENTION_HOURS_DEFAULT,
            shards,
            tags: input.tags.unwrap_or_default(),
            max_record_size_kib: input
                .max_record_size_in_ki_b
                .map(|k| k as u32)
                .unwrap_or(1024),
            shard_level_metrics: Vec::new(),
            warm_throughput_mibps: input
                .warm_throughput_mi_bps
                .filter(|_| mode == StreamMode::OnDemand)
                .map(|w| w.clamp(0, i64::from(u32::MAX)) as u32),
            consumers: Vec::new(),
            scaling_events_ms: Vec::new(),
            resource_policies: Default::default(),
            encryption: Vec::new(),
        };
        self.commit(rec)?;
        tracing::info!(stream = %name, shards = shard_count, mode = mode_name(mode), "stream created");
        Ok(Empty {})
    }

    /// Open shards across live streams, and the number of on-demand streams.
    fn account_usage(&self) -> (u32, u32) {
        let maps = self.maps.read();
        let live = maps.by_name.values().filter(|e| !self.is_gone(&e.rec));
        let mut shards = 0u32;
        let mut on_demand = 0u32;
        for e in live {
            shards = shards.saturating_add(e.routes.len() as u32);
            on_demand += u32::from(e.rec.mode == StreamMode::OnDemand);
        }
        (shards, on_demand)
    }

    pub fn delete_stream(&self, input: DeleteStreamInput) -> Result<Empty> {
        let entry = self.resolve(&input, Violations::new())?;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        // AWS deletes a stream in any state but DELETING, CREATING included.
        match self.state_of(&entry.rec) {
            StreamState::Active | StreamState::Updating | StreamState::Creating => {}
            StreamState::Deleting => return Err(self.not_active(&entry.rec)),
        }
        if self.has_live_consumers(&entry) && input.enforce_consumer_deletion != Some(true) {
            return Err(StreamsError::ResourceInUse(format!(
                "Stream {} under account {} has registered consumers. Deregister them or set EnforceConsumerDeletion to true.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        self.fanout.end_stream(entry.rec.uid);
        let mut rec = entry.rec.clone();
        rec.state = StreamState::Deleting;
        rec.state_since_ms = self.now_ms();
        self.commit(rec)?;
        tracing::info!(stream = %entry.rec.name, "stream deleting");
        Ok(Empty {})
    }

    pub fn increase_retention(&self, input: RetentionInput) -> Result<Empty> {
        self.change_retention(input, true)
    }

    pub fn decrease_retention(&self, input: RetentionInput) -> Result<Empty> {
        self.change_retention(input, false)
    }

    fn change_retention(&self, input: RetentionInput, increase: bool) -> Result<Empty> {
        let mut v = Violations::new();
        v.required("retentionPeriodHours", &input.retention_period_hours);
        let entry = self.resolve(&input, v)?;
        let hours = input.retention_period_hours.unwrap_or_default();
        if hours < i64::from(RETENTION_HOURS_MIN) {
            return Err(StreamsError::InvalidArgument(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > i64::from(RETENTION_HOURS_MAX) {
            return Err(StreamsError::InvalidArgument(format!(
                "Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        let hours = hours as u32;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        let current = entry.rec.retention_hours;
        let name = &entry.rec.name;
        if increase && hours < current {
            return Err(StreamsError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
            )));
        }
        if !increase && hours > current {
            return Err(StreamsError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
            )));
        }
        let mut rec = entry.rec.clone();
        rec.retention_hours = hours;
        self.commit(rec)?;
        Ok(Empty {})
    }

    pub fn describe_limits(&self) -> Result<DescribeLimitsOutput> {
        let (open, on_demand) = self.account_usage();
        Ok(DescribeLimitsOutput {
            shard_limit: self.cfg.account_shards_max,
            open_shard_count: open,
            on_demand_stream_count: on_demand,
            on_demand_stream_count_limit: self.cfg.on_demand_streams_max,
        })
    }

    pub fn describe_stream_summary(
        &self,
        input: StreamOnlyInput,
    ) -> Result<DescribeStreamSummaryOutput> {
        let entry = self.resolve(&input, Violations::new())?;
        let rec = &entry.rec;
        Ok(DescribeStreamSummaryOutput {
            stream_description_summary: StreamDescriptionSummary {
                stream_name: rec.name.clone(),
                stream_arn: self.arn(&rec.name),
                stream_status: status_name(self.state_of(rec)),
                stream_mode_details: StreamModeDetailsOut {
                    stream_mode: mode_name(rec.mode),
                },
                retention_period_hours: rec.retention_hours,
                stream_creation_timestamp: Timestamp::from_ms(rec.created_ms),
                enhanced_monitoring: vec![EnhancedMetrics {
                    shard_level_metrics: rec.shard_level_metrics.clone(),
                }],
                encryption_type: Self::encryption_type(&entry),
                key_id: Self::encryption_key_id(&entry),
                open_shard_count: entry.routes.len() as u32,
                // Consumers being registered or deregistered count, as they
                // do in ListStreamConsumers.
                consumer_count: rec
                    .consumers
                    .iter()
                    .filter(|c| self.consumer_state(c).is_some())
                    .count() as u32,
                max_record_size_in_kib: rec.max_record_size_kib,
                warm_throughput: (rec.mode == StreamMode::OnDemand).then(|| WarmThroughputOut {
                    target_mi_bps: rec.warm_throughput_mibps.unwrap_or(0),
                    current_mi_bps: self.capacity_mibps(&entry),
                }),
            },
        })
    }
}
