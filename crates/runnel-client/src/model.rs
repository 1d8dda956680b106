//! Request and response shapes of the Kinesis operations this client speaks,
//! named as in the botocore `kinesis/2013-12-02` model. Blobs travel as
//! base64; unknown response fields are ignored so newer servers still parse.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Base64 (standard alphabet, padded) for blob members.
mod blob {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

/// Timestamps arrive as epoch seconds (number); some emulators send strings.
mod lenient_time {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(match Option::<Raw>::deserialize(d)? {
            Some(Raw::Number(n)) => Some(n),
            Some(Raw::Text(t)) => t.parse().ok(),
            None => None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    /// `PROVISIONED` or `ON_DEMAND`.
    pub stream_mode: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    pub stream_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStreamInput {
    pub stream_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce_consumer_deletion: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryInput {
    pub stream_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    pub stream_description_summary: StreamDescriptionSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN", default)]
    pub stream_arn: Option<String>,
    /// `CREATING`, `DELETING`, `ACTIVE` or `UPDATING`.
    pub stream_status: String,
    #[serde(default)]
    pub stream_mode_details: Option<StreamModeDetails>,
    #[serde(default)]
    pub retention_period_hours: Option<u32>,
    #[serde(default, deserialize_with = "lenient_time::deserialize")]
    pub stream_creation_timestamp: Option<f64>,
    #[serde(default)]
    pub open_shard_count: Option<u32>,
    #[serde(default)]
    pub consumer_count: Option<u32>,
    #[serde(default)]
    pub encryption_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_start_shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    #[serde(default)]
    pub shards: Vec<Shard>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    pub shard_id: String,
    #[serde(default)]
    pub parent_shard_id: Option<String>,
    #[serde(default)]
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRange,
    pub sequence_number_range: SequenceNumberRange,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    pub starting_sequence_number: String,
    #[serde(default)]
    pub ending_sequence_number: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    pub stream_name: String,
    #[serde(with = "blob")]
    pub data: Bytes,
    pub partition_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number_for_ordering: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    pub shard_id: String,
    pub sequence_number: String,
    #[serde(default)]
    pub encryption_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    pub stream_name: String,
    pub records: Vec<PutRecordsRequestEntry>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsRequestEntry {
    #[serde(with = "blob")]
    pub data: Bytes,
    pub partition_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    #[serde(default)]
    pub failed_record_count: Option<u32>,
    /// One entry per request entry, in request order.
    pub records: Vec<PutRecordsResultEntry>,
    #[serde(default)]
    pub encryption_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    #[serde(default)]
    pub sequence_number: Option<String>,
    #[serde(default)]
    pub shard_id: Option<String>,
    /// Set when this entry failed, e.g. `ProvisionedThroughputExceededException`.
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShardIteratorType {
    AtSequenceNumber,
    AfterSequenceNumber,
    #[default]
    TrimHorizon,
    Latest,
    AtTimestamp,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    pub stream_name: String,
    pub shard_id: String,
    pub shard_iterator_type: ShardIteratorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_sequence_number: Option<String>,
    /// Epoch seconds, for `AT_TIMESTAMP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    pub shard_iterator: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    pub shard_iterator: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    /// Some emulators (kinesis-local) answer `"Records": null` when empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub records: Vec<Record>,
    /// Absent once a closed shard has been read to its end.
    #[serde(default)]
    pub next_shard_iterator: Option<String>,
    #[serde(default)]
    pub millis_behind_latest: Option<u64>,
    /// Set with the last records of a closed shard: the shards that took
    /// over its hash range.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub child_shards: Vec<ChildShard>,
}

/// `null` (or absent, with `default`) decodes as an empty list.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    pub shard_id: String,
    #[serde(default)]
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRange,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub sequence_number: String,
    #[serde(default, deserialize_with = "lenient_time::deserialize")]
    pub approximate_arrival_timestamp: Option<f64>,
    #[serde(with = "blob")]
    pub data: Bytes,
    pub partition_key: String,
    #[serde(default)]
    pub encryption_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_records_are_empty() {
        let out: GetRecordsOutput =
            serde_json::from_str(r#"{"Records":null,"NextShardIterator":"x","ChildShards":null}"#)
                .unwrap();
        assert!(out.records.is_empty() && out.child_shards.is_empty());
    }

    #[test]
    fn put_records_serializes_pascal_case_base64() {
        let input = PutRecordsInput {
            stream_name: "s".into(),
            records: vec![PutRecordsRequestEntry {
                data: Bytes::from_static(b"hi"),
                partition_key: "k".into(),
                explicit_hash_key: None,
            }],
        };
        assert_eq!(
            serde_json::to_string(&input).unwrap(),
            r#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k"}]}"#
        );
    }

    #[test]
    fn get_records_parses_lenient_fields() {
        let out: GetRecordsOutput = serde_json::from_str(
            r#"{"Records":[{"SequenceNumber":"4959","ApproximateArrivalTimestamp":1.5,
                "Data":"aGk=","PartitionKey":"k","Extra":1},
               {"SequenceNumber":"4960","ApproximateArrivalTimestamp":"2.5",
                "Data":"","PartitionKey":"k"}],
               "NextShardIterator":"it","MillisBehindLatest":0}"#,
        )
        .unwrap();
        assert_eq!(out.records[0].data.as_ref(), b"hi");
        assert_eq!(out.records[1].approximate_arrival_timestamp, Some(2.5));
        assert_eq!(out.next_shard_iterator.as_deref(), Some("it"));
    }

    #[test]
    fn iterator_type_wire_names() {
        let json = serde_json::to_string(&ShardIteratorType::TrimHorizon).unwrap();
        assert_eq!(json, r#""TRIM_HORIZON""#);
    }
}
