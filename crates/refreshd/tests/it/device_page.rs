//! The device flow's page `/login/device` over HTTP, as a person's browser meets it: the code
//! typed in any case without its dash, sign-in on the way, approve or cancel, and what the
//! device's poll then gets; unknown codes, forged forms and guessing.

use crate::common::TestApp;
use crate::device_flow::{poll, start, with_device_flow};
use crate::pages::{Answer, PASSWORD, Visitor, with_password};
use reqwest::StatusCode;

/// A started authorization for scope `repo`: its device code and its user code as a person
/// might type it, lower case and without the dash.
async fn started(t: &TestApp) -> (String, String) {
    let body = start(t, "repo").await;
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let typed = body["user_code"]
        .as_str()
        .unwrap()
        .replace('-', "")
        .to_lowercase();
    (device_code, typed)
}

/// Enters `typed` on the page as `v`, signing in as octocat when the page asks.
pub(crate) async fn enter(v: &mut Visitor, typed: &str) -> Answer {
    let form = v.get("/login/device").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    let entered = v
        .post(
            "/login/device",
            &[
                ("csrf", &csrf),
                ("user_code", typed),
                ("action", "continue"),
            ],
        )
        .await;
    if !entered.body.contains(r#"name="password""#) {
        return entered;
    }
    assert_eq!(entered.status, StatusCode::OK, "{}", entered.body);
    assert!(
        entered
            .body
            .contains(&format!(r#"name="user_code" value="{typed}""#)),
        "the sign-in form carries the code: {}",
        entered.body
    );
    let csrf = entered.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("user_code", typed),
        ("username", "octocat"),
        ("password", PASSWORD),
        ("action", "sign_in"),
    ];
    v.post("/login/device", &form).await
}

pub(crate) async fn decide(
    v: &mut Visitor,
    approval: &Answer,
    user_code: &str,
    action: &str,
) -> Answer {
    let csrf = approval.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("user_code", user_code),
        ("action", action),
    ];
    v.post("/login/device/confirm", &form).await
}

fn assert_secure(answer: &Answer) {
    let csp = answer.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert_eq!(answer.headers["x-frame-options"], "DENY");
    assert!(!answer.body.contains("<script"));
    assert!(!answer.body.contains("style="));
}

#[tokio::test]
async fn a_code_typed_in_lower_case_without_its_dash_signs_in_and_approves_the_device() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, typed) = started(&t).await;
    let mut v = Visitor::new(&t);

    let approval = enter(&mut v, &typed).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.body);
    assert_secure(&approval);
    assert!(v.cookies.contains_key("refreshd_session"), "signed in");
    assert!(approval.body.contains(&t.app.name), "{}", approval.body);
    assert!(
        approval.body.contains("<code>repo</code>"),
        "{}",
        approval.body
    );
    let shown = format!("{}-{}", &typed[..4], &typed[4..]).to_uppercase();
    assert!(
        approval.body.contains(&shown),
        "the code as the device shows it"
    );
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "authorization_pending"
    );

    let done = decide(&mut v, &approval, &shown, "authorize").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Device authorized"), "{}", done.body);
    assert_secure(&done);

    let token = poll(&t, &device_code).await;
    assert!(token["access_token"].is_string(), "{token}");
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["scope"], "repo");
    let user = t
        .http
        .get(t.at("/api/v3/user"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200, "the token works");

    // Decided once: the code cannot be entered or decided again.
    let again = decide(&mut v, &approval, &shown, "cancel").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("not valid"), "{}", again.body);
}

#[tokio::test]
async fn a_signed_in_user_who_cancels_denies_the_device() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, typed) = started(&t).await;
    let mut v = Visitor::new(&t);
    assert_eq!(
        v.sign_in("octocat", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let approval = enter(&mut v, &typed).await;
    assert_eq!(
        approval.status,
        StatusCode::OK,
        "no second sign-in: {}",
        approval.body
    );
    let done = decide(&mut v, &approval, &typed, "cancel").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("cancelled"), "{}", done.body);
    assert_eq!(poll(&t, &device_code).await["error"], "access_denied");
}

#[tokio::test]
async fn unknown_and_malformed_codes_get_an_error_on_the_page() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, _) = started(&t).await;
    let mut v = Visitor::new(&t);
    for typed in [
        "bcdf-ghjk",
        "not a code",
        "",
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ] {
        let answer = enter(&mut v, typed).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{typed}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("This code is not valid"),
            "{}",
            answer.body
        );
        assert!(
            answer.body.contains(r#"name="user_code""#),
            "the form again"
        );
    }
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "authorization_pending"
    );
}

/// A code started before the app's device flow was switched off is no longer found: its
/// device could never redeem it.
#[tokio::test]
async fn a_code_of_an_app_whose_device_flow_was_switched_off_is_not_valid() {
    use refreshd_core::Clock;
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, typed) = started(&t).await;
    let mut v = Visitor::new(&t);
    let approval = enter(&mut v, &typed).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.body);
    t.provider
        .store
        .set_device_flow(&t.app.client_id, false, t.clock.now())
        .await
        .unwrap();
    let answer = decide(&mut v, &approval, &typed, "authorize").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(answer.body.contains("This code is not valid"));
    let answer = enter(&mut v, &typed).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "device_flow_disabled"
    );
}

#[tokio::test]
async fn forged_forms_are_refused_and_decide_nothing() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, typed) = started(&t).await;
    let mut v = Visitor::new(&t);
    let approval = enter(&mut v, &typed).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.body);

    // Another site's form: a token that is not this visitor's, or none at all.
    for csrf in [Some("x"), None] {
        let mut form = vec![("user_code", typed.as_str()), ("action", "authorize")];
        form.extend(csrf.map(|c| ("csrf", c)));
        let forged = v.post("/login/device/confirm", &form).await;
        assert!(
            matches!(
                forged.status,
                StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
            ),
            "{}: {}",
            forged.status,
            forged.body
        );
        if csrf.is_some() {
            assert_eq!(forged.status, StatusCode::FORBIDDEN);
        }
        form.retain(|(name, _)| *name != "action");
        form.push(("action", "continue"));
        let entered = v.post("/login/device", &form).await;
        assert!(
            matches!(
                entered.status,
                StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
            ),
            "{}",
            entered.body
        );
        assert!(!entered.body.contains("Authorize "), "no approval page");
    }
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "authorization_pending"
    );

    // Not signed in, deciding is a trip to the sign-in page.
    let mut stranger = Visitor::new(&t);
    let csrf = stranger.get("/login/device").await.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("user_code", typed.as_str()),
        ("action", "authorize"),
    ];
    let refused = stranger.post("/login/device/confirm", &form).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(
        refused.location(),
        Some("/login?return_to=%2Flogin%2Fdevice")
    );
    t.clock.advance(30);
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "authorization_pending"
    );
}

#[tokio::test]
async fn ten_wrong_codes_lock_the_page_for_that_user_but_not_their_sign_in() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, typed) = started(&t).await;
    let mut v = Visitor::new(&t);
    for _ in 0..10 {
        let wrong = enter(&mut v, "BCDF-GHJK").await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    }
    let locked = enter(&mut v, &typed).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!(locked.body.contains("Too many codes"), "{}", locked.body);
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "authorization_pending"
    );

    // Guessing codes does not count against signing in.
    let mut other = Visitor::new(&t);
    assert_eq!(
        other.sign_in("octocat", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_found_code_clears_the_users_count() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let mut v = Visitor::new(&t);
    for _ in 0..9 {
        assert_eq!(
            enter(&mut v, "BCDF-GHJK").await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let (_, typed) = started(&t).await;
    assert_eq!(enter(&mut v, &typed).await.status, StatusCode::OK);
    for _ in 0..9 {
        assert_eq!(
            enter(&mut v, "BCDF-GHJK").await.status,
            StatusCode::BAD_REQUEST,
            "counted afresh"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_keeps_the_code_and_an_expired_code_is_not_valid() {
    let t = with_device_flow().await;
    with_password(&t).await;
    let (device_code, typed) = started(&t).await;
    let mut v = Visitor::new(&t);
    let csrf = v
        .get(&format!("/login/device?user_code={typed}"))
        .await
        .csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("user_code", typed.as_str()),
        ("username", "octocat"),
        ("password", "not the password"),
        ("action", "sign_in"),
    ];
    let wrong = v.post("/login/device", &form).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(wrong.body.contains("Incorrect username or password."));
    assert!(
        wrong
            .body
            .contains(&format!(r#"name="user_code" value="{typed}""#))
    );
    assert!(!v.cookies.contains_key("refreshd_session"));

    t.clock.advance(900);
    let expired = enter(&mut v, &typed).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST, "{}", expired.body);
    assert!(expired.body.contains("This code is not valid"));
    assert_eq!(poll(&t, &device_code).await["error"], "expired_token");
}

#[tokio::test]
async fn a_link_with_the_code_fills_in_the_form() {
    let t = with_device_flow().await;
    let (_, typed) = started(&t).await;
    let mut v = Visitor::new(&t);
    let page = v.get(&format!("/login/device?user_code={typed}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_secure(&page);
    let shown = format!("{}-{}", &typed[..4], &typed[4..]).to_uppercase();
    assert!(
        page.body.contains(&format!(r#"value="{shown}""#)),
        "{}",
        page.body
    );
    let junk = v.get("/login/device?user_code=%22%3E%3Cscript%3E").await;
    assert_eq!(junk.status, StatusCode::OK);
    assert!(!junk.body.contains("<script"), "{}", junk.body);
}

/// One user guessing from many addresses is stopped once they have looked up 30 codes in 15
/// minutes, whatever the addresses; the next window starts over.
#[tokio::test]
async fn one_user_guessing_from_many_addresses_is_stopped_at_thirty_lookups() {
    use refreshd_core::Clock;
    let t = crate::common::spawn_configured(|config| {
        config.trusted_proxies = refreshd_provider::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    with_password(&t).await;
    t.provider
        .store
        .set_device_flow(&t.app.client_id, true, t.clock.now())
        .await
        .unwrap();
    let (device_code, typed) = started(&t).await;
    for n in 0..3 {
        let mut v = Visitor::at(&t, &format!("203.0.113.{n}"));
        for _ in 0..10 {
            let wrong = enter(&mut v, "BCDF-GHJK").await;
            assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
        }
    }
    let mut fresh = Visitor::at(&t, "198.51.100.9");
    let locked = enter(&mut fresh, &typed).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the 31st lookup, from an address never seen: {}",
        locked.body
    );
    assert_eq!(
        poll(&t, &device_code).await["error"],
        "authorization_pending"
    );

    t.clock.advance(15 * 60);
    let (_, typed) = started(&t).await;
    let found = enter(&mut fresh, &typed).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
}
