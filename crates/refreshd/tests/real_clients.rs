//! Real GitHub client libraries against a running refreshd: the Rust `oauth2` crate in
//! process, and `@octokit/oauth-methods` in a Node.js process (installed by `scripts/test`).

mod common;

use std::path::PathBuf;

use common::spawn;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl,
};

#[tokio::test]
async fn the_oauth2_crate_exchanges_a_code_and_refreshes() {
    let t = spawn().await;
    let client = BasicClient::new(ClientId::new(t.app.client_id.as_str().to_owned()))
        .set_client_secret(ClientSecret::new(t.secret.clone()))
        .set_auth_uri(AuthUrl::new(t.at("/login/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(t.at("/login/oauth/access_token")).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let code = t.code(None).await;
    let first = client
        .exchange_code(AuthorizationCode::new(code))
        .request_async(&http)
        .await
        .unwrap();
    assert!(first.access_token().secret().starts_with("ghu_"));
    assert_eq!(
        first.expires_in(),
        Some(std::time::Duration::from_secs(28_800))
    );
    let refresh = first
        .refresh_token()
        .expect("an expiring grant has a refresh token")
        .clone();
    assert_eq!(t.user_status(first.access_token().secret()).await, 200);

    let second = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        second.access_token().secret(),
        first.access_token().secret()
    );
    assert_eq!(t.user_status(first.access_token().secret()).await, 401);
    assert_eq!(t.user_status(second.access_token().secret()).await, 200);

    let bogus = RefreshToken::new("ghr_not_a_token".into());
    assert!(
        client
            .exchange_refresh_token(&bogus)
            .request_async(&http)
            .await
            .is_err()
    );
}

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

#[tokio::test]
async fn octokit_oauth_methods_work_unchanged() {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/@octokit/oauth-methods").exists(),
        "the Node.js test clients are not installed: run `npm ci --prefix tests/js` (scripts/test does)"
    );
    let t = spawn().await;
    let code = t.code(None).await;
    let other = t.issue(&t.app).await;
    let output = tokio::process::Command::new("node")
        .arg("octokit.mjs")
        .current_dir(&dir)
        .env("REFRESHD_URL", &t.url)
        .env("CLIENT_ID", t.app.client_id.as_str())
        .env("CLIENT_SECRET", &t.secret)
        .env("CODE", &code)
        .env("OTHER_ACCESS_TOKEN", &other.access_token)
        .output()
        .await
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "octokit checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("octokit: all checks passed"), "{stdout}");
    assert_eq!(
        t.user_status(&other.access_token).await,
        401,
        "deleteAuthorization took effect"
    );
}
