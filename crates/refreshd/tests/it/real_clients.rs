//! Real GitHub client libraries against a running refreshd: the Rust `oauth2` crate in
//! process, and `@octokit/oauth-methods` in a Node.js process (installed by `scripts/test`).

use crate::common::{run_js, spawn};
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

#[tokio::test]
async fn octokit_oauth_methods_work_unchanged() {
    let t = spawn().await;
    let code = t.code(None).await;
    let other = t.issue(&t.app).await;
    let env = [
        ("REFRESHD_URL", t.url.as_str()),
        ("CLIENT_ID", t.app.client_id.as_str()),
        ("CLIENT_SECRET", &t.secret),
        ("CODE", &code),
        ("OTHER_ACCESS_TOKEN", &other.access_token),
    ];
    run_js("octokit.mjs", "@octokit/oauth-methods", &env, String::new).await;
    assert_eq!(
        t.user_status(&other.access_token).await,
        401,
        "deleteAuthorization took effect"
    );
}
