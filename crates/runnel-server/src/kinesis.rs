//! `Kinesis_20131202.*`: decode the input shape, run the operation, encode
//! the output. Control-plane and read operations run on the blocking pool
//! (they may fsync the catalog or read from disk); puts await the log's
//! group commit.

use std::sync::Arc;

use runnel_protocol::{decode, encode, Encoding};
use runnel_streams::StreamsService;

use crate::errors::FrontDoorError;

/// Runs a synchronous service call on the blocking pool.
async fn blocking<T, F>(svc: &Arc<StreamsService>, f: F) -> Result<T, FrontDoorError>
where
    F: FnOnce(&StreamsService) -> Result<T, runnel_streams::StreamsError> + Send + 'static,
    T: Send + 'static,
{
    let svc = svc.clone();
    match tokio::task::spawn_blocking(move || f(&svc)).await {
        Ok(result) => Ok(result?),
        Err(e) => {
            tracing::error!(error = %e, "operation task failed");
            Err(runnel_streams::StreamsError::Internal("Internal service failure.".into()).into())
        }
    }
}

macro_rules! sync_op {
    ($svc:expr, $enc:expr, $body:expr, $method:ident) => {{
        let input = decode($enc, &$body)?;
        let out = blocking($svc, move |s| s.$method(input)).await?;
        Ok(encode($enc, &out))
    }};
}

/// Dispatches one operation. `Err` carries the AWS error to send back.
pub async fn dispatch(
    svc: &Arc<StreamsService>,
    operation: &str,
    encoding: Encoding,
    body: bytes::Bytes,
) -> Result<Vec<u8>, FrontDoorError> {
    match operation {
        "PutRecords" => {
            let input = decode(encoding, &body)?;
            drop(body);
            Ok(encode(encoding, &svc.put_records(input).await?))
        }
        "PutRecord" => {
            let input = decode(encoding, &body)?;
            drop(body);
            Ok(encode(encoding, &svc.put_record(input).await?))
        }
        "GetRecords" => sync_op!(svc, encoding, body, get_records),
        "GetShardIterator" => sync_op!(svc, encoding, body, get_shard_iterator),
        "CreateStream" => sync_op!(svc, encoding, body, create_stream),
        "DeleteStream" => sync_op!(svc, encoding, body, delete_stream),
        "DescribeStream" => sync_op!(svc, encoding, body, describe_stream),
        "DescribeStreamSummary" => sync_op!(svc, encoding, body, describe_stream_summary),
        "ListStreams" => sync_op!(svc, encoding, body, list_streams),
        "ListShards" => sync_op!(svc, encoding, body, list_shards),
        "IncreaseStreamRetentionPeriod" => sync_op!(svc, encoding, body, increase_retention),
        "DecreaseStreamRetentionPeriod" => sync_op!(svc, encoding, body, decrease_retention),
        "AddTagsToStream" => sync_op!(svc, encoding, body, add_tags_to_stream),
        "RemoveTagsFromStream" => sync_op!(svc, encoding, body, remove_tags_from_stream),
        "ListTagsForStream" => sync_op!(svc, encoding, body, list_tags_for_stream),
        "TagResource" => sync_op!(svc, encoding, body, tag_resource),
        "UntagResource" => sync_op!(svc, encoding, body, untag_resource),
        "ListTagsForResource" => sync_op!(svc, encoding, body, list_tags_for_resource),
        "SplitShard" => sync_op!(svc, encoding, body, split_shard),
        "MergeShards" => sync_op!(svc, encoding, body, merge_shards),
        "UpdateShardCount" => sync_op!(svc, encoding, body, update_shard_count),
        "UpdateStreamMode" => sync_op!(svc, encoding, body, update_stream_mode),
        "UpdateStreamWarmThroughput" => {
            sync_op!(svc, encoding, body, update_stream_warm_throughput)
        }
        "UpdateMaxRecordSize" => sync_op!(svc, encoding, body, update_max_record_size),
        "UpdateAccountSettings" => sync_op!(svc, encoding, body, update_account_settings),
        "DescribeAccountSettings" => {
            let out = blocking(svc, |s| s.describe_account_settings()).await?;
            Ok(encode(encoding, &out))
        }
        "RegisterStreamConsumer" => sync_op!(svc, encoding, body, register_stream_consumer),
        "DescribeStreamConsumer" => sync_op!(svc, encoding, body, describe_stream_consumer),
        "ListStreamConsumers" => sync_op!(svc, encoding, body, list_stream_consumers),
        "DeregisterStreamConsumer" => sync_op!(svc, encoding, body, deregister_stream_consumer),
        "EnableEnhancedMonitoring" => sync_op!(svc, encoding, body, enable_enhanced_monitoring),
        "DisableEnhancedMonitoring" => sync_op!(svc, encoding, body, disable_enhanced_monitoring),
        "StartStreamEncryption" => sync_op!(svc, encoding, body, start_stream_encryption),
        "StopStreamEncryption" => sync_op!(svc, encoding, body, stop_stream_encryption),
        "PutResourcePolicy" => sync_op!(svc, encoding, body, put_resource_policy),
        "GetResourcePolicy" => sync_op!(svc, encoding, body, get_resource_policy),
        "DeleteResourcePolicy" => sync_op!(svc, encoding, body, delete_resource_policy),
        "DescribeLimits" => {
            // Validate that the body is a structure, like every operation.
            let _: serde_json::Value = match encoding {
                Encoding::Json => decode(encoding, &body)?,
                Encoding::Cbor => serde_json::Value::Null,
            };
            let out = blocking(svc, |s| s.describe_limits()).await?;
            Ok(encode(encoding, &out))
        }
        other => Err(FrontDoorError::UnknownOperation(format!(
            "Operation {other} is not supported by this server."
        ))),
    }
}
