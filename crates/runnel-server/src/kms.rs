//! `TrentService.*` (AWS KMS, JSON 1.1) on the same port: authorization,
//! then the key service attached to the streams service.

use bytes::Bytes;
use http::StatusCode;
use runnel_protocol::Encoding;

use crate::errors::FrontDoorError;
use crate::http::{aws_response, error_response, AppState, HttpResponse};

pub(crate) async fn respond(
    state: &AppState,
    parts: &http::request::Parts,
    body: Bytes,
    peer: std::net::IpAddr,
    op: &str,
) -> HttpResponse {
    if let Some(auth) = &state.auth {
        let action = format!("kms:{op}");
        let now = state.streams.now_ms();
        if let Err(e) = auth.check(parts, &body, peer, &["kms"], &action, "*", now) {
            tracing::info!(%action, error = %e, "request refused");
            return error_response(Encoding::Json, &FrontDoorError::Auth(e));
        }
    }
    let Some(kms) = state.streams.kms() else {
        let e = FrontDoorError::UnknownOperation("The key service is not enabled.".into());
        return error_response(Encoding::Json, &e);
    };
    let operation = op.to_owned();
    // Key changes fsync the catalog: off the runtime threads.
    let result = tokio::task::spawn_blocking(move || kms.handle(&operation, &body)).await;
    match result {
        Ok(Ok(out)) => aws_response(
            Encoding::Json,
            StatusCode::OK,
            out.to_string().into_bytes(),
            None,
        ),
        Ok(Err(e)) => {
            let (error_type, status) = e.aws();
            let message = e.to_string();
            tracing::debug!(error_type, %message, "kms request rejected");
            let body = runnel_protocol::AwsErrorBody::new(error_type, &message);
            aws_response(
                Encoding::Json,
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                body.encode(Encoding::Json),
                Some(error_type),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "kms task failed");
            let body = serde_json::json!({
                "__type": "KMSInternalException",
                "message": "Internal service failure.",
            });
            aws_response(
                Encoding::Json,
                StatusCode::INTERNAL_SERVER_ERROR,
                body.to_string().into_bytes(),
                Some("KMSInternalException"),
            )
        }
    }
}
