//! DescribeDeliveryStream, ListDeliveryStreams and the tag operations.

use std::sync::Arc;

use runnel_runtime::TaskState;
use runnel_types::Timestamp;

use crate::control::{tags_map, DESTINATION_ID, TAGS_MAX};
use crate::model::*;
use crate::record::{DeliveryStreamRecord, Source};
use crate::service::{FirehoseService, Result, INTERVAL_IN_SECONDS_DEFAULT, SIZE_IN_MBS_DEFAULT};
use crate::FirehoseError;

const LIST_LIMIT_DEFAULT: usize = 10;
const LIST_TAGS_LIMIT_DEFAULT: usize = 50;

fn hints(d: &ExtendedS3DestinationConfiguration) -> BufferingHints {
    let h = d.buffering_hints.clone().unwrap_or_default();
    BufferingHints {
        size_in_mbs: Some(h.size_in_mbs.unwrap_or(SIZE_IN_MBS_DEFAULT)),
        interval_in_seconds: Some(h.interval_in_seconds.unwrap_or(INTERVAL_IN_SECONDS_DEFAULT)),
    }
}

fn encryption(d: &ExtendedS3DestinationConfiguration) -> EncryptionConfiguration {
    d.encryption_configuration
        .clone()
        .filter(|e| e.kms_encryption_config.is_some() || e.no_encryption_config.is_some())
        .unwrap_or(EncryptionConfiguration {
            no_encryption_config: Some(NoEncryptionConfig::NoEncryption),
            kms_encryption_config: None,
        })
}

fn logging(d: &ExtendedS3DestinationConfiguration) -> Option<CloudWatchLoggingOptions> {
    Some(
        d.cloud_watch_logging_options
            .clone()
            .unwrap_or(CloudWatchLoggingOptions {
                enabled: Some(false),
                ..Default::default()
            }),
    )
}

fn s3_description(d: &ExtendedS3DestinationConfiguration) -> S3DestinationDescription {
    S3DestinationDescription {
        role_arn: d.role_arn.clone().unwrap_or_default(),
        bucket_arn: d.bucket_arn.clone().unwrap_or_default(),
        prefix: d.prefix.clone(),
        error_output_prefix: d.error_output_prefix.clone(),
        buffering_hints: hints(d),
        compression_format: d
            .compression_format
            .unwrap_or(CompressionFormat::Uncompressed),
        encryption_configuration: encryption(d),
        cloud_watch_logging_options: logging(d),
    }
}

fn extended_description(
    d: &ExtendedS3DestinationConfiguration,
) -> ExtendedS3DestinationDescription {
    ExtendedS3DestinationDescription {
        role_arn: d.role_arn.clone().unwrap_or_default(),
        bucket_arn: d.bucket_arn.clone().unwrap_or_default(),
        prefix: d.prefix.clone(),
        error_output_prefix: d.error_output_prefix.clone(),
        buffering_hints: hints(d),
        compression_format: d
            .compression_format
            .unwrap_or(CompressionFormat::Uncompressed),
        encryption_configuration: encryption(d),
        cloud_watch_logging_options: logging(d),
        processing_configuration: d.processing_configuration.clone(),
        s3_backup_mode: Some(d.s3_backup_mode.unwrap_or(S3BackupMode::Disabled)),
        s3_backup_description: None,
        data_format_conversion_configuration: d.data_format_conversion_configuration.clone(),
        dynamic_partitioning_configuration: d.dynamic_partitioning_configuration.clone(),
        file_extension: d.file_extension.clone(),
        custom_time_zone: d.custom_time_zone.clone(),
    }
}

impl FirehoseService {
    pub(crate) fn status_of(&self, rec: &DeliveryStreamRecord) -> DeliveryStreamStatus {
        let now = self.streams.now_ms();
        if now < rec.created_ms.saturating_add(self.cfg.transition_ms) {
            DeliveryStreamStatus::Creating
        } else {
            DeliveryStreamStatus::Active
        }
    }

    /// What the supervisor saw go wrong with the delivery task, if it is
    /// failing now.
    fn failure_of(&self, rec: &DeliveryStreamRecord) -> Option<FailureDescription> {
        let health = self.supervisor.health(&Self::task_name(&rec.name))?;
        let failing = matches!(health.state, TaskState::Backoff { .. } | TaskState::Failed)
            || (health.consecutive_failures > 0 && health.state == TaskState::Starting);
        match (failing, health.last_error) {
            (true, Some(e)) => Some(FailureDescription {
                r#type: DeliveryStreamFailureType::UnknownError,
                details: format!(
                    "Delivery to the destination is failing (restarted {} times): {e}",
                    health.restarts
                ),
            }),
            _ => None,
        }
    }

    pub(crate) fn describe(
        &self,
        input: DescribeDeliveryStreamInput,
    ) -> Result<DescribeDeliveryStreamOutput> {
        let name = input.delivery_stream_name.unwrap_or_default();
        let rec = self.get(&name)?;
        let after = input.exclusive_start_destination_id;
        let destinations = if after.as_deref().is_some_and(|a| a >= DESTINATION_ID) {
            Vec::new()
        } else {
            vec![DestinationDescription {
                destination_id: DESTINATION_ID.into(),
                s3_destination_description: Some(s3_description(&rec.destination)),
                extended_s3_destination_description: Some(extended_description(&rec.destination)),
                ..Default::default()
            }]
        };
        let source = match &rec.source {
            Source::Kinesis {
                stream_arn,
                role_arn,
            } => Some(SourceDescription {
                kinesis_stream_source_description: Some(KinesisStreamSourceDescription {
                    kinesis_stream_arn: Some(stream_arn.clone()),
                    role_arn: Some(role_arn.clone()),
                    delivery_start_timestamp: Some(Timestamp::from_ms(rec.created_ms)),
                }),
                ..Default::default()
            }),
            Source::Internal { .. } => {
                rec.direct_put_throughput_hint_mbs
                    .map(|h| SourceDescription {
                        direct_put_source_description: Some(DirectPutSourceDescription {
                            throughput_hint_in_mbs: Some(h),
                        }),
                        ..Default::default()
                    })
            }
        };
        Ok(DescribeDeliveryStreamOutput {
            delivery_stream_description: DeliveryStreamDescription {
                delivery_stream_name: rec.name.clone(),
                delivery_stream_arn: self.arn(&rec.name),
                delivery_stream_status: self.status_of(&rec),
                failure_description: self.failure_of(&rec),
                delivery_stream_encryption_configuration: Some(
                    DeliveryStreamEncryptionConfiguration {
                        status: Some(DeliveryStreamEncryptionStatus::Disabled),
                        ..Default::default()
                    },
                ),
                delivery_stream_type: rec.kind,
                version_id: rec.version.to_string(),
                create_timestamp: Some(Timestamp::from_ms(rec.created_ms)),
                last_update_timestamp: rec.updated_ms.map(Timestamp::from_ms),
                source,
                destinations,
                has_more_destinations: false,
            },
        })
    }

    pub(crate) fn list(&self, input: ListDeliveryStreamsInput) -> ListDeliveryStreamsOutput {
        let limit = input
            .limit
            .map_or(LIST_LIMIT_DEFAULT, |l| l.max(1) as usize);
        let after = input.exclusive_start_delivery_stream_name;
        let map = self.by_name.read();
        let mut names: Vec<String> = map
            .values()
            .filter(|r| input.delivery_stream_type.is_none_or(|t| t == r.kind))
            .filter(|r| after.as_deref().is_none_or(|a| r.name.as_str() > a))
            .take(limit + 1)
            .map(|r| r.name.clone())
            .collect();
        let has_more = names.len() > limit;
        names.truncate(limit);
        ListDeliveryStreamsOutput {
            delivery_stream_names: names,
            has_more_delivery_streams: has_more,
        }
    }

    pub(crate) fn list_tags(
        &self,
        input: ListTagsForDeliveryStreamInput,
    ) -> Result<ListTagsForDeliveryStreamOutput> {
        let rec = self.get(&input.delivery_stream_name.unwrap_or_default())?;
        let limit = input
            .limit
            .map_or(LIST_TAGS_LIMIT_DEFAULT, |l| l.max(1) as usize);
        let after = input.exclusive_start_tag_key;
        let mut tags: Vec<Tag> = rec
            .tags
            .iter()
            .filter(|(k, _)| after.as_deref().is_none_or(|a| k.as_str() > a))
            .take(limit + 1)
            .map(|(k, v)| Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect();
        let has_more = tags.len() > limit;
        tags.truncate(limit);
        Ok(ListTagsForDeliveryStreamOutput {
            tags,
            has_more_tags: has_more,
        })
    }

    pub(crate) async fn tag(
        self: &Arc<Self>,
        input: TagDeliveryStreamInput,
    ) -> Result<TagDeliveryStreamOutput> {
        let name = input.delivery_stream_name.unwrap_or_default();
        let _control = self.control.lock().await;
        let rec = self.get(&name)?;
        let mut tags = rec.tags.clone();
        tags.extend(tags_map(input.tags.as_deref().unwrap_or_default()));
        if tags.len() > TAGS_MAX {
            return Err(FirehoseError::LimitExceeded(format!(
                "A Firehose stream can have at most {TAGS_MAX} tags; this request would give {name} {}.",
                tags.len()
            )));
        }
        let new = Arc::new(DeliveryStreamRecord {
            tags,
            ..(*rec).clone()
        });
        self.save(&new).await?;
        self.by_name.write().insert(name, new);
        Ok(TagDeliveryStreamOutput {})
    }

    pub(crate) async fn untag(
        self: &Arc<Self>,
        input: UntagDeliveryStreamInput,
    ) -> Result<UntagDeliveryStreamOutput> {
        let name = input.delivery_stream_name.unwrap_or_default();
        let _control = self.control.lock().await;
        let rec = self.get(&name)?;
        let mut tags = rec.tags.clone();
        for k in input.tag_keys.unwrap_or_default() {
            tags.remove(&k);
        }
        let new = Arc::new(DeliveryStreamRecord {
            tags,
            ..(*rec).clone()
        });
        self.save(&new).await?;
        self.by_name.write().insert(name, new);
        Ok(UntagDeliveryStreamOutput {})
    }
}
