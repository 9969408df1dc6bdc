//! Starting a real refreshd on a random port with its own database file and a clock the test
//! moves, plus the fixtures most tests need.

pub mod flaky;
pub mod process;

use std::sync::Arc;

use refreshd::{Config, RunningServer};
use refreshd_core::{AppKind, ClientId, ClientSecret, Lifetimes, ManualClock, Scopes, Timestamp};
use refreshd_provider::{Provider, TokenAnswer};
use refreshd_store::{App, NewApp, NewUser, User};
use serde_json::Value;

pub const START: Timestamp = Timestamp(1_800_000_000);

pub struct TestApp {
    pub server: RunningServer,
    pub url: String,
    pub clock: ManualClock,
    pub provider: Provider,
    pub http: reqwest::Client,
    pub app: App,
    pub secret: String,
    pub user: User,
    _dir: tempfile::TempDir,
}

pub async fn spawn() -> TestApp {
    spawn_with(Lifetimes::default()).await
}

pub async fn spawn_with(lifetimes: Lifetimes) -> TestApp {
    spawn_configured(|config| config.lifetimes = lifetimes).await
}

/// A server whose configuration `configure` adjusts.
pub async fn spawn_configured(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        database_url: refreshd_store::testing::scratch_database(dir.path())
            .await
            .into(),
        master_key: Some(process::TEST_MASTER_KEY.to_owned().into()),
        ..Config::default()
    };
    configure(&mut config);
    let lifetimes = config.lifetimes;
    let clock = ManualClock::at(START);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = refreshd::launch(&config, listener, Arc::new(clock.clone()))
        .await
        .unwrap();
    let url = server.url();
    let provider = Provider {
        store: config.open_store().await.unwrap(),
        clock: Arc::new(clock.clone()),
        lifetimes,
        public_url: url.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        oidc: Default::default(),
    };
    let (app, secret) = create_app(&provider, AppKind::GithubApp, true).await;
    let user = provider
        .store
        .create_user(
            NewUser {
                login: refreshd_core::Login::parse("octocat").unwrap(),
                name: Some("The Octocat".into()),
                email: None,
            },
            START,
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    TestApp {
        server,
        url,
        clock,
        provider,
        http,
        app,
        secret,
        user,
        _dir: dir,
    }
}

pub async fn create_app(
    provider: &Provider,
    kind: AppKind,
    expiring_tokens: bool,
) -> (App, String) {
    let secret = ClientSecret::generate(kind);
    let new = NewApp {
        client_id: ClientId::generate(kind),
        name: "Test app".into(),
        kind,
        redirect_uri: "http://localhost:9999/callback".into(),
        secret_digest: secret.digest(),
        expiring_tokens,
        device_flow: false,
        owner_id: None,
    };
    let app = provider.store.create_app(new, START).await.unwrap();
    (app, secret.expose().to_owned())
}

impl TestApp {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A fresh token family for the fixture user, as `refreshd token issue` mints it.
    pub async fn issue(&self, app: &App) -> TokenAnswer {
        refreshd_provider::issue_family(&self.provider, app, self.user.id, &Scopes::parse("repo"))
            .await
            .unwrap()
    }

    /// A code for `app`, bound to `redirect_uri` when given.
    pub async fn code_for(&self, app: &App, redirect_uri: Option<&str>) -> String {
        let redirect_uri = redirect_uri.map(str::to_owned);
        refreshd_provider::issue_code(
            &self.provider,
            app,
            &self.user,
            &Scopes::parse("openid email"),
            redirect_uri,
            None,
            true,
        )
        .await
        .unwrap()
    }

    pub async fn code(&self, challenge: Option<(&str, &str)>) -> String {
        let challenge = challenge.map(|(c, m)| (c.to_owned(), m.to_owned()));
        refreshd_provider::issue_code(
            &self.provider,
            &self.app,
            &self.user,
            &Scopes::parse("repo"),
            None,
            challenge,
            true,
        )
        .await
        .unwrap()
    }

    /// POSTs form parameters (client credentials included) to the token endpoint, asking for JSON.
    pub async fn token(&self, params: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
        self.token_for(&self.app, &self.secret, params).await
    }

    /// The same, for `app` with its `secret`.
    pub async fn token_for(
        &self,
        app: &App,
        secret: &str,
        params: &[(&str, &str)],
    ) -> (reqwest::StatusCode, Value) {
        let mut form = vec![
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret),
        ];
        form.extend_from_slice(params);
        let response = self
            .http
            .post(self.at("/login/oauth/access_token"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> (reqwest::StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Creates the user `login`, with a name and an email address when given.
    pub async fn create_user(&self, login: &str, name: Option<&str>, email: Option<&str>) -> User {
        let new = NewUser {
            login: refreshd_core::Login::parse(login).unwrap(),
            name: name.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        self.provider.store.create_user(new, START).await.unwrap()
    }

    /// The status `GET /user` answers for an access token.
    pub async fn user_status(&self, access_token: &str) -> u16 {
        self.http
            .get(self.at("/user"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

pub fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {v}"))
}

/// Runs `tests/js/<script>` with Node.js and `env` (the packages `scripts/test` installs with
/// npm; `package` is one the script needs). Panics, with the script's output and `context()`,
/// unless it exits 0 having printed `marker`.
pub async fn run_js(
    script: &str,
    package: &str,
    env: &[(&str, &str)],
    context: impl FnOnce() -> String,
) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js");
    assert!(
        dir.join("node_modules").join(package).exists(),
        "{package} is not installed: run `npm ci --prefix tests/js` (scripts/test does)"
    );
    let output = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let marker = format!("{}: all checks passed", script.trim_end_matches(".mjs"));
    assert!(
        output.status.success() && stdout.contains(&marker),
        "{script} failed:\n{stdout}\n{stderr}\n{}",
        context()
    );
}
