//! One client connection from accept to close, with a deadline for every
//! phase so that no client can hold a connection slot by saying nothing:
//!
//! - plain TCP: the first byte within `first_byte_timeout_ms`;
//! - TLS: the handshake within `tls_handshake_timeout_ms`;
//! - the first request's headers within `header_timeout_ms` of the start
//!   (HTTP/1.1 also bounds each later request's headers by the same time);
//! - a request body within `body_timeout_ms` of its headers (in `body.rs`);
//! - no request in progress (keep-alive, an HTTP/2 connection with no open
//!   stream) for `idle_timeout_ms`: the connection is closed (HTTP/2 gets a
//!   GOAWAY first). PINGs and other frames do not count as a request;
//! - a request in progress while not a byte moves either way (a client that
//!   stopped reading its response) for `idle_timeout_ms`, but at least three
//!   SubscribeToShard heartbeats: the connection is dropped;
//! - HTTP/2 with open streams: a PING every `h2_keepalive_ms`, and a peer
//!   that does not answer in that time is dropped.
//!
//! A request in progress (including a SubscribeToShard event stream for its
//! five minutes) keeps its connection open. Besides the global
//! `connections_max`, each client address may hold at most
//! [`ServerConfig::connections_per_address`] connections.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::ServerConfig;
use crate::http::{handle, AppState};

/// How long a connection asked to close may take to finish on its own.
const GRACEFUL_CLOSE_MS: u64 = 1_000;

/// The deadlines of [`ServerConfig`], as durations.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub first_byte: Duration,
    pub tls_handshake: Duration,
    pub header: Duration,
    pub idle: Duration,
    /// A request in progress with no byte moving either way for this long
    /// is given up: `idle`, but never less than three SubscribeToShard
    /// heartbeats, so a quiet event stream is never taken for a stalled one.
    pub stall: Duration,
}

impl Deadlines {
    pub fn of(c: &ServerConfig) -> Self {
        Deadlines {
            first_byte: Duration::from_millis(c.first_byte_timeout_ms),
            tls_handshake: Duration::from_millis(c.tls_handshake_timeout_ms),
            header: Duration::from_millis(c.header_timeout_ms),
            idle: Duration::from_millis(c.idle_timeout_ms),
            stall: Duration::from_millis(c.idle_timeout_ms)
                .max(runnel_streams::fanout::HEARTBEAT * 3),
        }
    }
}

/// The HTTP/1.1 + HTTP/2 connection builder with the configured timers.
pub fn builder(c: &ServerConfig) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(c.header_timeout_ms));
    let keepalive = Duration::from_millis(c.h2_keepalive_ms);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(keepalive))
        .keep_alive_timeout(keepalive);
    builder
}

/// Connections held per client address.
pub struct PerAddress {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// The address a share is counted for: an IPv4 address (also when mapped
/// into IPv6), or an IPv6 /64, the smallest block one host is usually given.
fn share_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// One connection's share of its address; released on drop.
pub struct AddressPermit {
    owner: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A permit, or `None` when `ip` already holds its share.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPermit> {
        let ip = share_key(ip);
        let mut counts = self.counts.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressPermit {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Whether a connection has a request in progress, and since when it has not.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `start` when the last request finished.
    idle_since_ms: AtomicU64,
    /// Bytes moved either way (see [`Counted`]).
    moved: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            moved: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The connection's I/O, counting the bytes that move, so that a request in
/// progress whose client neither sends nor reads anything can be noticed.
struct Counted<I> {
    io: I,
    moved: Arc<AtomicU64>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.moved.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.moved.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.moved.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Held by a request until its response body is finished or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.start.elapsed().as_millis() as u64;
        self.0.idle_since_ms.store(ms.max(1), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves once the connection has had no request in progress for its
/// allowance (`header` before the first request, `idle` after), or has had
/// one in progress while not a byte moved either way for `idle`.
async fn idle_deadline(a: Arc<Activity>, d: Deadlines) {
    // While a request is in progress, look this often: soon enough to see it
    // end before the idle deadline would have passed, and to see a stall.
    let tick = (d.idle.min(d.header).min(d.stall) / 2).max(Duration::from_millis(10));
    let mut served_one = false;
    // Bytes moved when a request in progress was last seen, and since when.
    let mut busy_mark: Option<(u64, Instant)> = None;
    loop {
        let allowance = if served_one { d.idle } else { d.header };
        let now = Instant::now();
        let wake = if a.in_flight.load(Ordering::Acquire) > 0 {
            served_one = true;
            let moved = a.moved.load(Ordering::Relaxed);
            match busy_mark {
                Some((m, since)) if m == moved => {
                    if now.duration_since(since) >= d.stall {
                        return; // stalled: nothing sent or read for `stall`
                    }
                }
                _ => busy_mark = Some((moved, now)),
            }
            now + tick
        } else {
            busy_mark = None;
            let since = Duration::from_millis(a.idle_since_ms.load(Ordering::Acquire));
            let wake = a.start + since + allowance;
            if wake <= now {
                // Re-check: a request may have begun since the load above.
                if a.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                continue;
            }
            wake
        };
        tokio::time::sleep_until(wake).await;
        if a.idle_since_ms.load(Ordering::Acquire) > 0 {
            served_one = true;
        }
    }
}

/// Serves a plain-TCP connection: waits (bounded) for its first byte.
pub async fn serve_tcp(
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    state: Arc<AppState>,
    peer: SocketAddr,
    d: Deadlines,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(d.first_byte, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => serve(builder, stream, state, peer, false, d).await,
        Ok(Ok(_)) => {} // closed before sending anything
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection failed before its first byte"),
        Err(_) => tracing::debug!(%peer, "no first byte in time; closing"),
    }
}

/// Serves a TLS connection: the handshake is bounded by its deadline.
pub async fn serve_tls(
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    state: Arc<AppState>,
    peer: SocketAddr,
    d: Deadlines,
) {
    match tokio::time::timeout(d.tls_handshake, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => serve(builder, tls, state, peer, true, d).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn serve<I>(
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    io: I,
    state: Arc<AppState>,
    peer: SocketAddr,
    secure: bool,
    d: Deadlines,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = Counted {
        io,
        moved: activity.moved.clone(),
    };
    let tracked = activity.clone();
    let service = service_fn(move |req| {
        let state = state.clone();
        let guard = InFlight::begin(&tracked);
        async move {
            let resp = handle(state, req, peer.ip(), secure).await;
            // The request stays in progress until its body is sent (or dropped).
            Ok::<_, std::convert::Infallible>(resp.map(|body| {
                body.map_frame(move |f| {
                    let _ = &guard;
                    f
                })
                .boxed()
            }))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = idle_deadline(activity, d) => {
            tracing::debug!(%peer, "connection idle past its deadline; closing");
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_millis(GRACEFUL_CLOSE_MS), conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_share() {
        let limit = PerAddress::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limit.try_acquire(a).unwrap();
        let _second = limit.try_acquire(a).unwrap();
        assert!(limit.try_acquire(a).is_none());
        // Another address is unaffected.
        let _other = limit.try_acquire(b).unwrap();
        drop(first);
        assert!(limit.try_acquire(a).is_some());
    }

    #[test]
    fn default_share_scales_with_the_cap() {
        let c = |max, per| ServerConfig {
            connections_max: max,
            connections_per_address_max: per,
            ..ServerConfig::default()
        };
        assert_eq!(c(4096, 0).connections_per_address(), 512);
        assert_eq!(c(100, 0).connections_per_address(), 64);
        assert_eq!(c(10, 0).connections_per_address(), 10);
        assert_eq!(c(4096, 7).connections_per_address(), 7);
        assert!(c(10, 11).validate().is_err());
        let zero = ServerConfig {
            idle_timeout_ms: 0,
            ..ServerConfig::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("idle_timeout_ms"));
    }

    #[tokio::test]
    async fn idle_deadline_waits_for_requests() {
        let ms = Duration::from_millis;
        let d = Deadlines {
            first_byte: ms(100),
            tls_handshake: ms(100),
            header: ms(200),
            idle: ms(400),
            stall: ms(400),
        };
        let a = Arc::new(Activity::new());
        // No request at all: closed at the header deadline.
        let t = Instant::now();
        idle_deadline(a.clone(), d).await;
        assert!(
            t.elapsed() >= ms(200) && t.elapsed() < ms(2000),
            "{:?}",
            t.elapsed()
        );
        // A request in progress whose bytes move holds it open; once done, `idle` applies.
        let guard = InFlight::begin(&a);
        let watch = tokio::spawn(idle_deadline(a.clone(), d));
        for _ in 0..10 {
            a.moved.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(ms(100)).await;
        }
        assert!(!watch.is_finished());
        drop(guard);
        let t = Instant::now();
        let _ = watch.await;
        assert!(
            t.elapsed() >= ms(350) && t.elapsed() < ms(3000),
            "{:?}",
            t.elapsed()
        );
        // A request in progress with nothing moving is given up after `stall`.
        let stuck = InFlight::begin(&a);
        let t = Instant::now();
        idle_deadline(a.clone(), d).await;
        assert!(
            t.elapsed() >= ms(400) && t.elapsed() < ms(3000),
            "{:?}",
            t.elapsed()
        );
        drop(stuck);
    }

    #[tokio::test]
    async fn request_seen_first_still_closes_at_idle() {
        // The watchdog's first look finds a request in progress (HTTP/2 spawns
        // streams); when it ends, `idle` applies, not the much longer `stall`.
        let ms = Duration::from_millis;
        let d = Deadlines {
            first_byte: ms(100),
            tls_handshake: ms(100),
            header: ms(300),
            idle: ms(300),
            stall: ms(20_000),
        };
        let a = Arc::new(Activity::new());
        let guard = InFlight::begin(&a);
        let watch = tokio::spawn(idle_deadline(a.clone(), d));
        tokio::time::sleep(ms(50)).await;
        drop(guard);
        let t = Instant::now();
        let _ = watch.await;
        assert!(
            t.elapsed() >= ms(250) && t.elapsed() < ms(5000),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn ipv6_shares_by_64() {
        let limit = PerAddress::new(1);
        let _a = limit.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert!(limit
            .try_acquire("2001:db8::2:3".parse().unwrap())
            .is_none());
        assert!(limit
            .try_acquire("2001:db8:0:1::1".parse().unwrap())
            .is_some());
        let _v4 = limit.try_acquire("192.0.2.1".parse().unwrap()).unwrap();
        assert!(limit
            .try_acquire("::ffff:192.0.2.1".parse().unwrap())
            .is_none());
    }
}
