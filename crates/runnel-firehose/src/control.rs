//! CreateDeliveryStream, DeleteDeliveryStream, UpdateDestination and the
//! destination checks they share.

use std::sync::Arc;

use runnel_streams::api::{CreateStreamInput, DeleteStreamInput, StreamOnlyInput};
use runnel_streams::internal::{as_internal, INTERNAL_NAME_PREFIX};

use crate::model::*;
use crate::record::{self, DeliveryStreamRecord, Source};
use crate::service::{blocking, FirehoseService, Result};
use crate::FirehoseError;

/// The one destination of a delivery stream (AWS numbers them; runnel
/// supports one, as AWS does today).
pub(crate) const DESTINATION_ID: &str = "destinationId-000000000001";
/// AWS's limit of tags per delivery stream.
pub(crate) const TAGS_MAX: usize = 50;

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

fn not_supported(what: &str) -> FirehoseError {
    invalid(format!("{what} is not supported by runnel yet."))
}

/// `arn:aws:s3:::B` → `B`, when B can be a directory name.
pub(crate) fn bucket_of(arn: &str) -> Result<String> {
    let bucket = arn
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":s3:::"))
        .map(|(_, b)| b)
        .unwrap_or("");
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with('.')
        && !bucket.contains("..");
    if ok {
        Ok(bucket.to_string())
    } else {
        Err(invalid(format!(
            "BucketARN {arn} does not name an S3 bucket (arn:aws:s3:::BUCKET, 3 to 63 characters of a-z, 0-9, '.' and '-')."
        )))
    }
}

/// Refuses what this slice does not implement, naming it.
pub(crate) fn check_destination(d: &ExtendedS3DestinationConfiguration) -> Result<()> {
    bucket_of(d.bucket_arn.as_deref().unwrap_or(""))?;
    match d.compression_format {
        None | Some(CompressionFormat::Uncompressed) | Some(CompressionFormat::Gzip) => {}
        Some(other) => return Err(not_supported(&format!("CompressionFormat {other}"))),
    }
    for (member, value) in [
        ("Prefix", &d.prefix),
        ("ErrorOutputPrefix", &d.error_output_prefix),
    ] {
        let Some(p) = value else { continue };
        if p.contains("!{") {
            return Err(not_supported(&format!(
                "An expression (!{{...}}) in {member}"
            )));
        }
        let probe = format!("{p}x");
        if !crate::delivery::keys::key_is_local_safe(&probe) {
            return Err(invalid(format!(
                "{member} {p} cannot name objects in a local directory bucket: it may not start with '/', or contain empty, '.' or '..' segments or segments starting with '.'."
            )));
        }
    }
    if d.processing_configuration
        .as_ref()
        .is_some_and(|p| p.enabled == Some(true))
    {
        return Err(not_supported(
            "ProcessingConfiguration (record transformation)",
        ));
    }
    if d.data_format_conversion_configuration
        .as_ref()
        .is_some_and(|c| c.enabled != Some(false))
    {
        return Err(not_supported("DataFormatConversionConfiguration"));
    }
    if d.dynamic_partitioning_configuration
        .as_ref()
        .is_some_and(|c| c.enabled == Some(true))
    {
        return Err(not_supported("DynamicPartitioningConfiguration"));
    }
    if d.s3_backup_mode == Some(S3BackupMode::Enabled) || d.s3_backup_configuration.is_some() {
        return Err(not_supported("S3 backup (S3BackupMode Enabled)"));
    }
    if d.encryption_configuration
        .as_ref()
        .is_some_and(|e| e.kms_encryption_config.is_some())
    {
        return Err(not_supported("KMSEncryptionConfig for S3 objects"));
    }
    if let Some(tz) = &d.custom_time_zone {
        if tz != "UTC" {
            return Err(not_supported(&format!("CustomTimeZone {tz}")));
        }
    }
    Ok(())
}

fn plain_to_extended(c: S3DestinationConfiguration) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration {
        role_arn: c.role_arn,
        bucket_arn: c.bucket_arn,
        prefix: c.prefix,
        error_output_prefix: c.error_output_prefix,
        buffering_hints: c.buffering_hints,
        compression_format: c.compression_format,
        encryption_configuration: c.encryption_configuration,
        cloud_watch_logging_options: c.cloud_watch_logging_options,
        ..Default::default()
    }
}

/// The destination members of CreateDeliveryStream runnel does not serve yet.
fn other_destinations(i: &CreateDeliveryStreamInput) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! given {
        ($($field:ident => $name:literal),* $(,)?) => {
            $(if i.$field.is_some() { out.push($name); })*
        };
    }
    given!(
        redshift_destination_configuration => "RedshiftDestinationConfiguration",
        elasticsearch_destination_configuration => "ElasticsearchDestinationConfiguration",
        amazonopensearchservice_destination_configuration => "AmazonopensearchserviceDestinationConfiguration",
        splunk_destination_configuration => "SplunkDestinationConfiguration",
        http_endpoint_destination_configuration => "HttpEndpointDestinationConfiguration",
        amazon_open_search_serverless_destination_configuration => "AmazonOpenSearchServerlessDestinationConfiguration",
        snowflake_destination_configuration => "SnowflakeDestinationConfiguration",
        iceberg_destination_configuration => "IcebergDestinationConfiguration",
    );
    out
}

pub(crate) fn tags_map(tags: &[Tag]) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

impl FirehoseService {
    pub(crate) async fn create(
        self: &Arc<Self>,
        input: CreateDeliveryStreamInput,
    ) -> Result<CreateDeliveryStreamOutput> {
        let name = input.delivery_stream_name.clone().unwrap_or_default();
        let kind = input
            .delivery_stream_type
            .unwrap_or(DeliveryStreamType::DirectPut);
        match kind {
            DeliveryStreamType::DirectPut | DeliveryStreamType::KinesisStreamAsSource => {}
            other => return Err(not_supported(&format!("DeliveryStreamType {other}"))),
        }
        if input.msk_source_configuration.is_some() {
            return Err(not_supported("MSKSourceConfiguration"));
        }
        if input.database_source_configuration.is_some() {
            return Err(not_supported("DatabaseSourceConfiguration"));
        }
        if input
            .delivery_stream_encryption_configuration_input
            .is_some()
        {
            return Err(not_supported("DeliveryStreamEncryptionConfigurationInput"));
        }
        let others = other_destinations(&input);
        let given = others.len()
            + usize::from(input.s3_destination_configuration.is_some())
            + usize::from(input.extended_s3_destination_configuration.is_some());
        if given != 1 {
            return Err(invalid(
                "Exactly one destination configuration must be specified.",
            ));
        }
        if let Some(first) = others.first() {
            return Err(invalid(format!(
                "{first} is not supported by runnel yet; supported destinations are ExtendedS3DestinationConfiguration and S3DestinationConfiguration."
            )));
        }
        let (destination, plain_s3) = match (
            input.extended_s3_destination_configuration,
            input.s3_destination_configuration,
        ) {
            (Some(e), _) => (e, false),
            (None, Some(s)) => (plain_to_extended(s), true),
            (None, None) => {
                return Err(invalid(
                    "Exactly one destination configuration must be specified.",
                ))
            }
        };
        check_destination(&destination)?;
        let tags = input.tags.as_deref().map(tags_map).unwrap_or_default();
        let source_cfg = input.kinesis_stream_source_configuration;
        let direct_put_hint = input
            .direct_put_source_configuration
            .and_then(|c| c.throughput_hint_in_mbs);
        let kinesis = match (kind, source_cfg) {
            (DeliveryStreamType::KinesisStreamAsSource, Some(c)) => Some((
                c.kinesis_stream_arn.unwrap_or_default(),
                c.role_arn.unwrap_or_default(),
            )),
            (DeliveryStreamType::KinesisStreamAsSource, None) => {
                return Err(invalid(
                    "KinesisStreamSourceConfiguration is required for a delivery stream of type KinesisStreamAsSource.",
                ))
            }
            (_, Some(_)) => {
                return Err(invalid(
                    "KinesisStreamSourceConfiguration is only allowed for a delivery stream of type KinesisStreamAsSource.",
                ))
            }
            (_, None) => None,
        };

        let _control = self.control.lock().await;
        if self.by_name.read().contains_key(&name) {
            return Err(FirehoseError::ResourceInUse(format!(
                "Firehose {name} under account {} already exists.",
                self.cfg.account_id
            )));
        }
        let now = self.streams.now_ms();
        let svc = self.clone();
        let rec = blocking(move || {
            let source = match kinesis {
                Some((stream_arn, role_arn)) => {
                    let probe = StreamOnlyInput {
                        stream_name: None,
                        stream_arn: Some(stream_arn.clone()),
                    };
                    svc.streams.describe_stream_summary(probe).map_err(|e| {
                        invalid(format!("Cannot read source stream {stream_arn}: {e}"))
                    })?;
                    Source::Kinesis {
                        stream_arn,
                        role_arn,
                    }
                }
                None => {
                    let stream = format!("{INTERNAL_NAME_PREFIX}firehose!{name}!{now}");
                    let create = CreateStreamInput {
                        stream_name: Some(stream.clone()),
                        shard_count: Some(1),
                        // Firehose's own limits apply, not a shard's.
                        tags: Some(
                            [(
                                runnel_streams::quota::QUOTA_TAG.to_string(),
                                "off".to_string(),
                            )]
                            .into(),
                        ),
                        ..Default::default()
                    };
                    as_internal(|| svc.streams.create_stream(create)).map_err(|e| {
                        FirehoseError::Internal(format!("cannot create the record stream: {e}"))
                    })?;
                    Source::Internal { stream }
                }
            };
            // After the internal stream's creation: that stream is ACTIVE
            // by the time this delivery stream is.
            let created_ms = svc.streams.now_ms();
            let rec = DeliveryStreamRecord {
                name,
                kind,
                created_ms,
                updated_ms: None,
                version: 1,
                source,
                destination,
                plain_s3,
                direct_put_throughput_hint_mbs: direct_put_hint,
                tags,
            };
            record::save_definition(svc.env.catalog.as_ref(), &rec)
                .map_err(|e| FirehoseError::Internal(e.to_string()))?;
            Ok(Arc::new(rec))
        })
        .await?;
        self.start_task(&rec)?;
        self.by_name.write().insert(rec.name.clone(), rec.clone());
        tracing::info!(delivery_stream = %rec.name, kind = %rec.kind, "delivery stream created");
        Ok(CreateDeliveryStreamOutput {
            delivery_stream_arn: Some(self.arn(&rec.name)),
        })
    }

    pub(crate) async fn delete(
        self: &Arc<Self>,
        input: DeleteDeliveryStreamInput,
    ) -> Result<DeleteDeliveryStreamOutput> {
        let name = input.delivery_stream_name.unwrap_or_default();
        let _control = self.control.lock().await;
        let rec = self.get(&name)?;
        let _ = self.supervisor.remove(&Self::task_name(&name)).await;
        self.by_name.write().remove(&name);
        // A CREATING internal stream cannot be deleted yet.
        let creating_ms = rec
            .created_ms
            .saturating_add(self.cfg.transition_ms)
            .saturating_sub(self.streams.now_ms());
        if creating_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(creating_ms)).await;
        }
        let svc = self.clone();
        blocking(move || {
            let catalog = svc.env.catalog.as_ref();
            catalog
                .delete_entry(record::DEFINITIONS, &rec.name)
                .and_then(|()| catalog.delete_entry(record::POSITIONS, &rec.name))
                .map_err(|e| FirehoseError::Internal(e.to_string()))?;
            if let Source::Internal { stream } = &rec.source {
                let input = DeleteStreamInput {
                    stream_name: Some(stream.clone()),
                    ..Default::default()
                };
                if let Err(e) = as_internal(|| svc.streams.delete_stream(input)) {
                    tracing::warn!(delivery_stream = %rec.name, error = %e, "cannot delete the record stream");
                }
            }
            Ok(())
        })
        .await?;
        tracing::info!(delivery_stream = %name, "delivery stream deleted");
        Ok(DeleteDeliveryStreamOutput {})
    }

    pub(crate) async fn update_destination(
        self: &Arc<Self>,
        input: UpdateDestinationInput,
    ) -> Result<UpdateDestinationOutput> {
        let name = input.delivery_stream_name.clone().unwrap_or_default();
        let _control = self.control.lock().await;
        let rec = self.get(&name)?;
        let asked = input
            .current_delivery_stream_version_id
            .clone()
            .unwrap_or_default();
        if asked != rec.version.to_string() {
            return Err(FirehoseError::ConcurrentModification(format!(
                "Cannot update Firehose {name}: version {asked} was given, but the current version is {}.",
                rec.version
            )));
        }
        let id = input.destination_id.clone().unwrap_or_default();
        if id != DESTINATION_ID {
            return Err(invalid(format!(
                "Destination {id} of Firehose {name} not found."
            )));
        }
        let others = [
            input.redshift_destination_update.is_some(),
            input.elasticsearch_destination_update.is_some(),
            input.amazonopensearchservice_destination_update.is_some(),
            input.splunk_destination_update.is_some(),
            input.http_endpoint_destination_update.is_some(),
            input
                .amazon_open_search_serverless_destination_update
                .is_some(),
            input.snowflake_destination_update.is_some(),
            input.iceberg_destination_update.is_some(),
        ];
        if others.iter().any(|g| *g) {
            return Err(invalid(
                "Only S3DestinationUpdate and ExtendedS3DestinationUpdate are supported by runnel yet.",
            ));
        }
        let mut d = rec.destination.clone();
        let mut plain_s3 = rec.plain_s3;
        match (
            input.extended_s3_destination_update,
            input.s3_destination_update,
        ) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid("Exactly one destination update must be specified."))
            }
            (Some(u), None) => {
                merge_extended(&mut d, u);
                plain_s3 = false;
            }
            (None, Some(u)) => merge_plain(&mut d, u),
        }
        check_destination(&d)?;
        let new = Arc::new(DeliveryStreamRecord {
            destination: d,
            plain_s3,
            version: rec.version + 1,
            updated_ms: Some(self.streams.now_ms()),
            ..(*rec).clone()
        });
        self.save(&new).await?;
        let _ = self.supervisor.remove(&Self::task_name(&name)).await;
        self.by_name.write().insert(name, new.clone());
        self.start_task(&new)?;
        Ok(UpdateDestinationOutput {})
    }

    /// Persists a changed definition.
    pub(crate) async fn save(self: &Arc<Self>, rec: &Arc<DeliveryStreamRecord>) -> Result<()> {
        let (svc, rec) = (self.clone(), rec.clone());
        blocking(move || {
            record::save_definition(svc.env.catalog.as_ref(), &rec)
                .map_err(|e| FirehoseError::Internal(e.to_string()))
        })
        .await
    }
}

macro_rules! merge {
    ($d:expr, $u:expr, $($f:ident),*) => {
        $(if $u.$f.is_some() { $d.$f = $u.$f; })*
    };
}

fn merge_plain(d: &mut ExtendedS3DestinationConfiguration, u: S3DestinationUpdate) {
    merge!(
        d,
        u,
        role_arn,
        bucket_arn,
        prefix,
        error_output_prefix,
        buffering_hints,
        compression_format,
        encryption_configuration,
        cloud_watch_logging_options
    );
}

fn merge_extended(d: &mut ExtendedS3DestinationConfiguration, u: ExtendedS3DestinationUpdate) {
    merge!(
        d,
        u,
        role_arn,
        bucket_arn,
        prefix,
        error_output_prefix,
        buffering_hints,
        compression_format,
        encryption_configuration,
        cloud_watch_logging_options,
        processing_configuration,
        s3_backup_mode,
        data_format_conversion_configuration,
        dynamic_partitioning_configuration,
        file_extension,
        custom_time_zone
    );
    if u.s3_backup_update.is_some() {
        // Refused by check_destination: backup is not supported yet.
        d.s3_backup_configuration = Some(S3DestinationConfiguration::default());
    }
}
