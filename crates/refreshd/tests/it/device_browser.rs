//! GitHub's device flow end to end with real clients: `tests/js/device.mjs` runs
//! `@octokit/auth-oauth-device` against a `refreshd serve` process while a person in headless
//! Chromium (Debian's, through playwright-core) enters the printed code on `/login/device`,
//! signs in and authorizes (the poller meets `authorization_pending`, then `slow_down` as it
//! polls every second, then gets a token that works on `/api/v3/user`), and then cancels a
//! second authorization (octokit rejects with `access_denied`); as a GitHub App client, octokit
//! reads the refresh token and the expiry of a third.
//!
//! The approval page is screenshot into `CARGO_TARGET_TMPDIR/screenshots/device.png`, or into
//! `$REFRESHD_SCREENSHOTS` when set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::process::Server;
use crate::common::run_js;

const LOGIN: &str = "octocat";
const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn octokit_completes_the_device_flow_while_a_person_approves_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: `apt-get install chromium` (scripts/test does)"
    );
    let screenshots = std::env::var("REFRESHD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
    let _ = std::fs::remove_file(screenshots.join("device.png"));

    let server = Server::start(&[]).await;
    let mut child = server
        .command(&["user", "create", "--login", LOGIN, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(PASSWORD.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let app = server.cli(&[
        "app",
        "create",
        "--name",
        "Octo CLI",
        "--redirect-uri",
        "http://localhost/cb",
        "--device-flow",
        "on",
        "--expiring-tokens",
        "on",
        "--json",
    ]);
    assert_eq!(app["device_flow"], true);
    assert_eq!(app["expiring_tokens"], true);
    let client_id = app["client_id"].as_str().unwrap();

    let screenshot_dir = screenshots.to_string_lossy();
    let env = [
        ("REFRESHD_URL", server.url.as_str()),
        ("CLIENT_ID", client_id),
        ("USER_LOGIN", LOGIN),
        ("USER_PASSWORD", PASSWORD),
        ("CHROMIUM", &chromium),
        ("SCREENSHOT_DIR", &screenshot_dir),
    ];
    let server_log = || {
        let log = server.logs();
        format!(
            "server log tail:\n{}",
            &log[log.len().saturating_sub(4000)..]
        )
    };
    run_js("device.mjs", "@octokit/auth-oauth-device", &env, server_log).await;
    let png = std::fs::read(screenshots.join("device.png")).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot device.png");

    // The password never reached the server's log, as typed or form-encoded.
    let log = server.logs();
    assert!(!log.contains(PASSWORD) && !log.contains(&PASSWORD.replace(' ', "+")));
}
