//! OpenID Connect in the Google dialect: the id_token signing keys, generated on first start,
//! published at `/oauth2/v3/certs` (JWKS) and `/oauth2/v1/certs` (PEM certificates by kid).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use refreshd_core::{Clock, KeySealer, SystemClock};
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::common::process::TEST_MASTER_KEY;
use crate::common::spawn;

mod tokeninfo;

async fn get(t: &crate::common::TestApp, path: &str) -> (String, Value) {
    let response = t.http.get(t.at(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let cache_control = response
        .headers()
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (cache_control, response.json().await.unwrap())
}

fn max_age(cache_control: &str) -> u64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_signing_key_is_published_as_a_jwk_and_as_a_certificate_of_the_same_kid() {
    let t = spawn().await;
    let (v3_cache, jwks) = get(&t, "/oauth2/v3/certs").await;
    let (v1_cache, pems) = get(&t, "/oauth2/v1/certs").await;
    assert!(max_age(&v3_cache) > 0 && max_age(&v1_cache) > 0);
    assert!(v3_cache.starts_with("public,"), "{v3_cache}");

    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = keys[0].as_object().unwrap();
    let fields: BTreeSet<&str> = key.keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        BTreeSet::from(["alg", "e", "kid", "kty", "n", "use"])
    );
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("sig"))
    );
    assert_eq!(
        (key["alg"].as_str(), key["e"].as_str()),
        (Some("RS256"), Some("AQAB"))
    );
    let kid = key["kid"].as_str().unwrap();
    assert!(
        kid.len() == 40 && kid.bytes().all(|b| b.is_ascii_hexdigit()),
        "{kid}"
    );
    let modulus = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    assert_eq!(modulus.len(), 256, "RSA-2048");

    let pems = pems.as_object().unwrap();
    assert_eq!(pems.keys().collect::<Vec<_>>(), vec![kid], "the same kids");
    let pem = pems[kid].as_str().unwrap();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    webpki::EndEntityCert::try_from(&der).expect("an X.509 certificate");
    assert!(
        der.windows(modulus.len()).any(|w| w == modulus),
        "the certificate holds the JWK's public key"
    );

    // The key stays the same from one request to the next.
    let (_, again) = get(&t, "/oauth2/v3/certs").await;
    assert_eq!(again, jwks);
}

#[tokio::test]
async fn instances_starting_at_once_on_one_database_agree_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let database = refreshd_store::testing::scratch_database(dir.path()).await;
    let master: [u8; 32] = hex_key(TEST_MASTER_KEY);
    let now = SystemClock.now();
    let starts = (0..4).map(|_| {
        let database = database.clone();
        tokio::spawn(async move {
            let store = refreshd::store::open(&database, 2).await.unwrap();
            refreshd_provider::oidc::ensure_signing_key(
                store.as_ref(),
                &KeySealer::new(&master),
                now,
            )
            .await
            .unwrap()
        })
    });
    let mut seen = Vec::new();
    for start in starts {
        seen.push(start.await.unwrap());
    }
    assert_eq!(seen[0].len(), 1, "one key");
    assert!(
        seen.iter().all(|keys| *keys == seen[0]),
        "every instance reads the same key"
    );

    // A master key that does not open the kept key stops the start, and makes no key.
    let store = refreshd::store::open(&database, 2).await.unwrap();
    let wrong =
        refreshd_provider::oidc::ensure_signing_key(store.as_ref(), &KeySealer::new(&[9; 32]), now)
            .await
            .unwrap_err();
    assert!(wrong.to_string().contains(&seen[0][0].kid), "{wrong}");
    assert_eq!(store.signing_keys().await.unwrap(), seen[0]);
}

fn hex_key(hex: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    key
}

/// Google's discovery keys, in Google's order (Google's `jwt-bearer` grant left out).
const DISCOVERY_KEYS: [&str; 15] = [
    "issuer",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "scopes_supported",
    "token_endpoint_auth_methods_supported",
    "claims_supported",
    "code_challenge_methods_supported",
    "grant_types_supported",
];

async fn discovery(t: &crate::common::TestApp) -> (String, Value) {
    let response = t
        .http
        .get(t.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=3600",
        "Google lets the document be cached for an hour"
    );
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap();
    (text, json)
}

#[tokio::test]
async fn the_discovery_document_has_googles_fields_pointing_at_refreshd() {
    let t = spawn().await;
    let (text, doc) = discovery(&t).await;
    let fields: BTreeSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, BTreeSet::from(DISCOVERY_KEYS));
    let positions: Vec<usize> = DISCOVERY_KEYS
        .iter()
        .map(|key| text.find(&format!("\"{key}\":")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "Google's order: {text}");

    assert_eq!(doc["issuer"], "https://accounts.google.com");
    let endpoints = [
        ("authorization_endpoint", "/o/oauth2/v2/auth"),
        ("device_authorization_endpoint", "/device/code"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/v1/userinfo"),
        ("revocation_endpoint", "/revoke"),
        ("jwks_uri", "/oauth2/v3/certs"),
    ];
    for (key, path) in endpoints {
        assert_eq!(doc[key], t.at(path), "{key}");
    }
    let strings = |key: &str| -> Vec<&str> {
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    };
    assert_eq!(strings("id_token_signing_alg_values_supported"), ["RS256"]);
    assert_eq!(strings("subject_types_supported"), ["public"]);
    assert_eq!(strings("scopes_supported"), ["openid", "email", "profile"]);
    assert_eq!(
        strings("code_challenge_methods_supported"),
        ["plain", "S256"]
    );
    assert_eq!(
        strings("token_endpoint_auth_methods_supported"),
        ["client_secret_post", "client_secret_basic"]
    );
    assert_eq!(
        strings("response_types_supported"),
        ["code"],
        "only what the authorize endpoint answers"
    );
    assert_eq!(
        strings("grant_types_supported"),
        [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ]
    );
    assert_eq!(
        strings("claims_supported"),
        [
            "aud",
            "email",
            "email_verified",
            "exp",
            "family_name",
            "given_name",
            "iat",
            "iss",
            "name",
            "picture",
            "sub"
        ]
    );

    // The jwks_uri it names serves the keys; /v1/userinfo is /oauth2/v3/userinfo.
    let jwks: Value = t
        .http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let userinfo = t.http.get(t.at("/v1/userinfo")).send().await.unwrap();
    assert_eq!(userinfo.status(), 401, "a Bearer token is needed");
}

#[tokio::test]
async fn the_issuer_is_configurable() {
    let t = crate::common::spawn_configured(|config| {
        config.oidc_issuer = "https://id.example.test".into();
    })
    .await;
    let (_, doc) = discovery(&t).await;
    assert_eq!(doc["issuer"], "https://id.example.test");
}

/// An id_token's header and claims, its signature checked against `/oauth2/v3/certs`.
pub(crate) async fn verified(t: &crate::common::TestApp, id_token: &str) -> (Value, Value) {
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "{id_token}");
    let json = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    let (header, claims) = (json(parts[0]), json(parts[1]));
    let (_, jwks) = get(t, "/oauth2/v3/certs").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} not published", header["kid"]));
    let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let public = ring::signature::RsaPublicKeyComponents {
        n: component("n"),
        e: component("e"),
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .expect("the signature verifies against the published key");
    // A tampered payload does not: another subject (the original with a digit more).
    let mut tampered = claims.clone();
    tampered["sub"] = Value::String(format!("{}0", claims["sub"].as_str().unwrap()));
    let forged = format!(
        "{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).unwrap())
    );
    assert_ne!(forged, signed, "the tamper changes the signed input");
    assert!(
        public
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                forged.as_bytes(),
                &signature
            )
            .is_err()
    );
    (header, claims)
}

async fn google_token(t: &crate::common::TestApp, params: &[(&str, &str)]) -> Value {
    let response = t
        .http
        .post(t.at("/token"))
        .form(params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn at_hash_of(access_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

#[tokio::test]
async fn a_grant_with_openid_gets_a_signed_id_token_on_exchange_and_refresh() {
    use refreshd_core::{AppKind, Scopes};

    let t = spawn().await;
    let (app, secret) = crate::common::create_app(&t.provider, AppKind::GoogleClient, true).await;
    let client_id = app.client_id.as_str();
    let user = t
        .create_user("ada", Some("Ada Lovelace"), Some("ada@example.com"))
        .await;
    let redirect = "http://localhost:9999/callback";
    let code = refreshd_provider::issue_code(
        &t.provider,
        &app,
        &user,
        &Scopes::parse("openid email profile"),
        Some(redirect.into()),
        None,
        true,
    )
    .await
    .unwrap();
    let first = google_token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    let access = first["access_token"].as_str().unwrap();
    let (header, claims) = verified(&t, first["id_token"].as_str().unwrap()).await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let fields: BTreeSet<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "iss",
            "azp",
            "aud",
            "sub",
            "email",
            "email_verified",
            "at_hash",
            "name",
            "picture",
            "given_name",
            "family_name",
            "iat",
            "exp"
        ])
    );
    let now = crate::common::START.secs();
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["azp"], client_id);
    assert_eq!(claims["sub"], user.id.to_string());
    assert!(
        claims["sub"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["at_hash"], at_hash_of(access));
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["given_name"], "Ada");
    assert_eq!(claims["family_name"], "Lovelace");
    assert_eq!(claims["picture"], t.at("/avatars/ada"));

    // userinfo speaks of the same user.
    let info: Value = t
        .http
        .get(t.at("/oauth2/v3/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["email"], claims["email"]);

    // A refresh, later: a new id_token with new times and at_hash.
    t.clock.advance(600);
    let refreshed = google_token(
        &t,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    let (_, again) = verified(&t, refreshed["id_token"].as_str().unwrap()).await;
    assert_eq!(again["sub"], claims["sub"]);
    assert_eq!(again["iat"], now + 600);
    assert_eq!(again["exp"], now + 600 + 3600);
    assert_eq!(
        again["at_hash"],
        at_hash_of(refreshed["access_token"].as_str().unwrap())
    );
    assert!(again.get("nonce").is_none());

    // Without email and profile: only the core claims; without openid: no id_token.
    for (scopes, expect_token) in [("openid", true), ("email profile", false)] {
        let code = refreshd_provider::issue_code(
            &t.provider,
            &app,
            &user,
            &Scopes::parse(scopes),
            Some(redirect.into()),
            None,
            true,
        )
        .await
        .unwrap();
        let answer = google_token(
            &t,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", client_id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(answer.get("id_token").is_some(), expect_token, "{scopes}");
        if expect_token {
            let (_, claims) = verified(&t, answer["id_token"].as_str().unwrap()).await;
            let fields: BTreeSet<&str> = claims
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                fields,
                BTreeSet::from(["iss", "azp", "aud", "sub", "at_hash", "iat", "exp"])
            );
        }
    }
}

const SIGN_IN_REDIRECT: &str = "http://localhost:9999/callback";
const SIGN_IN_NONCE: &str = "n-0S6_WzA2Mj";

/// A `refreshd serve` process on the system clock (Google's libraries check `iat`/`exp`
/// against the real time), a Google-dialect app (its JSON, with the secret), the user
/// octocat, and a code for `openid email profile` with a nonce, minted by `code issue`.
async fn sign_in_server() -> (crate::common::process::Server, Value, String) {
    let server = crate::common::process::Server::start(&[]).await;
    let app = server.cli(&[
        "app",
        "create",
        "--name",
        "Sign in",
        "--dialect",
        "google",
        "--redirect-uri",
        SIGN_IN_REDIRECT,
        "--json",
    ]);
    server.create_octocat();
    let code = server.cli(&[
        "code",
        "issue",
        "--client-id",
        app["client_id"].as_str().unwrap(),
        "--login",
        "octocat",
        "--scope",
        "openid email profile",
        "--redirect-uri",
        SIGN_IN_REDIRECT,
        "--nonce",
        SIGN_IN_NONCE,
        "--json",
    ]);
    let code = code["code"].as_str().unwrap().to_owned();
    (server, app, code)
}

/// google-auth-library's `verifyIdToken`, pointed at `/oauth2/v1/certs`: it accepts the
/// exchange's and the refresh's id_tokens and refuses a tampered one, one signed by an
/// unpublished kid, and one for another audience.
#[tokio::test]
async fn google_auth_library_verifies_the_id_token() {
    let (server, app, code) = sign_in_server().await;
    let env = [
        ("REFRESHD_URL", server.url.as_str()),
        ("CLIENT_ID", app["client_id"].as_str().unwrap()),
        ("CLIENT_SECRET", app["client_secret"].as_str().unwrap()),
        ("REDIRECT_URI", SIGN_IN_REDIRECT),
        ("CODE", &code),
        ("NONCE", SIGN_IN_NONCE),
    ];
    crate::common::run_js("oidc.mjs", "google-auth-library", &env, || server.logs()).await;
}

/// Python google-auth's `google.oauth2.id_token.verify_token` with `certs_url` at
/// `/oauth2/v1/certs` and no clock skew: it accepts the exchange's id_token (the script checks
/// `iss` itself, as the library does not) and refuses a tampered one and another audience.
#[tokio::test]
async fn python_google_auth_verifies_the_id_token() {
    let (server, app, code) = sign_in_server().await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/py/verify_id_token.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .env("REFRESHD_URL", &server.url)
        .env("CLIENT_ID", app["client_id"].as_str().unwrap())
        .env("CLIENT_SECRET", app["client_secret"].as_str().unwrap())
        .env("REDIRECT_URI", SIGN_IN_REDIRECT)
        .env("CODE", &code)
        .env("NONCE", SIGN_IN_NONCE)
        .output()
        .await
        .expect("running python3 (google-auth: pip install -r tests/py/requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("verify_id_token: all checks passed"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.logs()
    );
}

/// The kids `/oauth2/v3/certs` and `/oauth2/v1/certs` publish (asserted equal).
async fn published_kids(t: &crate::common::TestApp) -> BTreeSet<String> {
    let (_, jwks) = get(t, "/oauth2/v3/certs").await;
    let (_, pems) = get(t, "/oauth2/v1/certs").await;
    let v3: BTreeSet<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    let v1: BTreeSet<String> = pems.as_object().unwrap().keys().cloned().collect();
    assert_eq!(v3, v1);
    v3
}

/// An id_token from a code exchange for `openid` by the Google app `app`.
async fn fresh_id_token(
    t: &crate::common::TestApp,
    app: &refreshd_store::App,
    secret: &str,
) -> String {
    let redirect = "http://localhost:9999/callback";
    let code = refreshd_provider::issue_code(
        &t.provider,
        app,
        &t.user,
        &refreshd_core::Scopes::parse("openid"),
        Some(redirect.into()),
        None,
        true,
    )
    .await
    .unwrap();
    let answer = google_token(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret),
        ],
    )
    .await;
    answer["id_token"].as_str().unwrap().to_owned()
}

/// A rotation with `--now` (the use case the CLI runs, on the server's clock): the token
/// signed before it and the one after both verify against the published keys, the new one
/// under the new kid; once the old key's last id_token has expired (plus verifiers' skew),
/// its kid is no longer published, nor kept. A rotation without `--now` publishes the new key
/// at once but signs with it only after the certs' max-age.
#[tokio::test]
async fn a_rotation_keeps_id_tokens_signed_before_it_verifiable() {
    let t = spawn().await;
    let (app, secret) =
        crate::common::create_app(&t.provider, refreshd_core::AppKind::GoogleClient, true).await;
    let sealer = KeySealer::new(&hex_key(TEST_MASTER_KEY));
    let store = t.provider.store.as_ref();

    let before = fresh_id_token(&t, &app, &secret).await;
    let (old_header, _) = verified(&t, &before).await;
    let old_kid = old_header["kid"].as_str().unwrap().to_owned();
    assert_eq!(published_kids(&t).await, BTreeSet::from([old_kid.clone()]));

    let new = refreshd_provider::oidc::rotate_signing_key(store, &sealer, t.clock.now(), true)
        .await
        .unwrap();
    assert_eq!(new.generation, 2);
    assert_ne!(new.kid, old_kid);
    let after = fresh_id_token(&t, &app, &secret).await;
    assert_eq!(
        published_kids(&t).await,
        BTreeSet::from([old_kid.clone(), new.kid.clone()])
    );
    let (new_header, _) = verified(&t, &after).await;
    assert_eq!(new_header["kid"], new.kid.as_str());
    let (again, _) = verified(&t, &before).await;
    assert_eq!(again["kid"], old_kid.as_str());

    // Just before the old key's last id_token (signed at the rotation) is past exp + skew,
    // its kid is still published; then no longer, and the sweep's rule drops it.
    t.clock.advance(3600 + 300 - 1);
    assert!(published_kids(&t).await.contains(&old_kid));
    t.clock.advance(1);
    assert_eq!(published_kids(&t).await, BTreeSet::from([new.kid.clone()]));
    verified(&t, &after).await;
    // (The server's own sweep may have dropped it already.)
    refreshd_provider::oidc::drop_retired_keys(store, t.clock.now())
        .await
        .unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);

    // Without --now: published at once, signing only after the certs' max-age and the
    // verifiers' clock skew.
    let pending = refreshd_provider::oidc::rotate_signing_key(store, &sealer, t.clock.now(), false)
        .await
        .unwrap();
    assert_eq!(pending.signs_from.secs(), t.clock.now().secs() + 3600 + 300);
    assert_eq!(
        published_kids(&t).await,
        BTreeSet::from([new.kid.clone(), pending.kid.clone()])
    );
    let (header, _) = verified(&t, &fresh_id_token(&t, &app, &secret).await).await;
    assert_eq!(header["kid"], new.kid.as_str());
    t.clock.advance(3600 + 300 - 1);
    let (header, _) = verified(&t, &fresh_id_token(&t, &app, &secret).await).await;
    assert_eq!(header["kid"], new.kid.as_str());
    t.clock.advance(1);
    let (header, _) = verified(&t, &fresh_id_token(&t, &app, &secret).await).await;
    assert_eq!(header["kid"], pending.kid.as_str());

    // A master key other than the keys' refuses to rotate.
    let wrong = refreshd_provider::oidc::rotate_signing_key(
        store,
        &KeySealer::new(&[9; 32]),
        t.clock.now(),
        true,
    )
    .await
    .unwrap_err();
    assert!(wrong.to_string().contains("master key"), "{wrong}");
}

/// `refreshd signing-key rotate [--now]` and `list` on a serving process's database: the new
/// key is published by the running server, signs at once with `--now`, and `list` shows every
/// key's state and never key material.
#[tokio::test]
async fn signing_keys_rotate_and_list_from_the_command_line() {
    let (server, app, code) = sign_in_server().await;
    let list = server.cli(&["signing-key", "list", "--json"]);
    let keys = list.as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["state"], "current");
    assert_eq!(keys[0]["generation"], 1);
    let first = keys[0]["kid"].as_str().unwrap().to_owned();

    let pending = server.cli(&["signing-key", "rotate", "--json"]);
    assert_eq!(pending["generation"], 2);
    assert_eq!(pending["state"], "pending");
    assert_eq!(
        (pending["published"].as_bool(), pending["current"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        pending["signs_from"].as_i64().unwrap() - pending["created_at"].as_i64().unwrap(),
        3600 + 300
    );
    let now = server.cli(&["signing-key", "rotate", "--now", "--json"]);
    assert_eq!(now["generation"], 3);
    assert_eq!(now["state"], "current");
    let list = server.cli(&["signing-key", "list", "--json"]);
    let states: Vec<(i64, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["generation"].as_i64().unwrap(),
                k["state"].as_str().unwrap(),
            )
        })
        .collect();
    // Generation 2 was overtaken before it ever signed: no longer published.
    assert_eq!(states, [(1, "retiring"), (2, "retired"), (3, "current")]);
    for key in list.as_array().unwrap() {
        let fields: BTreeSet<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from([
                "kid",
                "generation",
                "created_at",
                "signs_from",
                "state",
                "published",
                "current"
            ])
        );
    }

    let http = reqwest::Client::new();
    let pems: Value = http
        .get(format!("{}/oauth2/v1/certs", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: BTreeSet<&str> = pems
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        kids,
        BTreeSet::from([first.as_str(), now["kid"].as_str().unwrap()])
    );
    let answer: Value = http
        .post(format!("{}/token", server.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SIGN_IN_REDIRECT),
            ("client_id", app["client_id"].as_str().unwrap()),
            ("client_secret", app["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = answer["id_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], now["kid"]);
}

/// Runs `tests/py/{script}` with `env`; it must print `{name}: all checks passed`.
async fn run_python(script: &str, env: &[(&str, &str)], context: impl FnOnce() -> String) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/py")
        .join(script);
    let output = tokio::process::Command::new("python3")
        .arg(path)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("running python3 (google-auth: pip install -r tests/py/requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let marker = format!("{}: all checks passed", script.trim_end_matches(".py"));
    assert!(
        output.status.success() && stdout.contains(&marker),
        "{script} failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        context()
    );
}

/// A code for `openid` by `app` (its JSON) for octocat, minted by `code issue` on `server`.
fn openid_code(server: &crate::common::process::Server, app: &Value) -> String {
    let code = server.cli(&[
        "code",
        "issue",
        "--client-id",
        app["client_id"].as_str().unwrap(),
        "--login",
        "octocat",
        "--scope",
        "openid",
        "--redirect-uri",
        SIGN_IN_REDIRECT,
        "--json",
    ]);
    code["code"].as_str().unwrap().to_owned()
}

/// `code` exchanged at `url` by `app` (its JSON): the answer's id_token.
async fn exchanged_id_token(url: &str, app: &Value, code: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", SIGN_IN_REDIRECT),
            ("client_id", app["client_id"].as_str().unwrap()),
            ("client_secret", app["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    answer["id_token"].as_str().unwrap().to_owned()
}

fn kid_of(id_token: &str) -> String {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The kids `url` publishes at `/oauth2/v1/certs`.
async fn served_kids(url: &str) -> BTreeSet<String> {
    let pems: Value = reqwest::get(format!("{url}/oauth2/v1/certs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    pems.as_object().unwrap().keys().cloned().collect()
}

/// On a `refreshd serve` process on the real clock: an id_token, then `signing-key rotate
/// --now` (the CLI, another process), then a second id_token under the new kid; Node's
/// google-auth-library and Python's google-auth, each fetching the certs after the rotation,
/// verify both.
#[tokio::test]
async fn google_libraries_verify_id_tokens_signed_before_and_after_a_rotation() {
    let (server, app, code) = sign_in_server().await;
    let second_code = openid_code(&server, &app);
    let before = exchanged_id_token(&server.url, &app, &code).await;
    let rotated = server.cli(&["signing-key", "rotate", "--now", "--json"]);
    let after = exchanged_id_token(&server.url, &app, &second_code).await;
    assert_eq!(kid_of(&after), rotated["kid"].as_str().unwrap());
    assert_ne!(kid_of(&before), kid_of(&after));
    assert_eq!(
        served_kids(&server.url).await,
        BTreeSet::from([kid_of(&before), kid_of(&after)])
    );

    let env = [
        ("REFRESHD_URL", server.url.as_str()),
        ("CLIENT_ID", app["client_id"].as_str().unwrap()),
        ("ID_TOKEN_BEFORE", before.as_str()),
        ("ID_TOKEN_AFTER", after.as_str()),
    ];
    crate::common::run_js("oidc_rotation.mjs", "google-auth-library", &env, || {
        server.logs()
    })
    .await;
    run_python("verify_rotation.py", &env, || server.logs()).await;
}

/// Two `refreshd serve` processes on one database (SQLite file or PostgreSQL): they publish
/// one key set; after `signing-key rotate` from the command line both publish the new key at
/// once, and with `--now` both sign with it at once. Neither keeps keys in memory: each reads
/// them from the store per request.
#[tokio::test]
async fn two_instances_on_one_database_publish_and_sign_with_the_rotated_key() {
    let first = crate::common::process::Server::start(&[]).await;
    let second = crate::common::process::Server::start_on(&first.database, &[]).await;
    let app = first.cli(&[
        "app",
        "create",
        "--name",
        "Shared",
        "--dialect",
        "google",
        "--redirect-uri",
        SIGN_IN_REDIRECT,
        "--json",
    ]);
    first.create_octocat();
    let logs = || format!("{}\n{}", first.logs(), second.logs());
    let original = served_kids(&first.url).await;
    assert_eq!(original.len(), 1);
    assert_eq!(served_kids(&second.url).await, original, "{}", logs());

    // Published ahead of signing: both publish it, neither signs with it yet.
    let pending = first.cli(&["signing-key", "rotate", "--json"]);
    let pending_kid = pending["kid"].as_str().unwrap().to_owned();
    let mut with_pending = original.clone();
    with_pending.insert(pending_kid.clone());
    for server in [&first, &second] {
        assert_eq!(served_kids(&server.url).await, with_pending, "{}", logs());
        let id_token = exchanged_id_token(&server.url, &app, &openid_code(&first, &app)).await;
        assert!(original.contains(&kid_of(&id_token)), "{}", logs());
    }

    // Signing at once (it overtakes the pending key, which never signed).
    let now = second.cli(&["signing-key", "rotate", "--now", "--json"]);
    let new_kid = now["kid"].as_str().unwrap().to_owned();
    let mut with_new = original.clone();
    with_new.insert(new_kid.clone());
    for server in [&first, &second] {
        assert_eq!(served_kids(&server.url).await, with_new, "{}", logs());
        let id_token = exchanged_id_token(&server.url, &app, &openid_code(&first, &app)).await;
        assert_eq!(kid_of(&id_token), new_kid, "{}", logs());
    }
}

/// Signing is made ready before the code is redeemed: when the key that signs now cannot be
/// opened, a code exchange answers 503 and the code stays good; once a key that opens signs,
/// the same code is exchanged, its id_token under that key.
#[tokio::test]
async fn a_code_exchange_that_cannot_sign_leaves_the_code_unspent() {
    let t = spawn().await;
    let (app, secret) =
        crate::common::create_app(&t.provider, refreshd_core::AppKind::GoogleClient, true).await;
    let store = t.provider.store.as_ref();
    let now = t.clock.now();
    let foreign =
        refreshd_provider::oidc::generate_signing_key(&KeySealer::new(&[9; 32]), 2, now, now)
            .unwrap();
    assert!(store.add_signing_key(&foreign).await.unwrap());

    let redirect = "http://localhost:9999/callback";
    let code = refreshd_provider::issue_code(
        &t.provider,
        &app,
        &t.user,
        &refreshd_core::Scopes::parse("openid"),
        Some(redirect.into()),
        None,
        true,
    )
    .await
    .unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("client_id", app.client_id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let refused = t
        .http
        .post(t.at("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    let good = refreshd_provider::oidc::generate_signing_key(
        &KeySealer::new(&hex_key(TEST_MASTER_KEY)),
        3,
        now,
        now,
    )
    .unwrap();
    assert!(store.add_signing_key(&good).await.unwrap());
    let answer = google_token(&t, &form).await;
    let (header, _) = verified(&t, answer["id_token"].as_str().unwrap()).await;
    assert_eq!(header["kid"], good.kid.as_str());
}
