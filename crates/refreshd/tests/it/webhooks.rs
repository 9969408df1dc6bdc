//! Webhooks end to end: a refreshd provider as the upstream, a refreshd broker with webhooks
//! configured, and a receiver in Node.js that verifies every delivery with the
//! `standardwebhooks` package (tests/js/webhook_receiver.mjs) and refuses anything else.
//! Upstream revocation announces `connection.broken`, a delete `connection.deleted`, a
//! refresh after failures `connection.recovered`, every refresh `connection.refreshed` when
//! configured; a receiver down for a while gets every event once it is back.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flaky::{Flaky, Mode};
use crate::common::process::{Broker, Provider, free_port};
use crate::connections_api::{FORCE_WINDOW, call, create, get, revoke_github_grant, token};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The Node.js receiver, killed when dropped.
struct Receiver {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl Receiver {
    /// A receiver on `port`, ready.
    async fn start(port: u16) -> Self {
        Self::answering(port, 204).await
    }

    /// A receiver on `port` that answers verified deliveries with `status` from its start.
    async fn answering(port: u16, status: u16) -> Self {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js");
        assert!(
            dir.join("node_modules/standardwebhooks").exists(),
            "standardwebhooks is not installed: run `npm ci --prefix tests/js` (scripts/test does)"
        );
        let child = tokio::process::Command::new("node")
            .arg("webhook_receiver.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("WEBHOOK_SECRET", SECRET)
            .env("STATUS", status.to_string())
            .kill_on_drop(true)
            .spawn()
            .expect("running node");
        let receiver = Self {
            port,
            child: Some(child),
        };
        for _ in 0..200 {
            if reqwest::get(receiver.at("/events")).await.is_ok() {
                return receiver;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the webhook receiver did not start");
    }

    fn at(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it received: `{verified: [...], rejected, answered}`.
    async fn seen(&self) -> Value {
        reqwest::get(self.at("/events"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Answers verified deliveries with `status` from now on.
    async fn answer(&self, status: u16) {
        let response = reqwest::Client::new()
            .post(self.at("/mode"))
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    /// The verified events of `type` about connection `id`, waiting up to 30 s for `n`.
    async fn events(&self, kind: &str, id: &str, n: usize) -> Vec<Value> {
        let mut found = Vec::new();
        for _ in 0..300 {
            let seen = self.seen().await;
            found = seen["verified"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["event"]["type"] == kind && e["event"]["data"]["connectionId"] == id)
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} {kind} of {id} did not arrive: {found:?}");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
        }
    }
}

/// The environment of a broker whose upstream is `provider`, refresher off, announcing to
/// `receiver_port` with the test secret, retrying every second; `more` besides.
fn broker_env(
    provider: &Provider,
    receiver_port: u16,
    more: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = provider.upstream_env();
    env.push(("REFRESHD_CONNECTION_REFRESHER", "false".into()));
    env.push((
        "REFRESHD_GOOGLE_REVOKE_URL",
        format!("{}/revoke", provider.server.url),
    ));
    env.push((
        "REFRESHD_WEBHOOK_URL",
        format!("http://127.0.0.1:{receiver_port}/hook"),
    ));
    env.push(("REFRESHD_WEBHOOK_SECRET", SECRET.into()));
    env.push(("REFRESHD_WEBHOOK_RETRY_SCHEDULE_SECS", "1 ".repeat(30)));
    env.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// Imports a fresh GitHub grant of the provider's as connection `id`, with metadata.
async fn connect(provider: &Provider, broker: &Broker, id: &str) {
    let pair = provider.issue(&provider.github.0);
    create(
        broker,
        json!({"provider": "github", "refresh_token": pair["refresh_token"],
               "connection_id": id, "metadata": {"user": id}}),
    )
    .await;
}

/// A delivery as the receiver kept it, verified with Python's `standardwebhooks` package:
/// the event it holds, or `null` when the library refuses it (`tampered`: one byte of the body
/// changed).
fn verified_in_python(delivery: &Value, tampered: bool) -> Value {
    const VERIFY: &str = "
import json, sys
from standardwebhooks.webhooks import Webhook
secret, delivery, tampered = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == 'true'
body = delivery['body'].replace('connection.', 'connectioN.') if tampered else delivery['body']
headers = {'webhook-id': delivery['id'], 'webhook-timestamp': delivery['timestamp'],
           'webhook-signature': delivery['signature']}
try:
    print(json.dumps(Webhook(secret).verify(body, headers)))
except Exception:
    print('null')
";
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            VERIFY,
            SECRET,
            &delivery.to_string(),
            &tampered.to_string(),
        ])
        .output()
        .expect("python3 (scripts/test installs it, and standardwebhooks)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Nothing delivered holds a token of the provider's.
fn holds_no_token(event: &Value) {
    let body = event["body"].as_str().unwrap();
    for prefix in ["ghu_", "ghr_", "ya29.", "1//"] {
        assert!(!body.contains(prefix), "a token in {body}");
    }
}

/// `refreshd webhook list --json` on the broker's database.
fn listed(broker: &Broker, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["webhook", "list", "--json"];
    all.extend(args);
    broker.server.cli(&all).as_array().unwrap().clone()
}

#[tokio::test]
async fn revocation_and_delete_are_announced_signed_and_verified() {
    let provider = Provider::start().await;
    let receiver = Receiver::start(free_port()).await;
    let broker = Broker::start(&broker_env(&provider, receiver.port, &[])).await;
    connect(&provider, &broker, "w").await;
    let answer = token(&broker, "w", "").await;
    revoke_github_grant(&provider, answer["accessToken"].as_str().unwrap()).await;
    tokio::time::sleep(FORCE_WINDOW).await;
    let (status, _) = get(&broker, "/connections/w/token?force_refresh=true").await;
    assert_eq!(status, 409);

    let broken = receiver.events("connection.broken", "w", 1).await;
    let event = &broken[0];
    assert!(event["id"].as_str().unwrap().starts_with("msg_"), "{event}");
    assert!(
        event["signature"].as_str().unwrap().starts_with("v1,"),
        "{event}"
    );
    let data = &event["event"]["data"];
    assert_eq!(data["provider"], "github");
    assert_eq!(data["status"], "broken");
    assert_eq!(data["error"], "bad_refresh_token");
    assert_eq!(data["failureCount"], 1);
    assert_eq!(data["metadata"], json!({"user": "w"}));
    assert!(
        event["event"]["timestamp"].as_str().unwrap().ends_with('Z'),
        "{event}"
    );
    holds_no_token(event);
    // Python's `standardwebhooks` (PyPI) verifies the same delivery, and refuses it tampered.
    assert_eq!(
        verified_in_python(event, false)["type"],
        "connection.broken"
    );
    assert_eq!(verified_in_python(event, true), Value::Null);

    // A delete is announced too (its upstream revoke fails: the grant is gone already).
    let (status, _) = call(&broker, Method::DELETE, "/connections/w", None).await;
    assert_eq!(status, 200);
    let deleted = receiver.events("connection.deleted", "w", 1).await;
    assert_eq!(deleted[0]["event"]["data"]["status"], "deleted");
    assert_eq!(
        deleted[0]["event"]["data"]["metadata"],
        json!({"user": "w"})
    );
    holds_no_token(&deleted[0]);

    // The library refuses a tampered signature or body: the receiver can tell.
    let post = |signature: String, body: String| {
        let (at, event) = (receiver.at("/hook"), event.clone());
        async move {
            reqwest::Client::new()
                .post(at)
                .header("webhook-id", event["id"].as_str().unwrap())
                .header("webhook-timestamp", event["timestamp"].as_str().unwrap())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let (signature, body) = (
        event["signature"].as_str().unwrap().to_owned(),
        event["body"].as_str().unwrap().to_owned(),
    );
    let mut tampered = signature.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(post(tampered, body.clone()).await, 400);
    assert_eq!(
        post(signature.clone(), body.replace("broken", "live")).await,
        400
    );
    assert_eq!(receiver.seen().await["rejected"], 2);
    // The untampered one verifies again (proof the two above failed on the tampering).
    assert_eq!(post(signature, body).await, 204);

    // Neither event was refused or repeated; the CLI shows them delivered in one attempt
    // (once the deliverer has recorded what the receiver answered).
    let seen = receiver.seen().await;
    assert_eq!(seen["verified"].as_array().unwrap().len(), 3, "{seen}");
    let mut deliveries = listed(&broker, &[]);
    for _ in 0..100 {
        if deliveries.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        deliveries = listed(&broker, &[]);
    }
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for d in &deliveries {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["last_status"], 204, "{d}");
        assert_eq!(d["connection_id"], "w", "{d}");
        assert!(d["delivered_at"].is_string(), "{d}");
    }
    let types: Vec<&str> = deliveries
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["connection.deleted", "connection.broken"]);
    assert_eq!(deliveries[1]["event_id"], event["id"]);
    // Refreshes are not announced unless configured.
    assert!(
        seen["verified"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"]["type"] != "connection.refreshed")
    );
}

#[tokio::test]
async fn refreshes_are_announced_when_configured() {
    let provider = Provider::start().await;
    let receiver = Receiver::start(free_port()).await;
    let events = [(
        "REFRESHD_WEBHOOK_EVENTS",
        "connection.refreshed,connection.deleted",
    )];
    let broker = Broker::start(&broker_env(&provider, receiver.port, &events)).await;
    connect(&provider, &broker, "r").await;
    // A forced refresh (past the window in which one just made serves).
    tokio::time::sleep(FORCE_WINDOW).await;
    token(&broker, "r", "?force_refresh=true").await;

    let refreshed = receiver.events("connection.refreshed", "r", 1).await;
    let data = &refreshed[0]["event"]["data"];
    assert_eq!(data["status"], "live");
    assert_eq!(data["provider"], "github");
    assert!(data["expiresAt"].as_i64().unwrap() > 0, "{data}");
    holds_no_token(&refreshed[0]);
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_once_back() {
    let provider = Provider::start().await;
    // Nothing listens on the receiver's port yet.
    let port = free_port();
    let broker = Broker::start(&broker_env(&provider, port, &[])).await;
    let ids = ["d1", "d2", "d3"];
    for id in ids {
        connect(&provider, &broker, id).await;
        let (status, _) = call(&broker, Method::DELETE, &format!("/connections/{id}"), None).await;
        assert_eq!(status, 200);
    }
    // Attempts fail and are retried.
    let retried = |min: i64, error: &'static str| {
        let broker = &broker;
        async move {
            for _ in 0..300 {
                let deliveries = listed(broker, &["--status", "pending"]);
                let all_retried = deliveries.len() == 3
                    && deliveries.iter().all(|d| {
                        d["attempts"].as_i64().unwrap() >= min
                            && d["last_error"].as_str() == Some(error)
                            && d["next_attempt_at"].is_string()
                    });
                if all_retried {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("not retried: {:?}", listed(broker, &[]));
        }
    };
    retried(2, "could not connect").await;

    // Back, but failing: still retried, and nothing is kept by the receiver.
    let receiver = Receiver::answering(port, 500).await;
    retried(3, "answered 500").await;
    assert!(receiver.seen().await["answered"].as_i64().unwrap() >= 3);
    let failing = listed(&broker, &["--status", "pending"]);
    assert!(
        failing.iter().all(|d| d["last_status"] == 500),
        "{failing:?}"
    );

    // Healthy again: every event arrives, verified, each under the id it had all along.
    receiver.answer(204).await;
    for id in ids {
        let deleted = receiver.events("connection.deleted", id, 1).await;
        let delivery = listed(&broker, &[])
            .into_iter()
            .find(|d| d["connection_id"] == id)
            .unwrap();
        assert_eq!(deleted[0]["id"], delivery["event_id"]);
    }
    for _ in 0..100 {
        if listed(&broker, &["--status", "delivered"]).len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = listed(&broker, &["--status", "delivered"]);
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    assert!(
        delivered
            .iter()
            .all(|d| d["attempts"].as_i64().unwrap() >= 4),
        "{delivered:?}"
    );
    // Delivered once each: the receiver kept one of each event.
    let seen = receiver.seen().await;
    assert_eq!(seen["verified"].as_array().unwrap().len(), 3, "{seen}");

    // Redelivering an event sends it again, under the same id.
    let event_id = delivered[0]["event_id"].as_str().unwrap().to_owned();
    let queued = broker
        .server
        .cli(&["webhook", "redeliver", &event_id, "--json"]);
    assert_eq!(queued["queued"], 1);
    for _ in 0..100 {
        let seen = receiver.seen().await;
        let again = seen["verified"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["id"] == event_id.as_str())
            .count();
        if again == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the redelivered event did not arrive again");
}

#[tokio::test]
async fn a_refresh_after_failures_is_announced_as_recovered() {
    let provider = Provider::start().await;
    let receiver = Receiver::start(free_port()).await;
    // The broker reaches GitHub's token endpoint through a proxy that can answer 500.
    let proxy = Flaky::start(&provider.server.url).await;
    let token_url = proxy.url("/login/oauth/access_token");
    let broker = Broker::start(&broker_env(
        &provider,
        receiver.port,
        &[("REFRESHD_GITHUB_TOKEN_URL", token_url.as_str())],
    ))
    .await;
    connect(&provider, &broker, "c").await;
    assert_eq!(proxy.requests(), 1, "the import's refresh");

    // The upstream answers 500: the forced refresh fails for a passing reason, the connection
    // backs off (15 to 30 s), and the stored token, still valid, is what the caller gets.
    proxy.set(Mode::Fail500);
    tokio::time::sleep(FORCE_WINDOW).await;
    let (status, answer) = get(&broker, "/connections/c/token?force_refresh=true").await;
    assert_eq!(status, 200, "{answer}");
    let (_, shown) = get(&broker, "/connections/c").await;
    assert_eq!(shown["connection"]["status"], "backing_off", "{shown}");
    assert_eq!(proxy.requests(), 2);
    // While it backs off, forced calls send nothing upstream.
    for _ in 0..5 {
        get(&broker, "/connections/c/token?force_refresh=true").await;
    }
    assert_eq!(proxy.requests(), 2, "no attempt while backing off");

    // The upstream works again; once the backoff has passed, a refresh recovers it.
    proxy.set(Mode::Pass);
    for _ in 0..80 {
        get(&broker, "/connections/c/token?force_refresh=true").await;
        let (_, shown) = get(&broker, "/connections/c").await;
        if shown["connection"]["status"] == "live" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(proxy.requests(), 3, "one attempt after the backoff");
    let recovered = receiver.events("connection.recovered", "c", 1).await;
    let data = &recovered[0]["event"]["data"];
    assert_eq!(data["status"], "live");
    assert_eq!(data["previousStatus"], "backing_off");
    assert_eq!(data["failureCount"], 1);
    holds_no_token(&recovered[0]);
    // Backing off is not an event.
    let seen = receiver.seen().await;
    assert_eq!(seen["verified"].as_array().unwrap().len(), 1, "{seen}");
}
