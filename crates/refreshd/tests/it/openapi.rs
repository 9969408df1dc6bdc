//! The API document against the real server: schemathesis (tests/py/requirements.txt) reads
//! `/openapi.json`, sends generated requests to every documented operation with the
//! credentials of the security scheme it documents, and checks every answer against the
//! document: no 5xx, only documented statuses, content types and headers, bodies that match
//! their schemas, and 405 with `Allow` for a method a path does not serve (GitHub's paths
//! answer 404, as GitHub does). Its seed is fixed and it takes about ten seconds.

use std::process::Command;

use crate::common::process::{Broker, Provider, Server};
use serde_json::Value;

/// Fixed, so a failure in CI can be reproduced with the same requests.
const SEED: &str = "20260501";

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

/// An app of `dialect` on `server`: its client id and secret.
fn app(server: &Server, dialect: &str) -> (String, String) {
    let app = server.cli(&[
        "app",
        "create",
        "--name",
        "fuzzed",
        "--redirect-uri",
        "http://localhost/cb",
        "--dialect",
        dialect,
        "--json",
    ]);
    (field(&app, "client_id"), field(&app, "client_secret"))
}

/// `n` values of `name` from new token families at the app.
fn tokens(server: &Server, client_id: &str, name: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| field(&server.issue(client_id), name))
        .collect()
}

/// `n` authorization codes for octocat at the app; Google's name the redirect URI.
fn codes(server: &Server, client_id: &str, n: usize) -> Vec<String> {
    let mut args = vec![
        "code",
        "issue",
        "--client-id",
        client_id,
        "--login",
        "octocat",
        "--json",
    ];
    if client_id.ends_with(".apps.googleusercontent.com") {
        args.extend(["--redirect-uri", "http://localhost/cb"]);
    }
    (0..n).map(|_| field(&server.cli(&args), "code")).collect()
}

/// schemathesis's settings for one operation.
#[derive(Default)]
struct Operation {
    /// Live values schemathesis may put in a parameter or body field (`body.code`), so
    /// requests reach past "not found". Each operation has its own: resets and revocations
    /// use theirs up.
    values: Vec<(&'static str, Vec<String>)>,
    /// Fixed parameters (`path.client_id`).
    fixed: Vec<(&'static str, String)>,
    /// HTTP Basic credentials other than the default app's.
    basic: Option<(String, String)>,
}

/// schemathesis's settings: credentials for each security scheme, and per operation the
/// live tokens and codes it may send. The server under test holds apps, a user and tokens of
/// its own (for the provider's routes) and the broker's upstream holds others (for the
/// broker's routes).
fn config(server: &Server, upstream: &Provider, api_key: &str) -> String {
    server.create_octocat();
    let github = app(server, "github");
    // Revoking a grant revokes every token of the app: that operation gets an app of its own,
    // and so does the token `GET /user` sends.
    let (revoked, user_app, google) = (
        app(server, "github"),
        app(server, "github"),
        app(server, "google"),
    );
    let up = &upstream.server;
    let (up_github, up_google) = (&upstream.github.0, &upstream.google.0);
    let operations: Vec<(&str, Operation)> = vec![
        (
            "githubAccessToken",
            Operation {
                values: vec![(
                    "body.refresh_token",
                    tokens(server, &github.0, "refresh_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "githubDeviceCode",
            Operation {
                values: vec![("body.client_id", vec![github.0.clone()])],
                ..Default::default()
            },
        ),
        (
            "githubCheckToken",
            Operation {
                values: vec![(
                    "body.access_token",
                    tokens(server, &github.0, "access_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "githubResetToken",
            Operation {
                values: vec![(
                    "body.access_token",
                    tokens(server, &github.0, "access_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "githubDeleteToken",
            Operation {
                values: vec![(
                    "body.access_token",
                    tokens(server, &github.0, "access_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "githubDeleteAuthorization",
            Operation {
                values: vec![(
                    "body.access_token",
                    tokens(server, &revoked.0, "access_token", 3),
                )],
                fixed: vec![("path.client_id", revoked.0.clone())],
                basic: Some(revoked),
            },
        ),
        ("githubGetAuthenticatedUser", Operation::default()),
        (
            "googleToken",
            Operation {
                values: vec![
                    (
                        "body.refresh_token",
                        tokens(server, &google.0, "refresh_token", 3),
                    ),
                    ("body.code", codes(server, &google.0, 3)),
                    ("body.redirect_uri", vec!["http://localhost/cb".into()]),
                ],
                basic: Some(google.clone()),
                ..Default::default()
            },
        ),
        (
            "googleRevoke",
            Operation {
                values: vec![(
                    "query.token",
                    [
                        tokens(server, &google.0, "access_token", 2),
                        tokens(server, &google.0, "refresh_token", 2),
                    ]
                    .concat(),
                )],
                ..Default::default()
            },
        ),
        (
            "googleTokenInfo",
            Operation {
                values: vec![(
                    "query.access_token",
                    tokens(server, &google.0, "access_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "googleTokenInfoPost",
            Operation {
                values: vec![(
                    "body.access_token",
                    tokens(server, &google.0, "access_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "brokerGithubRefresh",
            Operation {
                values: vec![(
                    "body.refresh_token",
                    tokens(up, up_github, "refresh_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "brokerGoogleRefresh",
            Operation {
                values: vec![(
                    "body.refresh_token",
                    tokens(up, up_google, "refresh_token", 3),
                )],
                ..Default::default()
            },
        ),
        (
            "brokerGithubLogin",
            Operation {
                values: vec![("body.code", codes(up, up_github, 3))],
                ..Default::default()
            },
        ),
        (
            "brokerGoogleExchange",
            Operation {
                values: vec![
                    ("body.code", codes(up, up_google, 3)),
                    ("body.redirect_uri", vec!["http://localhost/cb".into()]),
                ],
                ..Default::default()
            },
        ),
        (
            "brokerGoogleLogin",
            Operation {
                values: vec![("body.token", tokens(up, up_google, "access_token", 3))],
                ..Default::default()
            },
        ),
    ];
    let github_token = field(&server.issue(&user_app.0), "access_token");
    let google_token = field(&server.issue(&google.0), "access_token");
    // Every answer is checked: GitHub's token endpoint is asked for JSON rather than a form.
    let mut toml = format!(
        r#"headers = {{ Accept = "application/json" }}

# What the document promises: no 5xx, only documented statuses, content types, headers and
# bodies, and 405 with `Allow` for a method a path does not serve. The checks left out judge
# the API's design (what it should refuse or accept), not the document.
[checks]
not_a_server_error.enabled = true
status_code_conformance.enabled = true
response_schema_conformance.enabled = true
content_type_conformance.enabled = true
response_headers_conformance.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
negative_data_rejection.enabled = false
positive_data_acceptance.enabled = false
missing_required_header.enabled = false
use_after_free.enabled = false
ensure_resource_availability.enabled = false
ignored_auth.enabled = false
object_level_authorization.enabled = false

[auth.openapi.bearer]
bearer = "{api_key}"

[auth.openapi.basic]
username = "{}"
password = "{}"

[auth.openapi.githubToken]
bearer = "{github_token}"

[auth.openapi.googleToken]
bearer = "{google_token}"

[parameters]
# The Applications API's path names the app whose credentials come as Basic; another app is
# only ever 404.
"path.client_id" = "{}"
"#,
        github.0, github.1, github.0
    );
    toml.push_str("\n[dictionaries]\n");
    for (id, operation) in &operations {
        for (at, values) in &operation.values {
            toml.push_str(&format!("\"{id} {at}\" = {{ values = {values:?} }}\n"));
        }
    }
    for (id, operation) in &operations {
        toml.push_str(&format!(
            "\n[[operations]]\ninclude-operation-id = \"{id}\"\n"
        ));
        if id.starts_with("github") {
            // GitHub answers a method a path does not serve 404, and so does refreshd.
            toml.push_str("checks = { unsupported_method = { enabled = false } }\n");
        }
        if let Some((username, password)) = &operation.basic {
            toml.push_str(&format!(
                "auth = {{ basic = {{ username = \"{username}\", password = \"{password}\" }} }}\n"
            ));
        }
        toml.push_str("[operations.parameters]\n");
        for (at, _) in &operation.values {
            toml.push_str(&format!(
                "\"{at}\" = {{ dictionary = \"{id} {at}\", probability = 0.5 }}\n"
            ));
        }
        for (at, value) in &operation.fixed {
            toml.push_str(&format!("\"{at}\" = \"{value}\"\n"));
        }
    }
    toml
}

#[tokio::test]
async fn the_server_answers_as_its_document_says() {
    // The server under test is a broker whose upstream is another refreshd, so the broker's
    // routes reach an upstream that answers; it serves the provider's routes too.
    let upstream = Provider::start().await;
    let broker = Broker::start(&upstream.upstream_env()).await;
    let config_file = broker.server.dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&broker.server, &upstream, &broker.key)).unwrap();
    // Run where schemathesis's and Hypothesis's working files go away with the server.
    let output = Command::new("python3")
        .current_dir(broker.server.dir.path())
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(&config_file)
        .args(["run", &format!("{}/openapi.json", broker.server.url)])
        .args([
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            SEED,
            "--workers",
            "2",
            // No database of past examples: each run is the seed's alone.
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
        ])
        .output()
        .expect("running python3 -m schemathesis.cli (scripts/test installs it)");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found disagreements between /openapi.json and the server:\n{printed}"
    );
    println!("{printed}");
}
