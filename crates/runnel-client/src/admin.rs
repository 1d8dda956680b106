//! Stream administration beyond create/delete: listing streams, resharding
//! and retention, named as in the botocore `kinesis/2013-12-02` model.

use serde::{Deserialize, Serialize};

use crate::model::StreamModeDetails;
use crate::{Client, Error};

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_start_stream_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    #[serde(default)]
    pub stream_names: Vec<String>,
    #[serde(default)]
    pub has_more_streams: bool,
    #[serde(default)]
    pub next_token: Option<String>,
    /// Newer servers (and AWS since 2023) also send one summary per name.
    #[serde(default)]
    pub stream_summaries: Vec<StreamSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN", default)]
    pub stream_arn: Option<String>,
    pub stream_status: String,
    #[serde(default)]
    pub stream_mode_details: Option<StreamModeDetails>,
    #[serde(default)]
    pub stream_creation_timestamp: Option<f64>,
}

/// The only scaling type Kinesis defines.
pub const SCALING_TYPE_UNIFORM: &str = "UNIFORM_SCALING";

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    pub stream_name: String,
    pub target_shard_count: u32,
    pub scaling_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountOutput {
    #[serde(default)]
    pub stream_name: Option<String>,
    #[serde(default)]
    pub current_shard_count: Option<u32>,
    #[serde(default)]
    pub target_shard_count: Option<u32>,
}

/// Input of both IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRetentionPeriodInput {
    pub stream_name: String,
    pub retention_period_hours: u32,
}

impl Client {
    pub async fn list_streams(&self, input: &ListStreamsInput) -> Result<ListStreamsOutput, Error> {
        self.call("ListStreams", input).await
    }

    /// Every stream, following `NextToken` (or `ExclusiveStartStreamName`
    /// for servers that predate tokens) until `HasMoreStreams` is false.
    pub async fn list_all_streams(&self) -> Result<ListStreamsOutput, Error> {
        let mut all = ListStreamsOutput {
            stream_names: Vec::new(),
            has_more_streams: false,
            next_token: None,
            stream_summaries: Vec::new(),
        };
        let mut input = ListStreamsInput::default();
        loop {
            let page = self.list_streams(&input).await?;
            let last = page.stream_names.last().cloned();
            all.stream_names.extend(page.stream_names);
            all.stream_summaries.extend(page.stream_summaries);
            if !page.has_more_streams {
                return Ok(all);
            }
            input = match (page.next_token, last) {
                (Some(token), _) if !token.is_empty() => ListStreamsInput {
                    next_token: Some(token),
                    ..Default::default()
                },
                (_, Some(last)) => ListStreamsInput {
                    exclusive_start_stream_name: Some(last),
                    ..Default::default()
                },
                // "More streams" but nothing to continue from: stop rather than loop.
                (_, None) => return Ok(all),
            };
        }
    }

    pub async fn update_shard_count(
        &self,
        input: &UpdateShardCountInput,
    ) -> Result<UpdateShardCountOutput, Error> {
        self.call("UpdateShardCount", input).await
    }

    pub async fn increase_stream_retention_period(
        &self,
        input: &StreamRetentionPeriodInput,
    ) -> Result<(), Error> {
        self.call_raw("IncreaseStreamRetentionPeriod", input)
            .await
            .map(drop)
    }

    pub async fn decrease_stream_retention_period(
        &self,
        input: &StreamRetentionPeriodInput,
    ) -> Result<(), Error> {
        self.call_raw("DecreaseStreamRetentionPeriod", input)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_streams_parses_summaries() {
        let out: ListStreamsOutput = serde_json::from_str(
            r#"{"StreamNames":["a"],"HasMoreStreams":false,
                "StreamSummaries":[{"StreamName":"a","StreamARN":"arn:x","StreamStatus":"ACTIVE",
                "StreamModeDetails":{"StreamMode":"ON_DEMAND"},"StreamCreationTimestamp":1.5}]}"#,
        )
        .unwrap();
        assert_eq!(out.stream_names, vec!["a"]);
        assert_eq!(out.stream_summaries[0].stream_arn.as_deref(), Some("arn:x"));
    }

    #[test]
    fn update_shard_count_wire_names() {
        let input = UpdateShardCountInput {
            stream_name: "s".into(),
            target_shard_count: 4,
            scaling_type: SCALING_TYPE_UNIFORM.into(),
        };
        assert_eq!(
            serde_json::to_string(&input).unwrap(),
            r#"{"StreamName":"s","TargetShardCount":4,"ScalingType":"UNIFORM_SCALING"}"#
        );
    }
}
