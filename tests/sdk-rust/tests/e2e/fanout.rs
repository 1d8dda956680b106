//! Enhanced fan-out through the AWS SDK for Rust over HTTP/2 cleartext:
//! RegisterStreamConsumer, then SubscribeToShard read with
//! `output.event_stream.recv()`, as a Rust consumer application does it.
//!
//! The connector is the one of `h2c.rs` with one change: the response body is
//! handed to the SDK as a stream instead of being buffered, since an event
//! stream does not end while the subscription lives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, ShardIteratorType, StartingPosition,
    SubscribeToShardEvent, SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::common::*;

/// Bound on waiting for one event (the server sends one at least every 5 s).
const EVENT_TIMEOUT_MS: u64 = 15_000;
/// Bound on receiving a whole expected set of records.
const DELIVERY_TIMEOUT_MS: u64 = 60_000;
/// Bound on a consumer becoming ACTIVE.
const CONSUMER_ACTIVE_TIMEOUT_MS: u64 = 10_000;
const SHARD0: &str = "shardId-000000000000";
const SHARD1: &str = "shardId-000000000001";

/// h2c prior knowledge; responses are streamed to the SDK, not buffered.
#[derive(Clone, Debug)]
struct StreamingH2c {
    client: HyperClient<TcpConnector, SdkBody>,
}

impl HttpConnector for StreamingH2c {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let response = client
                .request(request)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            if response.version() != http::Version::HTTP_2 {
                return Err(ConnectorError::other(
                    format!("expected HTTP/2, got {:?}", response.version()).into(),
                    None,
                ));
            }
            let (parts, body) = response.into_parts();
            let response = http::Response::from_parts(parts, SdkBody::from_body_1_x(body));
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

async fn h2c_streaming_client(endpoint: &str) -> Client {
    let connector = SharedHttpConnector::new(StreamingH2c {
        client: HyperClient::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<SdkBody>(),
    });
    let http_client = http_client_fn(move |_settings, _components| connector.clone());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::from_keys(
            "AKIDRUNNELTEST",
            "runnel-test-secret",
            None,
        ))
        .http_client(http_client)
        .load()
        .await;
    Client::new(&config)
}

async fn register_active(client: &Client, stream: &str, name: &str) -> Result<String> {
    let out = client
        .register_stream_consumer()
        .stream_arn(stream_arn(stream))
        .consumer_name(name)
        .send()
        .await
        .context("register_stream_consumer")?;
    let arn = out
        .consumer()
        .ok_or_else(|| anyhow!("no Consumer"))?
        .consumer_arn()
        .to_string();
    ensure!(
        arn.starts_with(&format!("{}/consumer/{name}:", stream_arn(stream))),
        "{arn}"
    );
    let deadline = Instant::now() + Duration::from_millis(CONSUMER_ACTIVE_TIMEOUT_MS);
    loop {
        let d = client
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await
            .context("describe_stream_consumer")?;
        let status = d
            .consumer_description()
            .ok_or_else(|| anyhow!("no ConsumerDescription"))?
            .consumer_status()
            .clone();
        if status == ConsumerStatus::Active {
            return Ok(arn);
        }
        ensure!(Instant::now() < deadline, "consumer {arn} still {status:?}");
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

async fn subscribe(
    client: &Client,
    consumer: &str,
    shard: &str,
    position: StartingPosition,
) -> Result<SubscribeToShardOutput> {
    client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(position)
        .send()
        .await
        .map_err(|e| anyhow!("subscribe_to_shard {shard}: {:?}", e.into_service_error()))
}

fn position(kind: ShardIteratorType) -> StartingPosition {
    StartingPosition::builder()
        .r#type(kind)
        .build()
        .expect("starting position")
}

/// The next SubscribeToShardEvent, `None` once the stream has ended.
async fn next_event(sub: &mut SubscribeToShardOutput) -> Result<Option<SubscribeToShardEvent>> {
    let got = tokio::time::timeout(
        Duration::from_millis(EVENT_TIMEOUT_MS),
        sub.event_stream.recv(),
    )
    .await
    .map_err(|_| anyhow!("no event within {EVENT_TIMEOUT_MS} ms"))?
    .map_err(|e| anyhow!("event stream error: {e:?}"))?;
    match got {
        None => Ok(None),
        Some(SubscribeToShardEventStream::SubscribeToShardEvent(ev)) => Ok(Some(ev)),
        Some(other) => bail!("unexpected event {other:?}"),
    }
}

/// One shard's subscription plus what it delivered so far.
struct Reader {
    sub: SubscribeToShardOutput,
    /// (sequence number, partition key, data) of every record received.
    records: Vec<(String, String, Vec<u8>)>,
    last_continuation: Option<String>,
    /// The final event's ChildShards (ids) once the shard's end was delivered.
    child_shards: Option<Vec<(String, Vec<String>)>>,
}

impl Reader {
    fn new(sub: SubscribeToShardOutput) -> Reader {
        Reader {
            sub,
            records: Vec::new(),
            last_continuation: None,
            child_shards: None,
        }
    }

    /// Takes one event; returns false once the stream ended.
    async fn step(&mut self) -> Result<bool> {
        let Some(ev) = next_event(&mut self.sub).await? else {
            return Ok(false);
        };
        ensure!(
            self.child_shards.is_none(),
            "event after ChildShards: {ev:?}"
        );
        ensure!(ev.millis_behind_latest() >= 0);
        let mut prev_seq = self.records.last().map(|r| r.0.clone());
        for r in ev.records() {
            let seq = r.sequence_number().to_string();
            if let Some(p) = &prev_seq {
                ensure!(
                    seq_cmp(p, &seq).is_lt(),
                    "records out of order: {p} then {seq}"
                );
            }
            if let Some(c) = &self.last_continuation {
                ensure!(
                    seq_cmp(c, &seq).is_lt(),
                    "record {seq} not after continuation {c}"
                );
            }
            prev_seq = Some(seq.clone());
            self.records.push((
                seq,
                r.partition_key().unwrap_or_default().to_string(),
                r.data().as_ref().to_vec(),
            ));
        }
        if !ev.child_shards().is_empty() {
            // The shard's end: no continuation (null on the wire).
            ensure!(
                ev.continuation_sequence_number().is_empty(),
                "continuation {:?} on the ChildShards event",
                ev.continuation_sequence_number()
            );
            self.child_shards = Some(
                ev.child_shards()
                    .iter()
                    .map(|c| (c.shard_id().to_string(), c.parent_shards().to_vec()))
                    .collect(),
            );
            return Ok(true);
        }
        let cont = ev.continuation_sequence_number().to_string();
        ensure!(!cont.is_empty(), "no continuation: {ev:?}");
        if let Some(seq) = &prev_seq {
            ensure!(
                seq_cmp(seq, &cont).is_le(),
                "continuation {cont} before {seq}"
            );
        }
        if let Some(c) = &self.last_continuation {
            ensure!(
                seq_cmp(c, &cont).is_le(),
                "continuation went back: {c} -> {cont}"
            );
        }
        self.last_continuation = Some(cont);
        Ok(true)
    }

    /// Waits until `n` records in all have arrived.
    async fn until_records(&mut self, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_millis(DELIVERY_TIMEOUT_MS);
        while self.records.len() < n {
            ensure!(
                Instant::now() < deadline,
                "{} of {n} records",
                self.records.len()
            );
            ensure!(
                self.step().await?,
                "stream ended after {} of {n} records",
                self.records.len()
            );
        }
        ensure!(
            self.records.len() == n,
            "{} records, wanted {n}",
            self.records.len()
        );
        Ok(())
    }

    /// Reads until the stream ends.
    async fn until_end(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_millis(DELIVERY_TIMEOUT_MS);
        while self.step().await? {
            ensure!(Instant::now() < deadline, "stream did not end");
        }
        Ok(())
    }
}

/// (shard, sequence number, partition key, data) of every record, in put order.
type Sent = Vec<(String, String, String, Vec<u8>)>;

async fn put_batch(
    client: &Client,
    stream: &str,
    tag: &str,
    n: usize,
    keys: usize,
) -> Result<Sent> {
    let entries: Vec<_> = (0..n)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{}", i % keys))
                .data(Blob::new(format!("{tag}-{i}").into_bytes()))
                .build()
                .expect("entry")
        })
        .collect();
    let out = client
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries.clone()))
        .send()
        .await
        .context("put_records")?;
    ensure!(
        out.failed_record_count() == Some(0),
        "failed records: {out:?}"
    );
    Ok(entries
        .iter()
        .zip(out.records())
        .map(|(e, r)| {
            (
                r.shard_id().unwrap_or_default().to_string(),
                r.sequence_number().unwrap_or_default().to_string(),
                e.partition_key().unwrap_or_default().to_string(),
                e.data().as_ref().to_vec(),
            )
        })
        .collect())
}

fn for_shard(sent: &Sent, shard: &str) -> Vec<(String, String, Vec<u8>)> {
    sent.iter()
        .filter(|s| s.0 == shard)
        .map(|s| (s.1.clone(), s.2.clone(), s.3.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_h2c_delivers_in_order() {
    let server = start_server();
    let client = h2c_streaming_client(&server.endpoint()).await;
    let name = unique_name("efo");
    create_active(&client, &name, 2).await.unwrap();
    let consumer = register_active(&client, &name, "reader").await.unwrap();

    let mut readers = Vec::new();
    for shard in [SHARD0, SHARD1] {
        let sub = subscribe(
            &client,
            &consumer,
            shard,
            position(ShardIteratorType::Latest),
        )
        .await
        .unwrap();
        readers.push((shard, Reader::new(sub)));
    }
    // A second subscription on the same consumer and shard is refused.
    let err = client
        .subscribe_to_shard()
        .consumer_arn(&consumer)
        .shard_id(SHARD0)
        .starting_position(position(ShardIteratorType::TrimHorizon))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");

    let mut sent = Sent::new();
    for batch in 0..8 {
        sent.extend(
            put_batch(&client, &name, &format!("b{batch}"), 25, 9)
                .await
                .unwrap(),
        );
    }
    for (shard, reader) in &mut readers {
        let want = for_shard(&sent, shard);
        assert!(!want.is_empty(), "no records routed to {shard}");
        reader.until_records(want.len()).await.unwrap();
        assert_eq!(reader.records, want, "{shard}");
    }

    // Resume with AFTER_SEQUENCE_NUMBER = the last continuation: only newer records.
    let (_, reader0) = &readers[0];
    let cont = reader0.last_continuation.clone().expect("a continuation");
    let other = register_active(&client, &name, "resumer").await.unwrap();
    let sub = subscribe(
        &client,
        &other,
        SHARD0,
        StartingPosition::builder()
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(cont)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut resumed = Reader::new(sub);
    let more = put_batch(&client, &name, "more", 20, 9).await.unwrap();
    let want = for_shard(&more, SHARD0);
    resumed.until_records(want.len()).await.unwrap();
    assert_eq!(resumed.records, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_h2c_across_a_split() {
    let server = start_server();
    let client = h2c_streaming_client(&server.endpoint()).await;
    let name = unique_name("efo-split");
    create_active(&client, &name, 1).await.unwrap();
    let consumer = register_active(&client, &name, "reader").await.unwrap();
    let sub = subscribe(
        &client,
        &consumer,
        SHARD0,
        position(ShardIteratorType::TrimHorizon),
    )
    .await
    .unwrap();
    let mut parent = Reader::new(sub);

    let before = put_batch(&client, &name, "pre", 40, 10).await.unwrap();
    client
        .split_shard()
        .stream_name(&name)
        .shard_to_split(SHARD0)
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await.unwrap();

    parent.until_end().await.unwrap();
    assert_eq!(parent.records, for_shard(&before, SHARD0));
    let children = parent.child_shards.clone().expect("a ChildShards event");
    let listed = list_all_shards(&client, &name).await.unwrap();
    let mut listed_children: Vec<String> = listed
        .iter()
        .filter(|s| s.parent_shard_id() == Some(SHARD0))
        .map(|s| s.shard_id().to_string())
        .collect();
    listed_children.sort();
    let mut child_ids: Vec<String> = children.iter().map(|c| c.0.clone()).collect();
    child_ids.sort();
    assert_eq!(child_ids, listed_children);
    assert_eq!(child_ids.len(), 2);
    for (_, parents) in &children {
        assert_eq!(parents, &vec![SHARD0.to_string()]);
    }

    let after = put_batch(&client, &name, "post", 60, 12).await.unwrap();
    let mut per_key_got: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for child in &child_ids {
        let want = for_shard(&after, child);
        assert!(!want.is_empty(), "no records routed to {child}");
        let sub = subscribe(
            &client,
            &consumer,
            child,
            position(ShardIteratorType::TrimHorizon),
        )
        .await
        .unwrap();
        let mut reader = Reader::new(sub);
        reader.until_records(want.len()).await.unwrap();
        assert_eq!(reader.records, want, "{child}");
        for (_, key, data) in reader.records {
            per_key_got.entry(key).or_default().push(data);
        }
    }
    let mut per_key_sent: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for (_, _, key, data) in after {
        per_key_sent.entry(key).or_default().push(data);
    }
    assert_eq!(per_key_got, per_key_sent);
}
