//! The README, run: every shell block marked `<!-- tested: crates/refreshd/tests/it/readme.rs -->`
//! (on the line just before its ```` ```sh ````) runs as written, top to bottom, in one bash
//! shell in a fresh directory, with this build's `refreshd` on `PATH`. The test fails when any
//! command fails, so the README and the product cannot drift apart.
//!
//! Three things differ from a reader's shell, none of them in what a command does when it
//! works: servers listen on free ports instead of the README's 127.0.0.1:8080, :9090, … (its URLs
//! are rewritten, and `REFRESHD_LISTEN` moves the default); `curl` fails on an HTTP error
//! (`--fail-with-body`) and `jq` on a missing field (`-e`), so an error answer cannot pass for
//! output; and the script runs with `set -euo pipefail`, its servers stopped when it ends.
//! Blocks left unmarked (building, the PostgreSQL setup) are not run here; `.ci/run` runs the
//! README's first command, `cargo run --release -- serve`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::process::free_port;

const MARKER: &str = "<!-- tested: crates/refreshd/tests/it/readme.rs -->";

/// The README's ports, each replaced by a free one.
const PORTS: [&str; 5] = [
    "127.0.0.1:8080",
    "127.0.0.1:9090",
    "127.0.0.1:8081",
    "127.0.0.1:9464",
    "127.0.0.1:8443",
];

/// Longest the whole README may take; a hung command fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(180);

#[test]
fn every_marked_readme_block_runs_as_written() {
    match std::env::var("REFRESHD_TEST_DATABASE").as_deref() {
        Ok("sqlite") | Err(_) => {}
        Ok(other) => {
            println!("the README test runs once, on SQLite; skipped on {other}");
            return;
        }
    }
    assert!(
        Command::new("jq").arg("--version").output().is_ok(),
        "the README's commands use jq: install it (scripts/test does)"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let ports = PORTS.map(|_| free_port());
    let script = script_of(&readme, &ports);

    let harness = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(harness.path().join("readme.sh"), &script).unwrap();
    let log = std::fs::File::create(harness.path().join("output.log")).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_refreshd")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut bash = Command::new("bash");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REFRESHD_") {
            bash.env_remove(name);
        }
    }
    std::os::unix::process::CommandExt::process_group(&mut bash, 0);
    let mut child = bash
        .arg(harness.path().join("readme.sh"))
        .current_dir(work.path())
        .env("PATH", path)
        .env("REFRESHD_LISTEN", format!("127.0.0.1:{}", ports[0]))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            // The script and every server it started are in one process group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_some_and(|s| s.success()) {
        return;
    }
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    // The logs of every server the README starts, each in its own directory.
    let servers: String = ["", "upstream/", "metered/", "tls/"]
        .iter()
        .map(|dir| {
            let log = format!("{dir}refreshd.log");
            format!("\n--- {log}\n{}", read(&work.path().join(&log)))
        })
        .collect();
    panic!(
        "the README failed ({}):\n{}{servers}",
        status.map_or("timed out".into(), |s| s.to_string()),
        read(&harness.path().join("output.log")),
    );
}

/// The marked blocks as one bash script whose line numbers are the README's: every other line
/// is left empty, and the first (a heading, never in a block) carries the settings.
fn script_of(readme: &str, ports: &[u16; PORTS.len()]) -> String {
    let lines: Vec<&str> = readme.lines().collect();
    let mut script: Vec<String> = vec![String::new(); lines.len()];
    script[0] = [
        "set -euo pipefail",
        // Stop the servers the README started, and let them drain, when the script ends.
        "trap 'status=$?; set +e; kill $(jobs -p) 2>/dev/null; wait; exit $status' EXIT",
        "trap 'echo \"README.md line $LINENO failed\" >&2' ERR",
        "curl() { command curl --fail-with-body \"$@\"; }",
        "jq() { command jq -e \"$@\"; }",
        "PS4='+ README.md:$LINENO: '",
        "set -x",
    ]
    .join("; ");
    let mut blocks = 0;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != MARKER {
            i += 1;
            continue;
        }
        assert_eq!(
            lines.get(i + 1).copied(),
            Some("```sh"),
            "README.md line {}: the marker must be right above a ```sh block",
            i + 1
        );
        i += 2;
        while i < lines.len() && lines[i] != "```" {
            let mut line = lines[i].to_owned();
            for (from, port) in PORTS.iter().zip(ports) {
                line = line.replace(from, &format!("127.0.0.1:{port}"));
            }
            script[i] = line;
            i += 1;
        }
        assert!(i < lines.len(), "README.md: a tested block is never closed");
        blocks += 1;
    }
    assert!(blocks > 0, "README.md has no block marked {MARKER}");
    script.join("\n") + "\n"
}
