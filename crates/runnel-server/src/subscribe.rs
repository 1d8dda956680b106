//! SubscribeToShard over HTTP: an `application/vnd.amazon.eventstream`
//! response body (chunked on HTTP/1.1, a DATA stream on HTTP/2) carrying an
//! `initial-response` event, then `SubscribeToShardEvent`s until the
//! subscription ends. Errors before the stream starts are ordinary AWS error
//! responses; errors after it are exception events, as AWS sends them.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use runnel_protocol::{decode, encode, eventstream, Encoding};
use runnel_streams::{StreamsService, Subscription};

use crate::errors::{streams_error, FrontDoorError};
use crate::http::{error_response, HttpResponse};

/// Encoded events buffered per subscription: a client that stops reading
/// stalls its own subscription here, and nothing else.
const EVENTS_IN_FLIGHT_MAX: usize = 4;

pub async fn subscribe_to_shard(
    svc: &Arc<StreamsService>,
    encoding: Encoding,
    body: Bytes,
) -> HttpResponse {
    let input = match decode(encoding, &body) {
        Ok(i) => i,
        Err(e) => return error_response(encoding, &FrontDoorError::from(e)),
    };
    let subscription = {
        let svc = svc.clone();
        match tokio::task::spawn_blocking(move || svc.subscribe_to_shard(input)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return error_response(encoding, &FrontDoorError::Streams(e)),
            Err(_) => {
                let e = runnel_streams::StreamsError::Internal("Internal service failure.".into());
                return error_response(encoding, &FrontDoorError::Streams(e));
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(EVENTS_IN_FLIGHT_MAX);
    tokio::spawn(pump(subscription, encoding, tx));
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(frames).boxed());
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    r
}

async fn pump(mut sub: Subscription, encoding: Encoding, tx: tokio::sync::mpsc::Sender<Bytes>) {
    let content_type = encoding.content_type();
    let initial = eventstream::event(
        "initial-response",
        content_type,
        &encode(encoding, &serde_json::json!({})),
    );
    if tx.send(Bytes::from(initial)).await.is_err() {
        return;
    }
    loop {
        let next = tokio::select! {
            e = sub.next_event() => e,
            // The client went away: stop producing.
            _ = tx.closed() => return,
        };
        let message = match next {
            None => return,
            Some(Ok(event)) => eventstream::event(
                "SubscribeToShardEvent",
                content_type,
                &encode(encoding, &event),
            ),
            Some(Err(e)) => {
                let (error_type, _) = streams_error(&e);
                let payload = encode(encoding, &serde_json::json!({ "message": e.to_string() }));
                let m = eventstream::exception(error_type, content_type, &payload);
                let _ = tx.send(Bytes::from(m)).await;
                return;
            }
        };
        if tx.send(Bytes::from(message)).await.is_err() {
            return;
        }
    }
}
