//! The broker end to end: a refreshd provider and refreshd brokers as separate processes on
//! loopback, each broker's upstream URLs pointing at the provider (or at a broken upstream).

use std::process::Command;
use std::time::Duration;

use crate::common::process::{Broker, Provider, now_ms, post_concurrently};
use serde_json::{Value, json};

#[tokio::test]
async fn github_refresh_answers_flashbacks_shape_with_a_working_token() {
    let provider = Provider::start().await;
    // The client secret from a file this time, as REFRESHD_GITHUB_CLIENT_SECRET_FILE.
    let secret_file = provider.server.dir.path().join("github-secret");
    std::fs::write(&secret_file, format!("{}\n", provider.github.1)).unwrap();
    let mut env = provider.upstream_env();
    env[1] = (
        "REFRESHD_GITHUB_CLIENT_SECRET_FILE",
        secret_file.display().to_string(),
    );
    let broker = Broker::start(&env).await;
    let pair = provider.issue(&provider.github.0);
    let (status, body) = broker
        .post(
            "/auth/github/refresh",
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["token"], body["accessToken"]);
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("ghu_") && token != pair["access_token"]);
    assert!(body["refreshToken"].as_str().unwrap().starts_with("ghr_"));
    let expires = body["expiresAt"].as_i64().unwrap();
    assert!(
        (expires - (now_ms() + 28_800_000)).abs() < 10_000,
        "expiresAt is Unix milliseconds"
    );
    assert_eq!(provider.github_user_status(token).await, 200);

    let logs = broker.server.logs() + &provider.server.logs();
    assert!(
        logs.contains("/auth/github/refresh"),
        "trace logging was on"
    );
    for secret in [
        pair["refresh_token"].as_str().unwrap(),
        token,
        &broker.key,
        &provider.github.1,
        &provider.google.1,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
async fn a_hundred_concurrent_refreshes_make_one_rotation_and_a_retry_makes_none() {
    let provider = Provider::start().await;
    let brokers = std::sync::Arc::new(vec![Broker::start(&provider.upstream_env()).await]);
    let pair = provider.issue(&provider.github.0);
    let body = json!({"refresh_token": pair["refresh_token"]});
    let answers =
        post_concurrently(brokers.clone(), 100, "/auth/github/refresh", body.clone()).await;
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "100 identical answers"
    );
    let token = answers[0]["token"].as_str().unwrap();
    // With the provider's grace window at 0, a second upstream rotation of the same token
    // would have revoked the family: the token being alive proves exactly one.
    assert_eq!(provider.github_user_status(token).await, 200);

    let (status, again) = brokers[0].post("/auth/github/refresh", body).await;
    assert_eq!(status, 200);
    assert_eq!(again, answers[0], "inside the window: the same answer");
    assert_eq!(
        provider.github_user_status(token).await,
        200,
        "and no upstream call"
    );
}

#[tokio::test]
async fn google_refresh_keeps_the_refresh_token() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;
    let pair = provider.issue(&provider.google.0);
    let refresh = pair["refresh_token"].as_str().unwrap();
    let (status, body) = broker
        .post("/auth/google/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert!(body["token"].as_str().unwrap().starts_with("ya29."));
    assert_eq!(
        body["refreshToken"], refresh,
        "Google's refresh token stays valid and is answered back"
    );
    assert!(body.get("accessToken").is_none(), "seed 001's shape");
    let expires = body["expiresAt"].as_i64().unwrap();
    assert!((expires - (now_ms() + 3_599_000)).abs() < 10_000);
}

#[tokio::test]
async fn upstream_refusals_are_invalid_grant_with_the_upstreams_code() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;
    let (status, body) = broker
        .post("/auth/github/refresh", json!({"refresh_token": "ghr_nope"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(body["upstreamError"], "bad_refresh_token");
    assert_eq!(body["success"], false);
    let (status, body) = broker
        .post("/auth/google/refresh", json!({"refresh_token": "1//nope"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(body["upstreamError"], "invalid_grant");
}

#[tokio::test]
async fn callers_need_a_live_api_key() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;
    let url = format!("{}/auth/github/refresh", broker.server.url);
    let body = json!({"refresh_token": "ghr_x"});
    for auth in [
        None,
        Some("Bearer rfd_wrong"),
        Some("Basic abc"),
        Some("Bearer not-a-key"),
    ] {
        let mut request = broker.http.post(&url).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let err: Value = response.json().await.unwrap();
        assert_eq!(
            (err["success"].as_bool(), err["error"].as_str()),
            (Some(false), Some("unauthorized"))
        );
    }
    let keys = broker.server.cli(&["key", "list", "--json"]);
    let id = keys[0]["id"].as_i64().unwrap().to_string();
    broker.server.cli(&["key", "revoke", &id, "--json"]);
    let (status, _) = broker.post("/auth/github/refresh", body).await;
    assert_eq!(status, 401, "a revoked key stops working");
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;
    let wrong_method = broker
        .http
        .get(format!("{}/auth/github/refresh", broker.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
    let url = format!("{}/auth/github/refresh", broker.server.url);
    let malformed = "\"refresh_token\" must be a non-empty string of printable ASCII";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", b"{oops".to_vec(), 400, ""),
        ("application/json", b"[1]".to_vec(), 400, ""),
        (
            "application/json",
            br#"{"refresh_token": 5}"#.to_vec(),
            400,
            malformed,
        ),
        (
            "application/json",
            br#"{"refresh_token": ""}"#.to_vec(),
            400,
            malformed,
        ),
        (
            "application/json",
            br#"{"refresh_token": "ghr_ with a space"}"#.to_vec(),
            400,
            malformed,
        ),
        (
            "application/json",
            br#"{}"#.to_vec(),
            400,
            "\"refresh_token\" is required",
        ),
        (
            "text/plain",
            br#"{"refresh_token": "ghr_x"}"#.to_vec(),
            400,
            "",
        ),
        ("application/json", vec![b' '; 70 * 1024], 413, ""),
    ];
    for (content_type, body, expected, message) in cases {
        let response = broker
            .http
            .post(&url)
            .bearer_auth(&broker.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{content_type}");
        let err: Value = response.json().await.unwrap();
        assert_eq!(err["error"], "invalid_request", "{err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            err["message"].as_str().unwrap().starts_with(message),
            "{err}"
        );
    }
}

/// A fake upstream on loopback: `Slow` accepts and never answers; `Garbage` answers 200 with
/// a body that is not JSON.
#[derive(Clone, Copy)]
enum Fake {
    Slow,
    Garbage,
    ServerError,
    Huge,
}

async fn fake_upstream(kind: Fake) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                match kind {
                    Fake::Slow => tokio::time::sleep(Duration::from_secs(30)).await,
                    Fake::Garbage => {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!";
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                    Fake::Huge => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(&vec![b' '; 2 * 1024 * 1024]).await;
                    }
                    Fake::ServerError => {
                        let answer = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
                                      content-length: 2\r\nconnection: close\r\n\r\n{}";
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn broken_upstreams_are_502_or_504_and_missing_ones_503() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let slow = fake_upstream(Fake::Slow).await;
    let garbage = fake_upstream(Fake::Garbage).await;
    let provider = Provider::start().await;
    let mut env = vec![
        ("REFRESHD_GITHUB_CLIENT_ID", "id".to_owned()),
        ("REFRESHD_GITHUB_CLIENT_SECRET", "secret".to_owned()),
        (
            "REFRESHD_GITHUB_TOKEN_URL",
            format!("{garbage}/login/oauth/access_token"),
        ),
        ("REFRESHD_GOOGLE_CLIENT_ID", "id".to_owned()),
        ("REFRESHD_GOOGLE_CLIENT_SECRET", "secret".to_owned()),
        ("REFRESHD_GOOGLE_TOKEN_URL", format!("{slow}/token")),
        ("REFRESHD_UPSTREAM_TIMEOUT_SECS", "1".to_owned()),
    ];
    let broker = Broker::start(&env).await;
    let body = json!({"refresh_token": "ghr_x"});
    let (status, err) = broker.post("/auth/github/refresh", body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (502, Some("upstream_error")),
        "garbage: {err}"
    );
    let (status, err) = broker.post("/auth/google/refresh", body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (504, Some("upstream_timeout")),
        "slow: {err}"
    );

    env.truncate(3);
    env[2].1 = format!("{closed}/login/oauth/access_token");
    let down = Broker::start(&env).await;
    let (status, err) = down.post("/auth/github/refresh", body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (502, Some("upstream_error")),
        "down: {err}"
    );
    let (status, err) = down.post("/auth/google/refresh", body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (503, Some("provider_not_configured")),
        "{err}"
    );

    env[2].1 = format!(
        "{}/login/oauth/access_token",
        fake_upstream(Fake::ServerError).await
    );
    let failing = Broker::start(&env).await;
    let huge = {
        let mut env = env.clone();
        env[2].1 = format!(
            "{}/login/oauth/access_token",
            fake_upstream(Fake::Huge).await
        );
        Broker::start(&env).await
    };
    let (status, err) = huge.post("/auth/github/refresh", body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (502, Some("upstream_error")),
        "huge: {err}"
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("over 1048576 bytes"),
        "read no further: {err}"
    );
    let (status, err) = failing.post("/auth/github/refresh", body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (502, Some("upstream_error")),
        "5xx: {err}"
    );

    let mut wrong = provider.upstream_env();
    wrong[1].1 = "not-the-secret".into();
    let misconfigured = Broker::start(&wrong).await;
    let pair = provider.issue(&provider.github.0);
    let (status, err) = misconfigured
        .post(
            "/auth/github/refresh",
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (502, Some("upstream_error")),
        "wrong client credentials: {err}"
    );
    assert!(
        !err.to_string().contains("not-the-secret"),
        "no secret in an answer"
    );
}

#[tokio::test]
async fn health_reports_the_database_and_each_upstream() {
    let provider = Provider::start().await;
    let mut env = provider.upstream_env();
    env.truncate(4);
    let broker = Broker::start(&env).await;
    let health: Value = reqwest::get(format!("{}/health", broker.server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["upstreams"]["github"], "reachable");
    assert_eq!(health["upstreams"]["google"], "not_configured");
}

#[tokio::test]
async fn github_login_answers_auth_state_with_a_usable_session() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;
    let code = provider.server.cli(&[
        "code",
        "issue",
        "--client-id",
        &provider.github.0,
        "--login",
        "octocat",
        "--json",
    ]);
    let (status, body) = broker
        .post("/auth/github", json!({"code": code["code"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Authentication successful");
    let state = &body["authState"];
    assert_eq!(state["provider"], "GITHUB");
    assert_eq!(state["user"]["email"], "mona@example.com");
    assert_eq!(state["user"]["name"], "Mona");
    assert!(
        state["user"]["imageUrl"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    assert_eq!(
        provider
            .github_user_status(state["accessToken"].as_str().unwrap())
            .await,
        200
    );
    let session = state["token"].as_str().unwrap();
    assert!(session.starts_with("rfs_"));

    // The session is a Bearer for the broker.
    let response = broker
        .http
        .post(format!("{}/auth/github/refresh", broker.server.url))
        .bearer_auth(session)
        .json(&json!({"refresh_token": state["refreshToken"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (status, err) = broker
        .post("/auth/github", json!({"code": code["code"]}))
        .await;
    assert_eq!(
        (status, err["upstreamError"].as_str()),
        (400, Some("bad_verification_code")),
        "{err}"
    );
}

#[tokio::test]
async fn google_exchange_and_login() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;
    let code = provider.server.cli(&[
        "code",
        "issue",
        "--client-id",
        &provider.google.0,
        "--login",
        "octocat",
        "--scope",
        "openid email",
        "--redirect-uri",
        "http://localhost/cb",
        "--json",
    ]);
    let (status, err) = broker
        .post("/auth/google/exchange", json!({"code": code["code"]}))
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_request")),
        "no redirect_uri: {err}"
    );
    // An empty one is the caller's mistake, not Google's refusal (502).
    let (status, err) = broker
        .post(
            "/auth/google/exchange",
            json!({"code": code["code"], "redirect_uri": ""}),
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_request")),
        "an empty redirect_uri: {err}"
    );
    let (status, body) = broker
        .post(
            "/auth/google/exchange",
            json!({"code": code["code"], "redirect_uri": "http://localhost/cb"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].as_str().unwrap().starts_with("ya29."));
    assert!(body["refreshToken"].as_str().unwrap().starts_with("1//"));
    assert!(body["expiresAt"].as_i64().unwrap() > now_ms());

    let (status, login) = broker
        .post("/auth/google", json!({"token": body["token"]}))
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["authState"]["provider"], "GOOGLE");
    assert_eq!(login["authState"]["user"]["email"], "mona@example.com");
    assert!(
        login["authState"]["token"]
            .as_str()
            .unwrap()
            .starts_with("rfs_")
    );

    let (status, err) = broker
        .post("/auth/google", json!({"token": "ya29.nope"}))
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );
}

fn repo_dir(relative: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Runs a seed's sample client and reads the JSON lines it prints.
fn run_sample(program: &str, args: &[&str], broker: &Broker, refresh_token: &str) -> Vec<Value> {
    let output = Command::new(program)
        .args(args)
        .env("BROKER_URL", &broker.server.url)
        .env("API_KEY", &broker.key)
        .env("REFRESH_TOKEN", refresh_token)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        output.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_seeds_own_samples_work_curl_python_requests_and_fetch() {
    let provider = Provider::start().await;
    let broker = Broker::start(&provider.upstream_env()).await;

    // curl, as seed 000 prints it, with the body its TypeScript client sends.
    let pair = provider.issue(&provider.github.0);
    let body = json!({"refresh_token": pair["refresh_token"]}).to_string();
    let url = format!("{}/auth/github/refresh", broker.server.url);
    let bearer = format!("Authorization: Bearer {}", broker.key);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "-sS",
                "-X",
                "POST",
                &url,
                "-H",
                "Content-Type: application/json",
                "-H",
                "Accept: application/json",
            ])
            .args(["-H", &bearer, "-d", &body])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["success"], true, "curl: {answer}");

    // Python requests.
    let pair = provider.issue(&provider.github.0);
    let script = repo_dir("tests/py/seed_sample.py");
    let lines = run_sample(
        "python3",
        &[script.to_str().unwrap(), "/auth/github/refresh"],
        &broker,
        pair["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(lines[0]["status"], 200, "{}", lines[0]);
    assert_eq!(lines[0]["body"]["token"], lines[0]["body"]["accessToken"]);
    assert_eq!(
        lines[1]["status"], 400,
        "the seed's bodiless sample: {}",
        lines[1]
    );
    assert_eq!(lines[1]["body"]["error"], "invalid_request");

    // JavaScript fetch, against both refresh endpoints.
    let script = repo_dir("tests/js/seed_fetch.mjs");
    let pair = provider.issue(&provider.github.0);
    let lines = run_sample(
        "node",
        &[script.to_str().unwrap(), "/auth/github/refresh"],
        &broker,
        pair["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(lines[0]["status"], 200, "{}", lines[0]);
    let google = provider.issue(&provider.google.0);
    let refresh = google["refresh_token"].as_str().unwrap();
    let lines = run_sample(
        "node",
        &[script.to_str().unwrap(), "/auth/google/refresh"],
        &broker,
        refresh,
    );
    assert_eq!(lines[0]["status"], 200, "{}", lines[0]);
    assert_eq!(lines[0]["body"]["refreshToken"], refresh);
}

/// A relay to `upstream` that passes requests at once and holds each answer back for
/// `delay`; `answered` is notified when an answer has come back from the upstream.
async fn slow_relay(
    upstream: &str,
    delay: Duration,
    answered: std::sync::Arc<tokio::sync::Notify>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, answered) = (upstream.clone(), answered.clone());
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    answered.notify_one();
                    tokio::time::sleep(delay).await;
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    format!("http://{addr}/login/oauth/access_token")
}

#[tokio::test]
async fn a_broker_killed_mid_refresh_loses_no_family_when_the_caller_retries() {
    // An upstream with GitHub's kind of grace window: a rotated token sent again within 10 s
    // gets the same answer; after that, its whole family is revoked.
    let provider = Provider::start_with_grace_window("10").await;
    let answered = std::sync::Arc::new(tokio::sync::Notify::new());
    let relay = slow_relay(
        &provider.server.url,
        Duration::from_secs(3),
        answered.clone(),
    )
    .await;
    let mut env = provider.upstream_env();
    env.retain(|(k, _)| *k != "REFRESHD_GITHUB_TOKEN_URL");
    env.push(("REFRESHD_GITHUB_TOKEN_URL", relay));
    let mut broker = Broker::start(&env).await;
    let pair = provider.issue(&provider.github.0);
    let body = json!({"refresh_token": pair["refresh_token"]});

    let in_flight = {
        let request = broker
            .http
            .post(format!("{}/auth/github/refresh", broker.server.url))
            .bearer_auth(&broker.key)
            .json(&body);
        tokio::spawn(async move { request.send().await })
    };
    // The upstream has rotated the token; its answer is on its way back when the broker dies.
    tokio::time::timeout(Duration::from_secs(20), answered.notified())
        .await
        .expect("the upstream answered the broker's call");
    broker.server.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the killed broker never answered"
    );

    // The caller retries against the broker restarted on the same database: the dead
    // holder's lease lapses within seconds, so the retry reaches the upstream inside its
    // grace window and gets the rotation's answer instead of burning the family.
    let restarted = Broker::start_on(&broker.server.database, &env).await;
    let restarted = Broker {
        key: broker.key.clone(),
        ..restarted
    };
    let (status, answer) = restarted.post("/auth/github/refresh", body).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().unwrap();
    assert_eq!(provider.github_user_status(token).await, 200);
    // The family lives on: the new refresh token refreshes.
    let (status, next) = restarted
        .post(
            "/auth/github/refresh",
            json!({"refresh_token": answer["refreshToken"]}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
}
