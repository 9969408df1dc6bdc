//! `POST /login/oauth/access_token` over real HTTP: grants, rotation, reuse, formats, bad input.

use crate::common;
use crate::common::{field, spawn};
use refreshd_core::{AppKind, Clock};
use serde_json::Value;

const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn a_code_is_exchanged_once_for_a_working_expiring_pair() {
    let t = spawn().await;
    let code = t.code(None).await;
    let (status, body) = t.token(&[("code", &code)]).await;
    assert_eq!(status, 200);
    assert!(field(&body, "access_token").starts_with("ghu_"), "{body}");
    assert_eq!(field(&body, "access_token").len(), 40);
    assert!(field(&body, "refresh_token").starts_with("ghr_"));
    assert_eq!(field(&body, "refresh_token").len(), 80);
    assert_eq!(body["expires_in"], 28800);
    assert_eq!(body["refresh_token_expires_in"], 15811200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "repo");
    assert_eq!(t.user_status(field(&body, "access_token")).await, 200);

    let (status, again) = t.token(&[("code", &code)]).await;
    assert_eq!(status, 200, "GitHub answers its errors with 200");
    assert_eq!(error_of(&again), "bad_verification_code");
    assert_eq!(
        again["error_description"],
        "The code passed is incorrect or expired."
    );
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let t = spawn().await;
    let code = t.code(None).await;
    t.clock.advance(600);
    assert_eq!(
        error_of(&t.token(&[("code", &code)]).await.1),
        "bad_verification_code"
    );
}

#[tokio::test]
async fn a_redirect_uri_must_match_the_registered_one() {
    let t = spawn().await;
    let code = t.code(None).await;
    let (_, body) = t
        .token(&[("code", &code), ("redirect_uri", "http://evil.example/cb")])
        .await;
    assert_eq!(error_of(&body), "redirect_uri_mismatch");
    assert_eq!(
        body["error_description"],
        "The redirect_uri MUST match the registered callback URL for this application."
    );
    let code = t.code(None).await;
    let (_, body) = t
        .token(&[
            ("code", &code),
            ("redirect_uri", "http://localhost:9999/callback"),
        ])
        .await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn pkce_s256_and_plain_are_checked() {
    let t = spawn().await;
    let code = t.code(Some((RFC7636_CHALLENGE, "S256"))).await;
    assert_eq!(
        error_of(&t.token(&[("code", &code)]).await.1),
        "bad_verification_code"
    );
    let code = t.code(Some((RFC7636_CHALLENGE, "S256"))).await;
    let wrong = RFC7636_VERIFIER.replace('d', "e");
    assert_eq!(
        error_of(
            &t.token(&[("code", &code), ("code_verifier", &wrong)])
                .await
                .1
        ),
        "bad_verification_code"
    );
    let code = t.code(Some((RFC7636_CHALLENGE, "S256"))).await;
    let (_, body) = t
        .token(&[("code", &code), ("code_verifier", RFC7636_VERIFIER)])
        .await;
    assert!(body["access_token"].is_string(), "{body}");
    let code = t.code(None).await;
    let (_, body) = t
        .token(&[("code", &code), ("code_verifier", RFC7636_VERIFIER)])
        .await;
    assert_eq!(
        error_of(&body),
        "bad_verification_code",
        "a verifier for a code without a challenge is a downgrade"
    );
    let code = t.code(Some((RFC7636_VERIFIER, "plain"))).await;
    let (_, body) = t
        .token(&[("code", &code), ("code_verifier", RFC7636_VERIFIER)])
        .await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn client_credentials_are_checked_from_params_or_basic_in_any_case() {
    let t = spawn().await;
    let code = t.code(None).await;
    let response = t
        .http
        .post(t.at("/login/oauth/access_token"))
        .header("accept", "application/json")
        .header(
            "authorization",
            format!(
                "basic {}",
                base64(&format!("{}:{}", t.app.client_id, t.secret))
            ),
        )
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");

    for (id, secret) in [
        (t.app.client_id.as_str(), "wrong"),
        ("Iv23liUnknownClient0", t.secret.as_str()),
        ("", ""),
    ] {
        let response = t
            .http
            .post(t.at("/login/oauth/access_token"))
            .header("accept", "application/json")
            .form(&[("client_id", id), ("client_secret", secret), ("code", "x")])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_of(&body), "incorrect_client_credentials");
        assert_eq!(
            body["error_description"],
            "The client_id and/or client_secret passed are incorrect."
        );
    }
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn unknown_grant_types_are_refused() {
    let t = spawn().await;
    let (_, body) = t
        .token(&[("grant_type", "password"), ("username", "u")])
        .await;
    assert_eq!(error_of(&body), "unsupported_grant_type");
}

#[tokio::test]
async fn refresh_rotates_and_retires_the_old_pair_at_once() {
    let t = spawn().await;
    let first = t.issue(&t.app).await;
    let (status, second) = t.refresh(first.refresh_token.as_deref().unwrap()).await;
    assert_eq!(status, 200);
    let new_access = field(&second, "access_token");
    let new_refresh = field(&second, "refresh_token");
    assert_ne!(new_access, first.access_token);
    assert_ne!(new_refresh, first.refresh_token.as_deref().unwrap());
    assert_eq!(second["scope"], "repo");
    assert_eq!(
        t.user_status(&first.access_token).await,
        401,
        "the access token issued with it stops"
    );
    assert_eq!(t.user_status(new_access).await, 200);
    let (_, third) = t.refresh(new_refresh).await;
    assert_eq!(t.user_status(field(&third, "access_token")).await, 200);
}

#[tokio::test]
async fn the_previous_token_inside_the_grace_window_gets_the_same_pair() {
    let t = spawn().await;
    let first = t.issue(&t.app).await;
    let old = first.refresh_token.unwrap();
    let (_, second) = t.refresh(&old).await;
    t.clock.advance(10);
    let (_, replay) = t.refresh(&old).await;
    assert_eq!(
        replay, second,
        "a client whose response was lost gets the same successor"
    );
    assert_eq!(t.user_status(field(&second, "access_token")).await, 200);
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_whole_family() {
    let t = spawn().await;
    let first = t.issue(&t.app).await;
    let old = first.refresh_token.unwrap();
    let (_, second) = t.refresh(&old).await;
    t.clock.advance(11);
    let (status, reuse) = t.refresh(&old).await;
    assert_eq!(status, 200);
    assert_eq!(error_of(&reuse), "bad_refresh_token");
    assert_eq!(
        reuse["error_description"],
        "The refresh token passed is incorrect or expired."
    );
    assert_eq!(
        t.user_status(field(&second, "access_token")).await,
        401,
        "the family is revoked"
    );
    assert_eq!(
        error_of(&t.refresh(field(&second, "refresh_token")).await.1),
        "bad_refresh_token"
    );
}

#[tokio::test]
async fn an_older_token_revokes_the_family_even_inside_the_window() {
    let t = spawn().await;
    let first = t.issue(&t.app).await;
    let (_, second) = t.refresh(first.refresh_token.as_deref().unwrap()).await;
    let (_, third) = t.refresh(field(&second, "refresh_token")).await;
    let (_, reuse) = t.refresh(first.refresh_token.as_deref().unwrap()).await;
    assert_eq!(error_of(&reuse), "bad_refresh_token");
    assert_eq!(t.user_status(field(&third, "access_token")).await, 401);
}

#[tokio::test]
async fn tokens_expire_on_their_own_schedule() {
    let t = spawn().await;
    let pair = t.issue(&t.app).await;
    t.clock.advance(28_799);
    assert_eq!(t.user_status(&pair.access_token).await, 200);
    t.clock.advance(1);
    assert_eq!(
        t.user_status(&pair.access_token).await,
        401,
        "8 hours and it is gone"
    );
    let (_, refreshed) = t.refresh(pair.refresh_token.as_deref().unwrap()).await;
    assert!(
        refreshed["access_token"].is_string(),
        "the refresh token outlives the access token"
    );
    t.clock.advance(15_811_200);
    assert_eq!(
        error_of(&t.refresh(field(&refreshed, "refresh_token")).await.1),
        "bad_refresh_token"
    );
}

#[tokio::test]
async fn malformed_refresh_tokens_are_bad_refresh_tokens() {
    let t = spawn().await;
    let pair = t.issue(&t.app).await;
    let mut tampered = pair.refresh_token.unwrap();
    tampered.replace_range(10..11, if &tampered[10..11] == "a" { "b" } else { "a" });
    for bad in [tampered.as_str(), "ghr_short", "", &pair.access_token] {
        assert_eq!(
            error_of(&t.refresh(bad).await.1),
            "bad_refresh_token",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn opting_out_of_expiry_changes_new_grants_only() {
    let t = spawn().await;
    let (oauth_app, _) = common::create_app(&t.provider, AppKind::OAuthApp, true).await;
    let expiring = t.issue(&oauth_app).await;
    assert!(expiring.access_token.starts_with("ghu_"));
    let now = t.clock.now();
    t.provider
        .store
        .set_expiring_tokens(&oauth_app.client_id, false, now)
        .await
        .unwrap();
    let oauth_app = t
        .provider
        .store
        .find_app(&oauth_app.client_id)
        .await
        .unwrap()
        .unwrap();
    let plain = t.issue(&oauth_app).await;
    assert!(
        plain.access_token.starts_with("gho_"),
        "a non-expiring OAuth App token"
    );
    assert!(plain.refresh_token.is_none() && plain.expires_in.is_none());
    t.clock.advance(28_800);
    assert_eq!(
        t.user_status(&plain.access_token).await,
        200,
        "non-expiring"
    );
    assert_eq!(
        t.user_status(&expiring.access_token).await,
        401,
        "issued tokens keep their own expiry"
    );

    t.provider
        .store
        .set_expiring_tokens(&t.app.client_id, false, now)
        .await
        .unwrap();
    let github_app = t
        .provider
        .store
        .find_app(&t.app.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        t.issue(&github_app).await.access_token.starts_with("ghu_"),
        "GitHub Apps always issue ghu_"
    );
}

#[tokio::test]
async fn the_answer_format_follows_accept() {
    let t = spawn().await;
    let post = |accept: Option<&'static str>, code: String| {
        let mut request = t.http.post(t.at("/login/oauth/access_token")).form(&[
            ("client_id", t.app.client_id.as_str().to_owned()),
            ("client_secret", t.secret.clone()),
            ("code", code),
        ]);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send()
    };
    let form = post(None, t.code(None).await).await.unwrap();
    assert_eq!(
        form.headers()["content-type"],
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    assert_eq!(form.headers()["cache-control"], "no-store");
    let text = form.text().await.unwrap();
    let keys: Vec<&str> = text
        .split('&')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "refresh_token_expires_in",
            "scope",
            "token_type"
        ]
    );

    let xml = post(Some("application/xml"), t.code(None).await)
        .await
        .unwrap();
    assert_eq!(
        xml.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    let text = xml.text().await.unwrap();
    assert!(
        text.starts_with("<OAuth><access_token>ghu_")
            && text.ends_with("<token_type>bearer</token_type></OAuth>"),
        "{text}"
    );

    let error = post(Some("application/xml"), "nope".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        error.starts_with("<OAuth><error>bad_verification_code</error><error_description>"),
        "{error}"
    );
    let error = post(None, "nope".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        error.starts_with("error=bad_verification_code&error_description=The+code+passed"),
        "{error}"
    );
}

#[tokio::test]
async fn parameters_may_come_in_the_query_string_or_a_json_body() {
    let t = spawn().await;
    let code = t.code(None).await;
    let query = format!(
        "client_id={}&client_secret={}&code={code}",
        t.app.client_id, t.secret
    );
    let response = t
        .http
        .post(t.at(&format!("/login/oauth/access_token?{query}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());

    let code = t.code(None).await;
    let body = serde_json::json!({"client_id": t.app.client_id.as_str(), "client_secret": t.secret, "code": code});
    let response = t
        .http
        .post(t.at("/login/oauth/access_token"))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_in_the_dialects_shape_never_a_500() {
    let t = spawn().await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{not json".to_vec(), 400),
        ("application/json", br#"{"code": 12}"#.to_vec(), 400),
        ("application/json", b"[]".to_vec(), 400),
        (
            "application/x-www-form-urlencoded",
            b"code=\xff\xfe".to_vec(),
            400,
        ),
        ("text/plain", b"code=abc".to_vec(), 415),
        (
            "application/x-www-form-urlencoded",
            vec![b'a'; 70 * 1024],
            413,
        ),
    ];
    for (content_type, body, expected) in cases {
        let response = t
            .http
            .post(t.at("/login/oauth/access_token"))
            .header("accept", "application/json")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{content_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_of(&body), "invalid_request", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[tokio::test]
async fn of_concurrent_refreshes_of_one_token_one_rotates_and_all_get_its_answer() {
    let t = std::sync::Arc::new(spawn().await);
    let pair = t.issue(&t.app).await;
    let refresh = pair.refresh_token.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (t, refresh) = (t.clone(), refresh.clone());
            tokio::spawn(async move { t.refresh(&refresh).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200);
        answers.push(body);
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "every caller sees the one successor"
    );
    assert!(answers[0]["access_token"].is_string(), "{}", answers[0]);
    assert_eq!(t.user_status(field(&answers[0], "access_token")).await, 200);
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let t = spawn().await;
    let health = t.http.get(t.at("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let missing = t.http.get(t.at("/no/such/route")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["message"],
        "Not Found"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_request_is_not_logged_out() {
    use tokio::io::AsyncWriteExt;
    let t = spawn().await;
    let refresh = t.issue(&t.app).await.refresh_token.unwrap();
    let body = format!(
        "client_id={}&client_secret={}&grant_type=refresh_token&refresh_token={refresh}",
        t.app.client_id, t.secret
    );
    let request = format!(
        "POST /login/oauth/access_token HTTP/1.1\r\nhost: refreshd\r\naccept: application/json\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    drop(stream); // gone before any answer could arrive
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let (status, retry) = t.refresh(&refresh).await;
    assert_eq!(status, 200);
    assert!(
        retry["access_token"].is_string(),
        "the retry is answered, not refused: {retry}"
    );
    assert_eq!(t.user_status(field(&retry, "access_token")).await, 200);
    let (_, next) = t.refresh(field(&retry, "refresh_token")).await;
    assert!(
        next["access_token"].is_string(),
        "and the family goes on: {next}"
    );
}
