//! The pages at the HTTP level, as an attacker or a careless client meets them: forged and
//! stale forms, oversized and mistyped bodies, open redirects, foreign redirect URIs, other
//! people's apps, replayed sessions, and what the authorize endpoints send back to apps.
//! (The whole flow in a real browser is tests/it/browser.rs.)

use std::collections::HashMap;

use crate::common::process::Server;
use crate::common::{TestApp, spawn, spawn_configured};
use refreshd_core::{AppKind, ClientId, ClientSecret};
use refreshd_provider::TrustedProxies;
use refreshd_store::{App, NewApp};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

pub(crate) const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "http://localhost:9999/callback";

/// A cookie-keeping client that follows no redirects.
pub(crate) struct Visitor {
    http: reqwest::Client,
    base: String,
    pub(crate) cookies: HashMap<String, String>,
    /// Sent as `X-Forwarded-For`, as a proxy in front of refreshd would.
    forwarded_for: Option<String>,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap())
    }

    /// The value of the first hidden `csrf` field.
    pub(crate) fn csrf(&self) -> String {
        let start = self.body.find(r#"name="csrf" value=""#).expect("a form") + 19;
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }

    /// The query of a redirect to the app's `CALLBACK`.
    fn callback_params(&self) -> HashMap<String, String> {
        self.params_at(CALLBACK)
    }

    /// The query of a redirect to `target`.
    fn params_at(&self, target: &str) -> HashMap<String, String> {
        let location = self.location().expect("a redirect");
        assert!(location.starts_with(&format!("{target}?")), "{location}");
        let url = reqwest::Url::parse(location).unwrap();
        url.query_pairs().into_owned().collect()
    }
}

impl Visitor {
    pub(crate) fn new(t: &TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: t.url.clone(),
            cookies: HashMap::new(),
            forwarded_for: None,
        }
    }

    /// A visitor at `client`, as a proxy on 127.0.0.1 names it in `X-Forwarded-For`.
    pub(crate) fn at(t: &TestApp, client: &str) -> Self {
        Self {
            forwarded_for: Some(client.to_owned()),
            ..Self::new(t)
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut request = request.header("cookie", cookie.join("; "));
        if let Some(client) = &self.forwarded_for {
            request = request.header("x-forwarded-for", client);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, rest) = set.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Answers a GitHub consent page for `app` (scope `repo`, state `st`) with `action`.
    async fn decide(
        &mut self,
        consent: &Answer,
        app: &App,
        action: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let csrf = consent.csrf();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("client_id", app.client_id.as_str()),
            ("scope", "repo"),
            ("state", "st"),
            ("action", action),
        ];
        form.extend_from_slice(extra);
        self.post("/login/oauth/authorize", &form).await
    }

    /// Signs in through `/login`; the answer of the form post.
    pub(crate) async fn sign_in(&mut self, login: &str, password: &str) -> Answer {
        let csrf = self.get("/login").await.csrf();
        let form = [
            ("csrf", csrf.as_str()),
            ("username", login),
            ("password", password),
            ("return_to", "/settings/developers"),
        ];
        self.post("/session", &form).await
    }
}

/// Creates `login`, with `PASSWORD`.
pub(crate) async fn another_user(t: &TestApp, login: &str) {
    let now = t.provider.clock.now();
    let login = refreshd_core::Login::parse(login).unwrap();
    let new = refreshd_store::NewUser {
        login: login.clone(),
        name: None,
        email: None,
    };
    t.provider.store.create_user(new, now).await.unwrap();
    let hash = refreshd_core::password::hash(PASSWORD);
    let store = &t.provider.store;
    assert!(store.set_password(&login, &hash, now).await.unwrap());
}

pub(crate) async fn with_password(t: &TestApp) {
    let hash = refreshd_core::password::hash(PASSWORD);
    let now = t.provider.clock.now();
    assert!(
        t.provider
            .store
            .set_password(&refreshd_core::Login::parse("octocat").unwrap(), &hash, now)
            .await
            .unwrap()
    );
}

/// An app the fixture user owns, of `kind`, redirecting to `CALLBACK`.
async fn owned_app(t: &TestApp, kind: AppKind) -> (App, String) {
    let secret = ClientSecret::generate(kind);
    let new = NewApp {
        client_id: ClientId::generate(kind),
        name: "Owned app".into(),
        kind,
        redirect_uri: format!("{CALLBACK}\nhttp://localhost:9999/other"),
        secret_digest: secret.digest(),
        expiring_tokens: true,
        device_flow: false,
        owner_id: Some(t.user.id),
    };
    let now = t.provider.clock.now();
    let app = t.provider.store.create_app(new, now).await.unwrap();
    (app, secret.expose().to_owned())
}

/// A token request for `app`, answered in JSON.
async fn exchange(
    t: &TestApp,
    app: &App,
    secret: &str,
    params: &[(&str, &str)],
) -> serde_json::Value {
    t.token_for(app, secret, params).await.1
}

/// The app as stored now.
async fn stored_app(t: &TestApp, app: &App) -> App {
    let found = t.provider.store.find_app(&app.client_id).await.unwrap();
    found.expect("the app is stored")
}

fn authorize_path(app: &App, extra: &str) -> String {
    format!(
        "/login/oauth/authorize?client_id={}&scope=repo&state=st{extra}",
        app.client_id
    )
}

/// A signed-in visitor and an app of theirs.
async fn signed_in() -> (TestApp, Visitor, App, String) {
    let t = spawn().await;
    with_password(&t).await;
    let (app, secret) = owned_app(&t, AppKind::GithubApp).await;
    let mut v = Visitor::new(&t);
    let answer = v.sign_in("octocat", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    (t, v, app, secret)
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_session_cookies_are_guarded() {
    let t = spawn().await;
    with_password(&t).await;
    let mut v = Visitor::new(&t);
    let page = v.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert!(!page.body.contains("<script"));
    assert!(!page.body.contains("style="), "no inline styles either");

    let css = v.get("/refreshd.css").await;
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");

    let signed = v.sign_in("octocat", PASSWORD).await;
    let cookie = signed
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("refreshd_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "http public URL: not Secure");
    let session = v.cookies["refreshd_session"].clone();
    assert!(
        session.len() == 43 && session.bytes().all(|b| b.is_ascii_alphanumeric()),
        "the session cookie is an opaque random value"
    );

    // Behind https, the cookie is Secure.
    let https = spawn_configured(|c| c.public_url = Some("https://refreshd.example".into())).await;
    with_password(&https).await;
    let mut v = Visitor::new(&https);
    let signed = v.sign_in("octocat", PASSWORD).await;
    let secure = signed
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-refreshd_session="))
        .expect("a __Host- session cookie behind https");
    assert!(secure.contains("Secure") && secure.contains("Path=/") && !secure.contains("Domain"));
    let page = v.get("/settings/developers").await;
    assert_eq!(page.status, StatusCode::OK, "the __Host- cookie signs in");
    // The plain name is not read behind https: it could have been planted over http.
    let planted = v.cookies.remove("__Host-refreshd_session").unwrap();
    v.cookies.insert("refreshd_session".into(), planted);
    assert_eq!(
        v.get("/settings/developers").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn sign_in_refuses_wrong_passwords_forged_forms_and_open_redirects() {
    let t = spawn().await;
    with_password(&t).await;
    let mut v = Visitor::new(&t);

    let wrong = v.sign_in("octocat", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Incorrect username or password."));
    let unknown = v.sign_in("nobody", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(!v.cookies.contains_key("refreshd_session"));

    // A form from another site: no pre-session cookie, or a token that does not match it.
    let mut stranger = Visitor::new(&t);
    let form = [
        ("csrf", "x"),
        ("username", "octocat"),
        ("password", PASSWORD),
    ];
    assert_eq!(
        stranger.post("/session", &form).await.status,
        StatusCode::FORBIDDEN
    );
    stranger.get("/login").await;
    assert!(
        stranger.cookies.contains_key("refreshd_csrf"),
        "a pre-session cookie"
    );
    assert_eq!(
        stranger.post("/session", &form).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!stranger.cookies.contains_key("refreshd_session"));

    // return_to never leads off refreshd.
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/ /evil.example",
    ] {
        let mut v = Visitor::new(&t);
        let csrf = v.get("/login").await.csrf();
        let form = [
            ("csrf", csrf.as_str()),
            ("username", "octocat"),
            ("password", PASSWORD),
            ("return_to", evil),
        ];
        let answer = v.post("/session", &form).await;
        assert_eq!(answer.location(), Some("/"), "{evil}");
    }

    // Bodies that are too large or not a form get an error page, not a 500.
    let csrf = v.get("/login").await.csrf();
    let big = "x".repeat(70 * 1024);
    let form = [
        ("csrf", csrf.as_str()),
        ("username", "octocat"),
        ("password", big.as_str()),
    ];
    let answer = v.post("/session", &form).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.body.contains("larger than refreshd accepts"));
    let json = v
        .http
        .post(format!("{}/session", t.url))
        .json(&serde_json::json!({"csrf": csrf}));
    let answer = v.send(json).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = v.post("/session", &[("csrf", csrf.as_str())]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_login_is_locked_for_a_while_after_ten_failed_sign_ins() {
    let t = spawn().await;
    with_password(&t).await;
    another_user(&t, "mona").await;
    // Thirty guesses at once: the attempts are counted before the passwords are checked, so
    // only ten are checked.
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let mut v = Visitor::new(&t);
        guesses.spawn(async move { v.sign_in("Mona", "guess").await.status });
    }
    let statuses = guesses.join_all().await;
    let (checked, refused) = checked_and_refused(&statuses);
    assert_eq!((checked, refused), (10, 20), "{statuses:?}");
    let mut v = Visitor::new(&t);
    let locked = v.sign_in("mona", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("Too many failed sign-ins"));
    assert_eq!(
        Visitor::new(&t).sign_in("octocat", PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "other logins are not affected"
    );
    t.clock.advance(15 * 60);
    assert_eq!(
        Visitor::new(&t).sign_in("mona", PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "the lock ends with its window"
    );
}

/// A server that believes `X-Forwarded-For` from 127.0.0.1, where the tests' requests come
/// from, so a test can post from any address.
async fn behind_a_proxy() -> TestApp {
    let t = spawn_configured(|config| {
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    with_password(&t).await;
    t
}

const ATTACKER: &str = "203.0.113.66";

#[tokio::test]
async fn guesses_from_one_address_do_not_lock_out_the_user_at_another() {
    let t = behind_a_proxy().await;
    for _ in 0..10 {
        let wrong = Visitor::at(&t, ATTACKER).sign_in("octocat", "guess").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let locked = Visitor::at(&t, ATTACKER).sign_in("octocat", PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the 11th attempt from the guessing address is refused, right password or not"
    );
    assert!(locked.body.contains("Too many failed sign-ins"));
    let user = Visitor::at(&t, "198.51.100.7")
        .sign_in("octocat", PASSWORD)
        .await;
    assert_eq!(user.status, StatusCode::SEE_OTHER, "{}", user.body);
    // The guessing address behind a proxy that appends it: the hop the client wrote is not read.
    let spoofing = format!("198.51.100.7, {ATTACKER}");
    let spoofed = Visitor::at(&t, &spoofing)
        .sign_in("octocat", PASSWORD)
        .await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);
    let v6 = Visitor::at(&t, "2001:db8:1:2::1")
        .sign_in("octocat", PASSWORD)
        .await;
    assert_eq!(v6.status, StatusCode::SEE_OTHER, "{}", v6.body);
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let t = spawn().await;
    with_password(&t).await;
    for _ in 0..10 {
        let wrong = Visitor::at(&t, ATTACKER).sign_in("octocat", "guess").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    // Every request comes from 127.0.0.1, whatever the header claims.
    let claimed = Visitor::at(&t, "198.51.100.7")
        .sign_in("octocat", PASSWORD)
        .await;
    assert_eq!(claimed.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn one_address_spraying_a_password_over_many_logins_is_refused_after_thirty() {
    let t = behind_a_proxy().await;
    // Concurrently, as a sprayer would: every login unknown but one, each tried once.
    let mut sprays = tokio::task::JoinSet::new();
    for n in 0..40 {
        let mut v = Visitor::at(&t, ATTACKER);
        let login = if n == 0 {
            "octocat".to_owned()
        } else {
            format!("user{n}")
        };
        sprays.spawn(async move { v.sign_in(&login, "Winter2026!").await.status });
    }
    let statuses = sprays.join_all().await;
    let (checked, refused) = checked_and_refused(&statuses);
    assert_eq!((checked, refused), (30, 10), "{statuses:?}");
    let fresh = Visitor::at(&t, ATTACKER).sign_in("hubot", PASSWORD).await;
    assert_eq!(
        fresh.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a login not tried yet"
    );
    let user = Visitor::at(&t, "198.51.100.7")
        .sign_in("octocat", PASSWORD)
        .await;
    assert_eq!(
        user.status,
        StatusCode::SEE_OTHER,
        "other addresses are not slowed"
    );
    t.clock.advance(15 * 60);
    let later = Visitor::at(&t, ATTACKER).sign_in("octocat", PASSWORD).await;
    assert_eq!(
        later.status,
        StatusCode::SEE_OTHER,
        "the lock ends with its window"
    );
}

#[tokio::test]
async fn without_the_client_address_sign_in_fails_closed() {
    let t = spawn().await;
    with_password(&t).await;
    // The pages served without connection info, as a serve loop that forgot it would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let pages = refreshd_provider::web::router(t.provider.clone());
    tokio::spawn(async move { axum::serve(listener, pages).await });
    let mut v = Visitor {
        base,
        ..Visitor::new(&t)
    };
    let refused = v.sign_in("octocat", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        refused
            .body
            .contains("cannot tell where this sign-in comes from")
    );
    assert!(!v.cookies.contains_key("refreshd_session"), "not signed in");
}

/// `logs` without the terminal colour codes the log formatter may add.
fn without_colours(logs: &str) -> String {
    let mut plain = String::with_capacity(logs.len());
    let mut in_code = false;
    for c in logs.chars() {
        match (in_code, c) {
            (false, '\x1b') => in_code = true,
            (false, c) => plain.push(c),
            (true, 'm') => in_code = false,
            (true, _) => {}
        }
    }
    plain
}

#[tokio::test]
async fn signing_in_clears_the_logins_count_at_that_address() {
    let t = behind_a_proxy().await;
    for _ in 0..9 {
        let wrong = Visitor::at(&t, ATTACKER).sign_in("octocat", "typo").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let right = Visitor::at(&t, ATTACKER).sign_in("octocat", PASSWORD).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    for _ in 0..9 {
        let wrong = Visitor::at(&t, ATTACKER).sign_in("octocat", "typo").await;
        assert_eq!(
            wrong.status,
            StatusCode::UNAUTHORIZED,
            "the login's count began again"
        );
    }
}

#[tokio::test]
async fn a_lockout_is_an_audit_event_logged_once_without_the_password() {
    let server = Server::start(&[("REFRESHD_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).await;
    server.create_user_with_password("octocat", PASSWORD);
    let guess = "hunter2 guess";
    for _ in 0..10 {
        let status = server.sign_in_from(ATTACKER, "OctoCat", guess).await;
        assert_eq!(status, 401);
    }
    for _ in 0..3 {
        assert_eq!(server.sign_in_from(ATTACKER, "octocat", guess).await, 429);
    }
    // Thirty failures at other logins from one address lock the address.
    let sprayer = "2001:db8:5:6::9";
    for n in 0..30 {
        let login = format!("user{n}");
        assert_eq!(server.sign_in_from(sprayer, &login, guess).await, 401);
    }
    // Another address in the same /64 is the same client.
    let neighbour = "2001:db8:5:6::77";
    assert_eq!(
        server.sign_in_from(neighbour, "octocat", PASSWORD).await,
        429
    );
    assert_eq!(
        server.sign_in_from("10.9.9.9", "octocat", PASSWORD).await,
        303
    );

    let logs = without_colours(&server.logs());
    let events: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(r#"event="signin.locked""#))
        .collect();
    assert_eq!(events.len(), 2, "one event per lock: {events:#?}");
    let login = events[0];
    assert!(
        login.contains("WARN") && login.contains("refreshd::audit"),
        "{login}"
    );
    assert!(login.contains(&format!("client={ATTACKER}")), "{login}");
    assert!(
        login.contains("login=octocat") && login.contains(r#"scope="login""#),
        "{login}"
    );
    let address = events[1];
    assert!(address.contains("client=2001:db8:5:6::/64"), "{address}");
    assert!(address.contains(r#"scope="address""#), "{address}");
    assert!(address.contains("login=user29"), "{address}");
    assert!(
        !logs.contains(guess) && !logs.contains(PASSWORD),
        "no password is logged"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session_everywhere() {
    let (_t, mut v, _app, _) = signed_in().await;
    let stolen = v.cookies["refreshd_session"].clone();
    let page = v.get("/settings/developers").await;
    assert_eq!(page.status, StatusCode::OK);
    let answer = v.post("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(answer.location(), Some("/login"));
    v.cookies.insert("refreshd_session".into(), stolen);
    let again = v.get("/settings/developers").await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );
    assert_eq!(
        again.location(),
        Some("/login?return_to=%2Fsettings%2Fdevelopers")
    );
}

#[tokio::test]
async fn foreign_clients_and_redirect_uris_get_an_error_page_and_no_redirect() {
    let (t, mut v, app, _) = signed_in().await;
    let cases = [
        format!("/login/oauth/authorize?client_id=Iv23nosuchclient0000&redirect_uri={CALLBACK}"),
        "/login/oauth/authorize?redirect_uri=http://localhost:9999/callback".into(),
        authorize_path(&app, "&redirect_uri=http://evil.example/callback"),
        authorize_path(&app, "&redirect_uri=http://localhost:9999/callback/deeper"),
        // A GitHub app is not a Google client, and Google needs the redirect URI spelled out.
        format!(
            "/o/oauth2/v2/auth?client_id={}&redirect_uri={CALLBACK}&response_type=code&scope=email",
            app.client_id
        ),
        authorize_path(&app, "&state=twice"),
    ];
    for path in cases {
        let answer = v.get(&path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer.location(), None, "{path}");
        assert!(answer.body.contains("class=\"error\""), "{path}");
    }
    let (google, _) = owned_app(&t, AppKind::GoogleClient).await;
    let path = format!(
        "/o/oauth2/v2/auth?client_id={}&response_type=code&scope=email",
        google.client_id
    );
    let answer = v.get(&path).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("redirect_uri"));
}

#[tokio::test]
async fn consent_is_asked_once_for_the_same_scopes_and_again_for_more() {
    let (t, mut v, app, secret) = signed_in().await;
    let consent = v.get(&authorize_path(&app, "")).await;
    assert_eq!(consent.status, StatusCode::OK);
    assert_eq!(consent.headers["x-frame-options"], "DENY");
    assert!(consent.body.contains("Authorize Owned app"));

    // A forged decision (another token) is refused, and nothing is sent to the app.
    let forged = [
        ("csrf", "forged"),
        ("client_id", app.client_id.as_str()),
        ("scope", "repo"),
        ("action", "authorize"),
    ];
    let answer = v.post("/login/oauth/authorize", &forged).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.location(), None);

    let approved = v.decide(&consent, &app, "authorize", &[]).await;
    assert_eq!(approved.status, StatusCode::FOUND);
    let params = approved.callback_params();
    assert_eq!(params["state"], "st");
    let token = exchange(
        &t,
        &app,
        &secret,
        &[("code", &params["code"]), ("redirect_uri", CALLBACK)],
    )
    .await;
    assert!(
        token["access_token"].as_str().unwrap().starts_with("ghu_"),
        "{token}"
    );

    // Same scopes: straight back with a code. More: the page again.
    let again = v.get(&authorize_path(&app, "")).await;
    assert_eq!(again.status, StatusCode::FOUND);
    assert!(again.callback_params().contains_key("code"));
    let more = v
        .get(&authorize_path(&app, "&scope=repo%20gist").replace("scope=repo&", ""))
        .await;
    assert_eq!(more.status, StatusCode::OK, "{}", more.body);
    assert!(more.body.contains("gist"));

    // The second registered URI works too, and the code is bound to it.
    let other = v
        .get(&authorize_path(
            &app,
            "&redirect_uri=http://localhost:9999/other",
        ))
        .await;
    let code = other.params_at("http://localhost:9999/other")["code"].clone();
    let elsewhere = [("code", code.as_str()), ("redirect_uri", CALLBACK)];
    let refused = exchange(&t, &app, &secret, &elsewhere).await;
    assert_eq!(refused["error"], "redirect_uri_mismatch", "{refused}");

    // A loopback redirect URI matches on any port (native apps), end to end.
    let native = "http://localhost:51234/callback";
    let answer = v
        .get(&authorize_path(&app, &format!("&redirect_uri={native}")))
        .await;
    let code = answer.params_at(native)["code"].clone();
    let token = exchange(
        &t,
        &app,
        &secret,
        &[("code", &code), ("redirect_uri", native)],
    )
    .await;
    assert!(token["access_token"].is_string(), "{token}");
}

/// Google's token endpoint, for a Google-dialect app.
async fn google_exchange(t: &TestApp, app: &App, secret: &str, code: &str) -> serde_json::Value {
    let form = [
        ("client_id", app.client_id.as_str()),
        ("client_secret", secret),
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    let response = t
        .http
        .post(t.at("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn google_gives_a_refresh_token_for_offline_access_the_user_just_approved() {
    let (t, mut v, _, _) = signed_in().await;
    let (app, secret) = owned_app(&t, AppKind::GoogleClient).await;
    let path = "/o/oauth2/v2/auth";
    let base = format!(
        "{path}?client_id={}&redirect_uri={CALLBACK}&response_type=code&scope=openid%20email",
        app.client_id
    );
    let approve = async |v: &mut Visitor, query: &str| {
        let consent = v.get(&format!("{base}{query}")).await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
        let csrf = consent.csrf();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("action", "authorize"),
        ];
        if query.contains("offline") {
            form.push(("access_type", "offline"));
        }
        let approved = v.post(path, &form).await;
        approved.callback_params()["code"].clone()
    };

    // Online access (Google's default): no refresh token.
    let code = approve(&mut v, "").await;
    let online = google_exchange(&t, &app, &secret, &code).await;
    assert!(
        online["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29."),
        "{online}"
    );
    assert!(online.get("refresh_token").is_none(), "{online}");

    // Offline, already approved: the consent page is skipped, and so is the refresh token.
    let skipped = v.get(&format!("{base}&access_type=offline")).await;
    let code = skipped.callback_params()["code"].clone();
    let again = google_exchange(&t, &app, &secret, &code).await;
    assert!(again.get("refresh_token").is_none(), "{again}");

    // Offline with prompt=consent: approved on the page, so a refresh token comes.
    let code = approve(&mut v, "&access_type=offline&prompt=consent").await;
    let offline = google_exchange(&t, &app, &secret, &code).await;
    assert!(
        offline["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("1//"),
        "{offline}"
    );

    // include_granted_scopes: the new grant also covers what was approved before.
    let more = base.replace("scope=openid%20email", "scope=profile");
    let consent = v.get(&format!("{more}&include_granted_scopes=true")).await;
    let csrf = consent.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "profile"),
        ("include_granted_scopes", "true"),
        ("action", "authorize"),
    ];
    let approved = v.post(path, &form).await.callback_params();
    assert_eq!(approved["scope"], "openid email profile");
    let token = google_exchange(&t, &app, &secret, &approved["code"]).await;
    assert_eq!(token["scope"], "openid email profile");
    // Without it, only what is asked for.
    let skipped = v.get(&more).await.callback_params();
    assert_eq!(skipped["scope"], "profile");
}

/// The claims of an id_token (its signature is checked in tests/it/oidc.rs).
fn id_token_claims(answer: &serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let id_token = answer["id_token"].as_str().expect("an id_token");
    let payload = id_token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test]
async fn the_authorize_requests_nonce_comes_back_in_the_id_token() {
    let (t, mut v, github_app, _) = signed_in().await;
    let (app, secret) = owned_app(&t, AppKind::GoogleClient).await;
    let path = "/o/oauth2/v2/auth";
    let base = format!(
        "{path}?client_id={}&redirect_uri={CALLBACK}&response_type=code&scope=openid%20email",
        app.client_id
    );

    // Through the consent page: the page carries the nonce, the code keeps it.
    let nonce = "n-0S6_WzA2Mj+/ %é";
    let url = reqwest::Url::parse_with_params("http://x/", [("nonce", nonce)]).unwrap();
    let query = url.query().unwrap();
    let consent = v.get(&format!("{base}&{query}")).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(consent.body.contains(r#"name="nonce""#), "{}", consent.body);
    let csrf = consent.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("nonce", nonce),
        ("action", "authorize"),
    ];
    let code = v.post(path, &form).await.callback_params()["code"].clone();
    let answer = google_exchange(&t, &app, &secret, &code).await;
    assert_eq!(id_token_claims(&answer)["nonce"], nonce, "{answer}");

    // Consent remembered: straight back with a code that keeps it too.
    let skipped = v.get(&format!("{base}&nonce=second")).await;
    let code = skipped.callback_params()["code"].clone();
    let answer = google_exchange(&t, &app, &secret, &code).await;
    assert_eq!(id_token_claims(&answer)["nonce"], "second", "{answer}");

    // Without a nonce, or with an empty one: no claim.
    for without in [base.clone(), format!("{base}&nonce=")] {
        let code = v.get(&without).await.callback_params()["code"].clone();
        let answer = google_exchange(&t, &app, &secret, &code).await;
        let claims = id_token_claims(&answer);
        assert!(claims.get("nonce").is_none(), "{without}: {claims}");
        assert_eq!(claims["aud"], app.client_id.as_str());
    }

    // Too long: refused back to the app, with no code.
    let long = "n".repeat(refreshd_provider::MAX_NONCE_LEN + 1);
    let refused = v.get(&format!("{base}&state=s&nonce={long}")).await;
    let params = refused.callback_params();
    assert_eq!(params["error"], "invalid_request", "{params:?}");
    assert_eq!(params["state"], "s");
    assert!(!params.contains_key("code"));
    let longest = "n".repeat(refreshd_provider::MAX_NONCE_LEN);
    let code = v.get(&format!("{base}&nonce={longest}")).await;
    assert!(code.callback_params().contains_key("code"));

    // GitHub's dialect has no id_token: a nonce there is ignored as before.
    let github = v
        .get(&authorize_path(&github_app, &format!("&nonce={long}")))
        .await;
    assert_eq!(github.status, StatusCode::OK, "{}", github.body);
}

#[tokio::test]
async fn problems_after_the_client_checks_out_go_back_to_the_app() {
    let (t, mut v, app, _) = signed_in().await;
    let refusal = v
        .get(&authorize_path(&app, "&code_challenge_method=S256"))
        .await;
    let params = refusal.callback_params();
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["state"], "st");
    let many = (0..3000)
        .map(|n| format!("s{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let fifty_one = (0..51)
        .map(|n| format!("s{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        (format!("&scope={many}"), "invalid_scope"),
        (format!("&scope={fifty_one}"), "invalid_scope"),
        (format!("&scope={}", "s".repeat(201)), "invalid_scope"),
        (
            "&code_challenge=short&code_challenge_method=S256".into(),
            "invalid_request",
        ),
        ("&prompt=login".into(), "invalid_request"),
    ];
    for (extra, error) in cases {
        let path = authorize_path(&app, &extra).replacen(
            "scope=repo&",
            "",
            usize::from(extra.starts_with("&scope")),
        );
        let answer = v.get(&path).await;
        assert_eq!(
            answer.status,
            StatusCode::FOUND,
            "{extra:.60}: {}",
            answer.body
        );
        assert_eq!(answer.callback_params()["error"], error, "{extra:.60}");
    }

    let consent = v.get(&authorize_path(&app, "")).await;
    let cancelled = v.decide(&consent, &app, "cancel", &[]).await;
    let params = cancelled.callback_params();
    assert_eq!(params["error"], "access_denied");
    assert!(!params.contains_key("code"));

    let (google, _) = owned_app(&t, AppKind::GoogleClient).await;
    let base = format!(
        "/o/oauth2/v2/auth?client_id={}&redirect_uri={CALLBACK}&state=g",
        google.client_id
    );
    let token = v
        .get(&format!("{base}&response_type=token&scope=email"))
        .await;
    assert_eq!(
        token.callback_params()["error"],
        "unsupported_response_type"
    );
    let no_scope = v.get(&format!("{base}&response_type=code")).await;
    assert_eq!(no_scope.callback_params()["error"], "invalid_request");
    let silent = v
        .get(&format!(
            "{base}&response_type=code&scope=email&prompt=none"
        ))
        .await;
    assert_eq!(silent.callback_params()["error"], "consent_required");

    let mut stranger = Visitor::new(&t);
    let silent = stranger
        .get(&format!(
            "{base}&response_type=code&scope=email&prompt=none"
        ))
        .await;
    assert_eq!(silent.callback_params()["error"], "login_required");
    let sign_in = stranger
        .get(&format!("{base}&response_type=code&scope=email"))
        .await;
    assert_eq!(sign_in.status, StatusCode::OK);
    assert!(sign_in.body.contains("Sign in to continue to"));

    // Signing in on the authorize page itself: a wrong password shows the page again with
    // the request still carried; the right one goes on to the consent page.
    let csrf = sign_in.csrf();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("client_id", google.client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "email"),
        ("state", "g"),
        ("action", "sign_in"),
        ("username", "octocat"),
        ("password", "not it"),
    ];
    let wrong = stranger.post("/o/oauth2/v2/auth", &form).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Incorrect username or password."));
    assert!(wrong.body.contains(r#"name="state" value="g""#));
    assert!(
        !stranger
            .cookies
            .keys()
            .any(|k| k.ends_with("refreshd_session"))
    );
    form.pop();
    form.push(("password", PASSWORD));
    let consent = stranger.post("/o/oauth2/v2/auth", &form).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(consent.body.contains("Authorize Owned app"));
    assert!(stranger.cookies.contains_key("refreshd_session"));
}

#[tokio::test]
async fn pkce_from_the_authorize_request_binds_the_code() {
    let (t, mut v, app, secret) = signed_in().await;
    let verifier = "x".repeat(43);
    let challenge = verifier.clone(); // the plain method: the challenge is the verifier
    let pkce = format!("&code_challenge={challenge}&code_challenge_method=plain");
    let consent = v.get(&authorize_path(&app, &pkce)).await;
    let pkce_fields = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ];
    let approved = v.decide(&consent, &app, "authorize", &pkce_fields).await;
    let code = approved.callback_params()["code"].clone();
    let body = exchange(&t, &app, &secret, &[("code", &code)]).await;
    assert_eq!(
        body["error"], "bad_verification_code",
        "no verifier: {body}"
    );
    let body = exchange(
        &t,
        &app,
        &secret,
        &[("code", &code), ("code_verifier", &verifier)],
    )
    .await;
    assert_eq!(
        body["error"], "bad_verification_code",
        "a code is used once, even after a failed check: {body}"
    );

    let consent = v.get(&authorize_path(&app, &pkce)).await;
    assert_eq!(consent.status, StatusCode::FOUND, "already approved");
    let code = consent.callback_params()["code"].clone();
    let body = exchange(
        &t,
        &app,
        &secret,
        &[("code", &code), ("code_verifier", &verifier)],
    )
    .await;
    assert!(
        body["access_token"].as_str().unwrap().starts_with("ghu_"),
        "{body}"
    );
}

#[tokio::test]
async fn only_an_apps_owner_sees_and_changes_its_settings() {
    let (t, mut v, app, _) = signed_in().await;
    let path = format!("/settings/applications/{}", app.client_id);
    let page = v.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(app.client_id.as_str()));

    // Someone else: not found, whatever they try.
    another_user(&t, "hubot").await;
    let mut other = Visitor::new(&t);
    other.sign_in("hubot", PASSWORD).await;
    assert_eq!(other.get(&path).await.status, StatusCode::NOT_FOUND);
    let csrf = other.get("/settings/developers").await.csrf();
    let answer = other
        .post(&format!("{path}/secret"), &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = other
        .post(
            &format!("{path}/expiration"),
            &[("csrf", &csrf), ("expiring", "off")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let stored = stored_app(&t, &app).await;
    assert!(stored.expiring_tokens);
    assert_eq!(stored.secret_digest, app.secret_digest);

    // The owner: a new secret is shown once and replaces the old one; bad redirect URIs are
    // refused; the expiration switch flips.
    let csrf = page.csrf();
    let renewed = v.post(&format!("{path}/secret"), &[("csrf", &csrf)]).await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert!(renewed.body.contains("id=\"client-secret\""));
    let later = v.get(&path).await;
    assert_eq!(later.status, StatusCode::OK);
    assert!(!later.body.contains("id=\"client-secret\""));
    let stored = stored_app(&t, &app).await;
    assert_ne!(stored.secret_digest, app.secret_digest);

    for bad in ["javascript:alert(1)", "https://a.example/cb#x", ""] {
        let answer = v
            .post(
                &format!("{path}/redirect_uris"),
                &[("csrf", &csrf), ("redirect_uris", bad)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let uris = "https://a.example/cb\r\nhttps://b.example/cb";
    let answer = v
        .post(
            &format!("{path}/redirect_uris"),
            &[("csrf", &csrf), ("redirect_uris", uris)],
        )
        .await;
    assert_eq!(answer.location(), Some(path.as_str()));
    let stored = stored_app(&t, &app).await;
    assert_eq!(
        stored.redirect_uris().collect::<Vec<_>>(),
        ["https://a.example/cb", "https://b.example/cb"]
    );

    let answer = v
        .post(
            &format!("{path}/expiration"),
            &[("csrf", &csrf), ("expiring", "off")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let stored = stored_app(&t, &app).await;
    assert!(!stored.expiring_tokens);
    let answer = v
        .post(
            &format!("{path}/tokens/not-a-number/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// GitHub's "Enable Device Flow" switch: off by default, flipped by the owner alone with a valid
/// CSRF token, and the device flow follows it.
#[tokio::test]
async fn the_device_flow_switch_turns_the_device_flow_on_and_off() {
    let (t, mut v, app, _) = signed_in().await;
    let path = format!("/settings/applications/{}", app.client_id);
    let switch = format!("{path}/device_flow");
    let device_code = || async {
        let answer = t
            .http
            .post(t.at("/login/device/code"))
            .header("accept", "application/json")
            .form(&[("client_id", app.client_id.as_str())])
            .send()
            .await
            .unwrap();
        answer.json::<serde_json::Value>().await.unwrap()
    };
    let page = v.get(&path).await;
    assert!(page.body.contains("Enable Device Flow"), "{}", page.body);
    assert!(!stored_app(&t, &app).await.device_flow, "off by default");
    assert_eq!(device_code().await["error"], "device_flow_disabled");

    another_user(&t, "hubot").await;
    let mut other = Visitor::new(&t);
    other.sign_in("hubot", PASSWORD).await;
    let other_csrf = other.get("/settings/developers").await.csrf();
    let answer = other
        .post(&switch, &[("csrf", &other_csrf), ("device_flow", "on")])
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = v
        .post(&switch, &[("csrf", "forged"), ("device_flow", "on")])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    let csrf = page.csrf();
    let answer = v
        .post(&switch, &[("csrf", &csrf), ("device_flow", "maybe")])
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(!stored_app(&t, &app).await.device_flow);

    let answer = v
        .post(&switch, &[("csrf", &csrf), ("device_flow", "on")])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.location(),
        Some(format!("{path}#device-flow").as_str())
    );
    assert!(stored_app(&t, &app).await.device_flow);
    assert!(v.get(&path).await.body.contains("Disable Device Flow"));
    let started = device_code().await;
    assert!(started["device_code"].is_string(), "{started}");

    let answer = v
        .post(&switch, &[("csrf", &csrf), ("device_flow", "off")])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(!stored_app(&t, &app).await.device_flow);
    assert_eq!(device_code().await["error"], "device_flow_disabled");
}

/// How many sign-ins were checked (401) and how many refused unchecked (429).
fn checked_and_refused(statuses: &[StatusCode]) -> (usize, usize) {
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    )
}
