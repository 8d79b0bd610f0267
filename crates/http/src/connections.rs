//! Accepting connections from the open internet: timeouts and a connection limit, so idle or
//! half-sent connections cannot exhaust the server's file descriptors.
//!
//! Every connection is in one phase, kept in a shared [`Phase`] and advanced by the socket wrapper
//! ([`Watched`]) and the service wrapper:
//!
//! | phase | until | closed after |
//! |---|---|---|
//! | `Fresh` | the first byte of the first request | `header_timeout` since accepted |
//! | `Head` | the request's headers are read | `header_timeout` since its first byte |
//! | `Busy` | the handler answered | never by the watchdog; the body must arrive within `body_timeout` |
//! | `Idle` | the next request's first byte (keep-alive) | `idle_timeout` since the last byte written |
//!
//! Past `max_connections` (at most the open-file limit less a reserve for the database and files),
//! the connection waiting longest (`Fresh`, `Head` or `Idle`) is closed to make room, as nginx does
//! with keep-alive connections; connections inside a request are never shed. Graceful shutdown
//! stops accepting, closes waiting connections and lets requests in flight finish.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Body as HttpBody, Frame};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use leadscore_service::settings::Limits;

/// File descriptors kept free for the database, the model file and logs.
const FD_RESERVE: u64 = 64;

const FRESH: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;

/// One connection's phase and when it began (ms since the listener started).
struct Phase {
    phase: AtomicU8,
    since: AtomicU64,
    epoch: Instant,
    /// Asked to close (shed to make room).
    close: Notify,
}

impl Phase {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn set(&self, phase: u8) {
        self.since.store(self.now(), Ordering::SeqCst);
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// A byte arrived: a waiting connection starts reading a request head.
    fn on_read(&self) {
        if matches!(self.phase.load(Ordering::SeqCst), FRESH | IDLE) {
            self.set(HEAD);
        }
    }

    /// A byte was written: an idle connection still sending its last answer is not idle.
    fn on_write(&self) {
        if self.phase.load(Ordering::SeqCst) == IDLE {
            self.since.store(self.now(), Ordering::SeqCst);
        }
    }

    /// Whether the connection waits for the client (it may be shed), and since when.
    fn waiting_since(&self) -> Option<u64> {
        (self.phase.load(Ordering::SeqCst) != BUSY).then(|| self.since.load(Ordering::SeqCst))
    }

    /// When the watchdog closes this connection if nothing changes (ms since the epoch).
    fn deadline(&self, limits: &Limits) -> Option<u64> {
        let since = self.since.load(Ordering::SeqCst);
        let allowed = match self.phase.load(Ordering::SeqCst) {
            FRESH | HEAD => limits.header_timeout,
            IDLE => limits.idle_timeout,
            _ => return None,
        };
        Some(since.saturating_add(u64::try_from(allowed.as_millis()).unwrap_or(u64::MAX)))
    }
}

/// The socket, reporting reads and writes to the connection's [`Phase`].
struct Watched {
    stream: TcpStream,
    phase: Arc<Phase>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.phase.on_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.phase.on_write();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.phase.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The request body did not arrive within `body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the time allowed")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections, for shedding.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Phase>>>,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }

    /// Asks the connection waiting longest for its client to close. Returns whether one was found.
    fn shed_one(&self) -> bool {
        let Ok(open) = self.open.lock() else { return false };
        let victim = open.values().filter_map(|p| p.waiting_since().map(|s| (s, p))).min_by_key(|(s, _)| *s);
        match victim {
            Some((_, phase)) => {
                // Take it out of the count now, so the next shed picks another one.
                phase.phase.store(BUSY, Ordering::SeqCst);
                phase.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// How many connections the process can hold: the configured limit, at most the open-file limit
/// (raised to its hard limit first) less a reserve.
pub fn effective_max_connections(configured: usize) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft),
    };
    let by_fds = usize::try_from(soft.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
    configured.min(by_fds)
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, closes waiting
/// connections and waits (up to a minute) for requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = effective_max_connections(limits.max_connections);
    if max < limits.max_connections {
        tracing::info!("at most {max} connections (the open-file limit allows no more)");
    }
    let registry = Arc::new(Registry::default());
    let epoch = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a reset connection: make room, back off, go on.
                    tracing::warn!("accept: {e}");
                    registry.shed_one();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        if registry.len() >= max && !registry.shed_one() {
            // Every connection is inside a request: refuse this one.
            metrics::counter!("leadscore_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = registry.next.fetch_add(1, Ordering::SeqCst);
        let phase =
            Arc::new(Phase { phase: AtomicU8::new(FRESH), since: AtomicU64::new(0), epoch, close: Notify::new() });
        phase.set(FRESH);
        if let Ok(mut open) = registry.open.lock() {
            open.insert(id, Arc::clone(&phase));
        }
        metrics::gauge!("leadscore_http_connections").set(registry.len() as f64);
        let registry = Arc::clone(&registry);
        let router = router.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            serve_connection(stream, peer, router, limits, Arc::clone(&phase), stop).await;
            if let Ok(mut open) = registry.open.lock() {
                open.remove(&id);
            }
            metrics::gauge!("leadscore_http_connections").set(registry.len() as f64);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(60), drained).await.is_err() {
        tracing::warn!("some requests were still running a minute after shutdown began; closing them");
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    phase: Arc<Phase>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched { stream, phase: Arc::clone(&phase) });
    let service_phase = Arc::clone(&phase);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        service_phase.set(BUSY);
        let deadline = Box::pin(tokio::time::sleep(limits.body_timeout));
        let mut request = request.map(|inner| Body::new(DeadlineBody { inner, deadline }));
        request.extensions_mut().insert(ConnectInfo(peer));
        let answer = router.clone().oneshot(request);
        let phase = Arc::clone(&service_phase);
        async move {
            let response = answer.await;
            phase.set(IDLE);
            response.map_err(|e: Infallible| e)
        }
    });
    let connection = http1::Builder::new().keep_alive(true).serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let wait = phase
            .deadline(&limits)
            .map_or(Duration::from_secs(3600), |d| Duration::from_millis(d.saturating_sub(phase.now())));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection from {peer}: {e}");
                }
                return;
            }
            () = tokio::time::sleep(wait) => {
                if phase.deadline(&limits).is_some_and(|d| d <= phase.now()) {
                    metrics::counter!("leadscore_http_connections_timed_out_total").increment(1);
                    return;
                }
            }
            () = phase.close.notified() => {
                metrics::counter!("leadscore_http_connections_shed_total").increment(1);
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
