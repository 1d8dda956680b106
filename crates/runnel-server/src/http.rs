//! Request routing: health, test hooks, and the AWS JSON/CBOR protocol.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use runnel_protocol::sigv4::parse_authorization;
use runnel_protocol::target::{split_target, KINESIS_TARGET_PREFIX};
use runnel_protocol::{AwsErrorBody, Encoding};
use runnel_streams::StreamsService;
use runnel_types::ManualClock;

use crate::body::{read_limited, read_limited_by, BodyError};
use crate::errors::FrontDoorError;

pub struct AppState {
    pub streams: Arc<StreamsService>,
    pub firehose: Arc<runnel_firehose::FirehoseService>,
    /// The record log, for /health and its counters in /metrics.
    pub log: Arc<runnel_log::Log>,
    pub request_body_bytes_max: usize,
    /// A request body must arrive whole within this time (`body_timeout_ms`).
    pub request_body_timeout: std::time::Duration,
    /// Present only with `test_clock = true`.
    pub test_clock: Option<ManualClock>,
    pub metrics: Arc<runnel_metrics::Registry>,
    /// Present when `auth = "enforced"`.
    pub auth: Option<Arc<crate::auth::AuthState>>,
    /// Present when `audit = true`.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    pub region: String,
    pub account_id: String,
}

tokio::task_local! {
    /// The audit facts of the request being served.
    static AUDIT: Arc<crate::audit::AuditCtx>;
}

fn audit_facts(f: impl FnOnce(&crate::audit::AuditCtx)) {
    let _ = AUDIT.try_with(|ctx| f(ctx));
}

fn body_json(encoding: Encoding, body: &[u8]) -> serde_json::Value {
    match encoding {
        Encoding::Json => serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
        Encoding::Cbor => ciborium::from_reader::<ciborium::Value, _>(body)
            .map(crate::cloudwatch::cbor_to_json)
            .unwrap_or(serde_json::Value::Null),
    }
}

/// Serves an API call inside an audit context and writes its audit record.
async fn audited(
    state: &AppState,
    peer: std::net::IpAddr,
    user_agent: Option<String>,
    serve: impl std::future::Future<Output = HttpResponse>,
) -> HttpResponse {
    let Some(audit) = state.audit.clone() else {
        return serve.await;
    };
    let ctx = Arc::new(crate::audit::AuditCtx::default());
    let resp = AUDIT.scope(ctx.clone(), serve).await;
    let note = resp.extensions().get::<crate::audit::ErrorNote>().cloned();
    let request_id = resp
        .headers()
        .get("x-amzn-RequestId")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    audit.record(
        &ctx,
        state.streams.now_ms(),
        &state.region,
        &state.account_id,
        peer,
        user_agent.as_deref(),
        request_id.as_deref(),
        note.as_ref(),
    );
    resp
}

pub type HttpResponse = Response<BoxBody<Bytes, std::convert::Infallible>>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> BoxBody<Bytes, std::convert::Infallible> {
    Full::new(bytes.into()).boxed()
}

fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut r = Response::new(full(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, value: serde_json::Value) -> HttpResponse {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn request_id() -> String {
    let a: u128 = rand::random();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub(crate) fn aws_response(
    encoding: Encoding,
    status: StatusCode,
    body: Vec<u8>,
    error_type: Option<&str>,
) -> HttpResponse {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-RequestId", v);
    }
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert("x-amzn-ErrorType", t);
    }
    r
}

pub(crate) fn error_response(encoding: Encoding, e: &FrontDoorError) -> HttpResponse {
    let (error_type, status) = e.aws();
    let message = e.to_string();
    if status.is_server_error() {
        tracing::error!(error_type, %message, "request failed");
    } else {
        tracing::debug!(error_type, %message, "request rejected");
    }
    let body = AwsErrorBody::new(error_type, &message).encode(encoding);
    let mut r = aws_response(encoding, status, body, Some(error_type));
    r.extensions_mut().insert(crate::audit::ErrorNote {
        error_type: error_type.to_string(),
        message,
    });
    r
}

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: std::net::IpAddr,
    secure: bool,
) -> HttpResponse {
    if let Some(r) = crate::frontdoor::preflight(req.method(), req.headers()) {
        return r;
    }
    if req.headers().contains_key(header::ORIGIN) {
        crate::frontdoor::allow_origin(route(state, req, peer, secure).await)
    } else {
        route(state, req, peer, secure).await
    }
}

/// runnel's own paths; every other path is the AWS API's.
fn is_runnel_path(path: &str) -> bool {
    ["/health", "/ready", "/metrics", "/console", "/_runnel/"]
        .iter()
        .any(|p| path.starts_with(p))
}

async fn route(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: std::net::IpAddr,
    secure: bool,
) -> HttpResponse {
    match (req.method(), req.uri().path()) {
        // Ready: serving requests. Health: serving and storage intact.
        // These GET answers never read a body: one sent anyway closes the
        // connection, and the answer says so.
        (&Method::GET, "/ready") => close_if_body(&req, plain(StatusCode::OK, "ok\n")),
        (&Method::GET, "/health") => close_if_body(&req, crate::health::health(&state.log)),
        (&Method::GET, "/metrics") => close_if_body(&req, {
            let mut text = state.metrics.prometheus();
            crate::health::log_metrics(&state.log, &mut text);
            let mut r = Response::new(full(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }),
        (&Method::GET, p) if crate::console::is_console_path(p) => {
            close_if_body(&req, crate::console::serve(p))
        }
        (&Method::POST, path) if path.starts_with(crate::cloudwatch::RPC_PATH_PREFIX) => {
            let op = path[crate::cloudwatch::RPC_PATH_PREFIX.len()..].to_owned();
            let ua = user_agent(&req);
            let serve = cloudwatch_request(
                &state,
                req,
                crate::cloudwatch::Wire::RpcV2Cbor,
                op,
                peer,
                secure,
            );
            audited(&state, peer, ua, serve).await
        }
        (&Method::POST, path) if path.starts_with("/_runnel/test/") => test_hook(&state, req).await,
        (&Method::POST, _) => {
            let ua = user_agent(&req);
            audited(&state, peer, ua, aws_request(&state, req, peer, secure)).await
        }
        // The unread body means the connection closes after the answer.
        (_, path) if !is_runnel_path(path) => {
            let r = crate::frontdoor::not_post(req.headers(), req.uri().query());
            close_if_body(&req, r)
        }
        _ => close_if_body(&req, plain(StatusCode::NOT_FOUND, "not found\n")),
    }
}

fn close_if_body(req: &Request<Incoming>, r: HttpResponse) -> HttpResponse {
    if crate::frontdoor::has_body(req.headers()) {
        crate::frontdoor::closing(req.version(), r)
    } else {
        r
    }
}

async fn aws_request(
    state: &AppState,
    req: Request<Incoming>,
    peer: std::net::IpAddr,
    secure: bool,
) -> HttpResponse {
    let (parts, req_body) = req.into_parts();
    let headers = &parts.headers;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        // Not a protocol AWS speaks here: its XML answers, body unread.
        let named = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(split_target)
            .is_some();
        let r = if named {
            crate::frontdoor::xml_unknown_operation()
        } else {
            crate::frontdoor::xml_error(
                "AccessDeniedException",
                "Unable to determine service/operation name to be authorized",
            )
        };
        return crate::frontdoor::closing(parts.version, r);
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // In open mode the caller's claimed identity is only logged.
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(sig) = parse_authorization(auth) {
            tracing::trace!(access_key = %sig.access_key, region = %sig.region, "caller");
            audit_facts(|a| a.access_key(&sig.access_key));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match read_limited_by(
        req_body,
        declared,
        state.request_body_bytes_max,
        state.request_body_timeout,
    )
    .await
    {
        Ok(b) => b,
        Err(BodyError::TooLarge(max)) => {
            let e = FrontDoorError::BodyTooLarge(format!(
                "Request body exceeds the limit of {max} bytes."
            ));
            return crate::frontdoor::closing(parts.version, error_response(encoding, &e));
        }
        Err(BodyError::Read(m)) => {
            // A body that broke off leaves the connection unusable.
            let r = error_response(encoding, &FrontDoorError::Serialization(m));
            return crate::frontdoor::closing(parts.version, r);
        }
        Err(e @ BodyError::TimedOut(_)) => {
            let r = plain(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time\n",
            );
            tracing::debug!(%peer, error = %e, "closing a connection whose body stalled");
            return crate::frontdoor::closing(parts.version, r);
        }
    };
    if let Some((prefix, op)) = target.as_deref().and_then(split_target) {
        let source = match prefix {
            KINESIS_TARGET_PREFIX => "kinesis.amazonaws.com",
            "TrentService" => "kms.amazonaws.com",
            crate::cloudwatch::TARGET_PREFIX => "monitoring.amazonaws.com",
            crate::firehose::TARGET_PREFIX => "firehose.amazonaws.com",
            _ => "runnel",
        };
        if state.audit.as_ref().is_some_and(|a| a.wants(op)) {
            let params = body_json(encoding, &body);
            audit_facts(|a| a.request(source, op, Some(&params)));
        }
    }
    // A named operation needs a signature, verified or not (frontdoor.rs).
    if let Some((
        KINESIS_TARGET_PREFIX
        | "TrentService"
        | crate::cloudwatch::TARGET_PREFIX
        | crate::firehose::TARGET_PREFIX,
        _,
    )) = target.as_deref().and_then(split_target)
    {
        if let Err(e) = crate::frontdoor::require_signature(headers, parts.uri.query()) {
            // AWS reports a body that is not a structure before the signature.
            if let Err(bad) = crate::frontdoor::check_structure(encoding, &body) {
                return error_response(encoding, &bad.into());
            }
            return error_response(encoding, &FrontDoorError::Auth(e));
        }
    }
    let operation = match target.as_deref().and_then(split_target) {
        Some((KINESIS_TARGET_PREFIX, op)) => op.to_owned(),
        Some(("TrentService", op)) => {
            return crate::kms::respond(state, &parts, body, peer, op).await;
        }
        Some((crate::firehose::TARGET_PREFIX, op)) => {
            return crate::firehose::respond(state, &parts, body, peer, op).await;
        }
        Some((crate::cloudwatch::TARGET_PREFIX, op)) => {
            if let Err(e) = authorize_cloudwatch(state, &parts, &body, peer, secure, op) {
                return error_response(encoding, &e);
            }
            return cloudwatch_response(state, crate::cloudwatch::Wire::Json10, op, &body);
        }
        _ => {
            let e = FrontDoorError::UnknownOperation(match &target {
                Some(t) => format!("Unknown operation target {t}."),
                None => "Missing X-Amz-Target header.".into(),
            });
            return error_response(encoding, &e);
        }
    };
    if let Some(auth) = &state.auth {
        // A body that does not decode is refused by the operation itself.
        let input: runnel_streams::ResourceRef =
            runnel_protocol::codec::decode(encoding, &body).unwrap_or_default();
        let resource = state.streams.resource_arn_of(&input);
        let action = format!("kinesis:{operation}");
        let now = state.streams.now_ms();
        let resource_policy = state.streams.resource_policy_for(&resource);
        match auth.check_on(
            &parts,
            &body,
            peer,
            secure,
            &["kinesis"],
            &action,
            &resource,
            resource_policy.as_ref(),
            now,
        ) {
            Ok(caller) => {
                tracing::debug!(principal = %caller.name, %action, %resource, "authorized");
                audit_facts(|a| a.principal(&caller.name, &caller.arn));
            }
            Err(e) => {
                tracing::info!(%action, %resource, error = %e, "request refused");
                return error_response(encoding, &FrontDoorError::Auth(e));
            }
        }
    }
    if operation == "SubscribeToShard" {
        return crate::subscribe::subscribe_to_shard(&state.streams, encoding, body).await;
    }
    match crate::kinesis::dispatch(&state.streams, &operation, encoding, body).await {
        Ok(out) => aws_response(encoding, StatusCode::OK, out, None),
        Err(e) => error_response(encoding, &e),
    }
}

async fn test_hook(state: &AppState, req: Request<Incoming>) -> HttpResponse {
    let Some(clock) = state.test_clock.clone() else {
        let r = plain(
            StatusCode::NOT_FOUND,
            "test hooks are disabled (start with --test-clock)\n",
        );
        return close_if_body(&req, r);
    };
    let path = req.uri().path().to_owned();
    let version = req.version();
    let body = match read_limited(req.into_body(), None, 64 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            // The rest of the body stays unread: the connection closes.
            let r = json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": e.to_string() }),
            );
            return crate::frontdoor::closing(version, r);
        }
    };
    match path.as_str() {
        "/_runnel/test/clock/advance" => {
            let ms = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("ms").and_then(serde_json::Value::as_i64));
            match ms {
                Some(ms) => {
                    clock.advance_ms(ms);
                    json(
                        StatusCode::OK,
                        serde_json::json!({ "now_ms": state.streams.now_ms() }),
                    )
                }
                None => json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": "body must be {\"ms\": N}" }),
                ),
            }
        }
        "/_runnel/test/retention" => {
            let svc = state.streams.clone();
            match tokio::task::spawn_blocking(move || svc.housekeeping()).await {
                Ok(Ok(report)) => json(
                    StatusCode::OK,
                    serde_json::json!({
                        "segments_deleted": report.segments_deleted,
                        "bytes_reclaimed": report.bytes_reclaimed,
                        "segments_compacted": report.segments_compacted,
                        "bytes_copied": report.bytes_copied,
                    }),
                ),
                Ok(Err(e)) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": e.to_string() }),
                ),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": e.to_string() }),
                ),
            }
        }
        _ => plain(StatusCode::NOT_FOUND, "no such test hook\n"),
    }
}

async fn cloudwatch_request(
    state: &AppState,
    req: Request<Incoming>,
    wire: crate::cloudwatch::Wire,
    op: String,
    peer: std::net::IpAddr,
    secure: bool,
) -> HttpResponse {
    let (parts, req_body) = req.into_parts();
    let body = match read_limited_by(
        req_body,
        None,
        state.request_body_bytes_max,
        state.request_body_timeout,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            let err = crate::cloudwatch::CwError {
                error_type: "InvalidParameterValueException",
                message: e.to_string(),
            };
            // The body is left unread or broke off: the connection closes.
            return crate::frontdoor::closing(parts.version, cloudwatch_error(wire, &err));
        }
    };
    if let Err(FrontDoorError::Auth(e)) =
        authorize_cloudwatch(state, &parts, &body, peer, secure, &op)
    {
        let (error_type, _) = e.aws();
        let err = crate::cloudwatch::CwError {
            error_type,
            message: e.to_string(),
        };
        return cloudwatch_error(wire, &err);
    }
    cloudwatch_response(state, wire, &op, &body)
}

fn authorize_cloudwatch(
    state: &AppState,
    parts: &http::request::Parts,
    body: &[u8],
    peer: std::net::IpAddr,
    secure: bool,
    op: &str,
) -> Result<(), FrontDoorError> {
    let Some(auth) = &state.auth else {
        return Ok(());
    };
    let action = format!("cloudwatch:{op}");
    auth.check_on(
        parts,
        body,
        peer,
        secure,
        &["monitoring"],
        &action,
        "*",
        None,
        state.streams.now_ms(),
    )?;
    Ok(())
}

fn cloudwatch_response(
    state: &AppState,
    wire: crate::cloudwatch::Wire,
    op: &str,
    body: &[u8],
) -> HttpResponse {
    let result = crate::cloudwatch::decode(wire, body)
        .and_then(|input| crate::cloudwatch::handle(&state.metrics, op, input));
    match result {
        Ok(out) => cloudwatch_reply(wire, StatusCode::OK, crate::cloudwatch::render(wire, out)),
        Err(e) => cloudwatch_error(wire, &e),
    }
}

fn cloudwatch_error(wire: crate::cloudwatch::Wire, e: &crate::cloudwatch::CwError) -> HttpResponse {
    let body = crate::cloudwatch::render(
        wire,
        serde_json::json!({ "__type": e.error_type, "message": e.message }),
    );
    let mut r = cloudwatch_reply(wire, StatusCode::BAD_REQUEST, body);
    r.extensions_mut().insert(crate::audit::ErrorNote {
        error_type: e.error_type.to_string(),
        message: e.message.clone(),
    });
    if let Ok(v) = HeaderValue::from_str(e.error_type) {
        r.headers_mut().insert("x-amzn-query-error", v);
    }
    r
}

fn cloudwatch_reply(
    wire: crate::cloudwatch::Wire,
    status: StatusCode,
    body: Vec<u8>,
) -> HttpResponse {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    match wire {
        crate::cloudwatch::Wire::RpcV2Cbor => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/cbor"),
            );
            h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
        }
        crate::cloudwatch::Wire::Json10 => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn user_agent(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
