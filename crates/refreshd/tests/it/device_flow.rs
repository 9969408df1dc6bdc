//! GitHub's device flow over real HTTP: `POST /login/device/code` and the device-code grant at
//! `POST /login/oauth/access_token`, every answer with status 200 in the negotiated format.

use crate::common::{TestApp, field, spawn};
use refreshd_core::{Clock, UserCode};
use serde_json::Value;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const DEVICE_ERRORS: &str = "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow";

pub(crate) async fn with_device_flow() -> TestApp {
    let t = spawn().await;
    t.provider
        .store
        .set_device_flow(&t.app.client_id, true, t.clock.now())
        .await
        .unwrap()
        .unwrap();
    t
}

/// POSTs `params` as a form to `path`, asking for `accept`; the status, content type and body.
async fn post(
    t: &TestApp,
    path: &str,
    accept: &str,
    params: &[(&str, &str)],
) -> (u16, String, String) {
    let response = t
        .http
        .post(t.at(path))
        .header("accept", accept)
        .form(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

pub(crate) async fn start(t: &TestApp, scope: &str) -> Value {
    let client_id = t.app.client_id.as_str().to_owned();
    let (status, _, body) = post(
        t,
        "/login/device/code",
        "application/json",
        &[("client_id", &client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

pub(crate) async fn poll(t: &TestApp, device_code: &str) -> Value {
    let client_id = t.app.client_id.as_str().to_owned();
    let (status, _, body) = post(
        t,
        "/login/oauth/access_token",
        "application/json",
        &[
            ("client_id", &client_id),
            ("device_code", device_code),
            ("grant_type", DEVICE_GRANT),
        ],
    )
    .await;
    assert_eq!(
        status, 200,
        "GitHub answers the device flow with 200: {body}"
    );
    serde_json::from_str(&body).unwrap()
}

async fn decide(t: &TestApp, user_code: &str, approve: bool) -> bool {
    let code = UserCode::normalize(user_code).unwrap();
    t.provider
        .store
        .decide_device_code(code.digest(), t.user.id, approve, t.clock.now())
        .await
        .unwrap()
}

fn assert_device_error(body: &Value, error: &str, description: &str) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    assert_eq!(body["error_uri"], DEVICE_ERRORS, "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
}

fn is_user_code(code: &str) -> bool {
    code.len() == 9
        && code.bytes().enumerate().all(|(i, b)| {
            if i == 4 {
                b == b'-'
            } else {
                b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)
            }
        })
}

#[tokio::test]
async fn a_device_code_is_answered_in_githubs_shape_in_each_format() {
    let t = with_device_flow().await;
    let body = start(&t, "repo read:user").await;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "device_code",
            "expires_in",
            "interval",
            "user_code",
            "verification_uri"
        ]
    );
    let device_code = field(&body, "device_code");
    assert_eq!(device_code.len(), 40);
    assert!(
        device_code
            .bytes()
            .all(|b| b"0123456789abcdef".contains(&b)),
        "{body}"
    );
    assert!(is_user_code(field(&body, "user_code")), "{body}");
    assert_eq!(body["verification_uri"], format!("{}/login/device", t.url));
    assert_eq!(body["expires_in"], 899);
    assert_eq!(body["interval"], 5);
    let again = start(&t, "repo").await;
    assert_ne!(again["device_code"], body["device_code"]);
    assert_ne!(again["user_code"], body["user_code"]);

    let client_id = t.app.client_id.as_str().to_owned();
    let params = [("client_id", client_id.as_str()), ("scope", "repo")];
    let (status, content_type, form) = post(&t, "/login/device/code", "*/*", &params).await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    // Only ':' and '/' need decoding in these values.
    let pairs: Vec<(String, String)> = form
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or_else(|| panic!("{form}")))
        .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":").replace("%2F", "/")))
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "device_code",
            "expires_in",
            "interval",
            "user_code",
            "verification_uri"
        ],
        "{form}"
    );
    assert_eq!(pairs[1].1, "899");
    assert_eq!(pairs[2].1, "5");
    assert!(is_user_code(&pairs[3].1), "{form}");
    assert_eq!(pairs[4].1, format!("{}/login/device", t.url));

    let (status, content_type, xml) =
        post(&t, "/login/device/code", "application/xml", &params).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/xml; charset=utf-8");
    let device_code = xml
        .strip_prefix("<OAuth><device_code>")
        .and_then(|rest| rest.split_once("</device_code>"))
        .map(|(code, _)| code)
        .unwrap_or_else(|| panic!("{xml}"));
    assert_eq!(device_code.len(), 40, "{xml}");
    assert!(
        xml.contains("<expires_in>899</expires_in><interval>5</interval><user_code>"),
        "{xml}"
    );
    assert!(
        xml.ends_with(&format!(
            "</user_code><verification_uri>{}/login/device</verification_uri></OAuth>",
            t.url
        )),
        "{xml}"
    );
}

#[tokio::test]
async fn a_device_code_needs_a_known_github_client_with_the_device_flow_on() {
    let t = spawn().await;
    let client_id = t.app.client_id.as_str().to_owned();
    let (status, content_type, body) = post(
        &t,
        "/login/device/code",
        "application/json",
        &[("client_id", &client_id), ("scope", "repo")],
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json; charset=utf-8")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_device_error(
        &body,
        "device_flow_disabled",
        "Device Flow must be explicitly enabled for this App",
    );
    let (status, _, form) = post(&t, "/login/device/code", "", &[("client_id", &client_id)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        form,
        "error=device_flow_disabled&error_description=Device+Flow+must+be+explicitly+enabled+for+this+App&error_uri=https%3A%2F%2Fdocs.github.com%2Fdevelopers%2Fapps%2Fauthorizing-oauth-apps%23error-codes-for-the-device-flow"
    );
    let (status, _, xml) = post(
        &t,
        "/login/device/code",
        "application/xml",
        &[("client_id", &client_id)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        xml,
        format!(
            "<OAuth><error>device_flow_disabled</error><error_description>Device Flow must be explicitly enabled for this App</error_description><error_uri>{DEVICE_ERRORS}</error_uri></OAuth>"
        )
    );

    // Scopes are bounded as on the authorize page: 51 scopes, or one of 201 bytes; checked
    // once the device flow is on.
    t.provider
        .store
        .set_device_flow(&t.app.client_id, true, t.clock.now())
        .await
        .unwrap();
    let many = (0..51)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for scope in [many, "x".repeat(201), "a ".repeat(6_000)] {
        let (status, _, body) = post(
            &t,
            "/login/device/code",
            "application/json",
            &[("client_id", &client_id), ("scope", &scope)],
        )
        .await;
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_scope", "{body}");
        assert_eq!(
            body["error_description"],
            "Too many scopes, or a scope too long."
        );
    }

    for unknown in [
        vec![],
        vec![("client_id", "Iv1.0000000000000000")],
        vec![("client_id", "not a client id")],
    ] {
        let (status, _, body) = post(&t, "/login/device/code", "application/json", &unknown).await;
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body["error"], "incorrect_client_credentials",
            "{unknown:?}: {body}"
        );
    }
}

#[tokio::test]
async fn polls_are_pending_then_slowed_then_issued_once_after_approval() {
    let t = with_device_flow().await;
    let started = start(&t, "repo read:user").await;
    let device_code = field(&started, "device_code");

    let body = poll(&t, device_code).await;
    assert_device_error(
        &body,
        "authorization_pending",
        "The authorization request is still pending.",
    );
    assert!(body.get("interval").is_none(), "{body}");
    t.clock.advance(2);
    let body = poll(&t, device_code).await;
    assert_device_error(
        &body,
        "slow_down",
        "Too many requests have been made in the same timeframe.",
    );
    assert_eq!(body["interval"], 10, "the interval grows by 5: {body}");
    t.clock.advance(10);
    assert_eq!(
        poll(&t, device_code).await["error"],
        "authorization_pending"
    );

    assert!(decide(&t, &field(&started, "user_code").to_lowercase(), true).await);
    // Approved codes are answered at once, however soon the poll.
    let body = poll(&t, device_code).await;
    let token = field(&body, "access_token");
    assert!(token.starts_with("ghu_"), "{body}");
    assert_eq!(body["scope"], "repo,read:user");
    assert_eq!(body["token_type"], "bearer");
    assert!(field(&body, "refresh_token").starts_with("ghr_"), "{body}");
    assert_eq!(body["expires_in"], 28800);
    assert_eq!(t.user_status(token).await, 200);

    assert_device_error(
        &poll(&t, device_code).await,
        "incorrect_device_code",
        "The device_code provided is not valid.",
    );
}

#[tokio::test]
async fn denied_expired_unknown_and_disabled_codes_get_githubs_errors() {
    let t = with_device_flow().await;
    let denied = start(&t, "repo").await;
    assert!(decide(&t, field(&denied, "user_code"), false).await);
    assert_device_error(
        &poll(&t, field(&denied, "device_code")).await,
        "access_denied",
        "The authorization request was denied.",
    );

    for unknown in ["0".repeat(40), "not-a-code".to_owned()] {
        assert_device_error(
            &poll(&t, &unknown).await,
            "incorrect_device_code",
            "The device_code provided is not valid.",
        );
    }
    let client_id = t.app.client_id.as_str().to_owned();
    let (_, _, body) = post(
        &t,
        "/login/oauth/access_token",
        "application/json",
        &[("client_id", &client_id), ("grant_type", DEVICE_GRANT)],
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "incorrect_device_code", "{body}");

    let expiring = start(&t, "repo").await;
    t.clock.advance(899);
    assert_device_error(
        &poll(&t, field(&expiring, "device_code")).await,
        "expired_token",
        "The device_code has expired.",
    );
    assert!(
        !decide(&t, field(&expiring, "user_code"), true).await,
        "an expired code cannot be approved"
    );

    let pending = start(&t, "repo").await;
    t.provider
        .store
        .set_device_flow(&t.app.client_id, false, t.clock.now())
        .await
        .unwrap();
    let (status, _, form) = post(
        &t,
        "/login/oauth/access_token",
        "",
        &[
            ("client_id", &client_id),
            ("device_code", field(&pending, "device_code")),
            ("grant_type", DEVICE_GRANT),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(form.starts_with("error=device_flow_disabled&"), "{form}");
}

#[tokio::test]
async fn another_apps_device_code_is_not_valid() {
    let t = with_device_flow().await;
    let started = start(&t, "repo").await;
    assert!(decide(&t, field(&started, "user_code"), true).await);
    let (other, _) =
        crate::common::create_app(&t.provider, refreshd_core::AppKind::OAuthApp, false).await;
    t.provider
        .store
        .set_device_flow(&other.client_id, true, t.clock.now())
        .await
        .unwrap();
    let (_, _, body) = post(
        &t,
        "/login/oauth/access_token",
        "application/json",
        &[
            ("client_id", other.client_id.as_str()),
            ("device_code", field(&started, "device_code")),
            ("grant_type", DEVICE_GRANT),
        ],
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "incorrect_device_code", "{body}");
    // Its own app still gets the token.
    assert!(poll(&t, field(&started, "device_code")).await["access_token"].is_string());
}

/// A refresh at the token endpoint with these client credentials (`None`: not sent).
async fn refresh_as(t: &TestApp, secret: Option<&str>, refresh_token: &str) -> Value {
    let client_id = t.app.client_id.as_str().to_owned();
    let mut form = vec![
        ("client_id", client_id.as_str()),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    let (status, _, body) = post(t, "/login/oauth/access_token", "application/json", &form).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn assert_incorrect_client_credentials(body: &Value) {
    assert_eq!(body["error"], "incorrect_client_credentials", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
}

#[tokio::test]
async fn a_device_flow_refresh_token_refreshes_with_the_client_id_alone_and_rotates() {
    let t = with_device_flow().await;
    let started = start(&t, "repo").await;
    assert!(decide(&t, field(&started, "user_code"), true).await);
    let issued = poll(&t, field(&started, "device_code")).await;
    let first = field(&issued, "refresh_token").to_owned();

    let body = refresh_as(&t, None, &first).await;
    let access = field(&body, "access_token");
    assert!(access.starts_with("ghu_"), "{body}");
    assert_eq!(t.user_status(access).await, 200);
    let second = field(&body, "refresh_token").to_owned();
    assert!(second.starts_with("ghr_") && second != first, "{body}");
    assert_eq!(body["scope"], "repo");

    // A secret that is sent is checked: a wrong one is refused, the right one accepted.
    assert_incorrect_client_credentials(&refresh_as(&t, Some("wrong"), &second).await);
    let body = refresh_as(&t, Some(&t.secret), &second).await;
    let third = field(&body, "refresh_token").to_owned();
    let body = refresh_as(&t, None, &third).await;
    assert!(field(&body, "access_token").starts_with("ghu_"), "{body}");

    // The rotated token is spent: past the grace window its reuse is refused.
    t.clock.advance(3600);
    assert_eq!(
        refresh_as(&t, None, &first).await["error"],
        "bad_refresh_token"
    );
}

#[tokio::test]
async fn a_code_exchange_refresh_token_still_needs_the_client_secret() {
    let t = spawn().await;
    let code = t.code(None).await;
    let (_, issued) = t.token(&[("code", &code)]).await;
    let refresh_token = field(&issued, "refresh_token").to_owned();

    assert_incorrect_client_credentials(&refresh_as(&t, None, &refresh_token).await);
    assert_incorrect_client_credentials(&refresh_as(&t, Some(""), &refresh_token).await);
    assert_incorrect_client_credentials(&refresh_as(&t, Some("wrong"), &refresh_token).await);
    assert_incorrect_client_credentials(&refresh_as(&t, None, "ghr_not-a-token").await);
    let body = refresh_as(&t, Some(&t.secret), &refresh_token).await;
    assert!(
        field(&body, "access_token").starts_with("ghu_"),
        "refusals leave the token usable: {body}"
    );
}

/// Asks for a device code for `client_id` at `path`: the status, the JSON body and
/// `Retry-After`.
async fn ask(t: &TestApp, path: &str, client_id: &str) -> (u16, Value, Option<String>) {
    let response = t
        .http
        .post(t.at(path))
        .header("accept", "application/json")
        .form(&[("client_id", client_id), ("scope", "email")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry_after)
}

/// An address asking for device codes without end is slowed down: 30 starts for one app and
/// 60 in all per 15 minutes, then 429 `slow_down` with `Retry-After`, in each dialect's shape;
/// other apps' limits and the next window are untouched.
#[tokio::test]
async fn an_address_asking_for_device_codes_without_end_is_slowed_down() {
    use refreshd_core::AppKind;
    let t = with_device_flow().await;
    let first = t.app.client_id.as_str().to_owned();
    let (second, _) = crate::common::create_app(&t.provider, AppKind::GithubApp, true).await;
    crate::google_device::set_device_flow(&t, &second, true).await;
    let (google, _) = crate::google_device::google_device_app(&t).await;

    for n in 0..30 {
        let (status, body, _) = ask(&t, "/login/device/code", &first).await;
        assert_eq!(status, 200, "start {n}: {body}");
    }
    let (status, body, retry_after) = ask(&t, "/login/device/code", &first).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "slow_down", "{body}");
    assert_eq!(retry_after.as_deref(), Some("900"));

    // Another app from the same address has its own 30, up to 60 in all.
    for n in 0..30 {
        let (status, body, _) = ask(&t, "/login/device/code", second.client_id.as_str()).await;
        assert_eq!(status, 200, "second app's start {n}: {body}");
    }
    let (status, body, retry_after) = ask(&t, "/device/code", google.client_id.as_str()).await;
    assert_eq!(status, 429, "60 in all from this address: {body}");
    assert_eq!(
        body,
        serde_json::json!({"error": "slow_down", "error_description": "Too Many Requests"})
    );
    assert_eq!(retry_after.as_deref(), Some("900"));

    // The next window starts over.
    t.clock.advance(15 * 60);
    let (status, body, _) = ask(&t, "/login/device/code", &first).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = ask(&t, "/device/code", google.client_id.as_str()).await;
    assert_eq!(status, 200, "{body}");
}
