//! `Firehose_20150804.*` (Amazon Data Firehose, JSON 1.1) on the same port:
//! authorization, then the Firehose service; its errors through `AwsError`
//! into JSON 1.1 error bodies.

use bytes::Bytes;
use http::StatusCode;
use runnel_aws::AwsError;
use runnel_protocol::Encoding;

use crate::errors::FrontDoorError;
use crate::http::{aws_response, error_response, AppState, HttpResponse};

pub const TARGET_PREFIX: &str = "Firehose_20150804";

pub(crate) async fn respond(
    state: &AppState,
    parts: &http::request::Parts,
    body: Bytes,
    peer: std::net::IpAddr,
    op: &str,
) -> HttpResponse {
    if let Some(auth) = &state.auth {
        let action = format!("firehose:{op}");
        let now = state.streams.now_ms();
        let resource = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("DeliveryStreamName")
                    .and_then(|n| n.as_str())
                    .map(|n| {
                        format!(
                            "arn:aws:firehose:{}:{}:deliverystream/{n}",
                            state.region, state.account_id
                        )
                    })
            })
            .unwrap_or_else(|| "*".into());
        if let Err(e) = auth.check(parts, &body, peer, &["firehose"], &action, &resource, now) {
            tracing::info!(%action, error = %e, "request refused");
            return error_response(Encoding::Json, &FrontDoorError::Auth(e));
        }
    }
    match state.firehose.handle(op, &body).await {
        Ok(out) => aws_response(Encoding::Json, StatusCode::OK, out, None),
        Err(e) => {
            let error_type = e.error_type();
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let message = e.message();
            if status.is_server_error() {
                tracing::error!(error_type, %message, "firehose request failed");
            } else {
                tracing::debug!(error_type, %message, "firehose request rejected");
            }
            let mut json = serde_json::json!({ "__type": error_type, "message": message });
            for (k, v) in e.extra_fields() {
                json[k] = serde_json::Value::String(v);
            }
            let mut r = aws_response(
                Encoding::Json,
                status,
                json.to_string().into_bytes(),
                Some(error_type),
            );
            r.extensions_mut().insert(crate::audit::ErrorNote {
                error_type: error_type.to_string(),
                message,
            });
            r
        }
    }
}
