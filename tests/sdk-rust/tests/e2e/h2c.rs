//! HTTP/2 cleartext (prior knowledge) through the AWS SDK for Rust.
//!
//! The SDK's default hyper client only negotiates HTTP/2 through ALPN over
//! TLS, and `aws-smithy-http-client` keeps its hyper-builder override
//! crate-private, so there is no switch for h2c. The SDK's `HttpConnector`
//! trait is public, though: this module plugs a `hyper-util` client built
//! with `http2_only(true)` into the SDK, so the real SDK (signing, JSON
//! protocol, error parsing) talks h2c to runnel, and the connector asserts
//! every response really came back over HTTP/2.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::common::*;

/// Largest response body the connector buffers (GetRecords answers are <= 10 MiB).
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
struct H2cConnector {
    client: HyperClient<TcpConnector, SdkBody>,
    http2_responses: Arc<AtomicUsize>,
}

impl HttpConnector for H2cConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        let counter = self.http2_responses.clone();
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
            counter.fetch_add(1, Ordering::Relaxed);
            let (parts, mut body) = response.into_parts();
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ConnectorError::io(e.into()))?;
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
                if bytes.len() > RESPONSE_BYTES_MAX {
                    return Err(ConnectorError::other(
                        format!("response over {RESPONSE_BYTES_MAX} bytes").into(),
                        None,
                    ));
                }
            }
            let response = http::Response::from_parts(parts, SdkBody::from(bytes));
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

async fn h2c_client(endpoint: &str, counter: Arc<AtomicUsize>) -> aws_sdk_kinesis::Client {
    let hyper_client = HyperClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<SdkBody>();
    let connector = SharedHttpConnector::new(H2cConnector {
        client: hyper_client,
        http2_responses: counter,
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
    aws_sdk_kinesis::Client::new(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_over_h2c_prior_knowledge() {
    let server = start_server();
    let counter = Arc::new(AtomicUsize::new(0));
    let client = h2c_client(&server.endpoint(), counter.clone()).await;
    let name = unique_name("h2c");
    create_active(&client, &name, 2).await.unwrap();

    let mut sent = Vec::new();
    for i in 0..20 {
        let data = format!("h2c-{i}").into_bytes();
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key(format!("k{i}"))
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap();
        sent.push((
            out.shard_id().to_string(),
            out.sequence_number().to_string(),
            data,
        ));
    }
    let mut read = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let it = shard_iterator(&client, &name, shard, ShardIteratorType::TrimHorizon)
            .await
            .unwrap();
        for r in read_from_iterator(&client, it).await.unwrap() {
            read.push((
                shard.to_string(),
                r.sequence_number().to_string(),
                r.data().as_ref().to_vec(),
            ));
        }
    }
    sent.sort();
    read.sort();
    assert_eq!(sent, read);

    // Errors parse the same over h2.
    let err = client
        .describe_stream_summary()
        .stream_name("missing")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert!(counter.load(Ordering::Relaxed) >= 25);
}
