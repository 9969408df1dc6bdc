//! A flaky proxy: a small HTTP/1.1 forwarder put between a broker and its upstream, whose
//! behaviour a test switches while it runs — pass requests on, answer 500, hang without an
//! answer, or drop the connection — and which counts what it received and how many requests
//! were in flight at once.
//!
//! ```ignore
//! let proxy = Flaky::start(&provider.server.url).await;
//! // point the broker at it: REFRESHD_GITHUB_TOKEN_URL = proxy.url("/login/oauth/access_token")
//! proxy.set(Mode::Fail500);
//! assert_eq!(proxy.requests(), 1);
//! ```
//!
//! Each connection carries one request (answers say `Connection: close`). Request bodies are
//! read by `Content-Length` (what reqwest sends); answers carry the upstream's status,
//! `Content-Type` and body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the upstream (after `delay`, if set) and answer what it answered.
    Pass,
    /// Answer HTTP 500 without forwarding.
    Fail500,
    /// Read the request and never answer, nor forward it: the client times out.
    Hang,
    /// Read the request and close the connection without an answer, nor forwarding it.
    Drop,
}

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// What the proxy did with it.
    pub mode: Mode,
}

struct State {
    upstream: String,
    mode: Mutex<(Mode, Duration)>,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    http: reqwest::Client,
}

/// A running flaky proxy; it stops when dropped.
pub struct Flaky {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Flaky {
    /// A proxy in front of `upstream` (a base URL such as `http://127.0.0.1:8080`), passing
    /// requests on.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            mode: Mutex::new((Mode::Pass, Duration::ZERO)),
            seen: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(serving.clone(), socket));
            }
        });
        Self { base, state, task }
    }

    /// The proxy's URL for `path` (e.g. `/login/oauth/access_token`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What it does with requests from now on.
    pub fn set(&self, mode: Mode) {
        self.state.mode.lock().unwrap().0 = mode;
    }

    /// How long it waits before forwarding a request it passes on (default none), so
    /// requests overlap and `max_in_flight` shows how many a client sends at once.
    pub fn delay(&self, delay: Duration) {
        self.state.mode.lock().unwrap().1 = delay;
    }

    /// How many requests it has received (whatever it did with them).
    pub fn requests(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// Every request it has received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests received and not yet answered (or dropped).
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests it held at once since it started (or since `reset`).
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Forgets what it has seen and the most in flight.
    pub fn reset(&self) {
        self.state.seen.lock().unwrap().clear();
        self.state
            .max_in_flight
            .store(self.in_flight(), Ordering::SeqCst);
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<State>);

impl InFlight {
    fn new(state: &Arc<State>) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn serve(state: Arc<State>, mut socket: TcpStream) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let counted = InFlight::new(&state);
    let (mode, delay) = *state.mode.lock().unwrap();
    state.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        method: request.method.clone(),
        path: request.path.clone(),
        mode,
    });
    let (status, content_type, body) = match mode {
        Mode::Drop => return,
        Mode::Hang => {
            // Held until the client gives up and closes, or the test ends.
            let mut rest = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(600), socket.read(&mut rest)).await;
            return;
        }
        Mode::Fail500 => (
            500,
            "text/plain".to_owned(),
            b"flaky proxy: internal error".to_vec(),
        ),
        Mode::Pass => {
            tokio::time::sleep(delay).await;
            match forward(&state, request).await {
                Ok(answer) => answer,
                Err(e) => (502, "text/plain".to_owned(), e.to_string().into_bytes()),
            }
        }
    };
    // No longer in flight before the client can see the answer and send its next request.
    drop(counted);
    let head = format!(
        "HTTP/1.1 {status} Flaky\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(&body).await;
    let _ = socket.shutdown().await;
}

async fn forward(state: &State, request: Request) -> reqwest::Result<(u16, String, Vec<u8>)> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or_default();
    let mut outgoing = state
        .http
        .request(method, format!("{}{}", state.upstream, request.path));
    for (name, value) in &request.headers {
        let hop = ["host", "connection", "content-length", "transfer-encoding"];
        if !hop.contains(&name.to_ascii_lowercase().as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let response = outgoing.body(request.body).send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok((status, content_type, response.bytes().await?.to_vec()))
}

/// One request: its head up to the blank line, then `Content-Length` bytes of body.
async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || buffer.len() > 64 * 1024 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}
