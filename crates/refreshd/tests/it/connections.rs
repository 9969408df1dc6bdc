//! What one client can take of a running refreshd, over real sockets: slow request heads and
//! bodies, idle connections, and a process out of file descriptors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::process::{Server, free_port, refresh_grant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A provider process with one GitHub app and a user, and `env` for its limits.
async fn provider(env: &[(&str, &str)]) -> (Server, String, String) {
    let server = Server::start(env).await;
    let (client_id, secret) = server.github_app_and_user();
    (server, client_id, secret)
}

/// Issues a token family and refreshes it once over a new connection; the status.
async fn refresh(server: &Server, client_id: &str, secret: &str) -> u16 {
    let pair = server.issue(client_id);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let token = pair["refresh_token"].as_str().unwrap();
    let response = refresh_grant(&http, &server.url, (client_id, secret), token)
        .await
        .unwrap();
    response.status().as_u16()
}

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes; the bytes read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn two_thousand_slow_heads_do_not_stop_a_refresh_and_are_closed_after_the_header_timeout() {
    let files = refreshd::listener::raise_open_files_limit().unwrap_or(u64::MAX);
    assert!(
        files >= 2_500,
        "this test needs an open-file limit of 2,500 (the hard limit is {files})"
    );
    // Long enough that opening 2,000 connections on a busy machine ends well before it.
    let (server, client_id, secret) =
        provider(&[("REFRESHD_HEADER_READ_TIMEOUT_SECS", "15")]).await;
    let addr = addr(&server);
    let opening = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..2000 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /login/oauth/access_token HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Each keeps trickling a header line every half second, and notes when it was closed.
    let opened = Instant::now();
    eprintln!("opened 2,000 connections in {:?}", opened - opening);
    let closed_at = Arc::new(Mutex::new(Vec::new()));
    let trickles: Vec<_> = slow
        .into_iter()
        .map(|mut stream| {
            let closed_at = closed_at.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => {
                            if matches!(read, Ok(0) | Err(_)) {
                                closed_at.lock().unwrap().push(Instant::now());
                                return;
                            }
                        }
                        () = tokio::time::sleep(Duration::from_millis(500)) => {
                            if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                                closed_at.lock().unwrap().push(Instant::now());
                                return;
                            }
                        }
                    }
                }
            })
        })
        .collect();

    assert_eq!(refresh(&server, &client_id, &secret).await, 200);
    let refreshed = Instant::now();
    for trickle in trickles {
        tokio::time::timeout(Duration::from_secs(90), trickle)
            .await
            .expect("every slow connection is closed by the server")
            .unwrap();
    }
    let closed_at = std::mem::take(&mut *closed_at.lock().unwrap());
    assert_eq!(closed_at.len(), 2000);
    let first_closed = closed_at.iter().min().unwrap();
    assert!(
        *first_closed > refreshed,
        "the refresh was answered while all 2,000 slow connections were open \
         (first closed {:?} after opening, refresh done {:?})",
        *first_closed - opened,
        refreshed - opened
    );
    assert!(
        *first_closed >= opening + Duration::from_secs(14),
        "none closed before its header timeout ({:?})",
        *first_closed - opening
    );
    // The server is fine afterwards.
    assert_eq!(refresh(&server, &client_id, &secret).await, 200);
}

#[tokio::test]
async fn a_server_out_of_file_descriptors_logs_it_and_recovers_by_itself() {
    let (server, client_id, secret) = provider(&[("REFRESHD_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    // One refresh first, so the server has opened its database connections.
    assert_eq!(refresh(&server, &client_id, &secret).await, 200);
    // Lower the running server's limit below what its connection cap allows, so accepting
    // fails with "too many open files".
    let pid = server.pid();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=200:200"])
        .status()
        .unwrap();
    assert!(status.success());
    let addr = addr(&server);
    let mut held = Vec::new();
    for _ in 0..400 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        held.push(stream);
    }
    // A normal client gets in once the stalled heads time out, with no help.
    assert_eq!(refresh(&server, &client_id, &secret).await, 200);
    let logs = server.logs();
    assert!(
        logs.contains("accepting a connection failed"),
        "the accept error is logged"
    );
    drop(held);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_and_slow_bodies_are_refused() {
    let (server, _, _) = provider(&[
        ("REFRESHD_IDLE_TIMEOUT_SECS", "2"),
        ("REFRESHD_HEADER_READ_TIMEOUT_SECS", "30"),
        ("REFRESHD_BODY_READ_TIMEOUT_SECS", "2"),
    ])
    .await;
    let addr = addr(&server);

    // Kept alive after a response, then closed once idle for the idle timeout.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let seen = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut stream))
        .await
        .expect("the idle connection was closed");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // A body promised and never sent: refused once the body deadline passes.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /login/oauth/access_token HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nclient_id=",
        )
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut stream))
        .await
        .expect("the connection with a slow body was answered and closed");
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.starts_with("HTTP/1.1 400") || seen.starts_with("HTTP/1.1 408"),
        "{seen}"
    );

    // A head over max_header_bytes is refused, not buffered.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let seen = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut stream))
        .await
        .expect("an oversized head is refused");
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.is_empty() || seen.starts_with("HTTP/1.1 431"),
        "{seen}"
    );
}

#[tokio::test]
async fn serves_https_itself_with_host_prefixed_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
    std::fs::write(
        file("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    // A throwaway CA, and a certificate for 127.0.0.1 that it signs.
    let openssl = |args: &[&str]| {
        let made = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let words = |line: String| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let ca_args = words(format!(
        "req -x509 {ec} -days 1 -subj /CN=ca -keyout ca.key -out ca.pem"
    ));
    let csr_args = words(format!(
        "req {ec} -subj /CN=localhost -keyout key.pem -out cert.csr"
    ));
    openssl(&ca_args.iter().map(String::as_str).collect::<Vec<_>>());
    openssl(&csr_args.iter().map(String::as_str).collect::<Vec<_>>());
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "cert.pem",
    ]);
    let port = free_port();
    let database = refreshd_store::testing::scratch_database(dir.path()).await;
    let child = common::process::refreshd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("REFRESHD_DATABASE_URL", &database)
        .env("REFRESHD_MASTER_KEY", common::process::TEST_MASTER_KEY)
        .env("REFRESHD_TLS_CERT", &cert)
        .env("REFRESHD_TLS_KEY", &key)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _stop = KillOnDrop(child);
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(trusted)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let mut healthy = None;
    // Up to 30 s: a first start generates the id_token signing key.
    for _ in 0..1200 {
        if let Ok(response) = https.get(format!("{url}/healthz")).send().await {
            healthy = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        healthy,
        Some(reqwest::StatusCode::OK),
        "refreshd serves https"
    );

    // The sign-in page's cookies are host-only and secure, as behind any https public URL.
    let page = https.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookies: Vec<_> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!cookies.is_empty());
    for cookie in &cookies {
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(
            cookie.contains("Secure") && cookie.contains("Path=/"),
            "{cookie}"
        );
    }

    // Plain HTTP on the same port gets nothing served.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // HTTP/2, negotiated with ALPN, serves the same routes (curl speaks it; this reqwest not).
    let curl = |version: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", version, "--cacert"])
            .arg(&ca)
            .args(["-w", " %{http_version}"])
            .arg(format!("{url}/healthz"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(curl("--http2"), "ok 2");
    assert_eq!(curl("--http1.1"), "ok 1.1");
}

/// Stops a child process when dropped, whatever the test's outcome.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
