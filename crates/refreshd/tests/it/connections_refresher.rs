//! The refresher end to end, against a refreshd provider as upstream in its own process: it
//! refreshes a connection about to expire with nobody asking, breaks one whose grant was
//! revoked upstream and leaves it be, and two brokers on one database share 200 due
//! connections, refreshing each once (the upstream's grace window is 0, so a refresh token
//! sent twice would revoke its family).

use std::time::{Duration, Instant};

use crate::common::process::{Broker, Provider, free_port};
use crate::connections_api::{
    MASTER_KEY, create, get, provider, refreshes_at_upstream, revoke_github_grant, token,
};
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
async fn within<F, Fut>(secs: u64, mut done: F) -> bool
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
