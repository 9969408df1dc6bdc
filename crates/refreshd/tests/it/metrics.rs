//! What operators see: `/metrics` on its own listener, read with Prometheus's own Python
//! parser, moving with the traffic; and the audit log's security events as JSON lines.

use crate::common;
use crate::common::process::{
    Broker, Provider, Server, free_port, output_with_stdin, refresh_grant,
};
use serde_json::{Value, json};

/// Parses an exposition with `prometheus_client`'s parser: every sample as
/// `{name, labels, value}`. A document it cannot parse fails the test.
fn parse(exposition: &str) -> Vec<Value> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = [
    {"name": s.name, "labels": s.labels, "value": s.value}
    for family in text_string_to_metric_families(sys.stdin.read())
    for s in family.samples
]
print(json.dumps(samples))
"#;
    let mut python = std::process::Command::new("python3");
    python.args(["-c", script]);
    let output = output_with_stdin(python, exposition);
    assert!(
        output.status.success(),
        "prometheus_client could not parse /metrics: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 if there is none).
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

async fn scrape(metrics_url: &str) -> Vec<Value> {
    let response = reqwest::get(metrics_url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse(&response.text().await.unwrap())
}

async fn refresh(server: &Server, app: &(String, String), token: &str) -> Value {
    let http = reqwest::Client::new();
    let response = refresh_grant(&http, &server.url, (&app.0, &app.1), token).await;
    response.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn metrics_parse_with_prometheus_client_and_move_with_the_traffic() {
    let metrics_port = free_port().to_string();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let server = Server::start(&[
        ("REFRESHD_METRICS_LISTEN", metrics_listen.as_str()),
        ("REFRESHD_LIFETIMES__GRACE_WINDOW_SECS", "0"),
        ("REFRESHD_LOG_FORMAT", "json"),
    ])
    .await;
    let metrics_url = format!("http://{metrics_listen}/metrics");
    // Only on its own listener.
    let on_main = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(on_main.status(), 404);

    let app = server.github_app_and_user();
    let pair = server.issue(&app.0);
    let first = pair["refresh_token"].as_str().unwrap();

    let before = scrape(&metrics_url).await;
    let rotated = ("outcome", "rotated");
    let route = ("route", "/login/oauth/access_token");
    let answer = refresh(&server, &app, first).await;
    let second = answer["refresh_token"].as_str().unwrap().to_owned();
    let after = scrape(&metrics_url).await;
    assert_eq!(
        value(&after, "refreshd_grants_total", &[rotated])
            - value(&before, "refreshd_grants_total", &[rotated]),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "refreshd_http_requests_total",
            &[route, ("status", "200")]
        ) - value(
            &before,
            "refreshd_http_requests_total",
            &[route, ("status", "200")]
        ),
        1.0
    );
    assert!(
        value(
            &after,
            "refreshd_http_request_duration_seconds_count",
            &[route]
        ) >= 1.0
    );
    let backend_moved = if server.database.starts_with("sqlite") {
        value(&after, "refreshd_sqlite_batch_writes_count", &[])
            > value(&before, "refreshd_sqlite_batch_writes_count", &[])
    } else {
        value(&after, "refreshd_postgres_pool_max_connections", &[]) > 0.0
    };
    assert!(backend_moved, "the database's own metrics are reported");

    // The first token again, after its (zero) grace window: reuse, and the family is revoked.
    let reused = refresh(&server, &app, first).await;
    assert_eq!(reused["error"], "bad_refresh_token");
    let revoked = scrape(&metrics_url).await;
    assert_eq!(
        value(
            &revoked,
            "refreshd_grants_total",
            &[("outcome", "reuse_family_revoked")]
        ),
        1.0
    );
    // The audit log has the event, as one JSON object on a line, with no token in it.
    let logs = server.logs();
    let events: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("every log line is JSON"))
        .filter(|line| line["target"] == "refreshd::audit")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "token.reuse_detected");
    assert_eq!(events[0]["client_id"], app.0.as_str());
    for secret in [first, second.as_str(), app.1.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
async fn broker_metrics_count_upstream_calls_and_single_flight_joins() {
    let provider = Provider::start().await;
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let mut env = provider.upstream_env();
    env.push(("REFRESHD_METRICS_LISTEN", metrics_listen.clone()));
    let broker = std::sync::Arc::new(vec![Broker::start(&env).await]);
    let pair = provider.issue(&provider.github.0);
    common::process::post_concurrently(
        broker.clone(),
        20,
        "/auth/github/refresh",
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    let samples = scrape(&format!("http://{metrics_listen}/metrics")).await;
    let github = ("provider", "github");
    assert_eq!(
        value(
            &samples,
            "refreshd_broker_upstream_calls_total",
            &[github, ("outcome", "refreshed")]
        ),
        1.0,
        "one upstream call for twenty concurrent refreshes"
    );
    assert_eq!(
        value(
            &samples,
            "refreshd_broker_upstream_call_duration_seconds_count",
            &[github]
        ),
        1.0
    );
    let answered = ["called", "joined", "replayed"]
        .map(|answer| {
            value(
                &samples,
                "refreshd_broker_refreshes_total",
                &[github, ("answer", answer)],
            )
        })
        .iter()
        .sum::<f64>();
    assert_eq!(
        answered, 20.0,
        "every refresh is counted once by how it was answered"
    );
    assert!(
        value(
            &samples,
            "refreshd_broker_refreshes_total",
            &[github, ("answer", "called")]
        ) >= 1.0
    );
}
