//! Enhanced fan-out: stream consumers and `SubscribeToShard`.
//!
//! [`Client::subscribe_to_shard`] sends a signed AWS JSON 1.1 request and
//! returns an [`EventStream`] that reads the `application/vnd.amazon.eventstream`
//! response body frame by frame as it arrives (chunked HTTP/1.1), splits it
//! into messages with [`runnel_protocol::eventstream::decode_message`], skips
//! the `initial-response` event and yields each `SubscribeToShardEvent`.
//! An `exception` message ends the stream with an [`Error::Service`].
//!
//! ```no_run
//! # async fn demo(client: runnel_client::Client) -> Result<(), runnel_client::Error> {
//! use runnel_client::{StartingPosition, ShardIteratorType};
//! let mut events = client
//!     .subscribe_to_shard(
//!         "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1",
//!         "shardId-000000000000",
//!         StartingPosition::of(ShardIteratorType::Latest),
//!     )
//!     .await?;
//! while let Some(event) = events.next_event().await {
//!     let event = event?;
//!     for r in &event.records {
//!         println!("{} {} bytes", r.sequence_number, r.data.len());
//!     }
//! }
//! # Ok(()) }
//! ```

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::{Deserialize, Deserializer, Serialize};

use runnel_protocol::eventstream::{decode_message, DecodeError};

use crate::model::{HashKeyRange, Record, ShardIteratorType};
use crate::{connection_error, read_bounded, Client, Error};

const SUBSCRIBE: &str = "SubscribeToShard";

/// A `null` list reads as empty.
fn nullable_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn lenient_ts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Number(n)) => Some(n),
        Some(Raw::Text(t)) => t.parse().ok(),
        None => None,
    })
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub consumer_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    pub consumer: Consumer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Consumer {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// `CREATING`, `DELETING` or `ACTIVE`.
    pub consumer_status: String,
    #[serde(default, deserialize_with = "lenient_ts")]
    pub consumer_creation_timestamp: Option<f64>,
}

/// Names a consumer for DescribeStreamConsumer and DeregisterStreamConsumer:
/// either `consumer_arn`, or `stream_arn` and `consumer_name`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerRef {
    #[serde(rename = "StreamARN", skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN", skip_serializing_if = "Option::is_none")]
    pub consumer_arn: Option<String>,
}

impl ConsumerRef {
    pub fn arn(consumer_arn: &str) -> Self {
        Self {
            consumer_arn: Some(consumer_arn.to_owned()),
            ..Default::default()
        }
    }
}

pub type DescribeStreamConsumerInput = ConsumerRef;
pub type DeregisterStreamConsumerInput = ConsumerRef;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    pub consumer_description: ConsumerDescription,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescription {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: String,
    #[serde(default, deserialize_with = "lenient_ts")]
    pub consumer_creation_timestamp: Option<f64>,
    #[serde(rename = "StreamARN", default)]
    pub stream_arn: Option<String>,
}

/// Where a subscription starts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    #[serde(rename = "Type")]
    pub position_type: ShardIteratorType,
    /// For `AT_SEQUENCE_NUMBER` / `AFTER_SEQUENCE_NUMBER` (e.g. a
    /// `ContinuationSequenceNumber` to resume after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// Epoch seconds, for `AT_TIMESTAMP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

impl StartingPosition {
    pub fn of(position_type: ShardIteratorType) -> Self {
        Self {
            position_type,
            sequence_number: None,
            timestamp: None,
        }
    }

    /// Resumes right after `sequence_number` (a record's, or a continuation).
    pub fn after(sequence_number: &str) -> Self {
        Self {
            position_type: ShardIteratorType::AfterSequenceNumber,
            sequence_number: Some(sequence_number.to_owned()),
            timestamp: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub shard_id: String,
    pub starting_position: StartingPosition,
}

/// One `SubscribeToShardEvent`: records (possibly none: a heartbeat) and
/// where to resume.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEvent {
    #[serde(default, deserialize_with = "nullable_vec")]
    pub records: Vec<Record>,
    /// `AFTER_SEQUENCE_NUMBER` with this resumes exactly after this event.
    /// Absent on the last event of a closed shard.
    #[serde(default)]
    pub continuation_sequence_number: Option<String>,
    #[serde(default)]
    pub millis_behind_latest: Option<u64>,
    /// Set on the last event of a closed shard.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub child_shards: Vec<EventChildShard>,
}

/// A shard that took over (part of) a closed shard's hash range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventChildShard {
    pub shard_id: String,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRange,
}

impl Client {
    pub async fn register_stream_consumer(
        &self,
        input: &RegisterStreamConsumerInput,
    ) -> Result<RegisterStreamConsumerOutput, Error> {
        self.call("RegisterStreamConsumer", input).await
    }

    pub async fn describe_stream_consumer(
        &self,
        input: &DescribeStreamConsumerInput,
    ) -> Result<DescribeStreamConsumerOutput, Error> {
        self.call("DescribeStreamConsumer", input).await
    }

    pub async fn deregister_stream_consumer(
        &self,
        input: &DeregisterStreamConsumerInput,
    ) -> Result<(), Error> {
        self.call_raw("DeregisterStreamConsumer", input)
            .await
            .map(drop)
    }

    /// Starts a subscription. The client's timeout covers the exchange up
    /// to the response headers only; the event stream then lasts as long as
    /// the server keeps it open (5 minutes on AWS). Each subscription holds
    /// its own connection.
    pub async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &str,
        starting_position: StartingPosition,
    ) -> Result<EventStream, Error> {
        let input = SubscribeToShardInput {
            consumer_arn: consumer_arn.to_owned(),
            shard_id: shard_id.to_owned(),
            starting_position,
        };
        self.subscribe(&input).await
    }

    pub async fn subscribe(&self, input: &SubscribeToShardInput) -> Result<EventStream, Error> {
        let payload = serde_json::to_vec(input).map_err(|e| Error::Decode {
            operation: SUBSCRIBE,
            reason: format!("cannot encode request: {e}"),
        })?;
        let request = self.signed_request(SUBSCRIBE, payload)?;
        let inner = &self.inner;
        let exchange = async {
            let response = inner
                .http
                .request(request)
                .await
                .map_err(connection_error)?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let error_type = response
                    .headers()
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = read_bounded(response.into_body(), inner.response_bytes_max).await?;
                return Err(Error::from_response(status, error_type.as_deref(), &body));
            }
            Ok(EventStream {
                body: response.into_body(),
                buf: BytesMut::new(),
                done: false,
            })
        };
        match tokio::time::timeout(inner.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                timeout_ms: inner.timeout.as_millis() as u64,
            }),
        }
    }
}

/// The events of one subscription, decoded as they arrive.
pub struct EventStream {
    body: hyper::body::Incoming,
    buf: BytesMut,
    done: bool,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.buf.len())
            .field("done", &self.done)
            .finish()
    }
}

/// What one event-stream message means to a subscriber.
#[derive(Debug)]
pub enum SubscribeMessage {
    Event(SubscribeToShardEvent),
    /// `initial-response` and unknown event types.
    Skip,
}

fn header<'a>(m: &'a runnel_protocol::eventstream::Message, name: &str) -> Option<&'a str> {
    m.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode_error(reason: String) -> Error {
    Error::Decode {
        operation: SUBSCRIBE,
        reason,
    }
}

/// Interprets one decoded message: an event, something to skip, or the
/// error an `exception`/`error` message carries.
pub fn interpret(m: &runnel_protocol::eventstream::Message) -> Result<SubscribeMessage, Error> {
    match header(m, ":message-type").unwrap_or("event") {
        "event" => match header(m, ":event-type") {
            Some("SubscribeToShardEvent") => serde_json::from_slice(&m.payload)
                .map(SubscribeMessage::Event)
                .map_err(|e| decode_error(format!("SubscribeToShardEvent: {e}"))),
            _ => Ok(SubscribeMessage::Skip),
        },
        "exception" => {
            let kind = header(m, ":exception-type").unwrap_or("InternalFailure");
            // The status the same error would carry before the stream started.
            let status = if kind.starts_with("InternalFailure") {
                500
            } else {
                400
            };
            let mut e = Error::from_response(status, Some(kind), &m.payload);
            if let Error::Service { kind: k, .. } = &mut e {
                // The header names the exception even if the payload has no __type.
                *k = crate::normalize_kind(kind);
            }
            Err(e)
        }
        "error" => Err(Error::Service {
            kind: header(m, ":error-code")
                .unwrap_or("InternalFailure")
                .to_owned(),
            message: header(m, ":error-message").unwrap_or_default().to_owned(),
            status: 500,
        }),
        other => Err(decode_error(format!("unknown :message-type {other:?}"))),
    }
}

impl EventStream {
    /// The next `SubscribeToShardEvent`; `None` once the server ended the
    /// subscription. After an error the stream is over.
    pub async fn next_event(&mut self) -> Option<Result<SubscribeToShardEvent, Error>> {
        loop {
            if self.done {
                return None;
            }
            match self.next_message().await {
                Some(Ok(SubscribeMessage::Event(e))) => return Some(Ok(e)),
                Some(Ok(SubscribeMessage::Skip)) => continue,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    async fn next_message(&mut self) -> Option<Result<SubscribeMessage, Error>> {
        loop {
            match decode_message(&self.buf) {
                Ok((m, len)) => {
                    self.buf.advance(len);
                    return Some(interpret(&m));
                }
                Err(DecodeError::Incomplete) => {}
                Err(e) => return Some(Err(decode_error(format!("event stream: {e}")))),
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.extend(data);
                    }
                }
                Some(Err(e)) => {
                    return Some(Err(Error::Connection(format!("reading event stream: {e}"))))
                }
                None if self.buf.is_empty() => return None,
                None => {
                    return Some(Err(Error::Connection(format!(
                        "event stream ended inside a message ({} bytes left)",
                        self.buf.len()
                    ))))
                }
            }
        }
    }

    fn extend(&mut self, data: Bytes) {
        self.buf.extend_from_slice(&data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_protocol::eventstream::{decode_message, event, exception};

    #[test]
    fn event_payload_parses() {
        let m = event(
            "SubscribeToShardEvent",
            "application/x-amz-json-1.1",
            br#"{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.5,
                "Data":"aGk=","PartitionKey":"k"}],"ContinuationSequenceNumber":"2",
                "MillisBehindLatest":0}"#,
        );
        let (m, _) = decode_message(&m).unwrap();
        let SubscribeMessage::Event(e) = interpret(&m).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(e.records[0].data.as_ref(), b"hi");
        assert_eq!(e.continuation_sequence_number.as_deref(), Some("2"));
        assert!(e.child_shards.is_empty());
    }

    #[test]
    fn initial_response_is_skipped_and_exceptions_are_errors() {
        let m = event("initial-response", "application/x-amz-json-1.1", b"{}");
        let (m, _) = decode_message(&m).unwrap();
        assert!(matches!(interpret(&m).unwrap(), SubscribeMessage::Skip));
        let m = exception(
            "ResourceNotFoundException",
            "application/x-amz-json-1.1",
            br#"{"message":"gone"}"#,
        );
        let (m, _) = decode_message(&m).unwrap();
        let e = interpret(&m).unwrap_err();
        assert_eq!(e.kind(), Some("ResourceNotFoundException"));
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("gone"));
    }

    #[test]
    fn wire_names() {
        let input = SubscribeToShardInput {
            consumer_arn: "arn".into(),
            shard_id: "shardId-000000000000".into(),
            starting_position: StartingPosition::after("5"),
        };
        assert_eq!(
            serde_json::to_string(&input).unwrap(),
            r#"{"ConsumerARN":"arn","ShardId":"shardId-000000000000","StartingPosition":{"Type":"AFTER_SEQUENCE_NUMBER","SequenceNumber":"5"}}"#
        );
        let out: DescribeStreamConsumerOutput = serde_json::from_str(
            r#"{"ConsumerDescription":{"ConsumerName":"c","ConsumerARN":"a","ConsumerStatus":"ACTIVE",
                "ConsumerCreationTimestamp":1.0,"StreamARN":"s"}}"#,
        )
        .unwrap();
        assert_eq!(out.consumer_description.consumer_status, "ACTIVE");
    }
}
