//! The refresher at scale on PostgreSQL, against a refreshd provider as upstream in its own
//! process: two broker instances share 2,000 connections that all fall due at once and
//! refresh each exactly once (counted at the upstream, whose grace window is 0, so a refresh
//! token sent twice would revoke its family); and a broker killed with SIGKILL while its
//! refreshes are in flight loses no refresh it saved, and leaves the connections it held to
//! the other instance once their claims run out.
//!
//! Connections are seeded straight into the stores (families minted at the upstream's, the
//! connections put into the brokers'), not through the API: 2,000 imports would cost 2,000
//! CLI runs and upstream refreshes before the test starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use refreshd_core::{
    ClientId, Clock, ConnectionId, Lifetimes, Login, Scopes, SystemClock, Timestamp, TokenRole,
    TokenSealer, Upstream,
};
use refreshd_store::{ConnectionTokens, NewConnection};
use serde_json::Value;
use tokio::task::JoinSet;

use super::count;
use crate::common::process::{Broker, Provider, Server, free_port};
use crate::connections_api::{MASTER_KEY, get};
use crate::connections_refresher::within;

/// `MASTER_KEY` (64 hex digits "ab") as bytes: what the brokers seal connections under.
const MASTER_KEY_BYTES: [u8; 32] = [0xab; 32];

/// A provider with the grace window `grace_secs` and a metrics listener; the URL of its
/// metrics.
async fn upstream(grace_secs: &str) -> (Provider, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let database = refreshd_store::testing::scratch_postgres().await;
    let env = [
        ("REFRESHD_LIFETIMES__GRACE_WINDOW_SECS", grace_secs),
        ("REFRESHD_METRICS_LISTEN", metrics.as_str()),
    ];
    let provider = Provider::with(Server::start_on(&database, &env).await);
    (provider, format!("http://{metrics}/metrics"))
}

/// A broker on `database` whose upstream is `provider`, its refresher looking every second
/// with `concurrency` refreshes at once, `env` besides; the URL of its metrics.
async fn refreshing_broker(
    provider: &Provider,
    database: &str,
    concurrency: &str,
    env: &[(&'static str, &str)],
) -> (Broker, String) {
    assert_eq!(hex_of(&MASTER_KEY_BYTES), MASTER_KEY);
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut all = provider.upstream_env();
    all.extend([
        ("REFRESHD_MASTER_KEY", MASTER_KEY.into()),
        ("REFRESHD_CONNECTION_REFRESHER_INTERVAL_SECS", "1".into()),
        (
            "REFRESHD_CONNECTION_REFRESH_CONCURRENCY",
            concurrency.into(),
        ),
        ("REFRESHD_METRICS_LISTEN", metrics.clone()),
    ]);
    all.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let broker = Broker::start_on(database, &all).await;
    (broker, format!("http://{metrics}/metrics"))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sum of the samples of counter `name` whose labels include every one of `labels`.
async fn counter(metrics: &str, name: &str, labels: &[&str]) -> u64 {
    let text = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

/// How many GitHub refresh grants the upstream answered with `outcome` (`rotated`,
/// `grace_replay`, `reuse_family_revoked`, `refused`, `failed`).
async fn upstream_refreshes(metrics: &str, outcome: &str) -> u64 {
    let outcome = format!("outcome=\"{outcome}\"");
    let labels = [
        "dialect=\"github\"",
        "grant_type=\"refresh_token\"",
        outcome.as_str(),
    ];
    counter(metrics, "refreshd_grants_total", &labels).await
}

/// The refresher's count of `outcome` for GitHub connections at one broker.
async fn refresher_count(metrics: &str, outcome: &str) -> u64 {
    let outcome = format!("outcome=\"{outcome}\"");
    let labels = ["provider=\"github\"", outcome.as_str()];
    counter(metrics, "refreshd_connection_refreshes_total", &labels).await
}

/// Seeds `n` GitHub connections `s0000…` into the brokers' `database`: a fresh token family
/// of `octocat` minted at the upstream's store for each, its tokens sealed as the brokers
/// seal them, obtained a minute ago and not due (the test makes them due with `make_due`).
async fn seed(provider: &Provider, database: &str, n: usize) -> Vec<String> {
    let upstream = refreshd_provider::Provider {
        store: refreshd::store::open(&provider.server.database, 8)
            .await
            .unwrap(),
        clock: Arc::new(SystemClock),
        lifetimes: Lifetimes::default(),
        public_url: provider.server.url.clone(),
        trusted_proxies: Default::default(),
        oidc: Default::default(),
    };
    let client_id = ClientId::parse(&provider.github.0).unwrap();
    let app = upstream.store.find_app(&client_id).await.unwrap().unwrap();
    let login = Login::parse("octocat").unwrap();
    let user = upstream.store.find_user(&login).await.unwrap().unwrap();
    let brokers = refreshd::store::open(database, 8).await.unwrap();
    let sealer = Arc::new(TokenSealer::new(&MASTER_KEY_BYTES));
    let ids: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
    let mut tasks = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (upstream, app, brokers, sealer) = (
            upstream.clone(),
            app.clone(),
            brokers.clone(),
            sealer.clone(),
        );
        let id = ConnectionId::parse(id).unwrap();
        tasks.spawn(async move {
            let scopes = Scopes::parse("repo");
            let pair = refreshd_provider::issue_family(&upstream, &app, user.id, &scopes)
                .await
                .unwrap();
            let now = SystemClock.now();
            let expires = |secs: Option<i64>| secs.map(|secs| now.plus_secs(secs));
            let refresh = pair.refresh_token.as_deref().expect("an expiring pair");
            let tokens = ConnectionTokens {
                access: sealer.seal(&id, TokenRole::Access, &pair.access_token),
                access_expires_at: expires(pair.expires_in),
                refresh: Some(sealer.seal(&id, TokenRole::Refresh, refresh)),
                refresh_expires_at: expires(pair.refresh_token_expires_in),
                scopes: Scopes::parse(&pair.scope),
            };
            let new = NewConnection {
                id,
                upstream: Upstream::Github,
                tokens,
                next_refresh_at: None,
                metadata: None,
            };
            brokers
                .put_connection(new, now.plus_secs(-60))
                .await
                .unwrap();
        });
        if tasks.len() == 32 || i + 1 == n {
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    }
    ids
}

/// Makes every connection in `database` due now, in one statement: all at once. The time it
/// counts from: a connection refreshed since has `last_refreshed_at` at or after it.
async fn make_due(database: &str) -> Timestamp {
    let now = SystemClock.now();
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "UPDATE connections SET next_refresh_at = $1",
            &[&now.secs()],
        )
        .await
        .unwrap();
    now
}

/// Connections in `database` not yet refreshed since `since`, or not live.
async fn waiting(database: &str, since: Timestamp) -> i64 {
    count(
        database,
        &format!(
            "SELECT count(*) FROM connections
             WHERE last_refreshed_at < {} OR status <> 'live'",
            since.secs()
        ),
    )
    .await
}

/// Every connection in `ids` gives a token (the stored one, asked of the brokers in turn)
/// that the upstream accepts.
async fn every_token_works(brokers: &[&Broker], provider: &Provider, ids: &[String]) {
    let http = reqwest::Client::new();
    let user_url = format!("{}/user", provider.server.url);
    let mut tasks = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let broker = brokers[i % brokers.len()];
        let (http, user_url, key) = (http.clone(), user_url.clone(), broker.key.clone());
        let url = format!("{}/connections/{id}/token", broker.server.url);
        tasks.spawn(async move {
            let response = http.get(url).bearer_auth(key).send().await.unwrap();
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap();
            assert_eq!(status, 200, "{answer}");
            let access = answer["accessToken"].as_str().unwrap();
            let at_upstream = http.get(user_url).bearer_auth(access).send().await.unwrap();
            assert_eq!(at_upstream.status().as_u16(), 200, "{answer}");
        });
        if tasks.len() == 32 || i + 1 == ids.len() {
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    }
}

async fn assert_none_with_status(broker: &Broker, status: &str) {
    let (code, listed) = get(broker, &format!("/connections?status={status}")).await;
    assert_eq!(code, 200, "{listed}");
    assert_eq!(listed["connections"], serde_json::json!([]), "{listed}");
}

#[tokio::test]
async fn two_brokers_refresh_each_of_2000_connections_due_at_once_exactly_once() {
    const N: usize = 2000;
    // Grace window 0: a rotated refresh token sent again revokes its family.
    let (provider, upstream_metrics) = upstream("0").await;
    let database = refreshd_store::testing::scratch_postgres().await;
    let (first, first_metrics) = refreshing_broker(&provider, &database, "16", &[]).await;
    let (second, second_metrics) = refreshing_broker(&provider, &database, "16", &[]).await;
    let ids = seed(&provider, &database, N).await;
    assert_eq!(upstream_refreshes(&upstream_metrics, "rotated").await, 0);

    let since = make_due(&database).await;
    let started = Instant::now();
    let all = within(150, || async { waiting(&database, since).await == 0 }).await;
    assert!(
        all,
        "{} connections left unrefreshed",
        waiting(&database, since).await
    );
    eprintln!("2,000 connections refreshed in {:?}", started.elapsed());
    // Anything still running would show here.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Each exactly once at the upstream: every connection was refreshed since it fell due,
    // there were as many rotations as connections, and no refresh token was sent twice.
    assert_eq!(
        upstream_refreshes(&upstream_metrics, "rotated").await,
        N as u64
    );
    for outcome in ["reuse_family_revoked", "grace_replay", "refused", "failed"] {
        assert_eq!(
            upstream_refreshes(&upstream_metrics, outcome).await,
            0,
            "{outcome}"
        );
    }
    let (by_first, by_second) = (
        refresher_count(&first_metrics, "refreshed").await,
        refresher_count(&second_metrics, "refreshed").await,
    );
    eprintln!("refreshed by the first broker {by_first}, by the second {by_second}");
    assert_eq!(by_first + by_second, N as u64);
    assert!(by_first > 0 && by_second > 0, "both instances took a share");
    for outcome in ["broken", "backing_off", "unknown"] {
        assert_eq!(refresher_count(&first_metrics, outcome).await, 0);
        assert_eq!(refresher_count(&second_metrics, outcome).await, 0);
    }
    assert_none_with_status(&first, "broken").await;
    assert_none_with_status(&first, "backing_off").await;
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM connections WHERE status = 'live'"
        )
        .await,
        N as i64
    );

    // What each stored works, and is served without another refresh.
    every_token_works(&[&first, &second], &provider, &ids).await;
    assert_eq!(
        upstream_refreshes(&upstream_metrics, "rotated").await,
        N as u64
    );
}

#[tokio::test]
async fn a_broker_killed_mid_refresh_loses_no_saved_refresh_and_strands_nothing_past_its_claims() {
    const N: usize = 1000;
    // A refresh the killed broker sent, whose answer died with it, is sent again by the other
    // once the dead broker's claim lapses: claims are 5 s, renewed every second while their
    // holder lives, so the resend comes within about 5 s, inside an upstream's grace window
    // (refreshd's default is 10 s; this upstream's 30 s leaves a loaded CI machine room; the
    // time from the kill to the last refresh is printed: about 5 s on an idle machine).
    let (provider, upstream_metrics) = upstream("30").await;
    let database = refreshd_store::testing::scratch_postgres().await;
    let timeouts = [];
    let hold = Duration::from_secs(5);
    let (mut doomed, doomed_metrics) =
        refreshing_broker(&provider, &database, "8", &timeouts).await;
    let (survivor, survivor_metrics) =
        refreshing_broker(&provider, &database, "8", &timeouts).await;
    let ids = seed(&provider, &database, N).await;

    let since = make_due(&database).await;
    let busy = within(60, || async {
        refresher_count(&doomed_metrics, "refreshed").await >= 40
    })
    .await;
    assert!(busy, "the doomed broker refreshes");
    doomed.server.kill();
    let killed = Instant::now();
    let now = SystemClock.now().secs();
    let left = waiting(&database, since).await;
    let claimed = count(
        &database,
        &format!(
            "SELECT count(*) FROM connections
             WHERE claimed_until > {now} AND last_refreshed_at < {}",
            since.secs()
        ),
    )
    .await;
    eprintln!("killed with {left} connections unrefreshed, {claimed} of them claimed");
    assert!(left > 0, "killed while there was work left");
    assert!(claimed > 0, "killed while refreshes were claimed");

    let limit = hold + Duration::from_secs(25);
    let all = within(limit.as_secs(), || async {
        waiting(&database, since).await == 0
    })
    .await;
    let stuck = killed.elapsed();
    assert!(
        all,
        "{} connections still unrefreshed {stuck:?} after the kill, past the claim term",
        waiting(&database, since).await
    );
    eprintln!(
        "the last connection was refreshed {stuck:?} after the kill (claim term {hold:?}); \
         the survivor refreshed {}",
        refresher_count(&survivor_metrics, "refreshed").await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Nothing saved was lost and nothing was sent twice outside the grace window: no family
    // revoked, every family rotated once; resends of rotations whose answer died with the
    // killed broker were answered by the grace replay.
    let replays = upstream_refreshes(&upstream_metrics, "grace_replay").await;
    eprintln!("{replays} refreshes answered by the grace replay (in flight at the kill)");
    assert_eq!(
        upstream_refreshes(&upstream_metrics, "reuse_family_revoked").await,
        0
    );
    // A rotation whose client was killed may commit without being counted (the upstream's
    // handler is dropped with the connection after its write), and its resend is counted as
    // the grace replay: at most one rotation per family, and every family rotated.
    assert!(
        replays <= claimed as u64,
        "{replays} replays, {claimed} claimed at the kill"
    );
    let rotated = upstream_refreshes(&upstream_metrics, "rotated").await;
    assert!(
        (N as u64 - replays..=N as u64).contains(&rotated),
        "{rotated} rotations, {replays} replays"
    );
    for outcome in ["broken", "backing_off", "unknown"] {
        assert_eq!(refresher_count(&survivor_metrics, outcome).await, 0);
    }
    assert_none_with_status(&survivor, "broken").await;
    assert_none_with_status(&survivor, "backing_off").await;
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM connections WHERE status = 'live'"
        )
        .await,
        N as i64
    );
    every_token_works(&[&survivor], &provider, &ids).await;
    assert_eq!(
        upstream_refreshes(&upstream_metrics, "rotated").await,
        rotated,
        "serving the stored tokens rotated nothing"
    );
}
