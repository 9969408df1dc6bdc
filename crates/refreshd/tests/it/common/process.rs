//! refreshd as separate processes: `refreshd serve` on loopback with a scratch database (or
//! one shared with other processes), a provider with apps and a user, and a broker with a key.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_refreshd");

/// The `refreshd` binary, with nothing from the developer's own `REFRESHD_*` settings (real
/// client secrets, a config file, a key file) reaching the process under test.
pub fn refreshd() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REFRESHD_") {
            command.env_remove(name);
        }
    }
    command
}

/// The master key test instances on one PostgreSQL share.
pub const TEST_MASTER_KEY: &str =
    "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// A setting's value that stands for the server's own URL (known once its port is).
const SELF: &str = "<the server's own URL>";

/// A `refreshd serve` process with its own database; stopped (SIGTERM) when dropped.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub url: String,
    /// The database URL: its own scratch database, or one shared with other processes.
    pub database: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Server {
    /// A server on a scratch database of its own.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = refreshd_store::testing::scratch_database(dir.path()).await;
        Self::start_in(dir, database, env).await
    }

    /// A server on `database`, which other processes may share.
    pub async fn start_on(database: &str, env: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), database.to_owned(), env).await
    }

    /// A server on a scratch database of its own whose `oidc_issuer` is its own URL, as an
    /// OpenID client that discovers it requires.
    pub async fn start_as_issuer() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = refreshd_store::testing::scratch_database(dir.path()).await;
        Self::start_in(dir, database, &[("REFRESHD_OIDC_ISSUER", SELF)]).await
    }

    async fn start_in(dir: tempfile::TempDir, database: String, env: &[(&str, &str)]) -> Self {
        let mut server = Self {
            dir,
            url: String::new(),
            database,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        let port = free_port();
        server.url = format!("http://127.0.0.1:{port}");
        for (_, value) in server.env.iter_mut().filter(|(_, v)| v == SELF) {
            value.clone_from(&server.url);
        }
        let log = std::fs::File::create(server.dir.path().join("stderr.log")).unwrap();
        let child = server
            .command(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        server.child = Some(child);
        // Up to 30 s: a first start generates the id_token signing key (RSA keygen), which on
        // a busy test machine, with other servers starting beside it, takes seconds.
        for _ in 0..1200 {
            if reqwest::get(format!("{}/healthz", server.url))
                .await
                .is_ok()
            {
                return server;
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("refreshd exited ({status}) on start:\n{}", server.logs());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("refreshd did not start in 30 s:\n{}", server.logs());
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = refreshd();
        command
            .args(args)
            .env("REFRESHD_DATABASE_URL", &self.database)
            .env("REFRESHD_LOG", "trace");
        if refreshd::store::is_postgres(&self.database) {
            // Instances on one PostgreSQL share their master key.
            command.env("REFRESHD_MASTER_KEY", TEST_MASTER_KEY);
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    pub fn cli(&self, args: &[&str]) -> Value {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Server {
    /// Creates user `login` with `password` (`user create --password-stdin`).
    pub fn create_user_with_password(&self, login: &str, password: &str) {
        let command = self.command(&["user", "create", "--login", login, "--password-stdin"]);
        let created = output_with_stdin(command, password);
        let stderr = String::from_utf8_lossy(&created.stderr);
        assert!(created.status.success(), "user create: {stderr}");
    }

    /// Signs in as a browser at `client` would, behind a proxy at 127.0.0.1 that names it in
    /// `X-Forwarded-For`: gets the form (and its CSRF cookie), then posts it. The post's
    /// status.
    pub async fn sign_in_from(&self, client: &str, login: &str, password: &str) -> u16 {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = http
            .get(format!("{}/login", self.url))
            .header("x-forwarded-for", client)
            .send()
            .await
            .unwrap();
        let cookie = form
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("; ");
        let body = form.text().await.unwrap();
        let start = body.find(r#"name="csrf" value=""#).expect("a form") + 19;
        let csrf = &body[start..start + body[start..].find('"').unwrap()];
        let posted = http
            .post(format!("{}/session", self.url))
            .header("x-forwarded-for", client)
            .header("cookie", cookie)
            .form(&[("csrf", csrf), ("username", login), ("password", password)])
            .send()
            .await
            .unwrap();
        posted.status().as_u16()
    }

    /// Kills the process at once (SIGKILL): no graceful shutdown, nothing released.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A GitHub App and the user `octocat` on this server: the app's client id and secret.
    pub fn github_app_and_user(&self) -> (String, String) {
        let app = self.cli(&[
            "app",
            "create",
            "--name",
            "test",
            "--redirect-uri",
            "http://localhost/cb",
            "--json",
        ]);
        self.cli(&["user", "create", "--login", "octocat", "--json"]);
        let field = |name: &str| app[name].as_str().unwrap().to_owned();
        (field("client_id"), field("client_secret"))
    }

    /// A fresh token family of `octocat` at `client_id`, as its token endpoint answers it.
    pub fn issue(&self, client_id: &str) -> Value {
        self.cli(&[
            "token",
            "issue",
            "--client-id",
            client_id,
            "--login",
            "octocat",
            "--scope",
            "repo",
        ])
    }

    /// The user `octocat`, named Mona, with an email address.
    pub fn create_octocat(&self) {
        self.cli(&[
            "user",
            "create",
            "--login",
            "octocat",
            "--name",
            "Mona",
            "--email",
            "mona@example.com",
            "--json",
        ]);
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Everything the server logged so far (at `trace`).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// A provider with a GitHub app and a Google app, and a user. Its grace window is 0, so any
/// second use of a rotated refresh token revokes the family: a broker that called upstream
/// twice for one token would be caught.
pub struct Provider {
    pub server: Server,
    pub github: (String, String),
    pub google: (String, String),
}

impl Provider {
    pub async fn start() -> Self {
        Self::with(Server::start(&[("REFRESHD_LIFETIMES__GRACE_WINDOW_SECS", "0")]).await)
    }

    /// A provider with the grace window `secs`, as on GitHub: a rotated refresh token used
    /// again within it gets the same answer.
    pub async fn start_with_grace_window(secs: &str) -> Self {
        Self::with(Server::start(&[("REFRESHD_LIFETIMES__GRACE_WINDOW_SECS", secs)]).await)
    }

    /// A provider with the grace window 0 and `env` besides (lifetimes, a metrics listener).
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.push(("REFRESHD_LIFETIMES__GRACE_WINDOW_SECS", "0"));
        Self::with(Server::start(&env).await)
    }

    /// The same, on `database`, which other processes may share.
    pub async fn start_on(database: &str) -> Self {
        Self::with(
            Server::start_on(database, &[("REFRESHD_LIFETIMES__GRACE_WINDOW_SECS", "0")]).await,
        )
    }

    /// A provider on `server`, started with whatever settings the test needs.
    pub fn with(server: Server) -> Self {
        let app = |dialect: &str| {
            let app = server.cli(&[
                "app",
                "create",
                "--name",
                "up",
                "--redirect-uri",
                "http://localhost/cb",
                "--dialect",
                dialect,
                "--json",
            ]);
            (
                app["client_id"].as_str().unwrap().to_owned(),
                app["client_secret"].as_str().unwrap().to_owned(),
            )
        };
        let (github, google) = (app("github"), app("google"));
        server.create_octocat();
        Self {
            server,
            github,
            google,
        }
    }

    /// A fresh token family at the provider, as the JSON its token endpoint answers.
    pub fn issue(&self, client_id: &str) -> Value {
        self.server.issue(client_id)
    }

    pub fn upstream_env(&self) -> Vec<(&'static str, String)> {
        let url = &self.server.url;
        vec![
            ("REFRESHD_GITHUB_CLIENT_ID", self.github.0.clone()),
            ("REFRESHD_GITHUB_CLIENT_SECRET", self.github.1.clone()),
            (
                "REFRESHD_GITHUB_TOKEN_URL",
                format!("{url}/login/oauth/access_token"),
            ),
            ("REFRESHD_GITHUB_API_URL", format!("{url}/api/v3")),
            ("REFRESHD_GOOGLE_CLIENT_ID", self.google.0.clone()),
            ("REFRESHD_GOOGLE_CLIENT_SECRET", self.google.1.clone()),
            ("REFRESHD_GOOGLE_TOKEN_URL", format!("{url}/token")),
            (
                "REFRESHD_GOOGLE_USERINFO_URL",
                format!("{url}/oauth2/v3/userinfo"),
            ),
        ]
    }

    pub async fn github_user_status(&self, token: &str) -> u16 {
        let response = reqwest::Client::new()
            .get(format!("{}/user", self.server.url))
            .bearer_auth(token)
            .send()
            .await;
        response.unwrap().status().as_u16()
    }
}

/// A broker process and an API key for it.
pub struct Broker {
    pub server: Server,
    pub key: String,
    pub http: reqwest::Client,
}

impl Broker {
    pub async fn start(env: &[(&str, String)]) -> Self {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Self::with(Server::start(&env).await)
    }

    /// A broker on `database`, which other processes may share.
    pub async fn start_on(database: &str, env: &[(&str, String)]) -> Self {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Self::with(Server::start_on(database, &env).await)
    }

    fn with(server: Server) -> Self {
        let key = server.cli(&["key", "create", "--name", "backend", "--json"])["key"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            server,
            key,
            http: reqwest::Client::new(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.server.url))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

/// `n` concurrent POSTs of `body` to `path`, spread round robin over `brokers`; asserts every
/// answer is 200 and returns the answers.
pub async fn post_concurrently(
    brokers: std::sync::Arc<Vec<Broker>>,
    n: usize,
    path: &'static str,
    body: Value,
) -> Vec<Value> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (brokers, body) = (brokers.clone(), body.clone());
            tokio::spawn(async move { brokers[i % brokers.len()].post(path, body).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    answers
}

/// Runs `command` with `input` on its standard input; its output.
pub fn output_with_stdin(mut command: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A refresh grant at a provider's GitHub token endpoint, answered in JSON.
pub async fn refresh_grant(
    http: &reqwest::Client,
    url: &str,
    (client_id, secret): (&str, &str),
    refresh_token: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{url}/login/oauth/access_token"))
        .header("Accept", "application/json")
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
