//! PutRecord and PutRecordBatch: Direct PUT into the delivery stream's
//! internal stream, acknowledged after the log's fsync.

use std::sync::Arc;

use runnel_streams::api::{PutRecordsInput, PutRecordsRequestEntry};
use runnel_streams::internal::as_internal_async;
use runnel_types::Blob;

use crate::model::*;
use crate::record::Source;
use crate::service::{FirehoseService, Result};
use crate::FirehoseError;

/// AWS's limit on the records of one PutRecordBatch, in bytes.
pub(crate) const PUT_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The internal stream has one shard: any key routes there.
const PARTITION_KEY: &str = "firehose";

impl FirehoseService {
    pub(crate) async fn put_record(
        self: &Arc<Self>,
        input: PutRecordInput,
    ) -> Result<PutRecordOutput> {
        let batch = PutRecordBatchInput {
            delivery_stream_name: input.delivery_stream_name,
            records: Some(input.record.into_iter().collect()),
        };
        let out = self.put_record_batch(batch).await?;
        match out.request_responses.into_iter().next() {
            Some(PutRecordBatchResponseEntry {
                record_id: Some(id),
                ..
            }) => Ok(PutRecordOutput {
                record_id: id,
                encrypted: Some(false),
            }),
            Some(PutRecordBatchResponseEntry { error_message, .. }) => {
                Err(FirehoseError::ServiceUnavailable(
                    error_message.unwrap_or_else(|| "Slow down.".into()),
                ))
            }
            None => Err(FirehoseError::Internal("no result for the record".into())),
        }
    }

    pub(crate) async fn put_record_batch(
        self: &Arc<Self>,
        input: PutRecordBatchInput,
    ) -> Result<PutRecordBatchOutput> {
        let name = input.delivery_stream_name.unwrap_or_default();
        let rec = self.get(&name)?;
        let stream = match &rec.source {
            Source::Internal { stream } => stream.clone(),
            Source::Kinesis { .. } => return Err(FirehoseError::InvalidArgument(
                "This operation is not permitted on KinesisStreamAsSource delivery stream type."
                    .into(),
            )),
        };
        if self.status_of(&rec) != DeliveryStreamStatus::Active {
            return Err(FirehoseError::ResourceInUse(format!(
                "Firehose {name} under account {} is not ACTIVE, instead in state {}.",
                self.cfg.account_id,
                self.status_of(&rec)
            )));
        }
        let records = input.records.unwrap_or_default();
        let bytes: usize = records
            .iter()
            .map(|r| r.data.as_ref().map_or(0, |d| d.0.len()))
            .sum();
        if bytes > PUT_BATCH_BYTES_MAX {
            return Err(FirehoseError::InvalidArgument(format!(
                "The records of a PutRecordBatch request may total at most 4 MiB ({PUT_BATCH_BYTES_MAX} bytes); these total {bytes} bytes."
            )));
        }
        let entries = records
            .into_iter()
            .map(|r| PutRecordsRequestEntry {
                data: Some(r.data.unwrap_or(Blob(Vec::new()))),
                explicit_hash_key: None,
                partition_key: Some(PARTITION_KEY.into()),
            })
            .collect();
        let put = PutRecordsInput {
            stream_name: Some(stream),
            stream_arn: None,
            records: Some(entries),
        };
        let out = as_internal_async(self.streams.put_records(put))
            .await
            .map_err(|e| {
                FirehoseError::ServiceUnavailable(format!("Records could not be stored: {e}"))
            })?;
        let mut failed = 0;
        let request_responses = out
            .records
            .into_iter()
            .map(|r| match r.sequence_number {
                Some(seq) => PutRecordBatchResponseEntry {
                    record_id: Some(seq),
                    ..Default::default()
                },
                None => {
                    failed += 1;
                    PutRecordBatchResponseEntry {
                        record_id: None,
                        error_code: Some("ServiceUnavailableException".into()),
                        error_message: Some("Slow down.".into()),
                    }
                }
            })
            .collect();
        Ok(PutRecordBatchOutput {
            failed_put_count: failed,
            encrypted: Some(false),
            request_responses,
        })
    }
}
