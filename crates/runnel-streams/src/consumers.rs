//! Enhanced fan-out consumers: Register/Describe/List/DeregisterStreamConsumer.
//!
//! A consumer's ARN is `<stream ARN>/consumer/<name>:<creation epoch seconds>`.
//! Consumers live in the stream's catalog record; CREATING → ACTIVE and
//! DELETING → gone follow the same timed transitions as streams.

use std::sync::Arc;

use runnel_catalog::{ConsumerRecord, StreamState};
use runnel_types::{StreamArn, Timestamp};

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::service::{status_name, StreamEntry, StreamsService};
use crate::token::TokenKind;
use crate::validate::Violations;

pub const CONSUMERS_PER_STREAM_MAX: usize = 20;

/// `arn:aws:kinesis:R:A:stream/S/consumer/C:123` → (stream ARN, consumer name, created seconds).
pub fn parse_consumer_arn(arn: &str) -> Option<(StreamArn, String, u64)> {
    let (stream_part, rest) = arn.split_once("/consumer/")?;
    let (name, secs) = rest.rsplit_once(':')?;
    let stream = StreamArn::parse(stream_part)?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return None;
    }
    Some((stream, name.to_string(), secs.parse().ok()?))
}

impl StreamsService {
    pub(crate) fn consumer_arn(&self, stream: &str, c: &ConsumerRecord) -> String {
        format!(
            "{}/consumer/{}:{}",
            self.arn(stream),
            c.name,
            c.created_ms / 1000
        )
    }

    /// A consumer's state now; DELETING ones past their transition are gone.
    pub(crate) fn consumer_state(&self, c: &ConsumerRecord) -> Option<StreamState> {
        let done = self.now_ms()
            >= c.state_since_ms
                .saturating_add(self.cfg.stream_transition_ms);
        match c.state {
            StreamState::Deleting if done => None,
            StreamState::Creating | StreamState::Updating if done => Some(StreamState::Active),
            s => Some(s),
        }
    }

    fn consumer_out(&self, stream: &str, c: &ConsumerRecord) -> ConsumerOut {
        ConsumerOut {
            consumer_name: c.name.clone(),
            consumer_arn: self.consumer_arn(stream, c),
            consumer_status: status_name(self.consumer_state(c).unwrap_or(StreamState::Deleting)),
            consumer_creation_timestamp: Timestamp::from_ms(c.created_ms),
        }
    }

    fn consumer_not_found(&self, stream: &str, name: &str) -> StreamsError {
        StreamsError::ResourceNotFound(format!(
            "Consumer {name} under stream {stream} under account {} not found.",
            self.cfg.account_id
        ))
    }

    /// Resolves a consumer by ConsumerARN, or by StreamARN + ConsumerName.
    pub(crate) fn resolve_consumer(
        &self,
        stream_arn: Option<&str>,
        consumer_name: Option<&str>,
        consumer_arn: Option<&str>,
        mut v: Violations,
    ) -> Result<(Arc<StreamEntry>, ConsumerRecord)> {
        v.stream_arn("streamARN", stream_arn);
        v.stream_name("consumerName", consumer_name);
        v.consumer_arn("consumerARN", consumer_arn);
        v.finish()?;
        let (stream_name, name, created_s) = match (
            consumer_arn.and_then(parse_consumer_arn),
            stream_arn,
            consumer_name,
        ) {
            (Some((s, n, t)), _, _) => (s.stream_name, n, Some(t)),
            (None, Some(s), Some(n)) => (
                StreamArn::parse(s)
                    .map(|a| a.stream_name)
                    .unwrap_or_default(),
                n.to_string(),
                None,
            ),
            _ => {
                return Err(StreamsError::InvalidArgument(
                    "Either ConsumerARN or both ConsumerName and StreamARN must be provided."
                        .into(),
                ))
            }
        };
        let entry = self.lookup(&stream_name)?;
        let consumer = entry
            .rec
            .consumers
            .iter()
            .find(|c| c.name == name && created_s.is_none_or(|t| c.created_ms / 1000 == t))
            .filter(|c| self.consumer_state(c).is_some())
            .cloned()
            .ok_or_else(|| self.consumer_not_found(&stream_name, &name))?;
        Ok((entry, consumer))
    }

    pub fn register_stream_consumer(
        &self,
        input: RegisterStreamConsumerInput,
    ) -> Result<RegisterStreamConsumerOutput> {
        let mut v = Violations::new();
        v.required("streamARN", &input.stream_arn);
        v.required("consumerName", &input.consumer_name);
        v.stream_name("consumerName", input.consumer_name.as_deref());
        crate::tags::check_tag_map(&mut v, input.tags.as_ref());
        let entry = self.resolve(&ArnOnly(input.stream_arn.as_deref()), v)?;
        let name = input.consumer_name.unwrap_or_default();
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) == StreamState::Deleting {
            return Err(self.not_active(&entry.rec));
        }
        let live: Vec<&ConsumerRecord> = entry
            .rec
            .consumers
            .iter()
            .filter(|c| self.consumer_state(c).is_some())
            .collect();
        if live.iter().any(|c| c.name == name) {
            return Err(StreamsError::ResourceInUse(format!(
                "Consumer {name} under stream {} already exists for account {}.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        if live.len() >= CONSUMERS_PER_STREAM_MAX {
            return Err(StreamsError::LimitExceeded(format!(
                "Stream {} under account {} already has the maximum of {CONSUMERS_PER_STREAM_MAX} registered consumers.",
                entry.rec.name, self.cfg.account_id
            )));
        }
        let now = self.now_ms();
        let consumer = ConsumerRecord {
            name,
            created_ms: now,
            state: if self.cfg.stream_transition_ms == 0 {
                StreamState::Active
            } else {
                StreamState::Creating
            },
            state_since_ms: now,
        };
        let mut rec = entry.rec.clone();
        rec.consumers.retain(|c| self.consumer_state(c).is_some());
        rec.consumers.push(consumer.clone());
        let entry = self.commit(rec)?;
        Ok(RegisterStreamConsumerOutput {
            consumer: self.consumer_out(&entry.rec.name, &consumer),
        })
    }

    pub fn describe_stream_consumer(
        &self,
        input: ConsumerRefInput,
    ) -> Result<DescribeStreamConsumerOutput> {
        let (entry, c) = self.resolve_consumer(
            input.stream_arn.as_deref(),
            input.consumer_name.as_deref(),
            input.consumer_arn.as_deref(),
            Violations::new(),
        )?;
        let out = self.consumer_out(&entry.rec.name, &c);
        Ok(DescribeStreamConsumerOutput {
            consumer_description: ConsumerDescription {
                consumer_name: out.consumer_name,
                consumer_arn: out.consumer_arn,
                consumer_status: out.consumer_status,
                consumer_creation_timestamp: out.consumer_creation_timestamp,
                stream_arn: self.arn(&entry.rec.name),
            },
        })
    }

    pub fn list_stream_consumers(
        &self,
        input: ListStreamConsumersInput,
    ) -> Result<ListStreamConsumersOutput> {
        let mut v = Violations::new();
        v.required("streamARN", &input.stream_arn);
        v.int("maxResults", input.max_results, 1, Some(10_000));
        v.string("nextToken", input.next_token.as_deref(), 1, 1_048_576);
        let entry = self.resolve(&ArnOnly(input.stream_arn.as_deref()), v)?;
        let limit = input.max_results.map_or(100, |m| m as usize);
        let after = match &input.next_token {
            Some(t) => {
                let opened = self
                    .sealer
                    .open(TokenKind::ListStreams, t)
                    .and_then(|o| String::from_utf8(o.payload).ok())
                    .ok_or_else(|| {
                        StreamsError::InvalidArgument(format!("Invalid NextToken: {t}"))
                    })?;
                Some(opened)
            }
            None => None,
        };
        let mut live: Vec<&ConsumerRecord> = entry
            .rec
            .consumers
            .iter()
            .filter(|c| self.consumer_state(c).is_some())
            .filter(|c| after.as_deref().is_none_or(|a| c.name.as_str() > a))
            .collect();
        live.sort_by(|a, b| a.name.cmp(&b.name));
        let has_more = live.len() > limit;
        live.truncate(limit);
        let next_token = match (has_more, live.last()) {
            (true, Some(last)) => Some(self.sealer.seal(
                TokenKind::ListStreams,
                self.now_ms(),
                last.name.as_bytes(),
            )),
            _ => None,
        };
        Ok(ListStreamConsumersOutput {
            consumers: live
                .into_iter()
                .map(|c| self.consumer_out(&entry.rec.name, c))
                .collect(),
            next_token,
        })
    }

    pub fn deregister_stream_consumer(&self, input: ConsumerRefInput) -> Result<Empty> {
        let (entry, consumer) = self.resolve_consumer(
            input.stream_arn.as_deref(),
            input.consumer_name.as_deref(),
            input.consumer_arn.as_deref(),
            Violations::new(),
        )?;
        let _guard = self.control.lock();
        let entry = self.lookup(&entry.rec.name)?;
        let mut rec = entry.rec.clone();
        let now = self.now_ms();
        for c in rec
            .consumers
            .iter_mut()
            .filter(|c| c.name == consumer.name && c.created_ms == consumer.created_ms)
        {
            c.state = StreamState::Deleting;
            c.state_since_ms = now;
        }
        self.commit(rec)?;
        // Its subscriptions end now.
        self.fanout.end_consumer(entry.rec.uid, &consumer.name);
        Ok(Empty {})
    }

    /// Consumers that are registered and not being deleted.
    pub(crate) fn has_live_consumers(&self, entry: &StreamEntry) -> bool {
        entry
            .rec
            .consumers
            .iter()
            .any(|c| matches!(self.consumer_state(c), Some(s) if s != StreamState::Deleting))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_arns() {
        let (s, n, t) = parse_consumer_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/app-1:1700000000",
        )
        .unwrap();
        assert_eq!(
            (s.stream_name.as_str(), n.as_str(), t),
            ("s1", "app-1", 1_700_000_000)
        );
        assert!(parse_consumer_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s1").is_none());
        assert!(parse_consumer_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/a b:1"
        )
        .is_none());
        assert!(parse_consumer_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/a:x"
        )
        .is_none());
    }
}
