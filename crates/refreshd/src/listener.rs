//! Serving HTTP connections so that no client can exhaust refreshd: a cap on open connections,
//! a deadline for each request's head and body, an idle timeout between requests, a bounded
//! read buffer, and accept errors logged and waited out.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// What one client may take of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// How long a client may take to send a whole request head: from accepting a new
    /// connection, or from the first byte of a later request on a kept-alive one.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait between requests.
    pub idle_timeout: Duration,
    /// How long a client may take to send a request's body, from the end of its head.
    pub body_read_timeout: Duration,
    /// Connections open at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Largest request head (request line and headers) read, in bytes.
    pub max_header_bytes: usize,
}

/// Serving HTTPS: the certificate chain and key refreshd presents, from PEM files. HTTP/2 and
/// HTTP/1.1 are offered (ALPN `h2`, `http/1.1`).
#[derive(Clone)]
pub struct Tls(tokio_rustls::TlsAcceptor);

impl Tls {
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("reading tls_cert {}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("tls_cert {} holds no certificate", cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("reading tls_key {}: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| format!("tls_cert and tls_key: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

/// Accepts on `listener` and serves `app` (over TLS if `tls` is set) until `stop` resolves,
/// then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Tls>,
    stop: impl std::future::Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut accept_errors = AcceptErrors::default();
    let mut capped_since: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = wait_for_room(&open, &mut capped_since) => permit,
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_errors.wait_out(e).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            app: app.clone(),
            limits: limits.clone(),
            peer,
            activity: Arc::new(Activity::new()),
        };
        let (watcher, tls) = (graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => connection.serve(stream, false, watcher).await,
                Some(Tls(acceptor)) => {
                    // The handshake counts against the header read timeout, which runs from
                    // the connection's acceptance.
                    let deadline =
                        connection.activity.opened + connection.limits.header_read_timeout;
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            connection.serve(stream, http2, watcher).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A permit for one more connection; logs when the cap starts holding new ones back (once,
/// until the server has had room again for a minute).
async fn wait_for_room(
    open: &Arc<Semaphore>,
    capped_since: &mut Option<Instant>,
) -> tokio::sync::OwnedSemaphorePermit {
    if let Ok(permit) = open.clone().try_acquire_owned() {
        if capped_since.is_some_and(|at| at.elapsed() > Duration::from_secs(60)) {
            *capped_since = None;
        }
        return permit;
    }
    if capped_since.is_none() {
        tracing::warn!("max_connections reached: new connections wait until one closes");
    }
    let permit = open
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    // When the cap last held a connection back: the warning comes again only after a minute
    // with room from then.
    *capped_since = Some(Instant::now());
    permit
}

/// Accept errors (most often "too many open files") are logged, at most once a second with
/// a count of the rest, and waited out: connections closing will free descriptors.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    async fn wait_out(&mut self, e: std::io::Error) {
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now >= at + Duration::from_secs(1))
        {
            tracing::error!(error = %e, suppressed = self.unlogged, "accepting a connection failed; retrying");
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests one HTTP/2 connection may have in flight at once, and the request body it buffers
/// per request and in all: an HTTP/2 client can hold at most this much more than one HTTP/1.1
/// connection can (a head of `max_header_bytes` and a body window per stream).
const MAX_STREAMS: u32 = 16;
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 256 * 1024;

struct Connection {
    app: Router,
    limits: Arc<Limits>,
    peer: SocketAddr,
    /// Created on acceptance, so every deadline counts from then.
    activity: Arc<Activity>,
}

impl Connection {
    /// Serves HTTP/1.1, or HTTP/2 if `http2` (negotiated over TLS).
    async fn serve<S>(self, stream: S, http2: bool, watcher: hyper_util::server::graceful::Watcher)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.activity.clone();
        // HTTP/2 frames (pings, settings, a stream's headers) are not a request head: there the
        // connection is idle, or waiting for its first request, whenever no stream is handled.
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: (!http2).then(|| activity.clone()),
        });
        let (app, peer, body_read_timeout) = (self.app, self.peer, self.limits.body_read_timeout);
        let in_requests = activity.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let (app, activity) = (app.clone(), in_requests.clone());
            let handling = activity.request_started();
            let mut request = request.map(|body| Body::new(Deadline::new(body, body_read_timeout)));
            request.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let response = app.oneshot(request).await;
                drop(handling);
                response
            }
        });
        let connection: Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>> = if http2 {
            let mut http = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            http.timer(TokioTimer::new())
                .max_header_list_size(
                    u32::try_from(self.limits.max_header_bytes).unwrap_or(u32::MAX),
                )
                .max_concurrent_streams(MAX_STREAMS)
                .initial_stream_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW);
            Box::pin(watcher.watch(http.serve_connection(io, service)))
        } else {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .max_buf_size(self.limits.max_header_bytes)
                // The head's deadline is kept below, where it can tell idle time from reading.
                .header_read_timeout(None);
            Box::pin(watcher.watch(http.serve_connection(io, service)))
        };
        tokio::select! {
            served = connection => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            why = activity.lapsed(&self.limits) => {
                tracing::debug!(peer = %self.peer, why, "closing a connection");
            }
        }
    }
}

/// What a connection is doing, as its reads and its requests report it, so that a watchdog
/// can close it when a client dawdles. Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// When the current wait began: the connection opened, a response was ready, or the first
    /// byte of a request head arrived on a kept-alive connection.
    since_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// A request head has begun arriving and no handler has it yet.
    reading_head: AtomicBool,
    /// At least one request was answered: waiting now is idling, not reading a head.
    answered: AtomicBool,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            reading_head: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Bytes arrived: on an idle kept-alive connection, a request head starts.
    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.reading_head.swap(true, Ordering::AcqRel)
            && self.answered.load(Ordering::Acquire)
        {
            self.since_ms.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> Handling {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.reading_head.store(false, Ordering::Release);
        self.changed.notify_one();
        Handling(self.clone())
    }

    /// Resolves when the connection has waited too long for a request head or idled too long.
    async fn lapsed(&self, limits: &Limits) -> &'static str {
        loop {
            let changed = self.changed.notified();
            let deadline = if self.in_flight.load(Ordering::Acquire) > 0 {
                None
            } else if self.reading_head.load(Ordering::Acquire)
                || !self.answered.load(Ordering::Acquire)
            {
                Some(("header read timeout", limits.header_read_timeout))
            } else {
                Some(("idle timeout", limits.idle_timeout))
            };
            let Some((why, limit)) = deadline else {
                changed.await;
                continue;
            };
            let since = Duration::from_millis(self.since_ms.load(Ordering::Acquire));
            let at = self.opened + since + limit;
            tokio::select! {
                () = tokio::time::sleep_until(at) => {
                    // Look again: a request may have begun just now.
                    if self.in_flight.load(Ordering::Acquire) == 0
                        && self.since_ms.load(Ordering::Acquire) == since.as_millis() as u64
                    {
                        return why;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// A request being handled; when the last one is answered, the idle wait begins.
struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .since_ms
            .store(activity.now_ms(), Ordering::Release);
        activity.answered.store(true, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

/// A stream that tells its connection's `Activity` when bytes arrive (HTTP/1.1 only).
struct Watched<S> {
    inner: S,
    activity: Option<Arc<Activity>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let arrived = matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        if let Some(activity) = self.activity.as_ref().filter(|_| arrived) {
            activity.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must arrive in whole before a deadline; after it, reading fails (the
/// handler answers 400 and the connection closes).
struct Deadline {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(body: Incoming, limit: Duration) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within body_read_timeout_secs")]
struct BodyTooSlow;

impl hyper::body::Body for Deadline {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTooSlow.into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Raises this process's open-file limit to the hard limit, and returns the limit in force.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Some(limit.rlim_cur as u64)
}

/// Gives memory freed since the last call back to the system, every `every`: the buffers of
/// many slow clients, once they are closed, would otherwise stay with the allocator.
pub async fn return_freed_memory(every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory held by glibc's allocator.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Descriptors kept for everything but client connections: the database and its WAL, pooled
/// database connections, upstream connections, logs.
pub const RESERVED_FILES: u64 = 128;
