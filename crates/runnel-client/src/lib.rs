//! runnel-client: a small, fast async Amazon Kinesis Data Streams client.
//!
//! It speaks AWS JSON 1.1 (`POST /`, `X-Amz-Target: Kinesis_20131202.<Op>`)
//! over a keep-alive HTTP/1.1 connection pool and signs every request with
//! SigV4, so it works against runnel, kinesalite, kinesis-local,
//! ferrokinesis and AWS itself (plain `http://` endpoints only: there is no
//! TLS here yet).
//!
//! ```no_run
//! # async fn demo() -> Result<(), runnel_client::Error> {
//! use runnel_client::{Client, PutRecordInput};
//! let client = Client::new("http://127.0.0.1:4567", "us-east-1")?;
//! let out = client
//!     .put_record(&PutRecordInput {
//!         stream_name: "events".into(),
//!         data: "hello".into(),
//!         partition_key: "k".into(),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} {}", out.shard_id, out.sequence_number);
//! # Ok(()) }
//! ```
//!
//! The client is cheap to clone; clones share the connection pool. Each
//! concurrent in-flight call uses its own pooled connection.

mod admin;
mod error;
mod fanout;
mod model;
pub mod sigv4;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use admin::*;
pub use error::{is_throttling, normalize_kind, Error, THROTTLING_KINDS};
pub use fanout::*;
pub use model::*;
pub use sigv4::Credentials;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub const TARGET_PREFIX: &str = "Kinesis_20131202";
pub const SERVICE: &str = "kinesis";

/// GetRecords returns at most 10 MiB of data; base64 and JSON framing add a
/// third, so this bound fits the largest legal response with room to spare.
pub const RESPONSE_BYTES_MAX: usize = 32 * 1024 * 1024;
pub const TIMEOUT_MS_DEFAULT: u64 = 30_000;

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A Kinesis client bound to one endpoint and region.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    uri: Uri,
    host: String,
    region: String,
    credentials: Credentials,
    timeout: Duration,
    response_bytes_max: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.uri)
            .field("region", &self.inner.region)
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

impl Client {
    /// A client for `endpoint_url` (e.g. `http://127.0.0.1:4567`) with
    /// credentials from the environment ([`Credentials::from_env`]).
    pub fn new(endpoint_url: &str, region: &str) -> Result<Self, Error> {
        Self::with_credentials(endpoint_url, region, Credentials::from_env())
    }

    pub fn with_credentials(
        endpoint_url: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Endpoint {
            url: endpoint_url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = endpoint_url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad("https is not supported yet; use an http:// endpoint"))
            }
            _ => return Err(bad("expected http://host[:port]")),
        }
        let host = uri
            .authority()
            .ok_or_else(|| bad("missing host"))?
            .as_str()
            .to_owned();
        let uri: Uri = format!("http://{host}/")
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;

        let mut connector = HttpConnector::new();
        // Small request/response exchanges: Nagle would add tens of ms.
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                uri,
                host,
                region: region.to_owned(),
                credentials,
                timeout: Duration::from_millis(TIMEOUT_MS_DEFAULT),
                response_bytes_max: RESPONSE_BYTES_MAX,
            }),
        })
    }

    /// Per-call deadline covering connect, send and the whole response.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().timeout = timeout;
        self
    }

    fn inner_mut(&mut self) -> &mut Inner {
        // Builder methods run before the client is shared; cloning the
        // pool handle is cheap if it already was.
        if Arc::get_mut(&mut self.inner).is_none() {
            let i = &self.inner;
            self.inner = Arc::new(Inner {
                http: i.http.clone(),
                uri: i.uri.clone(),
                host: i.host.clone(),
                region: i.region.clone(),
                credentials: i.credentials.clone(),
                timeout: i.timeout,
                response_bytes_max: i.response_bytes_max,
            });
        }
        Arc::get_mut(&mut self.inner).expect("unique after clone")
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn endpoint(&self) -> &Uri {
        &self.inner.uri
    }

    pub async fn create_stream(&self, input: &CreateStreamInput) -> Result<(), Error> {
        self.call_raw("CreateStream", input).await.map(drop)
    }

    pub async fn delete_stream(&self, input: &DeleteStreamInput) -> Result<(), Error> {
        self.call_raw("DeleteStream", input).await.map(drop)
    }

    pub async fn describe_stream_summary(
        &self,
        input: &DescribeStreamSummaryInput,
    ) -> Result<DescribeStreamSummaryOutput, Error> {
        self.call("DescribeStreamSummary", input).await
    }

    pub async fn list_shards(&self, input: &ListShardsInput) -> Result<ListShardsOutput, Error> {
        self.call("ListShards", input).await
    }

    /// Every shard of `stream_name`, following `NextToken` pages.
    pub async fn list_all_shards(&self, stream_name: &str) -> Result<Vec<Shard>, Error> {
        let mut shards = Vec::new();
        let mut input = ListShardsInput {
            stream_name: Some(stream_name.to_owned()),
            ..Default::default()
        };
        loop {
            let page = self.list_shards(&input).await?;
            shards.extend(page.shards);
            match page.next_token {
                // A NextToken request must not name the stream.
                Some(token) if !token.is_empty() => {
                    input = ListShardsInput {
                        next_token: Some(token),
                        ..Default::default()
                    }
                }
                _ => return Ok(shards),
            }
        }
    }

    pub async fn put_record(&self, input: &PutRecordInput) -> Result<PutRecordOutput, Error> {
        self.call("PutRecord", input).await
    }

    pub async fn put_records(&self, input: &PutRecordsInput) -> Result<PutRecordsOutput, Error> {
        self.call("PutRecords", input).await
    }

    pub async fn get_shard_iterator(
        &self,
        input: &GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput, Error> {
        self.call("GetShardIterator", input).await
    }

    pub async fn get_records(&self, input: &GetRecordsInput) -> Result<GetRecordsOutput, Error> {
        self.call("GetRecords", input).await
    }

    /// Any operation by name, for ones without a typed method.
    pub async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        operation: &'static str,
        input: &I,
    ) -> Result<O, Error> {
        let body = self.call_raw(operation, input).await?;
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(body).map_err(|e| Error::Decode {
            operation,
            reason: e.to_string(),
        })
    }

    /// Signs and sends one request; returns the 2xx body or the service error.
    pub async fn call_raw<I: Serialize>(
        &self,
        operation: &'static str,
        input: &I,
    ) -> Result<Bytes, Error> {
        let payload = serde_json::to_vec(input).map_err(|e| Error::Decode {
            operation,
            reason: format!("cannot encode request: {e}"),
        })?;
        let request = self.signed_request(operation, payload)?;
        let inner = &self.inner;
        let exchange = async {
            let response = inner
                .http
                .request(request)
                .await
                .map_err(connection_error)?;
            let status = response.status().as_u16();
            let error_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_bounded(response.into_body(), inner.response_bytes_max).await?;
            if (200..300).contains(&status) {
                Ok(body)
            } else {
                Err(Error::from_response(status, error_type.as_deref(), &body))
            }
        };
        match tokio::time::timeout(inner.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                timeout_ms: inner.timeout.as_millis() as u64,
            }),
        }
    }

    fn signed_request(
        &self,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let inner = &self.inner;
        let amz_date = sigv4::amz_date_now();
        let target = format!("{TARGET_PREFIX}.{operation}");
        let token = inner.credentials.session_token.as_deref();
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", CONTENT_TYPE),
            ("host", &inner.host),
            ("x-amz-date", &amz_date),
            ("x-amz-target", &target),
        ];
        if let Some(token) = token {
            headers.push(("x-amz-security-token", token));
        }
        let authorization = sigv4::authorization(
            &inner.credentials,
            &sigv4::SigningInput {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                payload: &payload,
                amz_date: &amz_date,
                region: &inner.region,
                service: SERVICE,
            },
        );
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(inner.uri.clone());
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        builder
            .header("authorization", authorization)
            .header("accept", "application/json, application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| Error::Endpoint {
                url: inner.uri.to_string(),
                reason: e.to_string(),
            })
    }
}

fn connection_error(e: hyper_util::client::legacy::Error) -> Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    Error::Connection(text)
}

/// Reads a body frame by frame, refusing to hold more than `limit_bytes`.
async fn read_bounded(mut body: hyper::body::Incoming, limit_bytes: usize) -> Result<Bytes, Error> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Connection(format!("reading response: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit_bytes {
                return Err(Error::BodyTooLarge { limit_bytes });
            }
            if buf.is_empty() {
                // Common case, a single frame: keep it without copying.
                if body.is_end_stream() {
                    return Ok(data);
                }
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_validation() {
        assert!(Client::new("http://127.0.0.1:4567", "us-east-1").is_ok());
        assert!(matches!(
            Client::new("ftp://x", "us-east-1"),
            Err(Error::Endpoint { .. })
        ));
        let c = Client::new("http://localhost:4567/", "eu-west-1").unwrap();
        assert_eq!(c.inner.host, "localhost:4567");
        assert_eq!(c.region(), "eu-west-1");
    }
}
