//! The connections API end to end: a refreshd provider as the GitHub and Google upstream and a
//! refreshd broker as separate processes on loopback. Connections are created from codes and
//! imported refresh tokens, give out working tokens before and after expiry, make one upstream
//! refresh for many concurrent callers (counted at the upstream), break when the upstream
//! revokes the grant, and revoke it upstream when deleted.

use std::sync::Arc;
use std::time::Duration;

use crate::common::process::{Broker, Provider, free_port, now_ms};
use reqwest::Method;
use serde_json::{Value, json};

/// A provider (grace window 0: a refresh token used twice revokes its family) with a metrics
/// listener, `env` besides; and the URL of its metrics.
pub(crate) async fn provider(env: &[(&str, &str)]) -> (Provider, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut env = env.to_vec();
    env.push(("REFRESHD_METRICS_LISTEN", metrics.as_str()));
    let provider = Provider::start_with(&env).await;
    (provider, format!("http://{metrics}/metrics"))
}

/// A broker whose GitHub and Google upstream is `provider`; its refresher is off, so only
/// the API refreshes.
pub(crate) async fn broker(provider: &Provider) -> Broker {
    let mut env = provider.upstream_env();
    env.push(("REFRESHD_CONNECTION_REFRESHER", "false".into()));
    env.push((
        "REFRESHD_GOOGLE_REVOKE_URL",
        format!("{}/revoke", provider.server.url),
    ));
    Broker::start(&env).await
}

/// Longer than the broker's window in which a refresh just made serves a forced one.
pub(crate) const FORCE_WINDOW: Duration = Duration::from_millis(3_100);

/// A request to the broker with its API key; the status and the JSON answer.
pub(crate) async fn call(
    broker: &Broker,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = broker
        .http
        .request(method, format!("{}{path}", broker.server.url))
        .bearer_auth(&broker.key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub(crate) async fn get(broker: &Broker, path: &str) -> (u16, Value) {
    call(broker, Method::GET, path, None).await
}

pub(crate) async fn create(broker: &Broker, body: Value) -> Value {
    let (status, answer) = call(broker, Method::POST, "/connections", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The access token of connection `id`, as `query` asks for it.
pub(crate) async fn token(broker: &Broker, id: &str, query: &str) -> Value {
    let (status, answer) = get(broker, &format!("/connections/{id}/token{query}")).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// How many refresh grants of `dialect` the provider answered with new tokens.
pub(crate) async fn refreshes_at_upstream(metrics: &str, dialect: &str) -> u64 {
    // GitHub's refresh tokens rotate; Google's are extended.
    let outcome = if dialect == "github" {
        "rotated"
    } else {
        "extended"
    };
    let text = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    let labels =
        format!("dialect=\"{dialect}\",grant_type=\"refresh_token\",outcome=\"{outcome}\"");
    text.lines()
        .filter(|line| line.starts_with("refreshd_grants_total{") && line.contains(&labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

fn issue_code(provider: &Provider, google: bool) -> String {
    let client_id = if google {
        &provider.google.0
    } else {
        &provider.github.0
    };
    let mut args = vec![
        "code",
        "issue",
        "--client-id",
        client_id,
        "--login",
        "octocat",
        "--json",
    ];
    if google {
        args.extend([
            "--scope",
            "openid email",
            "--redirect-uri",
            "http://localhost/cb",
        ]);
    }
    provider.server.cli(&args)["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn google_userinfo_status(provider: &Provider, token: &str) -> u16 {
    let response = reqwest::Client::new()
        .get(format!("{}/oauth2/v3/userinfo", provider.server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Nothing the API answers about a connection holds a token of the provider's.
pub(crate) fn holds_no_token(answer: &Value) {
    let text = answer.to_string();
    for prefix in ["ghu_", "ghr_", "ya29.", "1//"] {
        assert!(!text.contains(prefix), "a token in {text}");
    }
}

#[tokio::test]
async fn from_a_github_code_a_token_before_and_after_expiry() {
    // Access tokens live 3 seconds at this upstream.
    let (provider, metrics) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "3")]).await;
    let broker = broker(&provider).await;
    let code = issue_code(&provider, false);
    let created = create(
        &broker,
        json!({"provider": "github", "code": code, "connection_id": "user-1",
               "metadata": {"team": "a", "n": 1}}),
    )
    .await;
    holds_no_token(&created);
    assert_eq!(created["success"], true);
    assert_eq!(created["connectionId"], "user-1");
    assert_eq!(created["provider"], "github");
    let expires = created["expiresAt"].as_i64().unwrap();
    assert!((expires - (now_ms() + 3_000)).abs() < 2_000, "{created}");

    // Before expiry: the stored token, again and again, without an upstream call.
    let first = token(&broker, "user-1", "?min_valid_secs=0").await;
    let access = first["accessToken"].as_str().unwrap().to_owned();
    assert!(access.starts_with("ghu_"), "{first}");
    assert_eq!(first["connectionId"], "user-1");
    assert_eq!(first["expiresAt"], created["expiresAt"]);
    assert_eq!(provider.github_user_status(&access).await, 200);
    let again = token(&broker, "user-1", "?min_valid_secs=0").await;
    assert_eq!(again["accessToken"], first["accessToken"]);
    assert_eq!(refreshes_at_upstream(&metrics, "github").await, 0);

    // After expiry: refreshed first, once.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    assert_eq!(provider.github_user_status(&access).await, 401, "expired");
    let fresh = token(&broker, "user-1", "?min_valid_secs=0").await;
    let fresh_access = fresh["accessToken"].as_str().unwrap();
    assert_ne!(fresh_access, access);
    assert!(fresh["expiresAt"].as_i64().unwrap() > now_ms());
    assert_eq!(provider.github_user_status(fresh_access).await, 200);
    assert_eq!(refreshes_at_upstream(&metrics, "github").await, 1);
    // Asked to outlive its lifetime (the default 60 s here), a token is asked for at most half
    // the life it was issued with: not refreshed on every call.
    let next = token(&broker, "user-1", "").await;
    assert_eq!(next["accessToken"], fresh["accessToken"]);
    assert_eq!(refreshes_at_upstream(&metrics, "github").await, 1);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let next = token(&broker, "user-1", "").await;
    assert_ne!(next["accessToken"], fresh["accessToken"]);
    assert_eq!(refreshes_at_upstream(&metrics, "github").await, 2);

    let (status, shown) = get(&broker, "/connections/user-1").await;
    assert_eq!(status, 200, "{shown}");
    holds_no_token(&shown);
    let connection = &shown["connection"];
    assert_eq!(connection["status"], "live");
    assert_eq!(connection["provider"], "github");
    assert_eq!(connection["metadata"], json!({"team": "a", "n": 1}));
    assert_eq!(connection["failureCount"], 0);
    assert_eq!(connection["lastError"], Value::Null);
    assert_eq!(connection["expiresAt"], next["expiresAt"]);
    assert!(connection["refreshTokenExpiresAt"].as_i64().unwrap() > now_ms());
    assert!((connection["lastRefreshedAt"].as_i64().unwrap() - now_ms()).abs() < 5_000);

    let logs = broker.server.logs();
    assert!(
        logs.contains("/connections/user-1/token"),
        "trace logging was on"
    );
    for answer in [&first, &fresh, &next] {
        let token = answer["accessToken"].as_str().unwrap();
        assert!(!logs.contains(token), "a token reached the logs");
    }
    assert!(!logs.contains("ghr_"), "a refresh token reached the logs");
}

#[tokio::test]
async fn from_a_google_code_and_by_import() {
    let (provider, metrics) = provider(&[]).await;
    let broker = broker(&provider).await;
    let code = issue_code(&provider, true);
    let created = create(
        &broker,
        json!({"provider": "google", "code": code, "redirect_uri": "http://localhost/cb"}),
    )
    .await;
    holds_no_token(&created);
    let id = created["connectionId"].as_str().unwrap();
    assert!(id.starts_with("conn_"), "a generated id: {created}");
    assert_eq!(created["scope"], "openid email");
    let answer = token(&broker, id, "").await;
    let access = answer["accessToken"].as_str().unwrap();
    assert!(access.starts_with("ya29."));
    assert_eq!(answer["scope"], "openid email");
    assert_eq!(google_userinfo_status(&provider, access).await, 200);

    // An imported refresh token is refreshed once at once.
    let pair = provider.issue(&provider.google.0);
    let imported = create(
        &broker,
        json!({"provider": "google", "refresh_token": pair["refresh_token"],
               "connection_id": "imported"}),
    )
    .await;
    holds_no_token(&imported);
    assert_eq!(refreshes_at_upstream(&metrics, "google").await, 1);
    let answer = token(&broker, "imported", "").await;
    let access = answer["accessToken"].as_str().unwrap();
    assert_ne!(access, pair["access_token"].as_str().unwrap());
    assert_eq!(google_userinfo_status(&provider, access).await, 200);
    // Google's refresh token stays the same: a forced refresh (once the last is 2 s old) uses it.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let forced = token(&broker, "imported", "?force_refresh=true").await;
    assert_ne!(forced["accessToken"], answer["accessToken"]);
    assert_eq!(refreshes_at_upstream(&metrics, "google").await, 2);

    // A refresh token the upstream refuses creates nothing.
    let (status, refused) = call(
        &broker,
        Method::POST,
        "/connections",
        Some(json!({"provider": "google", "refresh_token": "1//nope", "connection_id": "x"})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert_eq!(get(&broker, "/connections/x").await.0, 404);
}

#[tokio::test]
async fn two_hundred_concurrent_forced_token_calls_make_one_upstream_refresh() {
    let (provider, metrics) = provider(&[]).await;
    let broker = Arc::new(broker(&provider).await);
    let pair = provider.issue(&provider.github.0);
    create(
        &broker,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": "c"}),
    )
    .await;
    assert_eq!(
        refreshes_at_upstream(&metrics, "github").await,
        1,
        "the import's"
    );
    let before = token(&broker, "c", "").await;
    // Past the window inside which a refresh that landed satisfies a forced one.
    tokio::time::sleep(Duration::from_millis(3_000)).await;

    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let broker = broker.clone();
            tokio::spawn(
                async move { get(&broker, "/connections/c/token?force_refresh=true").await },
            )
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "200 identical answers"
    );
    assert_ne!(answers[0]["accessToken"], before["accessToken"]);
    assert_eq!(
        refreshes_at_upstream(&metrics, "github").await,
        2,
        "one upstream refresh for the 200 calls"
    );
    // With the grace window at 0, a refresh token sent twice would have revoked the family.
    let access = answers[0]["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);
}

/// Revokes the GitHub grant behind `access_token` at the provider, as a user would in
/// GitHub's settings.
pub(crate) async fn revoke_github_grant(provider: &Provider, access_token: &str) {
    let (client_id, secret) = &provider.github;
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/applications/{client_id}/grant",
            provider.server.url
        ))
        .basic_auth(client_id, Some(secret))
        .json(&json!({"access_token": access_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn a_grant_revoked_upstream_breaks_the_connection() {
    let (provider, _) = provider(&[]).await;
    let broker = broker(&provider).await;
    let pair = provider.issue(&provider.github.0);
    create(
        &broker,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": "b"}),
    )
    .await;
    let answer = token(&broker, "b", "").await;
    revoke_github_grant(&provider, answer["accessToken"].as_str().unwrap()).await;

    // A forced refresh (past the window in which one just made serves) is refused.
    tokio::time::sleep(FORCE_WINDOW).await;
    let (status, broken) = get(&broker, "/connections/b/token?force_refresh=true").await;
    assert_eq!(status, 409, "{broken}");
    assert_eq!(broken["error"], "connection_broken");
    assert_eq!(broken["upstreamError"], "bad_refresh_token");
    holds_no_token(&broken);
    // Broken stays broken, whatever the caller asks, with no upstream call.
    let (status, again) = get(&broker, "/connections/b/token").await;
    assert_eq!(
        (status, &again["error"]),
        (409, &json!("connection_broken"))
    );
    let (status, _) = call(&broker, Method::POST, "/connections/b/refresh", None).await;
    assert_eq!(status, 409);
    let (_, shown) = get(&broker, "/connections/b").await;
    assert_eq!(shown["connection"]["status"], "broken");
    assert_eq!(shown["connection"]["failureCount"], 1);
    assert!(
        shown["connection"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("bad_refresh_token"),
        "{shown}"
    );
    let (_, listed) = get(&broker, "/connections?status=broken").await;
    assert_eq!(listed["connections"][0]["connectionId"], "b");

    // Replacing it mends it.
    let pair = provider.issue(&provider.github.0);
    create(
        &broker,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": "b"}),
    )
    .await;
    let (_, shown) = get(&broker, "/connections/b").await;
    assert_eq!(shown["connection"]["status"], "live");
    token(&broker, "b", "").await;
}

#[tokio::test]
async fn list_show_refresh_and_delete_revoking_upstream() {
    let (provider, metrics) = provider(&[]).await;
    let broker = broker(&provider).await;
    for id in ["a1", "a2"] {
        let pair = provider.issue(&provider.github.0);
        create(
            &broker,
            json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": id}),
        )
        .await;
    }
    let pair = provider.issue(&provider.google.0);
    create(
        &broker,
        json!({"provider": "google", "refresh_token": pair["refresh_token"], "connection_id": "b1"}),
    )
    .await;

    let (status, page) = get(&broker, "/connections?limit=2").await;
    assert_eq!(status, 200, "{page}");
    holds_no_token(&page);
    let ids = |page: &Value| -> Vec<String> {
        page["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["connectionId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page), ["a1", "a2"]);
    assert_eq!(page["nextCursor"], "a2");
    let (_, last) = get(&broker, "/connections?limit=2&cursor=a2").await;
    assert_eq!(ids(&last), ["b1"]);
    assert_eq!(last["nextCursor"], Value::Null);
    let (_, google) = get(&broker, "/connections?provider=google").await;
    assert_eq!(ids(&google), ["b1"]);
    let (_, live) = get(&broker, "/connections?status=live").await;
    assert_eq!(ids(&live), ["a1", "a2", "b1"]);
    for bad in [
        "limit=0",
        "limit=201",
        "provider=gitlab",
        "status=dead",
        "cursor=a%20b",
    ] {
        let (status, err) = get(&broker, &format!("/connections?{bad}")).await;
        assert_eq!(
            (status, &err["error"]),
            (400, &json!("invalid_request")),
            "{bad}"
        );
    }

    // POST /connections/{id}/refresh forces one (once the last is 2 s old).
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let before = refreshes_at_upstream(&metrics, "github").await;
    let (status, refreshed) = call(&broker, Method::POST, "/connections/a2/refresh", None).await;
    assert_eq!(status, 200, "{refreshed}");
    holds_no_token(&refreshed);
    assert_eq!(refreshed["connectionId"], "a2");
    assert_eq!(refreshes_at_upstream(&metrics, "github").await, before + 1);

    // DELETE revokes upstream: the token stops working there.
    let a1 = token(&broker, "a1", "").await;
    let a1_access = a1["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(a1_access).await, 200);
    let (status, deleted) = call(&broker, Method::DELETE, "/connections/a1", None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"success": true, "upstreamRevoked": true}));
    assert_eq!(provider.github_user_status(a1_access).await, 401);
    let (status, gone) = get(&broker, "/connections/a1").await;
    assert_eq!((status, &gone["error"]), (404, &json!("not_found")));
    assert_eq!(get(&broker, "/connections/a1/token").await.0, 404);
    assert_eq!(
        call(&broker, Method::DELETE, "/connections/a1", None)
            .await
            .0,
        404
    );

    let b1 = token(&broker, "b1", "").await;
    let b1_access = b1["accessToken"].as_str().unwrap();
    assert_eq!(google_userinfo_status(&provider, b1_access).await, 200);
    let (_, deleted) = call(&broker, Method::DELETE, "/connections/b1", None).await;
    assert_eq!(deleted["upstreamRevoked"], true, "{deleted}");
    assert_ne!(google_userinfo_status(&provider, b1_access).await, 200);

    // a2 was octocat's grant with the same app, so a1's delete revoked it upstream already:
    // the upstream's refusal is reported, and it is deleted here all the same.
    let (status, deleted) = call(&broker, Method::DELETE, "/connections/a2", None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["upstreamRevoked"], false);
    assert!(
        deleted["upstreamError"].as_str().unwrap().contains("404"),
        "{deleted}"
    );
    assert_eq!(get(&broker, "/connections/a2").await.0, 404);
    let (_, none) = get(&broker, "/connections").await;
    assert_eq!(ids(&none), Vec::<String>::new());
}

#[tokio::test]
async fn requests_are_checked() {
    let (provider, _) = provider(&[]).await;
    let broker = broker(&provider).await;
    let big = "x".repeat(5000);
    for body in [
        json!({"provider": "gitlab", "refresh_token": "r"}),
        json!({"provider": "github"}),
        json!({"provider": "github", "code": "c", "refresh_token": "r"}),
        json!({"provider": "github", "code": "c", "connection_id": "a b"}),
        json!({"provider": "github", "code": "c", "connection_id": "x".repeat(129)}),
        json!({"provider": "github", "code": "c", "metadata": [1]}),
        json!({"provider": "github", "code": "c", "metadata": {"big": big}}),
    ] {
        let (status, err) = call(&broker, Method::POST, "/connections", Some(body.clone())).await;
        assert_eq!(
            (status, &err["error"]),
            (400, &json!("invalid_request")),
            "{body}: {err}"
        );
    }
    for bad in ["min_valid_secs=-1", "min_valid_secs=x", "force_refresh=yes"] {
        let (status, _) = get(&broker, &format!("/connections/c/token?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, err) = get(&broker, "/connections/nobody/token").await;
    assert_eq!((status, &err["error"]), (404, &json!("not_found")));
    let response = reqwest::get(format!("{}/connections", broker.server.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let document: Value = reqwest::get(format!("{}/openapi.json", broker.server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/connections",
        "/connections/{id}",
        "/connections/{id}/token",
        "/connections/{id}/refresh",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}

/// Every instance on one database seals connections' tokens under one master key.
pub(crate) const MASTER_KEY: &str =
    "abababababababababababababababababababababababababababababababab";

/// Two brokers on one database, the second with `second_env` besides the upstream's.
async fn two_brokers(
    provider: &Provider,
    second_env: &[(&'static str, String)],
) -> (Broker, Broker) {
    let mut env = provider.upstream_env();
    env.push(("REFRESHD_MASTER_KEY", MASTER_KEY.into()));
    env.push(("REFRESHD_CONNECTION_REFRESHER", "false".into()));
    let first = Broker::start(&env).await;
    env.extend(second_env.iter().cloned());
    let second = Broker::start_on(&first.server.database, &env).await;
    (first, second)
}

#[tokio::test]
async fn concurrent_calls_on_two_brokers_make_one_upstream_refresh() {
    let (provider, metrics) = provider(&[]).await;
    let (first, second) = two_brokers(&provider, &[]).await;
    let pair = provider.issue(&provider.github.0);
    create(
        &first,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": "c"}),
    )
    .await;
    let before = token(&second, "c", "").await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;

    let brokers = Arc::new([first, second]);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let brokers = brokers.clone();
            tokio::spawn(async move {
                get(&brokers[i % 2], "/connections/c/token?force_refresh=true").await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "200 identical answers from two instances"
    );
    assert_ne!(answers[0]["accessToken"], before["accessToken"]);
    assert_eq!(
        refreshes_at_upstream(&metrics, "github").await,
        2,
        "the import's and one for the 200 calls"
    );
    let access = answers[0]["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);
}

#[tokio::test]
async fn an_unreachable_upstream_backs_off_with_the_stored_token_then_503() {
    // Access tokens live 6 seconds at this upstream.
    let (provider, _) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "6")]).await;
    // The second broker's GitHub token endpoint is a port nobody listens on.
    let nowhere = format!("http://127.0.0.1:{}/token", free_port());
    let (working, cut_off) =
        two_brokers(&provider, &[("REFRESHD_GITHUB_TOKEN_URL", nowhere)]).await;
    let code = issue_code(&provider, false);
    create(
        &working,
        json!({"provider": "github", "code": code, "connection_id": "d"}),
    )
    .await;
    let stored = token(&cut_off, "d", "?min_valid_secs=0").await;

    // A refresh is due (60 s of validity asked, which is cut to half the token's 6 s life;
    // under 3 s left) and fails: the stored token while it is valid.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let answer = token(&cut_off, "d", "").await;
    assert_eq!(answer["accessToken"], stored["accessToken"]);
    let (_, shown) = get(&cut_off, "/connections/d").await;
    let connection = &shown["connection"];
    assert_eq!(connection["status"], "backing_off", "{shown}");
    assert_eq!(connection["failureCount"], 1);
    assert!(
        connection["lastError"]
            .as_str()
            .unwrap()
            .contains("cannot reach GitHub"),
        "{shown}"
    );
    let retry_after = connection["retryAfter"].as_i64().unwrap();
    assert!(retry_after >= now_ms() + 10_000, "backs off: {shown}");

    // Once it has expired: 503 with Retry-After, on every instance, forced or not; the
    // working upstream is not called before the backoff ends either.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    for (broker, query) in [
        (&cut_off, ""),
        (&working, ""),
        (&working, "?force_refresh=true"),
    ] {
        let response = broker
            .http
            .get(format!("{}/connections/d/token{query}", broker.server.url))
            .bearer_auth(&broker.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let wait: i64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&wait), "{wait}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "backing_off");
    }
    let (_, shown) = get(&working, "/connections/d").await;
    assert_eq!(
        shown["connection"]["failureCount"], 1,
        "no attempt meanwhile"
    );
}

/// An upstream that reads each request and never answers; how many it received.
async fn silent_upstream() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                if socket.read(&mut buffer).await.unwrap_or(0) > 0 {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    (url, received)
}

#[tokio::test]
async fn an_unknown_outcome_is_never_sent_again_blindly() {
    let (provider, _) = provider(&[]).await;
    let (silent, received) = silent_upstream().await;
    let (working, silenced) = two_brokers(
        &provider,
        &[
            ("REFRESHD_GITHUB_TOKEN_URL", silent),
            ("REFRESHD_UPSTREAM_TIMEOUT_SECS", "1".into()),
        ],
    )
    .await;
    let pair = provider.issue(&provider.github.0);
    create(
        &working,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": "u"}),
    )
    .await;
    let stored = token(&working, "u", "").await;

    // The refresh is sent and no answer comes: the refresh token may have been used upstream.
    // The stored token, still valid, is the answer.
    tokio::time::sleep(FORCE_WINDOW).await;
    let answer = token(&silenced, "u", "?force_refresh=true").await;
    assert_eq!(answer["accessToken"], stored["accessToken"]);
    let (_, shown) = get(&silenced, "/connections/u").await;
    let connection = &shown["connection"];
    assert_eq!(connection["status"], "backing_off", "{shown}");
    assert!(
        connection["lastError"]
            .as_str()
            .unwrap()
            .contains("may or may not have happened"),
        "{shown}"
    );
    // Backing off past the broker's full hold (the longest upstream call and its margin).
    assert!(
        connection["retryAfter"].as_i64().unwrap() >= now_ms() + 15_000,
        "{shown}"
    );
    // Asked again, forced, on either instance: nothing is sent.
    for broker in [&silenced, &working] {
        let again = token(broker, "u", "?force_refresh=true").await;
        assert_eq!(again["accessToken"], stored["accessToken"]);
    }
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_session_token_cannot_reach_connections() {
    let (provider, _) = provider(&[]).await;
    let broker = broker(&provider).await;
    let pair = provider.issue(&provider.github.0);
    create(
        &broker,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": "mine"}),
    )
    .await;
    // An end user's session, from signing in through the broker.
    let code = issue_code(&provider, false);
    let (status, login) = call(
        &broker,
        Method::POST,
        "/auth/github",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let session = login["authState"]["token"].as_str().unwrap().to_owned();
    let as_user = |method: Method, path: &str| {
        broker
            .http
            .request(method, format!("{}{path}", broker.server.url))
            .bearer_auth(&session)
    };
    let attempts = [
        as_user(Method::GET, "/connections"),
        as_user(Method::GET, "/connections/mine"),
        as_user(Method::GET, "/connections/mine/token"),
        as_user(Method::POST, "/connections/mine/refresh"),
        as_user(Method::DELETE, "/connections/mine"),
        as_user(Method::POST, "/connections").json(
            &json!({"provider": "github", "refresh_token": "ghr_x", "connection_id": "mine"}),
        ),
        // Nor may a login keep its grant as someone's connection.
        as_user(Method::POST, "/auth/github").json(&json!({"code": "c", "connection_id": "mine"})),
        as_user(Method::POST, "/auth/google/exchange").json(
            &json!({"code": "c", "redirect_uri": "http://localhost/cb", "connection_id": "mine"}),
        ),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 403);
        let err: Value = response.json().await.unwrap();
        assert_eq!(err["error"], "forbidden", "{err}");
        holds_no_token(&err);
    }
    // The connection is untouched, and the session still works where it belongs.
    let (status, shown) = get(&broker, "/connections/mine").await;
    assert_eq!(
        (status, &shown["connection"]["status"]),
        (200, &json!("live"))
    );
    let response = as_user(Method::POST, "/auth/github/refresh")
        .json(&json!({"refresh_token": login["authState"]["refreshToken"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_code_logins_keep_the_grant_as_a_connection_when_asked() {
    let (provider, metrics) = provider(&[]).await;
    let broker = broker(&provider).await;

    // GitHub: signed in, and the grant kept as "gh-user", with its metadata.
    let code = issue_code(&provider, false);
    let (status, login) = broker
        .post(
            "/auth/github",
            json!({"code": code, "connection_id": "gh-user", "metadata": {"plan": "pro"}}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["connectionId"], "gh-user");
    assert_eq!(login["message"], "Authentication successful");
    let state = &login["authState"];
    assert_eq!(state["provider"], "GITHUB");
    assert!(state["token"].as_str().unwrap().starts_with("rfs_"));
    // refreshd holds the grant: the refresh token is not handed out too.
    assert_eq!(state["refreshToken"], Value::Null, "{login}");
    let (_, shown) = get(&broker, "/connections/gh-user").await;
    let connection = &shown["connection"];
    assert_eq!(connection["status"], "live", "{shown}");
    assert_eq!(connection["provider"], "github");
    assert_eq!(connection["metadata"], json!({"plan": "pro"}));
    let stored = token(&broker, "gh-user", "?min_valid_secs=0").await;
    assert_eq!(stored["accessToken"], state["accessToken"]);
    // The kept refresh token works: a forced refresh (past the window in which one just made
    // serves).
    tokio::time::sleep(FORCE_WINDOW).await;
    let fresh = token(&broker, "gh-user", "?force_refresh=true").await;
    assert_ne!(fresh["accessToken"], state["accessToken"]);
    assert_eq!(refreshes_at_upstream(&metrics, "github").await, 1);
    let access = fresh["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);

    // Google's exchange, kept as "g-user".
    let code = issue_code(&provider, true);
    let (status, exchanged) = broker
        .post(
            "/auth/google/exchange",
            json!({"code": code, "redirect_uri": "http://localhost/cb", "connection_id": "g-user"}),
        )
        .await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!(exchanged["connectionId"], "g-user");
    assert_eq!(exchanged["refreshToken"], Value::Null, "{exchanged}");
    assert!(exchanged["token"].as_str().unwrap().starts_with("ya29."));
    tokio::time::sleep(FORCE_WINDOW).await;
    let fresh = token(&broker, "g-user", "?force_refresh=true").await;
    assert_ne!(fresh["accessToken"], exchanged["token"]);
    assert_eq!(refreshes_at_upstream(&metrics, "google").await, 1);
    let access = fresh["accessToken"].as_str().unwrap();
    assert_eq!(google_userinfo_status(&provider, access).await, 200);

    // Without a connection_id: the answer as it always was, and nothing kept.
    let code = issue_code(&provider, true);
    let (status, plain) = broker
        .post(
            "/auth/google/exchange",
            json!({"code": code, "redirect_uri": "http://localhost/cb"}),
        )
        .await;
    assert_eq!(status, 200, "{plain}");
    let keys: Vec<&String> = plain.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["expiresAt", "refreshToken", "success", "token"]);
    assert!(plain["refreshToken"].as_str().unwrap().starts_with("1//"));
    let (_, all) = get(&broker, "/connections").await;
    assert_eq!(all["connections"].as_array().unwrap().len(), 2, "{all}");

    // Refused as POST /connections refuses them, before the code is spent.
    let (_, refused) = call(
        &broker,
        Method::POST,
        "/connections",
        Some(json!({"provider": "github", "code": "c", "connection_id": "a b"})),
    )
    .await;
    let code = issue_code(&provider, false);
    for (path, body) in [
        (
            "/auth/github",
            json!({"code": code, "connection_id": "a b"}),
        ),
        (
            "/auth/google/exchange",
            json!({"code": code, "redirect_uri": "http://localhost/cb", "connection_id": "a b"}),
        ),
    ] {
        let (status, err) = broker.post(path, body).await;
        assert_eq!(status, 400, "{path}: {err}");
        assert_eq!(err, refused, "{path}");
    }
    for body in [
        json!({"code": code, "connection_id": 7}),
        json!({"code": code, "connection_id": "x".repeat(129)}),
        json!({"code": code, "connection_id": "x", "metadata": [1]}),
        json!({"code": code, "connection_id": "x", "metadata": {"big": "x".repeat(5000)}}),
        json!({"code": code, "metadata": {"kept": "nowhere"}}),
    ] {
        let (status, err) = broker.post("/auth/github", body.clone()).await;
        assert_eq!(
            (status, &err["error"]),
            (400, &json!("invalid_request")),
            "{body}: {err}"
        );
    }
    let (status, login) = broker.post("/auth/github", json!({"code": code})).await;
    assert_eq!(status, 200, "the code was not spent: {login}");
    assert!(login.get("connectionId").is_none(), "{login}");
    assert!(login["authState"]["refreshToken"].is_string());

    let document: Value = reqwest::get(format!("{}/openapi.json", broker.server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &document["components"]["schemas"];
    for (schema, property) in [
        ("CodeRequest", "connection_id"),
        ("CodeRequest", "metadata"),
        ("GoogleExchangeRequest", "connection_id"),
        ("GoogleExchangeRequest", "metadata"),
        ("LoggedIn", "connectionId"),
        ("Exchanged", "connectionId"),
    ] {
        assert!(
            schemas[schema]["properties"][property].is_object(),
            "{schema}.{property} is documented"
        );
    }
}
