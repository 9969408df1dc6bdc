//! The `refreshd` binary itself: admin commands on a real SQLite file, configuration sources,
//! `serve` over real HTTP with SIGTERM, and logs that never carry a secret.

use std::process::{Command, Output, Stdio};

use crate::common::process::{TEST_MASTER_KEY, free_port, output_with_stdin, refreshd};
use serde_json::Value;

struct Cli {
    dir: tempfile::TempDir,
    database: String,
}

impl Cli {
    /// A scratch database on this run's backend.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = refreshd_store::testing::scratch_database_blocking(dir.path());
        Self { dir, database }
    }

    /// A SQLite file, for what only a file shows (which file a setting chose).
    fn on_sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("refreshd.db").display());
        Self { dir, database }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = refreshd();
        command
            .args(args)
            .env("REFRESHD_DATABASE_URL", &self.database);
        if refreshd::store::is_postgres(&self.database) {
            command.env("REFRESHD_MASTER_KEY", TEST_MASTER_KEY);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn app(&self, extra: &[&str]) -> (String, String) {
        let mut args = vec![
            "app",
            "create",
            "--name",
            "CLI app",
            "--redirect-uri",
            "http://localhost/cb",
            "--json",
        ];
        args.extend_from_slice(extra);
        let app = self.json(&args);
        (
            app["client_id"].as_str().unwrap().to_owned(),
            app["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

#[test]
fn admin_commands_manage_apps_users_and_tokens() {
    let cli = Cli::new();
    assert_eq!(cli.json(&["migrate", "--json"])["migrated"], true);
    let (client_id, secret) = cli.app(&[]);
    assert!(client_id.starts_with("Iv23li") && secret.len() == 40);
    let (oauth_id, _) = cli.app(&["--kind", "oauth-app", "--expiring-tokens", "off"]);
    assert!(oauth_id.starts_with("Ov23li"));

    let list = cli.json(&["app", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&secret),
        "a secret is shown only once"
    );
    assert_eq!(list[1]["expiring_tokens"], false);

    let updated = cli.json(&[
        "app",
        "update",
        &oauth_id,
        "--expiring-tokens",
        "on",
        "--json",
    ]);
    assert_eq!(updated["expiring_tokens"], true);
    let reset = cli.json(&["app", "reset-secret", &client_id, "--json"]);
    assert_ne!(reset["client_secret"], secret.as_str());

    let user = cli.json(&[
        "user", "create", "--login", "octocat", "--name", "Mona", "--json",
    ]);
    assert_eq!(user["login"], "octocat");
    let dup = cli.run(&["user", "create", "--login", "octocat"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("user already exists"));
    let bad = cli.run(&["user", "create", "--login", "no spaces"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid login"));

    let token = cli.run(&[
        "token",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
        "--scope",
        "repo gist",
    ]);
    let text = String::from_utf8(token.stdout).unwrap();
    assert!(text.starts_with(r#"{"access_token":"ghu_"#), "{text}");
    let token: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(token["scope"], "repo,gist");
    assert_eq!(token["expires_in"], 28800);

    let plain = cli.json(&[
        "token",
        "issue",
        "--client-id",
        &oauth_id,
        "--login",
        "octocat",
        "--json",
    ]);
    assert!(
        plain["access_token"].as_str().unwrap().starts_with("ghu_"),
        "expiring again after the update"
    );

    let code = cli.json(&[
        "code",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
        "--json",
    ]);
    assert_eq!(code["code"].as_str().unwrap().len(), 20);
    let with_nonce = cli.json(&[
        "code",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
        "--nonce",
        "n-0S6_WzA2Mj",
        "--json",
    ]);
    assert_eq!(with_nonce["code"].as_str().unwrap().len(), 20);
    let long = "n".repeat(513);
    let too_long = cli.run(&[
        "code",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
        "--nonce",
        &long,
    ]);
    assert!(!too_long.status.success());
    let stderr = String::from_utf8_lossy(&too_long.stderr);
    assert!(
        stderr.contains("the nonce may have at most 512 bytes"),
        "{stderr}"
    );

    let missing = cli.run(&[
        "token",
        "issue",
        "--client-id",
        "Iv23liNope",
        "--login",
        "octocat",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no app with client_id Iv23liNope"));
}

#[test]
fn an_app_created_without_an_owner_can_be_given_one() {
    let cli = Cli::new();
    let (client_id, _) = cli.app(&[]);
    let user = cli.json(&["user", "create", "--login", "octocat", "--json"]);
    let unknown = cli.run(&["app", "update", &client_id, "--owner", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user with login nobody"));
    assert_eq!(
        cli.json(&["app", "list", "--json"])[0]["owner_id"],
        Value::Null
    );

    let updated = cli.json(&["app", "update", &client_id, "--owner", "octocat", "--json"]);
    assert_eq!(updated["owner_id"], user["id"]);
    assert_eq!(updated["expiring_tokens"], true, "only the owner changed");
    assert_eq!(
        cli.json(&["app", "list", "--json"])[0]["owner_id"],
        user["id"]
    );

    let both = cli.json(&[
        "app",
        "update",
        &client_id,
        "--owner",
        "octocat",
        "--expiring-tokens",
        "off",
        "--json",
    ]);
    assert_eq!(both["expiring_tokens"], false);
    let nothing = cli.run(&["app", "update", &client_id]);
    assert!(!nothing.status.success(), "an update must change something");
}

#[test]
fn apps_made_on_the_command_line_follow_the_settings_pages_rules() {
    let cli = Cli::new();
    let long = "n".repeat(101);
    let refused = cli.run(&[
        "app",
        "create",
        "--name",
        &long,
        "--redirect-uri",
        "http://localhost/cb",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("the name must have 1 to 100 characters, not 101"),
        "{stderr}"
    );
    let blank = cli.run(&[
        "app",
        "create",
        "--name",
        " ",
        "--redirect-uri",
        "http://a.example/",
    ]);
    assert!(!blank.status.success());
    assert_eq!(cli.json(&["app", "list", "--json"]), serde_json::json!([]));

    let longest = "n".repeat(100);
    let app = cli.json(&[
        "app",
        "create",
        "--name",
        &format!(" {longest} "),
        "--redirect-uri",
        "http://localhost/cb",
        "--json",
    ]);
    assert_eq!(app["name"], longest.as_str(), "trimmed, as on the page");

    let google = cli.json(&[
        "app",
        "create",
        "--name",
        "Mail",
        "--dialect",
        "google",
        "--redirect-uri",
        "http://localhost/cb",
        "--json",
    ]);
    let client_id = google["client_id"].as_str().unwrap();
    let opt_out = cli.run(&["app", "update", client_id, "--expiring-tokens", "off"]);
    assert!(!opt_out.status.success());
    assert!(
        String::from_utf8_lossy(&opt_out.stderr)
            .contains("Google-dialect tokens always expire after an hour.")
    );
    // Asking for what always holds is no change, and no error.
    let opt_in = cli.run(&["app", "update", client_id, "--expiring-tokens", "on"]);
    assert!(
        opt_in.status.success(),
        "{}",
        String::from_utf8_lossy(&opt_in.stderr)
    );
}

#[test]
fn configuration_comes_from_a_toml_file_env_and_flags() {
    let cli = Cli::on_sqlite();
    let other = cli.dir.path().join("from-toml.db");
    let toml = cli.dir.path().join("refreshd.toml");
    std::fs::write(
        &toml,
        format!("database_url = \"sqlite://{}\"\n", other.display()),
    )
    .unwrap();
    // The file beats the default; the environment beats the file; a flag beats both.
    let output = refreshd()
        .args(["--config", toml.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(other.exists());
    cli.json(&["--config", toml.to_str().unwrap(), "migrate", "--json"]);
    assert!(
        cli.dir.path().join("refreshd.db").exists(),
        "REFRESHD_DATABASE_URL beats the file"
    );
    let flagged = cli.dir.path().join("flag.db");
    cli.json(&[
        "--database",
        &format!("sqlite://{}", flagged.display()),
        "migrate",
        "--json",
    ]);
    assert!(flagged.exists());

    std::fs::write(&toml, "lifetimes = { grace_window_secs = \"soon\" }\n").unwrap();
    let bad = refreshd()
        .args(["--config", toml.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid configuration"));

    // Ids and secrets are taken as written: `0123` stays `0123`, not the number 123.
    let numeric = cli
        .command(&["migrate"])
        .env("REFRESHD_GITHUB_CLIENT_ID", "0123")
        .output()
        .unwrap();
    assert!(
        numeric.status.success(),
        "{}",
        String::from_utf8_lossy(&numeric.stderr)
    );

    let negative = cli
        .command(&["migrate"])
        .env("REFRESHD_LIFETIMES__ACCESS_TOKEN_SECS", "-5")
        .output()
        .unwrap();
    assert_eq!(negative.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&negative.stderr)
            .contains("lifetimes.access_token_secs must be positive")
    );

    let proxies = cli
        .command(&["migrate"])
        .env("REFRESHD_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
        .output()
        .unwrap();
    assert!(
        proxies.status.success(),
        "{}",
        String::from_utf8_lossy(&proxies.stderr)
    );
    let named = cli
        .command(&["migrate"])
        .env("REFRESHD_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
        .output()
        .unwrap();
    assert_eq!(named.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(
        stderr.contains(r#""proxy.internal" is not an IP address or a CIDR network"#),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_answers_over_http_stops_on_sigterm_and_logs_no_secrets() {
    let cli = Cli::new();
    let (client_id, secret) = cli.app(&[]);
    cli.json(&["user", "create", "--login", "octocat", "--json"]);
    let pair = cli.json(&[
        "token",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
        "--json",
    ]);
    let code = cli.json(&[
        "code",
        "issue",
        "--client-id",
        &client_id,
        "--login",
        "octocat",
        "--json",
    ]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = cli
        .command(&["serve", "--listen", &listen])
        .env("REFRESHD_LOG", "trace")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    let mut up = false;
    // Up to 30 s: a first start generates the id_token signing key.
    for _ in 0..600 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "refreshd did not start");

    let refresh = pair["refresh_token"].as_str().unwrap();
    let query = format!(
        "client_id={client_id}&client_secret={secret}&grant_type=refresh_token&refresh_token={refresh}"
    );
    let answer: Value = http
        .post(format!("{base}/login/oauth/access_token?{query}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_access = answer["access_token"].as_str().unwrap().to_owned();
    let exchanged = http
        .post(format!("{base}/login/oauth/access_token"))
        .form(&[
            ("client_id", client_id.as_str()),
            ("client_secret", &secret),
            ("code", code["code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(exchanged.starts_with("access_token=ghu_"), "{exchanged}");
    let user = http
        .get(format!("{base}/user"))
        .bearer_auth(&new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "graceful shutdown exits 0");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("refreshd is serving") && logs.contains("shutting down"),
        "{logs}"
    );
    assert!(
        logs.contains("/login/oauth/access_token"),
        "trace logging was on: {logs}"
    );
    for secret_value in [
        secret.as_str(),
        refresh,
        &new_access,
        pair["access_token"].as_str().unwrap(),
        code["code"].as_str().unwrap(),
    ] {
        assert!(!logs.contains(secret_value), "a secret reached the logs");
    }
}

/// Runs `user create … --password-stdin` with `input` on standard input.
fn create_with_password(cli: &Cli, login: &str, input: &str) -> Output {
    with_stdin(
        cli,
        &[
            "user",
            "create",
            "--login",
            login,
            "--password-stdin",
            "--json",
        ],
        input,
    )
}

/// Runs `args` with `input` on standard input.
fn with_stdin(cli: &Cli, args: &[&str], input: &str) -> Output {
    output_with_stdin(cli.command(args), input)
}

#[tokio::test]
async fn a_password_from_stdin_is_stored_only_as_an_argon2id_hash() {
    let cli = Cli::new();
    let created = create_with_password(&cli, "mona", "hunter2-but-longer\n");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let printed = String::from_utf8_lossy(&created.stdout);
    assert!(
        !printed.contains("hunter2"),
        "the password is never printed"
    );
    let store = refreshd::store::open(&cli.database, 2).await.unwrap();
    let stored = store.password_hash(&login("mona")).await.unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(refreshd_core::password::verify(
        "hunter2-but-longer",
        &stored
    ));
    assert!(!refreshd_core::password::verify("hunter2", &stored));

    // Too short: refused before anything is stored.
    let refused = create_with_password(&cli, "shorty", "hunter2\n");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("8 to 1024 characters"));
    assert!(store.find_user(&login("shorty")).await.unwrap().is_none());

    // A new password replaces the old one; an unknown login is an error.
    let set = ["user", "set-password", "--login", "mona", "--json"];
    let changed = with_stdin(&cli, &set, "a new and longer secret\n");
    assert!(changed.status.success());
    assert!(!String::from_utf8_lossy(&changed.stdout).contains("longer secret"));
    let stored = store.password_hash(&login("mona")).await.unwrap().unwrap();
    assert!(refreshd_core::password::verify(
        "a new and longer secret",
        &stored
    ));
    let set = ["user", "set-password", "--login", "nobody"];
    let unknown = with_stdin(&cli, &set, "a new and longer secret\n");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user with login nobody"));
}

/// A login known to follow the rules.
fn login(raw: &str) -> refreshd_core::Login {
    refreshd_core::Login::parse(raw).unwrap()
}

#[test]
fn the_device_flow_is_off_until_an_app_is_created_or_updated_with_it_on() {
    let cli = Cli::new();
    let (off_id, _) = cli.app(&[]);
    let (on_id, _) = cli.app(&["--device-flow", "on"]);
    let list = cli.json(&["app", "list", "--json"]);
    assert_eq!(list[0]["client_id"], off_id.as_str());
    assert_eq!(
        list[0]["device_flow"], false,
        "off by default, as on GitHub"
    );
    assert_eq!(list[1]["client_id"], on_id.as_str());
    assert_eq!(list[1]["device_flow"], true);

    let switched = cli.json(&["app", "update", &off_id, "--device-flow", "on", "--json"]);
    assert_eq!(switched["device_flow"], true);
    assert_eq!(switched["expiring_tokens"], true, "nothing else changed");
    let switched = cli.json(&["app", "update", &on_id, "--device-flow", "off", "--json"]);
    assert_eq!(switched["device_flow"], false);

    let bad = cli.run(&["app", "update", &on_id, "--device-flow", "maybe"]);
    assert!(!bad.status.success());
    assert_eq!(
        cli.json(&["app", "list", "--json"])[1]["device_flow"],
        false,
        "a refused update changes nothing"
    );
}
