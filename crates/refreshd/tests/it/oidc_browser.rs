//! OpenID Connect sign-in through refreshd's pages with a certified relying-party library:
//! `tests/js/openid_client.mjs` runs openid-client against a `refreshd serve` process (on the
//! system clock, its `oidc_issuer` its own URL) while headless Chromium (Debian's, through
//! playwright-core) signs in and approves. The library discovers refreshd, completes the
//! authorization code flow with PKCE (S256), nonce and state, verifies the id_token (signature,
//! iss, aud, nonce) and reads the userinfo; a wrong or missing PKCE verifier is refused by
//! refreshd's `/token` with `invalid_grant`, a wrong nonce or state by the library.

use std::path::Path;

use crate::common::process::{Server, output_with_stdin};
use crate::common::run_js;

const LOGIN: &str = "octocat";
const PASSWORD: &str = "correct horse battery staple";
/// Answered inside the browser (playwright's routing); nothing listens on port 9.
const REDIRECT_URI: &str = "http://127.0.0.1:9/oidc/callback";

#[tokio::test]
async fn openid_client_discovers_refreshd_and_signs_in_through_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: `apt-get install chromium` (scripts/test does)"
    );
    let server = Server::start_as_issuer().await;
    let created = output_with_stdin(
        server.command(&[
            "user",
            "create",
            "--login",
            LOGIN,
            "--name",
            "Mona",
            "--email",
            "mona@example.com",
            "--password-stdin",
        ]),
        PASSWORD,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let app = server.cli(&[
        "app",
        "create",
        "--name",
        "OpenID RP",
        "--dialect",
        "google",
        "--redirect-uri",
        REDIRECT_URI,
        "--json",
    ]);
    let env = [
        ("REFRESHD_URL", server.url.as_str()),
        ("CLIENT_ID", app["client_id"].as_str().unwrap()),
        ("CLIENT_SECRET", app["client_secret"].as_str().unwrap()),
        ("REDIRECT_URI", REDIRECT_URI),
        ("USER_LOGIN", LOGIN),
        ("USER_PASSWORD", PASSWORD),
        ("USER_EMAIL", "mona@example.com"),
        ("USER_NAME", "Mona"),
        ("CHROMIUM", &chromium),
    ];
    let server_log = || {
        let log = server.logs();
        format!(
            "server log tail:\n{}",
            &log[log.len().saturating_sub(4000)..]
        )
    };
    run_js("openid_client.mjs", "openid-client", &env, server_log).await;

    // The password never reached the server's log, as typed or form-encoded.
    let log = server.logs();
    assert!(!log.contains(PASSWORD) && !log.contains(&PASSWORD.replace(' ', "+")));
}
