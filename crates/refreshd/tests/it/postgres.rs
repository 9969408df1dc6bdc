//! Several refreshd instances on one PostgreSQL, as separate processes: one rotation per
//! refresh token and one upstream call per broker refresh across all of them, a broker killed
//! while holding a token's lease, and the database restarting under running instances.
//! These need the throwaway cluster `scripts/test` starts (`REFRESHD_TEST_POSTGRES_URL`).

// PostgreSQL-only, so under this module (the suite's SQLite run skips `postgres::`).
#[path = "connections_scale.rs"]
mod connections_scale;

use std::sync::Arc;
use std::time::Duration;

use crate::common;
use crate::common::process::{Broker, Provider, Server, post_concurrently};
use serde_json::{Value, json};

/// Counts rows of the shared database, as the test's own connection sees them.
async fn count(database: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn two_brokers_and_a_provider_on_one_postgres_refresh_a_token_once() {
    let database = refreshd_store::testing::scratch_postgres().await;
    // The provider's grace window is 0: a second upstream use of the token would revoke its
    // family, so the family being alive with two pairs proves exactly one upstream call.
    let provider = Provider::start_on(&database).await;
    let env = provider.upstream_env();
    let first = Broker::start_on(&database, &env).await;
    let mut second = Broker::start_on(&database, &env).await;
    // One backend behind a load balancer: the same API key at both instances.
    second.key = first.key.clone();
    let brokers = Arc::new(vec![first, second]);
    let pair = provider.issue(&provider.github.0);
    let body = json!({"refresh_token": pair["refresh_token"]});

    let answers = post_concurrently(brokers, 200, "/auth/github/refresh", body).await;
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "200 identical answers"
    );
    assert_eq!(
        count(&database, "SELECT count(*) FROM token_pairs").await,
        2,
        "the issued pair and exactly one successor: one rotation"
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM token_pairs WHERE state = 1"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM families WHERE revoked_at IS NOT NULL"
        )
        .await,
        0,
        "no reuse was detected: one upstream call"
    );
    let token = answers[0]["token"].as_str().unwrap();
    assert_eq!(provider.github_user_status(token).await, 200);
    assert_eq!(
        count(&database, "SELECT count(*) FROM leases").await,
        0,
        "the lease was released"
    );
}

#[tokio::test]
async fn two_providers_on_one_postgres_rotate_a_token_once() {
    let database = refreshd_store::testing::scratch_postgres().await;
    // The default grace window (10 s): concurrent duplicates get the same successor back.
    let first = Server::start_on(&database, &[]).await;
    let second = Server::start_on(&database, &[]).await;
    let app = first.cli(&[
        "app",
        "create",
        "--name",
        "shared",
        "--redirect-uri",
        "http://localhost/cb",
        "--json",
    ]);
    let (client_id, secret) = (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
    );
    first.cli(&["user", "create", "--login", "octocat", "--json"]);
    let pair = second.cli(&[
        "token",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
    ]);
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let urls = Arc::new([first.url.clone(), second.url.clone()]);
    let http = reqwest::Client::new();

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (urls, http) = (urls.clone(), http.clone());
            let form = [
                ("client_id", client_id.clone()),
                ("client_secret", secret.clone()),
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh.clone()),
            ];
            tokio::spawn(async move {
                let response = http
                    .post(format!("{}/login/oauth/access_token", urls[i % 2]))
                    .header("accept", "application/json")
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.get("access_token").is_some() {
            granted.push(answer);
        } else {
            assert_eq!(answer["error"], "bad_refresh_token", "{answer}");
        }
    }
    assert!(!granted.is_empty());
    assert!(
        granted.iter().all(|a| a == &granted[0]),
        "every grant is the one rotation or its grace replay"
    );
    assert_eq!(
        count(&database, "SELECT count(*) FROM token_pairs").await,
        2,
        "one rotation"
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM token_pairs WHERE state = 0"
        )
        .await,
        1,
        "one live pair"
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM families WHERE revoked_at IS NULL"
        )
        .await,
        1,
        "one live family"
    );
}

/// A peer that accepts connections and never answers: an upstream that hangs.
async fn silent_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/login/oauth/access_token")
}

#[tokio::test]
async fn a_broker_killed_while_holding_a_lease_blocks_the_token_only_until_its_lease_lapses() {
    let database = refreshd_store::testing::scratch_postgres().await;
    let provider = Provider::start_on(&database).await;
    let timeouts = [
        ("REFRESHD_UPSTREAM_TIMEOUT_SECS", "1".to_owned()),
        ("REFRESHD_CONNECT_TIMEOUT_SECS", "1".to_owned()),
    ];
    let mut hanging_env = provider.upstream_env();
    hanging_env.retain(|(k, _)| *k != "REFRESHD_GITHUB_TOKEN_URL");
    hanging_env.push(("REFRESHD_GITHUB_TOKEN_URL", silent_upstream().await));
    hanging_env.extend(timeouts.clone());
    // The holder renews its lease while its call hangs; once it is killed, the lease lapses
    // within its 5 s term.
    let mut doomed = Broker::start_on(&database, &hanging_env).await;
    let mut healthy_env = provider.upstream_env();
    healthy_env.extend(timeouts);
    let mut healthy = Broker::start_on(&database, &healthy_env).await;
    healthy.key = doomed.key.clone();
    let pair = provider.issue(&provider.github.0);
    let body = json!({"refresh_token": pair["refresh_token"]});

    let stuck = {
        let (http, url, key, body) = (
            doomed.http.clone(),
            format!("{}/auth/github/refresh", doomed.server.url),
            doomed.key.clone(),
            body.clone(),
        );
        tokio::spawn(async move { http.post(url).bearer_auth(key).json(&body).send().await })
    };
    for _ in 0..100 {
        if count(&database, "SELECT count(*) FROM leases").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&database, "SELECT count(*) FROM leases").await, 1);
    doomed.server.kill();
    assert!(
        stuck.await.unwrap().is_err(),
        "the killed broker never answered"
    );

    let started = std::time::Instant::now();
    let (status, answer) = healthy.post("/auth/github/refresh", body).await;
    assert_eq!(status, 200, "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "the token stayed leased to the killed broker until its lease lapsed ({waited:?})"
    );
    assert!(
        waited < Duration::from_secs(10),
        "the dead holder's lease lapsed within seconds and the token was refreshed ({waited:?})"
    );
    assert_eq!(
        provider
            .github_user_status(answer["token"].as_str().unwrap())
            .await,
        200
    );
}

/// A PostgreSQL cluster of this test's own, removed when dropped.
struct Cluster {
    dir: String,
}

impl Cluster {
    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster");

    fn run(&self, command: &str) -> String {
        let output = std::process::Command::new(Self::SCRIPT)
            .args([command, &self.dir])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg-cluster {command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn start() -> (Self, String) {
        let name = format!(
            "refreshd-restart-{:016x}",
            u64::from_le_bytes(refreshd_core::random::bytes::<8>())
        );
        let cluster = Self {
            dir: std::env::temp_dir().join(name).display().to_string(),
        };
        let url = cluster.run("start");
        (cluster, url)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::SCRIPT)
            .args(["stop", &self.dir])
            .status();
    }
}

#[tokio::test]
async fn instances_answer_503_while_postgres_is_down_and_recover_without_a_restart() {
    let (cluster, url) = Cluster::start();
    let database = refreshd_store::testing::in_fresh_schema(&url).await;
    let provider = Provider::start_on(&database).await;
    let broker = Broker::start_on(&database, &provider.upstream_env()).await;
    let pair = provider.issue(&provider.github.0);
    let token = pair["access_token"].as_str().unwrap();
    assert_eq!(provider.github_user_status(token).await, 200);

    cluster.run("down");
    let refresh = |pair: &Value| json!({"refresh_token": pair["refresh_token"]});
    let (status, answer) = broker.post("/auth/github/refresh", refresh(&pair)).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable");
    let response = reqwest::Client::new()
        .post(format!("{}/login/oauth/access_token", provider.server.url))
        .header("accept", "application/json")
        .form(&[
            ("client_id", provider.github.0.as_str()),
            ("client_secret", provider.github.1.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", pair["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "temporarily_unavailable", "{answer}");
    assert_eq!(provider.github_user_status(token).await, 503);

    cluster.run("up");
    // The same refresh token: nothing was burned while the database was down.
    let (status, answer) = broker.post("/auth/github/refresh", refresh(&pair)).await;
    assert_eq!(status, 200, "{answer}");
    let fresh = answer["token"].as_str().unwrap();
    assert_eq!(provider.github_user_status(fresh).await, 200);
    assert_eq!(provider.github_user_status(token).await, 401, "rotated");
}

#[tokio::test]
async fn tls_to_postgres_is_verified_against_the_configured_ca() {
    let base = refreshd_store::testing::scratch_postgres().await;
    let ca = std::env::var("REFRESHD_TEST_POSTGRES_CA")
        .expect("REFRESHD_TEST_POSTGRES_CA is not set: run the tests with scripts/test");
    let tagged = format!("{base}&application_name=refreshd-tls-test");
    let verified = format!("{tagged}&sslmode=verify-full&sslrootcert={ca}");
    let store = refreshd::store::open(&verified, 2).await.unwrap();
    store.list_apps().await.unwrap();
    assert!(
        count(
            &base,
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE ssl AND application_name = 'refreshd-tls-test'",
        )
        .await
            >= 1,
        "refreshd's connections are encrypted"
    );

    // The test CA is not among the public roots: without it the certificate is refused.
    let unverified = format!("{tagged}&sslmode=require");
    let refused = refreshd::store::open(&unverified, 2).await.err().unwrap();
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
}

#[tokio::test]
async fn serve_on_postgres_refuses_settings_that_would_break_cross_instance_refreshes() {
    let database = refreshd_store::testing::scratch_postgres().await;
    // Each start must fail at once; one that serves instead is killed after 20 s.
    let serve = |env: &[(&str, &str)]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("REFRESHD_DATABASE_URL", &database)
            .env_remove("REFRESHD_MASTER_KEY")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("refreshd served with {env:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing_key = serve(&[]);
    assert!(
        missing_key.contains("share one master key"),
        "{missing_key}"
    );
    let key = common::process::TEST_MASTER_KEY;
    let no_key_file = serve(&[("REFRESHD_MASTER_KEY_FILE", "/nonexistent/refreshd.key")]);
    assert!(
        no_key_file.contains("is not generated here"),
        "{no_key_file}"
    );
    let no_window = serve(&[
        ("REFRESHD_MASTER_KEY", key),
        ("REFRESHD_REPLAY_WINDOW_SECS", "10"),
    ]);
    assert!(
        no_window.contains("replay_window_secs must be at least 30"),
        "{no_window}"
    );
}

#[tokio::test]
async fn two_instances_on_one_postgres_share_sign_in_attempt_counts() {
    let database = refreshd_store::testing::scratch_postgres().await;
    let proxy = [("REFRESHD_TRUSTED_PROXIES", "127.0.0.1")];
    let instances = [
        Server::start_on(&database, &proxy).await,
        Server::start_on(&database, &proxy).await,
    ];
    let password = "correct horse battery staple";
    instances[0].create_user_with_password("octocat", password);
    let attacker = "203.0.113.66";
    // Ten guesses spread over both instances, as a load balancer would.
    for n in 0..10 {
        let status = instances[n % 2]
            .sign_in_from(attacker, "octocat", "guess")
            .await;
        assert_eq!(status, 401);
    }
    for instance in &instances {
        let status = instance.sign_in_from(attacker, "octocat", password).await;
        assert_eq!(status, 429, "each instance knows the pair is locked");
    }
    assert_eq!(
        count(
            &database,
            "SELECT attempts FROM sign_in_attempts WHERE login = 'octocat'"
        )
        .await,
        10
    );
    let user = instances[1]
        .sign_in_from("198.51.100.7", "octocat", password)
        .await;
    assert_eq!(user, 303, "the user at another address signs in");
}
