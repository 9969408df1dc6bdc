//! The refresher end to end, against a refreshd provider as upstream in its own process: it
//! refreshes a connection about to expire with nobody asking, breaks one whose grant was
//! revoked upstream and leaves it be, and two brokers on one database share 200 due
//! connections, refreshing each once (the upstream's grace window is 0, so a refresh token
//! sent twice would revoke its family). On a broker whose clock the test moves: an idle
//! connection is kept alive, refreshes in flight stay under the cap, and behind a flaky proxy
//! failing upstreams are backed off from, never hammered, and recovered from; a server stopping
//! lets the refreshes in flight finish and starts no more.

use std::time::{Duration, Instant};

use crate::common::flaky::{Flaky, Mode};
use crate::common::process::{Broker, Provider, free_port};
use crate::common::{START, TestApp, spawn_configured};
use crate::connections_api::{
    MASTER_KEY, create, get, provider, refreshes_at_upstream, revoke_github_grant, token,
};
use refreshd::Config;
use refreshd_core::{Clock, ConnectionId, TokenDigest};
use serde_json::{Value, json};

/// A broker whose upstream is `provider`, on `database` if given, with its refresher looking
/// every second and refreshing `lead` seconds ahead; and the URL of its metrics.
async fn refreshing_broker(
    provider: &Provider,
    database: Option<&str>,
    lead: &str,
) -> (Broker, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut env = provider.upstream_env();
    env.extend([
        ("REFRESHD_MASTER_KEY", MASTER_KEY.into()),
        ("REFRESHD_CONNECTION_REFRESHER_INTERVAL_SECS", "1".into()),
        ("REFRESHD_CONNECTION_REFRESH_LEAD_SECS", lead.into()),
        ("REFRESHD_METRICS_LISTEN", metrics.clone()),
    ]);
    let broker = match database {
        Some(database) => Broker::start_on(database, &env).await,
        None => Broker::start(&env).await,
    };
    (broker, format!("http://{metrics}/metrics"))
}

/// The refresher's count of `outcome` for GitHub connections.
async fn refresher_count(metrics: &str, outcome: &str) -> u64 {
    let text = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    let labels = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|line| {
            line.starts_with("refreshd_connection_refreshes_total{")
                && line.contains("provider=\"github\"")
                && line.contains(&labels)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

/// Waits up to `secs` for `done` to hold; whether it did.
pub(crate) async fn within<F, Fut>(secs: u64, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn import(broker: &Broker, provider: &Provider, id: &str) -> Value {
    let pair = provider.issue(&provider.github.0);
    create(
        broker,
        json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": id}),
    )
    .await
}

#[tokio::test]
async fn a_connection_about_to_expire_is_refreshed_with_nobody_asking() {
    // Access tokens live 6 seconds at this upstream; the broker refreshes 2 seconds ahead.
    let (provider, upstream) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "6")]).await;
    let (broker, metrics) = refreshing_broker(&provider, None, "2").await;
    import(&broker, &provider, "r").await;
    assert_eq!(
        refreshes_at_upstream(&upstream, "github").await,
        1,
        "the import's"
    );
    let (_, before) = get(&broker, "/connections/r").await;

    // No API call: the refresher refreshes it ahead of expiry, again and again.
    assert!(
        within(20, || async {
            refreshes_at_upstream(&upstream, "github").await >= 3
        })
        .await,
        "two refreshes by the refresher"
    );
    assert!(refresher_count(&metrics, "refreshed").await >= 2);
    let (_, after) = get(&broker, "/connections/r").await;
    assert_eq!(after["connection"]["status"], "live", "{after}");
    assert_ne!(
        after["connection"]["lastRefreshedAt"],
        before["connection"]["lastRefreshedAt"]
    );
    // What it stored works upstream.
    let answer = token(&broker, "r", "?min_valid_secs=0").await;
    let access = answer["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);
}

#[tokio::test]
async fn a_grant_revoked_upstream_breaks_the_connection_and_is_not_retried() {
    let (provider, upstream) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "6")]).await;
    let (broker, metrics) = refreshing_broker(&provider, None, "2").await;
    import(&broker, &provider, "b").await;
    let answer = token(&broker, "b", "?min_valid_secs=0").await;
    revoke_github_grant(&provider, answer["accessToken"].as_str().unwrap()).await;

    let broken = within(20, || async {
        let (_, shown) = get(&broker, "/connections/b").await;
        shown["connection"]["status"] == "broken"
    })
    .await;
    assert!(broken, "the refresher breaks the connection");
    assert_eq!(refresher_count(&metrics, "broken").await, 1);
    // Broken stays broken: no more attempts, upstream or recorded.
    let attempts = refreshes_at_upstream(&upstream, "github").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, shown) = get(&broker, "/connections/b").await;
    assert_eq!(shown["connection"]["status"], "broken");
    assert_eq!(shown["connection"]["failureCount"], 1, "{shown}");
    assert!(
        shown["connection"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("bad_refresh_token"),
        "{shown}"
    );
    assert_eq!(refreshes_at_upstream(&upstream, "github").await, attempts);
    assert_eq!(refresher_count(&metrics, "broken").await, 1);
}

#[tokio::test]
async fn two_brokers_refresh_each_of_200_due_connections_once() {
    const N: u64 = 200;
    // Access tokens live 10 seconds: due about 5 seconds after they were obtained.
    let (provider, upstream) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "10")]).await;
    // Created through a broker whose refresher is off.
    let mut env = provider.upstream_env();
    env.push(("REFRESHD_MASTER_KEY", MASTER_KEY.into()));
    env.push(("REFRESHD_CONNECTION_REFRESHER", "false".into()));
    let creator = Broker::start(&env).await;
    for i in 0..N {
        import(&creator, &provider, &format!("c{i:03}")).await;
    }
    assert_eq!(refreshes_at_upstream(&upstream, "github").await, N);
    // All due.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Lead 0: what they refresh is due again only when its new token expires, 10 s on.
    let database = creator.server.database.clone();
    let (first, first_metrics) = refreshing_broker(&provider, Some(&database), "0").await;
    let (_second, second_metrics) = refreshing_broker(&provider, Some(&database), "0").await;
    let all = within(8, || async {
        refreshes_at_upstream(&upstream, "github").await >= 2 * N
    })
    .await;
    assert!(all, "every connection refreshed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        refreshes_at_upstream(&upstream, "github").await,
        2 * N,
        "each once"
    );
    let refreshed = refresher_count(&first_metrics, "refreshed").await
        + refresher_count(&second_metrics, "refreshed").await;
    assert_eq!(refreshed, N);
    // A refresh token sent twice would have revoked its family and broken its connection.
    let (_, broken) = get(&first, "/connections?status=broken").await;
    assert_eq!(broken["connections"], json!([]), "{broken}");
    let (_, waiting) = get(&first, "/connections?status=backing_off").await;
    assert_eq!(waiting["connections"], json!([]), "{waiting}");
}

/// A broker in this process on a clock the test moves (from `START`), with the API key it is
/// called with. Its GitHub upstream is `provider`, its token endpoint at `token_url` (the
/// provider's own, or a flaky proxy's in front of it); its refresher looks every second.
struct OnClock {
    app: TestApp,
    key: String,
}

impl OnClock {
    async fn start(
        provider: &Provider,
        token_url: String,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let app = spawn_configured(|config| {
            config.github.client_id = Some(provider.github.0.clone());
            config.github.client_secret = Some(provider.github.1.clone().into());
            config.github.token_url = token_url;
            config.github.api_url = format!("{}/api/v3", provider.server.url);
            config.connection_refresher_interval_secs = 1;
            configure(config);
        })
        .await;
        let key = refreshd_broker::new_api_key();
        app.provider
            .store
            .create_api_key(
                "backend",
                TokenDigest::of(&key),
                &key[key.len() - 4..],
                START,
            )
            .await
            .unwrap();
        Self { app, key }
    }

    /// Seconds since `START` on the broker's clock.
    fn now(&self) -> i64 {
        self.app.clock.now().secs() - START.secs()
    }

    /// Moves the broker's clock to `secs` after `START` (never back).
    fn set_clock(&self, secs: i64) {
        let by = secs - self.now();
        assert!(by >= 0, "the clock only moves forward");
        self.app.clock.advance(by);
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .http
            .request(method, self.app.at(path))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn import(&self, provider: &Provider, id: &str) {
        let pair = provider.issue(&provider.github.0);
        let body = json!({"provider": "github", "refresh_token": pair["refresh_token"], "connection_id": id});
        let response = self
            .call(reqwest::Method::POST, "/connections", Some(body))
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// `GET /connections/{id}`'s connection.
    async fn show(&self, id: &str) -> Value {
        let response = self
            .call(reqwest::Method::GET, &format!("/connections/{id}"), None)
            .await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["connection"].clone()
    }

    /// `GET /connections/{id}/token?{query}`: the status, the `Retry-After` header, the body.
    async fn token(&self, id: &str, query: &str) -> (u16, Option<i64>, Value) {
        let path = format!("/connections/{id}/token?{query}");
        let response = self.call(reqwest::Method::GET, &path, None).await;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        (status, retry_after, response.json().await.unwrap())
    }
}

/// Milliseconds (as the API answers times) to seconds since `START`.
fn since_start(ms: &Value) -> i64 {
    ms.as_i64().unwrap_or_else(|| panic!("a time: {ms}")) / 1000 - START.secs()
}

/// Long enough for the refresher (looking every second) to have looked at least twice.
const TWO_ROUNDS: Duration = Duration::from_millis(2_500);

#[tokio::test]
async fn an_idle_connection_is_kept_alive_after_the_keepalive() {
    // Access tokens live 30 days at this upstream: nothing expires soon. The keepalive is a day.
    let (provider, upstream) =
        provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "2592000")]).await;
    let token_url = format!("{}/login/oauth/access_token", provider.server.url);
    let broker = OnClock::start(&provider, token_url, |config| {
        config.connection_keepalive_days = 1;
    })
    .await;
    broker.import(&provider, "idle").await;
    assert_eq!(
        refreshes_at_upstream(&upstream, "github").await,
        1,
        "the import's"
    );
    let (_, _, stored) = broker.token("idle", "min_valid_secs=0").await;

    // 21 hours on (the keepalive is jittered earlier by at most a tenth): not yet.
    broker.set_clock(21 * 3600);
    tokio::time::sleep(TWO_ROUNDS).await;
    assert_eq!(
        refreshes_at_upstream(&upstream, "github").await,
        1,
        "not before the keepalive"
    );

    // A day on: refreshed with nobody asking, once.
    broker.set_clock(24 * 3600);
    let kept_alive = within(10, || async {
        refreshes_at_upstream(&upstream, "github").await >= 2
    })
    .await;
    assert!(kept_alive, "refreshed once the keepalive passed");
    tokio::time::sleep(TWO_ROUNDS).await;
    assert_eq!(refreshes_at_upstream(&upstream, "github").await, 2, "once");
    let connection = broker.show("idle").await;
    assert_eq!(connection["status"], "live", "{connection}");
    assert_eq!(since_start(&connection["lastRefreshedAt"]), 24 * 3600);
    let (status, _, fresh) = broker.token("idle", "min_valid_secs=0").await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["accessToken"], stored["accessToken"]);
    let access = fresh["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);
}

#[tokio::test]
async fn refreshes_in_flight_never_exceed_the_concurrency_cap() {
    const CAP: usize = 3;
    const N: usize = 15;
    let (provider, _) = provider(&[]).await;
    let proxy = Flaky::start(&provider.server.url).await;
    let broker = OnClock::start(
        &provider,
        proxy.url("/login/oauth/access_token"),
        |config| {
            config.connection_refresh_concurrency = CAP;
        },
    )
    .await;
    for i in 0..N {
        broker.import(&provider, &format!("c{i:02}")).await;
    }
    // Each refresh takes a while at the upstream, so refreshes run at once overlap there.
    proxy.reset();
    proxy.delay(Duration::from_millis(300));

    // Access tokens live 8 hours: 8 hours on, all are due at once.
    broker.set_clock(8 * 3600);
    let all = within(20, || async { proxy.requests() >= N }).await;
    assert!(all, "every connection refreshed: {}", proxy.requests());
    tokio::time::sleep(TWO_ROUNDS).await;
    assert_eq!(proxy.requests(), N, "each once");
    assert_eq!(
        proxy.max_in_flight(),
        CAP,
        "at most the cap at once, and the cap reached"
    );
    for i in 0..N {
        let connection = broker.show(&format!("c{i:02}")).await;
        assert_eq!(connection["status"], "live", "{connection}");
        assert_eq!(since_start(&connection["lastRefreshedAt"]), 8 * 3600);
    }
}

#[tokio::test]
async fn upstream_500s_back_off_longer_each_time_then_the_connection_recovers() {
    // Access tokens live an hour: due 48 to 50 minutes on (a 10-minute lead, jittered).
    let (provider, _) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "3600")]).await;
    let proxy = Flaky::start(&provider.server.url).await;
    let broker = OnClock::start(&provider, proxy.url("/login/oauth/access_token"), |_| {}).await;
    broker.import(&provider, "f").await;
    assert_eq!(proxy.requests(), 1, "the import's");
    let (_, _, stored) = broker.token("f", "min_valid_secs=0").await;
    let expires = since_start(&stored["expiresAt"]);

    proxy.set(Mode::Fail500);
    broker.set_clock(50 * 60);
    let attempted = within(5, || async { proxy.requests() == 2 }).await;
    assert!(attempted, "the refresher tried once it was due");
    // Each attempt at the proxy comes when the backoff the last one wrote ends, not a round
    // (a second) sooner; the backoffs grow: 15-30 s, 30-60 s, 60-120 s, … (upper half of a
    // doubling schedule).
    let mut attempted_at = broker.now();
    let mut waits = Vec::new();
    let mut connection = broker.show("f").await;
    for failures in 1.. {
        assert_eq!(connection["status"], "backing_off", "{connection}");
        assert_eq!(connection["failureCount"], failures, "{connection}");
        assert!(
            connection["lastError"].as_str().unwrap().contains("500"),
            "{connection}"
        );
        let retry_at = since_start(&connection["retryAfter"]);
        let wait = retry_at - attempted_at;
        let full = 30 << (failures - 1);
        assert!(
            (full / 2..=full).contains(&wait),
            "wait {wait} after failure {failures}"
        );
        waits.push(wait);
        if retry_at > expires {
            // The stored token expires while it backs off.
            break;
        }
        assert!(
            failures < 8,
            "the backoff passes the token's expiry: {waits:?}"
        );

        // While it backs off, the stored token is the answer (valid, however long it is
        // asked to stay valid, forced or not), and nothing is sent upstream.
        broker.set_clock(retry_at - 1);
        for query in ["", "min_valid_secs=86400", "force_refresh=true"] {
            let (status, _, answer) = broker.token("f", query).await;
            assert_eq!(status, 200, "{query}: {answer}");
            assert_eq!(answer["accessToken"], stored["accessToken"]);
        }
        tokio::time::sleep(TWO_ROUNDS).await;
        assert_eq!(
            proxy.requests(),
            failures as usize + 1,
            "no attempt before the backoff ends"
        );

        broker.set_clock(retry_at);
        let next = within(5, || async { proxy.requests() == failures as usize + 2 }).await;
        assert!(next, "an attempt once the backoff ended");
        attempted_at = retry_at;
        connection = broker.show("f").await;
    }
    assert!(
        waits.windows(2).all(|w| w[0] < w[1]),
        "growing waits: {waits:?}"
    );

    // Expired while backing off: 503 with Retry-After, and still nothing sent.
    let retry_at = since_start(&connection["retryAfter"]);
    broker.set_clock(expires);
    let before = proxy.requests();
    for query in ["", "force_refresh=true"] {
        let (status, retry_after, answer) = broker.token("f", query).await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"], "backing_off");
        assert_eq!(retry_after, Some(retry_at - expires), "{answer}");
    }
    tokio::time::sleep(TWO_ROUNDS).await;
    assert_eq!(proxy.requests(), before, "no hammering");

    // The upstream works again: the next attempt, when the backoff ends, mends it.
    proxy.set(Mode::Pass);
    broker.set_clock(retry_at);
    let live = within(5, || async { broker.show("f").await["status"] == "live" }).await;
    assert!(live, "recovered");
    assert_eq!(proxy.requests(), before + 1);
    let connection = broker.show("f").await;
    assert_eq!(connection["failureCount"], 0, "{connection}");
    assert_eq!(connection["lastError"], Value::Null);
    assert_eq!(connection["retryAfter"], Value::Null);
    let (status, _, fresh) = broker.token("f", "").await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["accessToken"], stored["accessToken"]);
    let access = fresh["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);

    // What the proxy saw: refresh grants only, the failed ones between the import and the
    // recovery, each at least two of the refresher's rounds after the one before.
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.path == "/login/oauth/access_token"),
        "{seen:?}"
    );
    let modes: Vec<Mode> = seen.iter().map(|s| s.mode).collect();
    let failed = &modes[1..modes.len() - 1];
    assert!(failed.iter().all(|m| *m == Mode::Fail500), "{modes:?}");
    assert_eq!((modes[0], modes[modes.len() - 1]), (Mode::Pass, Mode::Pass));
    for pair in seen[1..].windows(2) {
        assert!(pair[1].at - pair[0].at >= TWO_ROUNDS, "{seen:?}");
    }
}

#[tokio::test]
async fn a_refresh_without_an_answer_is_not_sent_again_before_the_full_hold() {
    let (provider, _) = provider(&[("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "3600")]).await;
    let proxy = Flaky::start(&provider.server.url).await;
    let broker = OnClock::start(
        &provider,
        proxy.url("/login/oauth/access_token"),
        |config| {
            config.upstream_timeout_secs = 1;
        },
    )
    .await;
    broker.import(&provider, "u").await;
    let (_, _, stored) = broker.token("u", "min_valid_secs=0").await;
    // The full hold: the longest upstream call (two connect retries of 3 + 1 s, then 1 s) and
    // a 15 s margin.
    let hold = 2 * (3 + 1) + 1 + 15;

    // The proxy hangs (the request was sent; no answer comes), then drops the connection
    // (sent, and cut off): each time the outcome is unknown.
    let mut attempted_at = 50 * 60;
    for (mode, attempts) in [(Mode::Hang, 2), (Mode::Drop, 3)] {
        proxy.set(mode);
        broker.set_clock(attempted_at);
        let backing_off = within(10, || async {
            broker.show("u").await["failureCount"] == attempts - 1
        })
        .await;
        assert!(backing_off, "{mode:?}: the attempt failed");
        assert_eq!(proxy.requests(), attempts as usize, "{mode:?}");
        let connection = broker.show("u").await;
        assert_eq!(connection["status"], "backing_off", "{connection}");
        let error = connection["lastError"].as_str().unwrap();
        assert!(
            error.contains("may or may not have happened"),
            "{mode:?}: {error}"
        );
        let retry_at = since_start(&connection["retryAfter"]);
        assert!(
            retry_at >= attempted_at + hold,
            "{mode:?}: past the full hold: {connection}"
        );

        // Within the hold nothing is sent again, whoever asks.
        broker.set_clock(retry_at - 1);
        let (status, _, answer) = broker
            .token("u", "force_refresh=true&min_valid_secs=86400")
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accessToken"], stored["accessToken"]);
        tokio::time::sleep(TWO_ROUNDS).await;
        assert_eq!(
            proxy.requests(),
            attempts as usize,
            "{mode:?}: not sent again"
        );
        attempted_at = retry_at;
    }

    // Neither reached the upstream, so the refresh token still works there.
    proxy.set(Mode::Pass);
    broker.set_clock(attempted_at);
    let live = within(10, || async { broker.show("u").await["status"] == "live" }).await;
    assert!(live, "recovered");
    assert_eq!(proxy.requests(), 4);
}

#[tokio::test]
async fn stopping_lets_refreshes_in_flight_finish_and_starts_no_more() {
    const N: usize = 12;
    let (provider, upstream_metrics) = provider(&[]).await;
    let proxy = Flaky::start(&provider.server.url).await;
    let broker = OnClock::start(
        &provider,
        proxy.url("/login/oauth/access_token"),
        |config| {
            config.connection_refresh_concurrency = 2;
        },
    )
    .await;
    for i in 0..N {
        broker.import(&provider, &format!("s{i:02}")).await;
    }
    let imported = refreshes_at_upstream(&upstream_metrics, "github").await;
    // Each refresh waits a second at the proxy before it reaches the upstream.
    proxy.delay(Duration::from_millis(1_000));
    broker.set_clock(8 * 3600);
    let started = within(10, || async { proxy.in_flight() > 0 }).await;
    assert!(started, "refreshes in flight");

    // The server stops while refreshes are on their way to the upstream.
    let OnClock { app, .. } = broker;
    let store = app.provider.store.clone();
    app.server.stop().await.unwrap();
    let sent = proxy.requests();

    // Every refresh the upstream made was saved (none was cut off between the upstream's
    // answer and its save), and no more were started once it was stopping.
    let rotated = refreshes_at_upstream(&upstream_metrics, "github").await - imported;
    let mut saved = 0;
    for i in 0..N {
        let id = ConnectionId::parse(&format!("s{i:02}")).unwrap();
        let connection = store.find_connection(&id).await.unwrap().unwrap();
        if connection.last_refreshed_at.secs() - START.secs() == 8 * 3600 {
            saved += 1;
        }
    }
    assert!(saved >= 1, "the refreshes in flight finished");
    assert!(
        saved < N,
        "stopping started no more: {saved} of {N} refreshed"
    );
    assert_eq!(rotated, saved as u64, "every rotation upstream was saved");
    tokio::time::sleep(TWO_ROUNDS).await;
    assert_eq!(proxy.requests(), sent, "nothing sent after the stop");
}
