//! `refreshd connection list|show|refresh|delete` against a running broker's database, with a
//! refreshd provider as the GitHub and Google upstream in its own process: the CLI shows what
//! the API shows, refreshes through the same claim as the running server (so the two never
//! refresh one connection twice: the upstream's grace window is 0), revokes upstream on delete
//! and reports a failed revoke, refuses unknown ids clearly, and never prints a token.

use std::process::Output;
use std::time::Duration;

use crate::common::process::{Broker, Provider};
use crate::connections_api::{
    broker, create, get, google_userinfo_status, holds_no_token, provider, refreshes_at_upstream,
    revoke_github_grant, token,
};
use serde_json::{Value, json};

fn run(broker: &Broker, args: &[&str]) -> Output {
    broker.server.command(args).output().unwrap()
}

/// A command that must succeed; its standard output, which must hold no token.
fn stdout(broker: &Broker, args: &[&str]) -> String {
    let output = run(broker, args);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for prefix in ["ghu_", "ghr_", "ya29.", "1//"] {
        assert!(!text.contains(prefix), "{args:?} printed a token: {text}");
    }
    text
}

fn cli_json(broker: &Broker, args: &[&str]) -> Value {
    let text = stdout(broker, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// A command that must fail; its error output.
fn fails(broker: &Broker, args: &[&str]) -> String {
    let output = run(broker, args);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(output.stdout.is_empty(), "{args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ids(listed: &Value) -> Vec<&str> {
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connectionId"].as_str().unwrap())
        .collect()
}

async fn import(broker: &Broker, provider: &Provider, google: bool, id: &str) {
    let (client_id, name) = match google {
        true => (&provider.google.0, "google"),
        false => (&provider.github.0, "github"),
    };
    let pair = provider.issue(client_id);
    create(
        broker,
        json!({"provider": name, "refresh_token": pair["refresh_token"], "connection_id": id}),
    )
    .await;
}

#[tokio::test]
async fn the_cli_lists_shows_refreshes_and_deletes_connections() {
    let (provider, metrics) = provider(&[]).await;
    let broker = broker(&provider).await;
    import(&broker, &provider, false, "a1").await;
    import(&broker, &provider, false, "a2").await;
    import(&broker, &provider, true, "b1").await;

    // list: what GET /connections lists, filtered and limited as asked.
    let all = cli_json(&broker, &["connection", "list", "--json"]);
    assert_eq!(ids(&all), ["a1", "a2", "b1"]);
    let (_, page) = get(&broker, "/connections").await;
    assert_eq!(all, page["connections"]);
    let google = cli_json(
        &broker,
        &["connection", "list", "--provider", "google", "--json"],
    );
    assert_eq!(ids(&google), ["b1"]);
    let live = [
        "connection",
        "list",
        "--status",
        "live",
        "--limit",
        "2",
        "--json",
    ];
    assert_eq!(ids(&cli_json(&broker, &live)), ["a1", "a2"]);
    let broken = cli_json(
        &broker,
        &["connection", "list", "--status", "broken", "--json"],
    );
    assert_eq!(broken, json!([]));
    let text = stdout(&broker, &["connection", "list"]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("a1  github  live  expires 20"), "{text}");
    let status = ["connection", "list", "--status", "backing_off"];
    assert_eq!(stdout(&broker, &status).trim(), "no connections");

    // show: what GET /connections/{id} shows.
    let shown = cli_json(&broker, &["connection", "show", "b1", "--json"]);
    let (_, api) = get(&broker, "/connections/b1").await;
    assert_eq!(shown, api["connection"]);
    let text = stdout(&broker, &["connection", "show", "b1"]);
    assert!(text.contains("provider:              google"), "{text}");
    assert!(text.contains("status:                live"), "{text}");

    // refresh: forced now, through the claim the running server takes too. The CLI and the
    // API forcing at once make one upstream refresh.
    let before = token(&broker, "a2", "").await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let upstream_before = refreshes_at_upstream(&metrics, "github").await;
    let clis: Vec<_> = (0..3)
        .map(|_| {
            let mut command = broker
                .server
                .command(&["connection", "refresh", "a2", "--json"]);
            tokio::task::spawn_blocking(move || command.output().unwrap())
        })
        .collect();
    let (_, forced) = get(&broker, "/connections/a2/token?force_refresh=true").await;
    for cli in clis {
        let output = cli.await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let refreshed: Value = serde_json::from_slice(&output.stdout).unwrap();
        holds_no_token(&refreshed);
        assert_eq!(refreshed["connectionId"], "a2");
        assert_eq!(refreshed["status"], "live", "{refreshed}");
    }
    assert_eq!(
        refreshes_at_upstream(&metrics, "github").await,
        upstream_before + 1,
        "one upstream refresh for the CLI's three and the API's one"
    );
    assert_ne!(forced["accessToken"], before["accessToken"]);
    let now = token(&broker, "a2", "").await;
    assert_eq!(now["accessToken"], forced["accessToken"]);
    let access = now["accessToken"].as_str().unwrap();
    assert_eq!(provider.github_user_status(access).await, 200);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let text = stdout(&broker, &["connection", "refresh", "a2"]);
    assert!(
        text.starts_with("refreshed a2; its access token expires 20"),
        "{text}"
    );
    assert_eq!(
        refreshes_at_upstream(&metrics, "github").await,
        upstream_before + 2
    );

    // Unknown and malformed ids: a clear error, a failing exit.
    for command in ["show", "refresh", "delete"] {
        let error = fails(&broker, &["connection", command, "nobody"]);
        assert!(
            error.contains("there is no connection \"nobody\""),
            "{command}: {error}"
        );
        let error = fails(&broker, &["connection", command, "a b", "--json"]);
        assert!(error.contains("not a connection id"), "{command}: {error}");
    }

    // delete: revoked upstream, then deleted here.
    let a1 = token(&broker, "a1", "").await;
    let a1_access = a1["accessToken"].as_str().unwrap();
    let deleted = cli_json(&broker, &["connection", "delete", "a1", "--json"]);
    assert_eq!(
        deleted,
        json!({"connectionId": "a1", "deleted": true, "upstreamRevoked": true})
    );
    assert_eq!(provider.github_user_status(a1_access).await, 401);
    assert_eq!(get(&broker, "/connections/a1").await.0, 404);
    let b1 = token(&broker, "b1", "").await;
    let text = stdout(&broker, &["connection", "delete", "b1"]);
    assert_eq!(text.trim(), "deleted b1; google revoked its grant");
    let b1_access = b1["accessToken"].as_str().unwrap();
    assert_ne!(google_userinfo_status(&provider, b1_access).await, 200);

    // a2 is octocat's grant with the same app: a1's delete revoked it upstream already. The
    // upstream's refusal is reported, and it is deleted here all the same.
    let deleted = cli_json(&broker, &["connection", "delete", "a2", "--json"]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["upstreamRevoked"], false, "{deleted}");
    let why = deleted["upstreamError"].as_str().unwrap();
    assert!(why.contains("404"), "{deleted}");
    assert_eq!(get(&broker, "/connections/a2").await.0, 404);
    assert_eq!(
        cli_json(&broker, &["connection", "list", "--json"]),
        json!([])
    );
}

#[tokio::test]
async fn refreshing_a_broken_connection_from_the_cli_fails_clearly() {
    let (provider, _) = provider(&[]).await;
    let broker = broker(&provider).await;
    import(&broker, &provider, false, "gone").await;
    let answer = token(&broker, "gone", "").await;
    revoke_github_grant(&provider, answer["accessToken"].as_str().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;

    let error = fails(&broker, &["connection", "refresh", "gone", "--json"]);
    assert!(error.contains("replace the connection"), "{error}");
    let shown = cli_json(&broker, &["connection", "show", "gone", "--json"]);
    assert_eq!(shown["status"], "broken", "{shown}");
    let listed = ["connection", "list", "--status", "broken", "--json"];
    assert_eq!(ids(&cli_json(&broker, &listed)), ["gone"]);
    let error = fails(&broker, &["connection", "refresh", "gone"]);
    assert!(error.contains("replace the connection"), "{error}");
}
