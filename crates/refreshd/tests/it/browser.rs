//! The provider's pages in a real browser: `tests/js/browser.mjs` drives Debian's Chromium
//! (headless, through playwright-core) against a `refreshd serve` process. An owner registers
//! a GitHub-dialect and a Google-dialect app in the settings pages; a user signs in, authorizes
//! them, cancels, meets the error page for a foreign redirect URI, gets a non-expiring token
//! after the owner opts out, and revokes the app. GitHub's and Google's own Node.js libraries
//! build the authorize URLs and exchange the codes.
//!
//! The test screenshots the consent and settings pages into `CARGO_TARGET_TMPDIR/screenshots`,
//! or into `$REFRESHD_SCREENSHOTS` when set: the README's come from
//! `REFRESHD_SCREENSHOTS=$PWD/docs/screenshots cargo nextest run -p refreshd --test it browser::`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::process::Server;
use crate::common::run_js;

const LOGIN: &str = "octocat";
const PASSWORD: &str = "correct horse battery staple";
const SCREENSHOTS: [&str; 3] = ["consent.png", "settings.png", "consent-phone.png"];

#[tokio::test]
async fn a_user_signs_in_and_authorizes_apps_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: `apt-get install chromium` (scripts/test does)"
    );

    let screenshots = std::env::var("REFRESHD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
    for name in SCREENSHOTS {
        let _ = std::fs::remove_file(screenshots.join(name));
    }
    let server = Server::start(&[]).await;
    let mut child = server
        .command(&["user", "create", "--login", LOGIN, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(PASSWORD.as_bytes()).unwrap();
    drop(stdin);
    let created = child.wait_with_output().unwrap();
    assert!(created.status.success());

    let screenshot_dir = screenshots.to_string_lossy();
    let env = [
        ("REFRESHD_URL", server.url.as_str()),
        ("USER_LOGIN", LOGIN),
        ("USER_PASSWORD", PASSWORD),
        ("CHROMIUM", &chromium),
        ("SCREENSHOT_DIR", &screenshot_dir),
    ];
    let server_log = || format!("server log tail:\n{}", tail(&server.logs()));
    run_js("browser.mjs", "playwright-core", &env, server_log).await;
    for name in SCREENSHOTS {
        let png = std::fs::read(screenshots.join(name)).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "no screenshot {name}");
    }

    // What the pages did is in the database: the owner's two apps, the GitHub one opted out.
    let apps = server.cli(&["app", "list", "--json"]);
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 2, "{apps:?}");
    let github = apps.iter().find(|a| a["name"] == "Octo CI").unwrap();
    assert_eq!(github["expiring_tokens"], false);
    assert_eq!(github["dialect"], "github");
    let google = apps.iter().find(|a| a["name"] == "Octo Mail").unwrap();
    assert_eq!(google["dialect"], "google");
    // Neither the CLI nor the server ever writes the password, as typed or form-encoded.
    let written = [
        String::from_utf8_lossy(&created.stdout).into_owned(),
        String::from_utf8_lossy(&created.stderr).into_owned(),
        server.logs(),
    ]
    .concat();
    for form in [
        PASSWORD.to_owned(),
        PASSWORD.replace(' ', "+"),
        PASSWORD.replace(' ', "%20"),
    ] {
        assert!(
            !written.contains(&form),
            "the password reached the output or log"
        );
    }
}

fn tail(log: &str) -> &str {
    &log[log.len().saturating_sub(4000)..]
}
