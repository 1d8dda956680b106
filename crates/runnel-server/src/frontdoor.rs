//! What every request to the API path meets first, in either auth mode, as
//! AWS's endpoint behaves:
//!
//! - a browser's CORS preflight (`OPTIONS` with `Origin`) is answered, and
//!   every response to a request with `Origin` allows it and exposes the
//!   headers SDKs read (`x-amzn-RequestId`, `x-amzn-ErrorType`, …), so the
//!   JavaScript SDK works from a web page;
//! - any other method than `POST` gets AWS's XML `AccessDeniedException`
//!   (or `MissingAuthenticationTokenException` when unsigned), status 403;
//! - a JSON/CBOR request must carry one complete signature (header or
//!   presigned query): none is `MissingAuthenticationTokenException`, a
//!   malformed one `IncompleteSignatureException` naming the missing parts,
//!   both `InvalidSignatureException` (a body that is not a structure is
//!   reported first, as `SerializationException`). With `auth = "open"` a complete
//!   signature is not verified; with `auth = "enforced"` it then must verify.
//!
//! The console (`/console`) signs its requests with a placeholder key in
//! open mode (see `console/api.js`), so it passes the same door.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Version};
use runnel_auth::AuthError;
use runnel_protocol::sigv4::{check_presence, PresenceError};

use crate::http::{full, HttpResponse};

/// Response headers a browser page may read.
const EXPOSE_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amz-request-id,x-amz-id-2,Date";
/// How long a browser may cache a preflight answer (two days, as AWS).
const PREFLIGHT_MAX_AGE_S: &str = "172800";

/// The signature check every API request passes (verification comes later,
/// and only when enforced).
pub fn require_signature(headers: &HeaderMap, query: Option<&str>) -> Result<(), AuthError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let has_date = headers.contains_key("x-amz-date") || headers.contains_key(header::DATE);
    match check_presence(authorization.as_deref(), has_date, query) {
        Ok(_) => Ok(()),
        Err(PresenceError::Missing) => Err(AuthError::MissingAuthenticationToken),
        Err(e @ PresenceError::Both) => Err(AuthError::InvalidSignature(e.to_string())),
        Err(PresenceError::Incomplete(m)) => Err(AuthError::IncompleteSignature(m)),
    }
}

/// Whether `body` decodes as a structure at all (used only on the way to
/// an authentication error, which AWS reports after a malformed body).
pub fn check_structure(
    encoding: runnel_protocol::Encoding,
    body: &[u8],
) -> Result<(), runnel_protocol::ProtocolError> {
    runnel_protocol::decode::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(
        encoding, body,
    )
    .map(drop)
}

fn is_signed(headers: &HeaderMap, query: Option<&str>) -> bool {
    !matches!(
        require_signature(headers, query),
        Err(AuthError::MissingAuthenticationToken)
    )
}

/// AWS's answer to a request it cannot even name an operation for, in the
/// XML AWS uses when the request is not in a JSON protocol (status 403, no
/// content type).
pub fn xml_error(error_type: &str, message: &str) -> HttpResponse {
    let body = format!("<{error_type}>\n  <Message>{message}</Message>\n</{error_type}>\n");
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::FORBIDDEN;
    if let Ok(v) = HeaderValue::from_str(&crate::http::request_id()) {
        r.headers_mut().insert("x-amzn-RequestId", v);
    }
    r
}

/// A named operation in a content type no AWS protocol uses: 404, the
/// error type alone.
pub fn xml_unknown_operation() -> HttpResponse {
    let mut r = Response::new(full(Bytes::from_static(b"<UnknownOperationException/>\n")));
    *r.status_mut() = StatusCode::NOT_FOUND;
    if let Ok(v) = HeaderValue::from_str(&crate::http::request_id()) {
        r.headers_mut().insert("x-amzn-RequestId", v);
    }
    r
}

/// `GET`, `PUT`, `DELETE`, … on the API path.
pub fn not_post(headers: &HeaderMap, query: Option<&str>) -> HttpResponse {
    if is_signed(headers, query) {
        xml_error(
            "AccessDeniedException",
            "Unable to determine service/operation name to be authorized",
        )
    } else {
        xml_error(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }
}

/// The answer to a CORS preflight, when `method`/`headers` make one.
pub fn preflight(method: &Method, headers: &HeaderMap) -> Option<HttpResponse> {
    if method != Method::OPTIONS || !headers.contains_key(header::ORIGIN) {
        return None;
    }
    let mut r = Response::new(full(Bytes::new()));
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(v) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
    if let Some(v) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_S),
    );
    if let Ok(v) = HeaderValue::from_str(&crate::http::request_id()) {
        h.insert("x-amzn-RequestId", v);
    }
    Some(r)
}

/// Marks a response to a request from a web page (one with `Origin`) as
/// readable by that page.
pub fn allow_origin(mut r: HttpResponse) -> HttpResponse {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    r
}

/// Tells an HTTP/1 client that the server closes the connection after this
/// response (a request body it will not read, a body that did not arrive).
/// HTTP/2 has no such header: a stream ends on its own.
pub fn closing(version: Version, mut r: HttpResponse) -> HttpResponse {
    if version < Version::HTTP_2 {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// Whether a request declares a body that the server has not read.
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}
