//! `/tokeninfo?id_token=…` and userinfo against the id_token: Google's tokeninfo verifies an
//! id_token (a published key, not expired) and answers its claims as strings; userinfo's names
//! are the id_token's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use refreshd_core::{AppKind, Clock, KeySealer, Scopes};
use refreshd_provider::CodeTerms;
use refreshd_provider::oidc::IdTokenClaims;
use serde_json::{Map, Value, json};

use super::{google_token, hex_key, verified};
use crate::common::process::TEST_MASTER_KEY;
use crate::common::{TestApp, spawn};

const REDIRECT: &str = "http://localhost:9999/callback";

/// A code exchange for `openid email profile` (with a nonce) by a new Google app: the answer.
async fn exchange(t: &TestApp, user: &refreshd_store::User) -> (Value, String) {
    exchange_for(t, user, "openid email profile").await
}

/// A code exchange for `scope` (with a nonce) by a new Google app: the answer.
async fn exchange_for(t: &TestApp, user: &refreshd_store::User, scope: &str) -> (Value, String) {
    let (app, secret) = crate::common::create_app(&t.provider, AppKind::GoogleClient, true).await;
    let code = refreshd_provider::issue_code_with(
        &t.provider,
        &app,
        user,
        &Scopes::parse(scope),
        CodeTerms {
            redirect_uri: Some(REDIRECT.into()),
            with_refresh: true,
            nonce: Some("n-0S6_WzA2Mj".into()),
            ..CodeTerms::default()
        },
    )
    .await
    .unwrap();
    let answer = google_token(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", app.client_id.as_str()),
            ("client_secret", &secret),
        ],
    )
    .await;
    (answer, app.client_id.as_str().to_owned())
}

/// The three ways to ask: GET with the query, POST with the query, POST with a form.
async fn tokeninfo_all_ways(t: &TestApp, id_token: &str) -> Vec<(u16, Value)> {
    let query = format!("/tokeninfo?id_token={id_token}");
    let requests = [
        t.http.get(t.at(&query)),
        t.http.post(t.at(&query)),
        t.http
            .post(t.at("/tokeninfo"))
            .form(&[("id_token", id_token)]),
    ];
    let mut answers = Vec::new();
    for request in requests {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        answers.push((status, response.json().await.unwrap()));
    }
    answers
}

async fn assert_refused(t: &TestApp, id_token: &str, what: &str) {
    for (status, body) in tokeninfo_all_ways(t, id_token).await {
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(
            body,
            json!({"error": "invalid_token", "error_description": "Invalid Value"}),
            "{what}"
        );
    }
}

async fn get_json(t: &TestApp, path: &str, bearer: Option<&str>) -> Value {
    let mut request = t.http.get(t.at(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn tokeninfo_answers_the_id_tokens_claims_as_strings_as_userinfo_and_the_access_token_do() {
    let t = spawn().await;
    let user = t
        .create_user(
            "grace",
            Some("Grace Brewster Hopper"),
            Some("grace@example.com"),
        )
        .await;
    let (answer, client_id) = exchange(&t, &user).await;
    let id_token = answer["id_token"].as_str().unwrap();
    let access = answer["access_token"].as_str().unwrap();
    // Checked independently (ring, against the JWKS) before tokeninfo is asked.
    let (header, claims) = verified(&t, id_token).await;

    let mut expected = Map::new();
    for (name, value) in claims.as_object().unwrap() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => panic!("claim {name} is {other}"),
        };
        expected.insert(name.clone(), Value::String(text));
    }
    for name in ["alg", "kid", "typ"] {
        expected.insert(name.into(), header[name].clone());
    }
    let expected = Value::Object(expected);
    assert_eq!(expected["email_verified"], "true");
    assert_eq!(expected["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(expected["aud"], client_id.as_str());
    assert_eq!(expected["alg"], "RS256");
    assert_eq!(expected["typ"], "JWT");
    for (status, body) in tokeninfo_all_ways(&t, id_token).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, expected);
    }

    // The access token's tokeninfo and userinfo speak of the same user.
    let by_access = get_json(&t, &format!("/tokeninfo?access_token={access}"), None).await;
    assert_eq!(by_access["sub"], expected["sub"]);
    assert_eq!(by_access["email"], expected["email"]);
    assert_eq!(by_access["email_verified"], expected["email_verified"]);
    assert_eq!(by_access["aud"], expected["aud"]);
    let info = get_json(&t, "/oauth2/v3/userinfo", Some(access)).await;
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["email"], claims["email"]);
    assert_eq!(info["email_verified"], claims["email_verified"]);
    assert_eq!(info["name"], claims["name"]);
    assert_eq!(info["picture"], claims["picture"]);
    assert_eq!(info["given_name"], claims["given_name"]);
    assert_eq!(info["family_name"], claims["family_name"]);
    assert_eq!(info["given_name"], "Grace");
    assert_eq!(info["family_name"], "Brewster Hopper");

    // A one-word name (the login, for a user without one): given_name alone, in both.
    let single = t.create_user("plato", None, None).await;
    let (answer, _) = exchange(&t, &single).await;
    let (_, claims) = verified(&t, answer["id_token"].as_str().unwrap()).await;
    let info = get_json(&t, "/oauth2/v3/userinfo", answer["access_token"].as_str()).await;
    assert_eq!(claims["given_name"], "plato");
    assert_eq!(info["given_name"], claims["given_name"]);
    assert!(claims.get("family_name").is_none());
    assert!(info.get("family_name").is_none(), "{info}");
}

/// userinfo and tokeninfo tell an app what the grant's scopes let it know, as its id_token
/// does: with `openid` alone the subject only; `email` adds the address, `profile` the names;
/// Google's long scope names count as the short ones.
#[tokio::test]
async fn userinfo_and_tokeninfo_say_what_the_scopes_allow_as_the_id_token_does() {
    let t = spawn().await;
    let user = t
        .create_user("ada", Some("Ada Lovelace"), Some("ada@example.com"))
        .await;
    let identity = [
        "email",
        "email_verified",
        "name",
        "given_name",
        "family_name",
        "picture",
    ];
    let told = |value: &Value| -> Vec<&str> {
        identity
            .into_iter()
            .filter(|k| value.get(*k).is_some())
            .collect()
    };
    let cases: [(&str, &[&str]); 4] = [
        ("openid", &[]),
        ("openid email", &["email", "email_verified"]),
        (
            "openid profile",
            &["name", "given_name", "family_name", "picture"],
        ),
        (
            "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
            &identity,
        ),
    ];
    for (scope, expected) in cases {
        let (answer, _) = exchange_for(&t, &user, scope).await;
        let (_, claims) = verified(&t, answer["id_token"].as_str().unwrap()).await;
        let access = answer["access_token"].as_str().unwrap();
        let info = get_json(&t, "/oauth2/v3/userinfo", Some(access)).await;
        let by_access = get_json(&t, &format!("/tokeninfo?access_token={access}"), None).await;
        assert_eq!(told(&claims), expected, "{scope}: id_token {claims}");
        assert_eq!(told(&info), expected, "{scope}: userinfo {info}");
        assert_eq!(info["sub"], claims["sub"]);
        let emails: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|k| k.starts_with("email"))
            .collect();
        assert_eq!(told(&by_access), emails, "{scope}: tokeninfo {by_access}");
    }
}

#[tokio::test]
async fn tokeninfo_refuses_tampered_unpublished_and_expired_id_tokens() {
    let t = spawn().await;
    let (answer, _) = exchange(&t, &t.user).await;
    let id_token = answer["id_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = id_token.split('.').collect();
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let (header, claims) = (decode(parts[0]), decode(parts[1]));

    // Another user's sub, the signature kept.
    let mut forged = claims.clone();
    forged["sub"] = json!(format!("{}0", claims["sub"].as_str().unwrap()));
    let tampered = format!("{}.{}.{}", parts[0], encode(&forged), parts[2]);
    assert_refused(&t, &tampered, "tampered claims").await;

    // One character of the signature changed.
    let mut signature = parts[2].to_owned();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    signature.replace_range(0..1, flipped);
    let bad_signature = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert_refused(&t, &bad_signature, "tampered signature").await;

    // HS256 (the JWK as a secret), and no algorithm at all.
    for alg in ["HS256", "none"] {
        let mut other = header.clone();
        other["alg"] = json!(alg);
        let token = format!("{}.{}.{}", encode(&other), parts[1], parts[2]);
        assert_refused(&t, &token, alg).await;
    }
    // Algorithm confusion: an HS256 token MACed with what refreshd publishes (the JWK's
    // modulus, the certificate) as the secret, as a verifier that took the public key as an
    // HMAC key would accept; and `none` with an empty signature.
    let jwks = get_json(&t, "/oauth2/v3/certs", None).await;
    let certs = get_json(&t, "/oauth2/v1/certs", None).await;
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    let public_texts = [
        jwk["n"].as_str().unwrap().to_owned(),
        certs[kid].as_str().unwrap().to_owned(),
    ];
    let mut hs256 = header.clone();
    hs256["alg"] = json!("HS256");
    let signing_input = format!("{}.{}", encode(&hs256), parts[1]);
    for secret in &public_texts {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&key, signing_input.as_bytes());
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_refused(&t, &token, "HS256 MACed with published key material").await;
    }
    let mut none = header.clone();
    none["alg"] = json!("none");
    let token = format!("{}.{}.", encode(&none), parts[1]);
    assert_refused(&t, &token, "alg none, empty signature").await;

    // Not a JWS.
    assert_refused(&t, "not-a-jwt", "garbage").await;
    assert_refused(&t, &format!("{}.{}", parts[0], parts[1]), "unsigned").await;

    // Well signed, by a key refreshd never published.
    let sealer = KeySealer::new(&hex_key(TEST_MASTER_KEY));
    let stranger =
        refreshd_provider::oidc::generate_signing_key(&sealer, 99, t.clock.now(), t.clock.now())
            .unwrap();
    let claims_struct: IdTokenClaims = serde_json::from_value(claims.clone()).unwrap();
    let unpublished =
        refreshd_provider::oidc::id_token::sign(&claims_struct, &stranger, &sealer).unwrap();
    assert_refused(&t, &unpublished, "unpublished kid").await;
    // The same, under the published kid: its signature does not verify.
    let mut published_kid = decode(unpublished.split('.').next().unwrap());
    published_kid["kid"] = header["kid"].clone();
    let (_, relabelled) = unpublished.split_once('.').unwrap();
    assert_refused(
        &t,
        &format!("{}.{relabelled}", encode(&published_kid)),
        "stranger's signature under a published kid",
    )
    .await;

    // Valid until `exp`, refused from then on (no leeway).
    let exp = claims["exp"].as_i64().unwrap();
    t.clock.advance(exp - t.clock.now().secs() - 1);
    for (status, body) in tokeninfo_all_ways(&t, &id_token).await {
        assert_eq!(status, 200, "a second before exp: {body}");
    }
    t.clock.advance(1);
    assert_refused(&t, &id_token, "expired").await;
}
