//! The embedded SQLite database under a minute of sustained refreshes: its WAL stays under the
//! configured bound, and a SIGKILL afterwards loses no acknowledged rotation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::process::{Server, refresh_grant};
use serde_json::Value;

const WAL_MAX_BYTES: u64 = 4 * 1024 * 1024;
const CLIENTS: usize = 16;

async fn refresh(
    http: &reqwest::Client,
    url: &str,
    app: &(String, String),
    token: &str,
) -> Option<String> {
    let response = refresh_grant(http, url, (&app.0, &app.1), token)
        .await
        .ok()?;
    let answer: Value = response.json().await.ok()?;
    answer["refresh_token"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_minute_of_refreshes_keeps_the_wal_bounded_and_a_kill_loses_nothing() {
    if std::env::var("REFRESHD_TEST_DATABASE").as_deref() == Ok("postgres") {
        eprintln!("the WAL is SQLite's: nothing to test on PostgreSQL");
        return;
    }
    let bound = WAL_MAX_BYTES.to_string();
    let env = [("REFRESHD_SQLITE_WAL_MAX_BYTES", bound.as_str())];
    let mut server = Server::start(&env).await;
    let app = Arc::new(server.github_app_and_user());
    let wal = server.database.trim_start_matches("sqlite://").to_owned() + "-wal";

    let stop = Arc::new(AtomicBool::new(false));
    let largest_wal = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, largest_wal, wal) = (stop.clone(), largest_wal.clone(), wal.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                largest_wal.fetch_max(size, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let refreshes = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let pair = server.issue(&app.0);
            let mut token = pair["refresh_token"].as_str().unwrap().to_owned();
            let (url, app, stop, refreshes) = (
                server.url.clone(),
                app.clone(),
                stop.clone(),
                refreshes.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::SeqCst) {
                    token = refresh(&http, &url, &app, &token)
                        .await
                        .expect("every refresh under load succeeds");
                    refreshes.fetch_add(1, Ordering::Relaxed);
                }
                token
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(60)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.push(client.await.unwrap());
    }
    sampler.await.unwrap();
    let refreshes = refreshes.load(Ordering::SeqCst);
    let largest_wal = largest_wal.load(Ordering::SeqCst);
    eprintln!("{refreshes} refreshes in 60 s; largest WAL {largest_wal} bytes");
    assert!(refreshes > 10_000, "the load was real: {refreshes}");
    assert!(
        largest_wal <= WAL_MAX_BYTES,
        "the WAL grew to {largest_wal} bytes, past its bound of {WAL_MAX_BYTES}"
    );

    // Killed at once, restarted: every acknowledged rotation is there.
    server.kill();
    let started = Instant::now();
    let restarted = Server::start_on(&server.database, &env).await;
    let recovery = started.elapsed();
    eprintln!("restarted and serving after {recovery:?}");
    assert!(
        recovery < Duration::from_secs(1),
        "recovery (process start included) took {recovery:?}"
    );
    let http = reqwest::Client::new();
    for token in acknowledged {
        assert!(
            refresh(&http, &restarted.url, &app, &token).await.is_some(),
            "the last acknowledged refresh token still works"
        );
    }
}
