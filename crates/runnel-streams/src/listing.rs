//! DescribeStream, ListStreams, ListShards.

use runnel_catalog::ShardRecord;
use runnel_types::limits::{
    DESCRIBE_STREAM_LIMIT_DEFAULT, DESCRIBE_STREAM_LIMIT_MAX, ITERATOR_TTL_MS,
    LIST_SHARDS_RESULTS_DEFAULT, LIST_SHARDS_RESULTS_MAX, LIST_STREAMS_LIMIT_DEFAULT,
    LIST_STREAMS_LIMIT_MAX,
};
use runnel_types::{SequenceNumber, ShardId, Timestamp};

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::service::{mode_name, status_name, StreamEntry, StreamsService};
use crate::token::TokenKind;
use crate::validate::Violations;

/// Pagination tokens expire like AWS's, after five minutes.
const NEXT_TOKEN_TTL_MS: u64 = ITERATOR_TTL_MS;

impl StreamsService {
    pub(crate) fn shard_out(&self, entry: &StreamEntry, s: &ShardRecord) -> ShardOut {
        let seq = |pos: u64| SequenceNumber::new(entry.epoch, s.index, pos).to_string();
        ShardOut {
            shard_id: ShardId(s.index).to_string(),
            parent_shard_id: s.parent.map(|p| ShardId(p).to_string()),
            adjacent_parent_shard_id: s.adjacent_parent.map(|p| ShardId(p).to_string()),
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: s.hash_start.clone(),
                ending_hash_key: s.hash_end.clone(),
            },
            sequence_number_range: SequenceNumberRangeOut {
                starting_sequence_number: seq(s.starting_position),
                // The last record sits at position p - 1, whose field is p.
                ending_sequence_number: s.closed_at_position.map(seq),
            },
        }
    }

    pub fn describe_stream(&self, input: DescribeStreamInput) -> Result<DescribeStreamOutput> {
        let mut v = Violations::new();
        v.int(
            "limit",
            input.limit,
            1,
            Some(i64::from(DESCRIBE_STREAM_LIMIT_MAX)),
        );
        v.shard_id(
            "exclusiveStartShardId",
            input.exclusive_start_shard_id.as_deref(),
        );
        let entry = self.resolve(&input, v)?;
        let rec = &entry.rec;
        let limit = input
            .limit
            .map(|l| l as usize)
            .unwrap_or(DESCRIBE_STREAM_LIMIT_DEFAULT as usize);
        let after = input.exclusive_start_shard_id.as_deref();
        let now = self.now_ms();
        let mut shards: Vec<&ShardRecord> = rec
            .shards
            .iter()
            .filter(|s| !entry.expired(s, now))
            .filter(|s| after.is_none_or(|a| ShardId(s.index).to_string().as_str() > a))
            .collect();
        let has_more = shards.len() > limit;
        shards.truncate(limit);
        Ok(DescribeStreamOutput {
            stream_description: StreamDescription {
                stream_name: rec.name.clone(),
                stream_arn: self.arn(&rec.name),
                stream_status: status_name(self.state_of(rec)),
                stream_mode_details: StreamModeDetailsOut {
                    stream_mode: mode_name(rec.mode),
                },
                shards: shards
                    .into_iter()
                    .map(|s| self.shard_out(&entry, s))
                    .collect(),
                has_more_shards: has_more,
                retention_period_hours: rec.retention_hours,
                stream_creation_timestamp: Timestamp::from_ms(rec.created_ms),
                enhanced_monitoring: vec![EnhancedMetrics {
                    shard_level_metrics: rec.shard_level_metrics.clone(),
                }],
                encryption_type: Self::encryption_type(&entry),
                key_id: Self::encryption_key_id(&entry),
            },
        })
    }

    pub fn list_streams(&self, input: ListStreamsInput) -> Result<ListStreamsOutput> {
        let mut v = Violations::new();
        v.int(
            "limit",
            input.limit,
            1,
            Some(i64::from(LIST_STREAMS_LIMIT_MAX)),
        );
        v.stream_name(
            "exclusiveStartStreamName",
            input.exclusive_start_stream_name.as_deref(),
        );
        v.string("nextToken", input.next_token.as_deref(), 1, 1_048_576);
        v.finish()?;
        let limit = input
            .limit
            .map(|l| l as usize)
            .unwrap_or(LIST_STREAMS_LIMIT_DEFAULT as usize);
        let after = match &input.next_token {
            Some(token) => Some(self.open_token(TokenKind::ListStreams, token)?),
            None => input.exclusive_start_stream_name.clone(),
        };
        let maps = self.maps.read();
        let mut page: Vec<std::sync::Arc<StreamEntry>> = maps
            .by_name
            .range::<String, _>((
                after
                    .as_ref()
                    .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, e)| e)
            .filter(|e| !self.is_gone(&e.rec))
            .filter(|e| !crate::internal::is_internal_name(&e.rec.name))
            .take(limit + 1)
            .cloned()
            .collect();
        drop(maps);
        let has_more = page.len() > limit;
        page.truncate(limit);
        let next_token = match (has_more, page.last()) {
            (true, Some(last)) => Some(self.sealer.seal(
                TokenKind::ListStreams,
                self.now_ms(),
                last.rec.name.as_bytes(),
            )),
            _ => None,
        };
        Ok(ListStreamsOutput {
            stream_names: page.iter().map(|e| e.rec.name.clone()).collect(),
            has_more_streams: has_more,
            next_token,
            stream_summaries: page
                .iter()
                .map(|e| StreamSummary {
                    stream_name: e.rec.name.clone(),
                    stream_arn: self.arn(&e.rec.name),
                    stream_status: status_name(self.state_of(&e.rec)),
                    stream_mode_details: StreamModeDetailsOut {
                        stream_mode: mode_name(e.rec.mode),
                    },
                    stream_creation_timestamp: Timestamp::from_ms(e.rec.created_ms),
                })
                .collect(),
        })
    }

    /// Opens a pagination token; its payload is UTF-8 text.
    fn open_token(&self, kind: TokenKind, token: &str) -> Result<String> {
        let opened = self
            .sealer
            .open(kind, token)
            .ok_or_else(|| StreamsError::InvalidArgument(format!("Invalid NextToken: {token}")))?;
        if self.now_ms().saturating_sub(opened.issued_ms) > NEXT_TOKEN_TTL_MS {
            return Err(StreamsError::ExpiredNextToken(format!(
                "The timestamp in the NextToken has expired: {token}"
            )));
        }
        String::from_utf8(opened.payload)
            .map_err(|_| StreamsError::InvalidArgument(format!("Invalid NextToken: {token}")))
    }

    pub fn list_shards(&self, input: ListShardsInput) -> Result<ListShardsOutput> {
        let mut v = Violations::new();
        v.int(
            "maxResults",
            input.max_results,
            1,
            Some(i64::from(LIST_SHARDS_RESULTS_MAX)),
        );
        v.shard_id(
            "exclusiveStartShardId",
            input.exclusive_start_shard_id.as_deref(),
        );
        v.string("nextToken", input.next_token.as_deref(), 1, 1_048_576);
        let filter_type = input
            .shard_filter
            .as_ref()
            .and_then(|f| f.filter_type.as_deref());
        if let Some(f) = &input.shard_filter {
            v.required("shardFilter.type", &f.filter_type);
            v.shard_id("shardFilter.shardId", f.shard_id.as_deref());
        }
        v.one_of(
            "shardFilter.type",
            filter_type,
            &[
                "AFTER_SHARD_ID",
                "AT_TRIM_HORIZON",
                "FROM_TRIM_HORIZON",
                "AT_LATEST",
                "AT_TIMESTAMP",
                "FROM_TIMESTAMP",
            ],
        );
        let limit = input
            .max_results
            .map(|l| l as usize)
            .unwrap_or(LIST_SHARDS_RESULTS_DEFAULT as usize);

        // Either a fresh listing of a stream, or a continuation token alone.
        let (entry, after) = if let Some(token) = &input.next_token {
            v.finish()?;
            if input.stream_name.is_some() || input.stream_arn.is_some() {
                return Err(StreamsError::InvalidArgument(
                    "NextToken and StreamName cannot be provided together.".into(),
                ));
            }
            let payload = self.open_token(TokenKind::ListShards, token)?;
            let (uid, last) = payload
                .split_once(' ')
                .and_then(|(u, l)| Some((u.parse::<u64>().ok()?, l.to_string())))
                .ok_or_else(|| {
                    StreamsError::InvalidArgument(format!("Invalid NextToken: {token}"))
                })?;
            let entry = self.lookup_uid(uid).ok_or_else(|| {
                StreamsError::ResourceNotFound(
                    "The stream of this NextToken no longer exists.".into(),
                )
            })?;
            (entry, Some(last))
        } else {
            if input.stream_name.is_none() && input.stream_arn.is_none() {
                v.finish()?;
                return Err(StreamsError::InvalidArgument(
                    "Either NextToken or StreamName/StreamARN must be provided.".into(),
                ));
            }
            let entry = self.resolve(&input, v)?;
            (entry, input.exclusive_start_shard_id.clone())
        };

        let filter = input.shard_filter.as_ref();
        let after_filter = match filter_type {
            Some("AFTER_SHARD_ID") => {
                Some(filter.and_then(|f| f.shard_id.clone()).ok_or_else(|| {
                    StreamsError::InvalidArgument(
                        "ShardId must be specified for ShardFilter type AFTER_SHARD_ID.".into(),
                    )
                })?)
            }
            _ => None,
        };
        let timestamp = match filter_type {
            Some("AT_TIMESTAMP" | "FROM_TIMESTAMP") => {
                Some(filter.and_then(|f| f.timestamp).ok_or_else(|| {
                    StreamsError::InvalidArgument(format!(
                        "Timestamp must be specified for ShardFilter type {}.",
                        filter_type.unwrap_or_default()
                    ))
                })?)
            }
            _ => None,
        };
        let now = self.now_ms();
        let horizon = now.saturating_sub(entry.retention_ms());
        let shards: Vec<&ShardRecord> = entry
            .rec
            .shards
            .iter()
            .filter(|s| {
                let id = ShardId(s.index).to_string();
                if after.as_deref().is_some_and(|a| id.as_str() <= a) {
                    return false;
                }
                if after_filter.as_deref().is_some_and(|a| id.as_str() <= a) {
                    return false;
                }
                if entry.expired(s, now) {
                    return false;
                }
                // Open at time t: created by then and not closed before it.
                let open_at = |t: u64| s.created_ms <= t && s.closed_ms.is_none_or(|c| c > t);
                let from = |t: u64| s.closed_ms.is_none_or(|c| c > t);
                let at = |t: u64| t.max(entry.rec.created_ms);
                let ts = timestamp.map_or(now, |t| t.ms.max(0) as u64);
                match filter_type {
                    Some("AT_LATEST") => s.closed_at_position.is_none(),
                    Some("AT_TRIM_HORIZON") => open_at(at(horizon)),
                    Some("FROM_TRIM_HORIZON") => from(at(horizon)),
                    Some("AT_TIMESTAMP") => open_at(at(ts)),
                    Some("FROM_TIMESTAMP") => from(at(ts)),
                    _ => true,
                }
            })
            .collect();
        let has_more = shards.len() > limit;
        let page: Vec<&ShardRecord> = shards.into_iter().take(limit).collect();
        let next_token = match (has_more, page.last()) {
            (true, Some(last)) => Some(self.sealer.seal(
                TokenKind::ListShards,
                now,
                format!("{} {}", entry.rec.uid, ShardId(last.index)).as_bytes(),
            )),
            _ => None,
        };
        Ok(ListShardsOutput {
            shards: page
                .into_iter()
                .map(|s| self.shard_out(&entry, s))
                .collect(),
            next_token,
        })
    }
}
