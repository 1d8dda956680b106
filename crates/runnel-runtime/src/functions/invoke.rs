//! The HTTP side of an invocation: one pooled hyper client for every
//! function, bodies bounded both ways.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{FunctionError, RegistryError};

/// Lambda's limits for a synchronous invocation's request and response.
pub const INVOKE_REQUEST_BYTES_MAX: usize = 6 * 1024 * 1024;
pub const INVOKE_RESPONSE_BYTES_MAX: usize = 6 * 1024 * 1024;
/// Of a non-2xx response body, this much is kept for the error text.
const ERROR_BODY_CHARS_MAX: usize = 512;

pub(super) struct Client {
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    pub fn new(extra_roots_der: &[Vec<u8>]) -> Result<Self, RegistryError> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates leave HTTPS to the ones that did load.
        let native = rustls_native_certs::load_native_certs();
        for err in &native.errors {
            tracing::debug!(error = %err, "skipping a system root certificate");
        }
        roots.add_parsable_certificates(native.certs);
        for der in extra_roots_der {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| RegistryError::Tls(format!("bad extra root certificate: {e}")))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client { http })
    }

    pub async fn invoke(
        &self,
        arn: &str,
        uri: http::Uri,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, FunctionError> {
        if payload.len() > INVOKE_REQUEST_BYTES_MAX {
            return Err(FunctionError::RequestTooLarge {
                arn: arn.into(),
                bytes: payload.len(),
                max: INVOKE_REQUEST_BYTES_MAX,
            });
        }
        let request = http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-amz-invocation-type", "RequestResponse")
            .header("x-runnel-function-arn", arn)
            .body(Full::new(payload))
            .map_err(|e| FunctionError::Transport {
                arn: arn.into(),
                message: e.to_string(),
            })?;
        let exchange = async {
            let response =
                self.http
                    .request(request)
                    .await
                    .map_err(|e| FunctionError::Transport {
                        arn: arn.into(),
                        message: error_chain(&e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = read_bounded(arn, body, INVOKE_RESPONSE_BYTES_MAX).await?;
            Ok::<_, FunctionError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FunctionError::Timeout {
                arn: arn.into(),
                timeout_ms: timeout.as_millis() as u64,
            })??;
        if !parts.status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let body: String = text.chars().take(ERROR_BODY_CHARS_MAX).collect();
            return Err(FunctionError::Status {
                arn: arn.into(),
                status: parts.status.as_u16(),
                body,
            });
        }
        if let Some(kind) = parts.headers.get("x-amz-function-error") {
            return Err(FunctionError::Function {
                arn: arn.into(),
                kind: String::from_utf8_lossy(kind.as_bytes()).into_owned(),
                payload: body,
            });
        }
        Ok(body)
    }
}

/// hyper's errors say little at the top; the cause says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn read_bounded(
    arn: &str,
    mut body: hyper::body::Incoming,
    max: usize,
) -> Result<Bytes, FunctionError> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FunctionError::Transport {
            arn: arn.into(),
            message: error_chain(&e),
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(FunctionError::ResponseTooLarge {
                    arn: arn.into(),
                    max,
                });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}
