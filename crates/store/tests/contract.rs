//! One contract every storage adapter must keep, run against a real SQLite file or a real
//! PostgreSQL (`REFRESHD_TEST_DATABASE`; `scripts/test` runs both).

use std::sync::Arc;

use refreshd_core::{
    AppId, AppKind, ClientId, ClientSecret, ConnectionId, ConnectionStatus, KeySealer, Login,
    Scopes, Timestamp, TokenDigest, TokenRole, TokenSealer, Upstream, UserId,
};
use refreshd_store::{
    AttemptCounts, AttemptLimits, ClaimAttempt, Connection, ConnectionFilter, ConnectionTokens,
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, DevicePoll, Failure, Grant,
    NewAccess, NewApp, NewCode, NewConnection, NewDeviceCode, NewPair, NewUser, Redelivery, Rotate,
    Rotation, SigningKey, Store, StoreError, Swept, WebhookEvent, WebhookEventKind, rules,
};
use refreshd_store_postgres::PostgresStore;
use refreshd_store_sqlite::{DEFAULT_WAL_MAX_BYTES, SqliteStore};

const NOW: Timestamp = Timestamp(1_800_000_000);
const GRACE: i64 = 10;

/// The adapter the test database's URL names, as the server's `refreshd::store::open` picks
/// it (which also refuses other URLs; its own test checks that).
async fn open(url: &str) -> Arc<dyn Store> {
    match refreshd_store_sqlite::path_of(url) {
        Some(path) => Arc::new(
            SqliteStore::open(path, DEFAULT_WAL_MAX_BYTES)
                .await
                .unwrap(),
        ),
        None => Arc::new(PostgresStore::open(url, 4).await.unwrap()),
    }
}

struct Fixture {
    store: Arc<dyn Store>,
    grant: Grant,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = refreshd_store::testing::scratch_database(dir.path()).await;
    let store = open(&url).await;
    let app = store.create_app(new_app("One"), NOW).await.unwrap();
    let user = store
        .create_user(
            NewUser {
                login: login("octocat"),
                name: None,
                email: None,
            },
            NOW,
        )
        .await
        .unwrap();
    let grant = Grant {
        app_id: app.id,
        user_id: user.id,
        scopes: Scopes::parse("repo"),
    };
    Fixture {
        store,
        grant,
        _dir: dir,
    }
}

fn new_app(name: &str) -> NewApp {
    NewApp {
        client_id: ClientId::generate(AppKind::GithubApp),
        name: name.into(),
        kind: AppKind::GithubApp,
        redirect_uri: "http://localhost/cb".into(),
        secret_digest: ClientSecret::generate(AppKind::GithubApp).digest(),
        expiring_tokens: true,
        device_flow: false,
        owner_id: None,
    }
}

/// A login known to follow the rules.
fn login(raw: &str) -> Login {
    Login::parse(raw).unwrap()
}

/// Another app's id than `app`.
fn other_than(app: AppId) -> AppId {
    AppId(app.0 + 1)
}

async fn user(f: &Fixture, login: &str) -> UserId {
    let new = NewUser {
        login: self::login(login),
        name: None,
        email: None,
    };
    f.store.create_user(new, NOW).await.unwrap().id
}

/// A pair whose tokens are `access-{n}` and `refresh-{n}`.
fn pair(n: u32) -> NewPair {
    NewPair {
        access: NewAccess {
            digest: TokenDigest::of(&format!("access-{n}")),
            last_eight: format!("{n:08}"),
            expires_at: Some(NOW.plus_secs(28_800)),
        },
        refresh: Some((
            TokenDigest::of(&format!("refresh-{n}")),
            Some(NOW.plus_secs(15_811_200)),
        )),
    }
}

async fn rotate(f: &Fixture, from: u32, to: u32, now: Timestamp) -> Rotation {
    let presented = TokenDigest::of(&format!("refresh-{from}"));
    let sealed = format!("answer-{to}").into_bytes();
    f.store
        .rotate_refresh(
            Rotate {
                presented,
                app_id: f.grant.app_id,
                successor: pair(to),
                sealed,
                grace_window_secs: GRACE,
            },
            now,
        )
        .await
        .unwrap()
}

async fn live(f: &Fixture, n: u32) -> bool {
    f.store
        .find_authorization(TokenDigest::of(&format!("access-{n}")), NOW)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn apps_are_created_found_and_updated() {
    let f = fixture().await;
    let app = f.store.create_app(new_app("Two"), NOW).await.unwrap();
    assert_eq!(
        f.store
            .find_app(&app.client_id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Two"
    );
    assert_eq!(f.store.list_apps().await.unwrap().len(), 2);
    let off = f
        .store
        .set_expiring_tokens(&app.client_id, false, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(!off.expiring_tokens);
    assert!(!off.device_flow, "the device flow is off until switched on");
    let on = f
        .store
        .set_device_flow(&app.client_id, true, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(on.device_flow);
    assert!(
        f.store
            .find_app(&app.client_id)
            .await
            .unwrap()
            .unwrap()
            .device_flow
    );
    let created_on = f
        .store
        .create_app(
            NewApp {
                device_flow: true,
                ..new_app("Three")
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(created_on.device_flow);
    let secret = ClientSecret::generate(AppKind::GithubApp);
    let reset = f
        .store
        .set_client_secret(&app.client_id, secret.digest(), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reset.secret_digest, secret.digest());
    let unknown = ClientId::parse("nope").unwrap();
    assert!(f.store.find_app(&unknown).await.unwrap().is_none());
    assert!(
        f.store
            .set_expiring_tokens(&unknown, true, NOW)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_login_is_taken_once() {
    let f = fixture().await;
    let again = NewUser {
        login: login("OctoCat"),
        name: None,
        email: None,
    };
    assert!(matches!(
        f.store.create_user(again, NOW).await,
        Err(StoreError::Conflict("user"))
    ));
    assert_eq!(
        f.store
            .find_user(&login("octocat"))
            .await
            .unwrap()
            .unwrap()
            .id,
        f.grant.user_id
    );
}

#[tokio::test]
async fn codes_redeem_once_for_their_own_app_before_expiry_and_start_a_family() {
    let f = fixture().await;
    let code = |n: u32| NewCode {
        digest: TokenDigest::of(&format!("code-{n}")),
        grant: f.grant.clone(),
        redirect_uri: None,
        code_challenge: Some("challenge".into()),
        code_challenge_method: Some("S256".into()),
        expires_at: NOW.plus_secs(600),
        with_refresh: true,
        nonce: None,
    };
    let exchange = |n: u32, app_id: AppId, pair_n: u32, now: Timestamp| {
        f.store.exchange_code(
            TokenDigest::of(&format!("code-{n}")),
            app_id,
            pair(pair_n),
            now,
        )
    };
    f.store.store_code(code(1)).await.unwrap();
    assert!(
        exchange(1, other_than(f.grant.app_id), 1, NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!live(&f, 1).await, "a refused exchange stores no pair");
    let redeemed = exchange(1, f.grant.app_id, 2, NOW).await.unwrap().unwrap();
    assert_eq!(redeemed.grant, f.grant);
    assert_eq!(redeemed.code_challenge.as_deref(), Some("challenge"));
    assert!(redeemed.with_refresh);
    assert!(live(&f, 2).await, "the pair is stored with the redemption");
    assert!(matches!(
        rotate(&f, 2, 3, NOW).await,
        Rotation::Rotated { .. }
    ));
    assert!(
        exchange(1, f.grant.app_id, 4, NOW).await.unwrap().is_none(),
        "single use"
    );
    assert!(!live(&f, 4).await);

    f.store.store_code(code(2)).await.unwrap();
    assert!(
        exchange(2, f.grant.app_id, 5, NOW.plus_secs(600))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );

    // A code issued without a refresh token (Google's online access) starts a family whose
    // pair has none: the pair's refresh token is not stored, so it can never be used.
    let online = NewCode {
        with_refresh: false,
        nonce: Some("n-0S6_WzA2Mj".into()),
        ..code(3)
    };
    f.store.store_code(online).await.unwrap();
    let redeemed = exchange(3, f.grant.app_id, 6, NOW).await.unwrap().unwrap();
    assert!(!redeemed.with_refresh);
    assert_eq!(redeemed.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert!(live(&f, 6).await);
    assert!(matches!(rotate(&f, 6, 7, NOW).await, Rotation::Rejected));
}

#[tokio::test]
async fn rotation_retires_the_old_pair_and_replays_inside_the_grace_window() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    assert!(live(&f, 1).await);
    assert!(matches!(
        rotate(&f, 1, 2, NOW).await,
        Rotation::Rotated { .. }
    ));
    assert!(
        !live(&f, 1).await,
        "the access token issued with a used refresh token stops at once"
    );
    assert!(live(&f, 2).await);
    match rotate(&f, 1, 3, NOW.plus_secs(GRACE)).await {
        Rotation::Replay { sealed, grant } => {
            assert_eq!(sealed, b"answer-2");
            assert_eq!(grant, f.grant);
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(live(&f, 2).await, "a replay leaves the successor alive");
    assert!(!live(&f, 3).await, "a replay stores nothing new");
}

#[tokio::test]
async fn reuse_after_the_window_revokes_the_family() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    rotate(&f, 1, 2, NOW).await;
    assert!(matches!(
        rotate(&f, 1, 3, NOW.plus_secs(GRACE + 1)).await,
        Rotation::FamilyRevoked
    ));
    assert!(!live(&f, 2).await);
    assert!(matches!(rotate(&f, 2, 4, NOW).await, Rotation::Rejected));
}

#[tokio::test]
async fn an_older_token_revokes_the_family_even_inside_the_window() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    rotate(&f, 1, 2, NOW).await;
    rotate(&f, 2, 3, NOW).await;
    assert!(matches!(
        rotate(&f, 1, 4, NOW).await,
        Rotation::FamilyRevoked
    ));
    assert!(!live(&f, 3).await);
}

#[tokio::test]
async fn expired_unknown_and_foreign_refresh_tokens_are_rejected() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    assert!(matches!(rotate(&f, 9, 2, NOW).await, Rotation::Rejected));
    let foreign = f
        .store
        .rotate_refresh(
            Rotate {
                presented: TokenDigest::of("refresh-1"),
                app_id: other_than(f.grant.app_id),
                successor: pair(2),
                sealed: vec![],
                grace_window_secs: GRACE,
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(foreign, Rotation::Rejected));
    assert!(matches!(
        rotate(&f, 1, 2, NOW.plus_secs(15_811_200)).await,
        Rotation::Rejected
    ));
    assert!(live(&f, 1).await, "a rejected refresh touches nothing");
}

#[tokio::test]
async fn of_concurrent_rotations_exactly_one_wins() {
    let f = Arc::new(fixture().await);
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move { rotate(&f, 1, 100 + i, NOW).await })
        })
        .collect();
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap() {
            Rotation::Rotated { .. } => rotated += 1,
            Rotation::Replay { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
    let alive = count_live(&f, 100..164).await;
    assert_eq!(alive, 1, "exactly one successor family branch is live");
}

async fn count_live(f: &Fixture, range: std::ops::Range<u32>) -> usize {
    let mut n = 0;
    for i in range {
        n += usize::from(live(f, i).await);
    }
    n
}

#[tokio::test]
async fn reset_and_revocation_stop_tokens_at_once() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    let new = NewAccess {
        digest: TokenDigest::of("access-2"),
        last_eight: "00000002".into(),
        expires_at: None,
    };
    let other_app = other_than(f.grant.app_id);
    assert!(
        f.store
            .reset_access(other_app, TokenDigest::of("access-1"), new.clone(), NOW)
            .await
            .unwrap()
            .is_none()
    );
    let auth = f
        .store
        .reset_access(f.grant.app_id, TokenDigest::of("access-1"), new, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.access_last_eight, "00000002");
    assert!(!live(&f, 1).await);
    assert!(live(&f, 2).await);

    assert!(
        !f.store
            .revoke_access(other_app, TokenDigest::of("access-2"), NOW)
            .await
            .unwrap()
    );
    assert!(
        f.store
            .revoke_access(f.grant.app_id, TokenDigest::of("access-2"), NOW)
            .await
            .unwrap()
    );
    assert!(!live(&f, 2).await);
    assert!(
        !f.store
            .revoke_access(f.grant.app_id, TokenDigest::of("access-2"), NOW)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn revoking_a_grant_stops_every_token_of_that_user_for_the_app() {
    let f = fixture().await;
    let (app, me) = (f.grant.app_id, f.grant.user_id);
    f.store
        .record_consent(app, me, &Scopes::parse("repo"), NOW)
        .await
        .unwrap();
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    f.store
        .issue_pair(f.grant.clone(), pair(2), NOW)
        .await
        .unwrap();
    assert!(
        f.store
            .revoke_grant(f.grant.app_id, TokenDigest::of("access-1"), NOW)
            .await
            .unwrap()
    );
    assert!(!live(&f, 1).await);
    assert!(!live(&f, 2).await);
    assert!(matches!(rotate(&f, 2, 3, NOW).await, Rotation::Rejected));
    assert_eq!(
        f.store.consented_scopes(app, me).await.unwrap(),
        None,
        "the approval goes with the grant"
    );
}

#[tokio::test]
async fn acknowledged_writes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = refreshd_store::testing::scratch_database(dir.path()).await;
    let client_id = {
        let store = open(&url).await;
        store
            .create_app(new_app("Durable"), NOW)
            .await
            .unwrap()
            .client_id
    };
    let store = open(&url).await;
    assert_eq!(
        store.find_app(&client_id).await.unwrap().unwrap().name,
        "Durable"
    );
}

#[tokio::test]
async fn sweeping_forgets_replays_after_the_window_and_dead_codes() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    rotate(&f, 1, 2, NOW).await;
    let code = NewCode {
        digest: TokenDigest::of("code"),
        grant: f.grant.clone(),
        redirect_uri: None,
        code_challenge: None,
        code_challenge_method: None,
        expires_at: NOW.plus_secs(600),
        with_refresh: true,
        nonce: None,
    };
    f.store.store_code(code).await.unwrap();

    let early = f.store.sweep(NOW.plus_secs(GRACE), GRACE).await.unwrap();
    assert_eq!(
        early,
        Swept {
            codes: 0,
            replays: 0,
            tokens: 0
        },
        "inside the window nothing goes"
    );
    let late = f.store.sweep(NOW.plus_secs(600), GRACE).await.unwrap();
    assert_eq!(
        late,
        Swept {
            codes: 1,
            replays: 1,
            tokens: 0
        }
    );
    assert_eq!(
        f.store.sweep(NOW.plus_secs(601), GRACE).await.unwrap(),
        Swept::default()
    );
    assert!(live(&f, 2).await, "sweeping touches no live token");
    // With its sealed answer gone, even a replay inside a (longer) window is reuse.
    let presented = TokenDigest::of("refresh-1");
    let late_replay = f
        .store
        .rotate_refresh(
            Rotate {
                presented,
                app_id: f.grant.app_id,
                successor: pair(3),
                sealed: vec![],
                grace_window_secs: 10_000,
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(late_replay, Rotation::FamilyRevoked));
}

#[tokio::test]
async fn api_keys_are_found_by_digest_until_revoked() {
    let f = fixture().await;
    let key = f
        .store
        .create_api_key("backend", TokenDigest::of("rfd_key"), "_key", NOW)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .find_api_key(TokenDigest::of("rfd_key"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "backend"
    );
    assert!(
        f.store
            .find_api_key(TokenDigest::of("rfd_other"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(f.store.list_api_keys().await.unwrap().len(), 1);
    assert!(f.store.revoke_api_key(key.id, NOW).await.unwrap());
    assert!(!f.store.revoke_api_key(key.id, NOW).await.unwrap());
    assert!(
        f.store
            .find_api_key(TokenDigest::of("rfd_key"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn sessions_and_replays_expire() {
    let f = fixture().await;
    let session = refreshd_store::Session {
        provider: "GITHUB".into(),
        subject: "42".into(),
        expires_at: NOW.plus_secs(60),
    };
    f.store
        .create_session(TokenDigest::of("s"), session, NOW)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .find_session(TokenDigest::of("s"), NOW)
            .await
            .unwrap()
            .unwrap()
            .subject,
        "42"
    );
    assert!(
        f.store
            .find_session(TokenDigest::of("s"), NOW.plus_secs(60))
            .await
            .unwrap()
            .is_none()
    );

    f.store
        .put_replay(TokenDigest::of("r"), b"one".to_vec(), NOW.plus_secs(60))
        .await
        .unwrap();
    f.store
        .put_replay(TokenDigest::of("r"), b"two".to_vec(), NOW.plus_secs(60))
        .await
        .unwrap();
    assert_eq!(
        f.store
            .get_replay(TokenDigest::of("r"), NOW)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"two"[..])
    );
    assert!(
        f.store
            .get_replay(TokenDigest::of("r"), NOW.plus_secs(60))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_reset_drops_the_grace_answer_it_would_contradict() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    rotate(&f, 1, 2, NOW).await;
    let new = NewAccess {
        digest: TokenDigest::of("access-reset"),
        last_eight: "00000000".into(),
        expires_at: None,
    };
    f.store
        .reset_access(f.grant.app_id, TokenDigest::of("access-2"), new, NOW)
        .await
        .unwrap()
        .unwrap();
    // The sealed answer named access-2, which no longer works: it is not replayed.
    assert!(matches!(
        rotate(&f, 1, 3, NOW).await,
        Rotation::FamilyRevoked
    ));
}

#[tokio::test]
async fn sweeping_deletes_pairs_once_all_their_tokens_have_expired() {
    let f = fixture().await;
    let short = NewPair {
        access: NewAccess {
            digest: TokenDigest::of("access-short"),
            last_eight: "shortacc".into(),
            expires_at: Some(NOW.plus_secs(100)),
        },
        refresh: Some((TokenDigest::of("refresh-short"), Some(NOW.plus_secs(200)))),
    };
    let forever = NewPair {
        access: NewAccess {
            digest: TokenDigest::of("access-forever"),
            last_eight: "forever0".into(),
            expires_at: None,
        },
        refresh: None,
    };
    for p in [short, forever] {
        f.store.issue_pair(f.grant.clone(), p, NOW).await.unwrap();
    }
    let refresh_short = TokenDigest::of("refresh-short");
    // The access token has expired, the refresh token not yet: the pair stays.
    let swept = f.store.sweep(NOW.plus_secs(150), GRACE).await.unwrap();
    assert_eq!(swept.tokens, 0);
    let extended = f
        .store
        .rotate_refresh(
            Rotate {
                presented: refresh_short,
                app_id: f.grant.app_id,
                successor: pair(9),
                sealed: vec![1],
                grace_window_secs: GRACE,
            },
            NOW.plus_secs(150),
        )
        .await
        .unwrap();
    assert!(matches!(extended, Rotation::Rotated { .. }));
    // Now the rotated pair is dead (both its tokens expired); its successor and the
    // non-expiring pair are not.
    let swept = f.store.sweep(NOW.plus_secs(201), GRACE).await.unwrap();
    assert_eq!(swept.tokens, 1);
    assert!(live(&f, 9).await);
    let forever = f
        .store
        .find_authorization(TokenDigest::of("access-forever"), NOW.plus_secs(10_000_000))
        .await
        .unwrap();
    assert!(
        forever.is_some(),
        "a token that never expires is never swept"
    );
    assert_eq!(
        f.store
            .sweep(NOW.plus_secs(202), GRACE)
            .await
            .unwrap()
            .tokens,
        0
    );
}

#[tokio::test]
async fn only_the_holder_renews_a_lease_and_a_renewed_lease_lasts() {
    let f = fixture().await;
    let key = TokenDigest::of("github\0ghr_renewed");
    let (a, b) = ([1u8; 16], [2u8; 16]);
    assert!(
        !f.store.renew_lease(key, a, NOW.plus_secs(5)).await.unwrap(),
        "nothing to renew"
    );
    assert!(
        f.store
            .take_lease(key, a, NOW.plus_secs(5), NOW)
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .renew_lease(key, b, NOW.plus_secs(60))
            .await
            .unwrap()
    );
    assert!(
        f.store.lease_free(key, NOW.plus_secs(5)).await.unwrap(),
        "another's renewal changed nothing"
    );
    assert!(
        f.store
            .renew_lease(key, a, NOW.plus_secs(10))
            .await
            .unwrap()
    );
    assert!(!f.store.lease_free(key, NOW.plus_secs(9)).await.unwrap());
    assert!(
        !f.store
            .take_lease(key, b, NOW.plus_secs(20), NOW.plus_secs(9))
            .await
            .unwrap()
    );
    // Once it lapsed and another took it, the old holder cannot renew it back.
    assert!(
        f.store
            .take_lease(key, b, NOW.plus_secs(20), NOW.plus_secs(10))
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .renew_lease(key, a, NOW.plus_secs(30))
            .await
            .unwrap()
    );
    assert!(f.store.lease_free(key, NOW.plus_secs(20)).await.unwrap());
}

#[tokio::test]
async fn a_lease_has_one_holder_until_released_or_expired() {
    let f = fixture().await;
    let key = TokenDigest::of("github\0ghr_token");
    let (a, b) = ([1u8; 16], [2u8; 16]);
    let until = NOW.plus_secs(30);
    assert!(f.store.lease_free(key, NOW).await.unwrap());
    assert!(f.store.take_lease(key, a, until, NOW).await.unwrap());
    assert!(!f.store.lease_free(key, NOW).await.unwrap());
    assert!(
        f.store.lease_free(key, until).await.unwrap(),
        "free once expired"
    );
    assert!(!f.store.take_lease(key, b, until, NOW).await.unwrap());
    assert!(
        !f.store.take_lease(key, a, until, NOW).await.unwrap(),
        "not re-entrant"
    );
    f.store.release_lease(key, b).await.unwrap();
    assert!(
        !f.store.take_lease(key, b, until, NOW).await.unwrap(),
        "only the holder releases"
    );
    f.store.release_lease(key, a).await.unwrap();
    assert!(f.store.take_lease(key, b, until, NOW).await.unwrap());
    // A holder that never releases (it died) loses the lease when it expires.
    assert!(
        !f.store
            .take_lease(key, a, NOW.plus_secs(60), NOW.plus_secs(29))
            .await
            .unwrap()
    );
    assert!(
        f.store
            .take_lease(key, a, NOW.plus_secs(60), NOW.plus_secs(30))
            .await
            .unwrap()
    );
    f.store.release_lease(key, b).await.unwrap();
    assert!(
        !f.store
            .take_lease(key, b, NOW.plus_secs(60), NOW.plus_secs(31))
            .await
            .unwrap(),
        "the old holder's release does not free the new holder's lease"
    );
    let other = TokenDigest::of("github\0ghr_other");
    assert!(
        f.store.take_lease(other, b, until, NOW).await.unwrap(),
        "leases are per key"
    );

    let swept = f.store.sweep(NOW.plus_secs(61), GRACE).await.unwrap();
    assert_eq!(swept, Swept::default());
    assert!(
        f.store.lease_free(key, NOW).await.unwrap(),
        "the sweep deleted the expired lease (free even at an earlier time)"
    );
    assert!(
        f.store
            .take_lease(key, b, NOW.plus_secs(90), NOW.plus_secs(61))
            .await
            .unwrap(),
        "expired leases are swept or taken over"
    );
}

#[tokio::test]
async fn of_concurrent_lease_takers_exactly_one_wins() {
    let f = fixture().await;
    let key = TokenDigest::of("google\0refresh");
    let takers: Vec<_> = (0..32u8)
        .map(|i| {
            let store = f.store.clone();
            tokio::spawn(
                async move { store.take_lease(key, [i; 16], NOW.plus_secs(30), NOW).await },
            )
        })
        .collect();
    let mut won = 0;
    for taker in takers {
        won += usize::from(taker.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn sweeps_running_at_once_are_safe() {
    let f = fixture().await;
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    rotate(&f, 1, 2, NOW).await;
    let later = NOW.plus_secs(600);
    // As when every instance's sweeper fires at once: none fails, and the work is done once.
    let sweeps: Vec<_> = (0..4)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move { store.sweep(later, GRACE).await })
        })
        .collect();
    let mut forgotten = 0;
    for sweep in sweeps {
        forgotten += sweep.await.unwrap().unwrap().replays;
    }
    assert_eq!(forgotten, 1, "the replay answer is forgotten, once");
    assert_eq!(f.store.sweep(later, GRACE).await.unwrap(), Swept::default());
    assert!(live(&f, 2).await);
}

#[tokio::test]
async fn a_users_password_hash_is_kept_and_replaced() {
    let f = fixture().await;
    assert_eq!(
        f.store.password_hash(&login("octocat")).await.unwrap(),
        None
    );
    assert!(
        f.store
            .set_password(&login("octocat"), "$argon2id$one", NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        f.store
            .password_hash(&login("OctoCat"))
            .await
            .unwrap()
            .as_deref(),
        Some("$argon2id$one"),
        "logins are found regardless of case"
    );
    let session = TokenDigest::of("session");
    let user = f.grant.user_id;
    f.store
        .create_web_session(session, user, NOW.plus_secs(60), NOW)
        .await
        .unwrap();
    let theirs = TokenDigest::of("their session");
    let hubot = self::user(&f, "hubot").await;
    f.store
        .create_web_session(theirs, hubot, NOW.plus_secs(60), NOW)
        .await
        .unwrap();
    assert!(
        f.store
            .find_web_session(session, NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        f.store
            .set_password(&login("OCTOCAT"), "$argon2id$two", NOW)
            .await
            .unwrap()
    );
    assert!(
        f.store
            .find_web_session(session, NOW)
            .await
            .unwrap()
            .is_none(),
        "a new password ends the sessions signed in with the old one"
    );
    assert!(
        f.store
            .find_web_session(theirs, NOW)
            .await
            .unwrap()
            .is_some(),
        "another user's sessions go on"
    );
    assert_eq!(
        f.store
            .password_hash(&login("octocat"))
            .await
            .unwrap()
            .as_deref(),
        Some("$argon2id$two")
    );
    assert!(
        !f.store
            .set_password(&login("nobody"), "$argon2id$x", NOW)
            .await
            .unwrap()
    );
    assert_eq!(f.store.password_hash(&login("nobody")).await.unwrap(), None);
}

#[tokio::test]
async fn web_sessions_name_their_user_until_they_expire_or_go() {
    let f = fixture().await;
    let (a, b) = (TokenDigest::of("web-a"), TokenDigest::of("web-b"));
    let until = NOW.plus_secs(60);
    for digest in [a, b] {
        f.store
            .create_web_session(digest, f.grant.user_id, until, NOW)
            .await
            .unwrap();
    }
    let find = |digest: TokenDigest, now: Timestamp| f.store.find_web_session(digest, now);
    let found = find(a, NOW).await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.login.as_str()),
        (f.grant.user_id, "octocat")
    );
    assert!(find(a, NOW.plus_secs(59)).await.unwrap().is_some());
    assert!(find(a, until).await.unwrap().is_none(), "expired");
    let unknown = TokenDigest::of("web-unknown");
    assert!(find(unknown, NOW).await.unwrap().is_none());
    f.store.delete_web_session(a).await.unwrap();
    assert!(find(a, NOW).await.unwrap().is_none(), "deleted");
    assert!(find(b, NOW).await.unwrap().is_some(), "others stay");

    f.store.sweep(NOW.plus_secs(59), GRACE).await.unwrap();
    assert!(
        find(b, NOW).await.unwrap().is_some(),
        "a live session is not swept"
    );
    f.store.sweep(until, GRACE).await.unwrap();
    assert!(
        find(b, NOW).await.unwrap().is_none(),
        "an expired session is swept"
    );
}

#[tokio::test]
async fn a_withdrawn_consent_ends_that_users_tokens_for_that_app_only() {
    let f = fixture().await;
    let (app, me) = (f.grant.app_id, f.grant.user_id);
    let other_user = user(&f, "hubot").await;
    let two = f.store.create_app(new_app("Two"), NOW).await.unwrap();
    assert_eq!(f.store.consented_scopes(app, me).await.unwrap(), None);
    assert!(f.store.list_consents(me).await.unwrap().is_empty());

    f.store
        .record_consent(two.id, me, &Scopes::parse("user"), NOW)
        .await
        .unwrap();
    f.store
        .record_consent(app, other_user, &Scopes::parse("repo"), NOW)
        .await
        .unwrap();
    let later = NOW.plus_secs(1);
    f.store
        .record_consent(app, me, &Scopes::parse("repo"), later)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .consented_scopes(app, me)
            .await
            .unwrap()
            .map(|s| s.to_github())
            .as_deref(),
        Some("repo")
    );
    f.store
        .record_consent(app, me, &Scopes::parse("repo,user"), later.plus_secs(1))
        .await
        .unwrap();
    assert_eq!(
        f.store
            .consented_scopes(app, me)
            .await
            .unwrap()
            .map(|s| s.to_github())
            .as_deref(),
        Some("repo,user"),
        "a second approval replaces the first"
    );
    let consents = f.store.list_consents(me).await.unwrap();
    let listed: Vec<_> = consents
        .iter()
        .map(|c| (c.app.id, c.scopes.to_github()))
        .collect();
    let listed: Vec<_> = listed.iter().map(|(id, s)| (*id, s.as_str())).collect();
    assert_eq!(
        listed,
        [(app, "repo,user"), (two.id, "user")],
        "newest first"
    );
    assert_eq!(consents[1].app.client_id, two.client_id);

    let mine = f.grant.clone();
    let theirs = Grant {
        user_id: other_user,
        ..mine.clone()
    };
    let elsewhere = Grant {
        app_id: two.id,
        ..mine.clone()
    };
    for (n, grant) in [(1, mine.clone()), (2, theirs), (3, elsewhere)] {
        f.store.issue_pair(grant, pair(n), NOW).await.unwrap();
    }
    let code = NewCode {
        digest: TokenDigest::of("code"),
        grant: mine,
        redirect_uri: None,
        code_challenge: None,
        code_challenge_method: None,
        expires_at: NOW.plus_secs(600),
        with_refresh: true,
        nonce: None,
    };
    f.store.store_code(code).await.unwrap();

    assert!(f.store.revoke_consent(app, me, NOW).await.unwrap());
    assert!(!live(&f, 1).await, "the user's tokens for the app stop");
    assert!(live(&f, 2).await, "another user's tokens stay");
    assert!(live(&f, 3).await, "the user's tokens for another app stay");
    let redeemed = f
        .store
        .exchange_code(TokenDigest::of("code"), app, pair(4), NOW)
        .await
        .unwrap();
    assert!(redeemed.is_none(), "the user's codes for the app go");
    assert_eq!(f.store.consented_scopes(app, me).await.unwrap(), None);
    let left: Vec<_> = f
        .store
        .list_consents(me)
        .await
        .unwrap()
        .iter()
        .map(|c| c.app.id)
        .collect();
    assert_eq!(left, [two.id]);
    assert!(
        f.store
            .consented_scopes(app, other_user)
            .await
            .unwrap()
            .is_some()
    );
    assert!(!f.store.revoke_consent(app, me, NOW).await.unwrap());
}

#[tokio::test]
async fn owners_list_their_apps_and_replace_redirect_uris() {
    let f = fixture().await;
    let (me, other) = (f.grant.user_id, user(&f, "hubot").await);
    let mut owned = Vec::new();
    for name in ["Mine", "Also mine"] {
        let new = NewApp {
            owner_id: Some(me),
            ..new_app(name)
        };
        owned.push(f.store.create_app(new, NOW).await.unwrap());
    }
    assert_eq!(owned[0].owner_id, Some(me));
    let ids = |apps: Vec<refreshd_store::App>| apps.iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f.store.list_owned_apps(me).await.unwrap()),
        [owned[0].id, owned[1].id],
        "oldest first, and not the unowned app"
    );
    assert!(f.store.list_owned_apps(other).await.unwrap().is_empty());

    let client_id = &owned[0].client_id;
    let uris = "http://a.example/cb\nhttp://b.example/cb";
    let app = f
        .store
        .set_redirect_uris(client_id, uris, NOW.plus_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.redirect_uris().collect::<Vec<_>>(),
        ["http://a.example/cb", "http://b.example/cb"],
        "the old URI is replaced"
    );
    let found = f.store.find_app(client_id).await.unwrap().unwrap();
    assert_eq!(
        found.redirect_uris().collect::<Vec<_>>(),
        ["http://a.example/cb", "http://b.example/cb"]
    );
    assert_eq!(found.owner_id, Some(me));
    let unknown = ClientId::parse("nope").unwrap();
    assert!(
        f.store
            .set_redirect_uris(&unknown, uris, NOW)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_owner_sees_and_revokes_live_token_families() {
    let f = fixture().await;
    let app = f.grant.app_id;
    let theirs = Grant {
        user_id: user(&f, "hubot").await,
        scopes: Scopes::parse("user"),
        ..f.grant.clone()
    };
    f.store
        .issue_pair(f.grant.clone(), pair(1), NOW)
        .await
        .unwrap();
    f.store.issue_pair(theirs, pair(2), NOW).await.unwrap();
    let active = f.store.active_tokens(app, NOW, 10).await.unwrap();
    let scopes: Vec<String> = active.iter().map(|t| t.scopes.to_github()).collect();
    let seen: Vec<_> = active
        .iter()
        .zip(&scopes)
        .map(|(t, scopes)| {
            (
                t.login.as_str(),
                t.access_last_eight.as_str(),
                scopes.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("hubot", "00000002", "user"),
            ("octocat", "00000001", "repo")
        ],
        "newest first"
    );
    assert_eq!(active[1].expires_at, Some(NOW.plus_secs(28_800)));
    let (theirs, mine) = (active[0].family_id, active[1].family_id);
    assert_eq!(f.store.active_tokens(app, NOW, 1).await.unwrap().len(), 1);

    rotate(&f, 1, 3, NOW).await;
    let active = f.store.active_tokens(app, NOW, 10).await.unwrap();
    let rotated: Vec<_> = active.iter().filter(|t| t.family_id == mine).collect();
    assert_eq!(rotated.len(), 1, "a rotated family is listed once");
    assert_eq!(rotated[0].access_last_eight, "00000003");
    assert_eq!(active.len(), 2);

    // A Google-style refresh adds an access token and leaves the refresh pair live: still one
    // row for the family, showing the newest token.
    let extra = NewAccess {
        digest: TokenDigest::of("access-4"),
        last_eight: "00000004".into(),
        expires_at: Some(NOW.plus_secs(3_599)),
    };
    let refresh = TokenDigest::of("refresh-3");
    assert!(
        f.store
            .extend_family(refresh, app, extra, NOW)
            .await
            .unwrap()
            .is_some()
    );
    let active = f.store.active_tokens(app, NOW, 10).await.unwrap();
    let extended: Vec<_> = active.iter().filter(|t| t.family_id == mine).collect();
    assert_eq!(extended.len(), 1, "an extended family is listed once");
    assert_eq!(extended[0].access_last_eight, "00000004");
    assert_eq!(active.len(), 2);

    assert!(
        !f.store
            .revoke_family(other_than(app), mine, NOW)
            .await
            .unwrap()
    );
    assert!(live(&f, 3).await, "another app's id revokes nothing");
    assert!(f.store.revoke_family(app, mine, NOW).await.unwrap());
    assert!(!live(&f, 3).await);
    let left: Vec<_> = f
        .store
        .active_tokens(app, NOW, 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.family_id)
        .collect();
    assert_eq!(left, [theirs]);
    assert!(!f.store.revoke_family(app, mine, NOW).await.unwrap());

    let dead = NOW.plus_secs(15_811_200);
    assert!(
        f.store
            .active_tokens(app, dead, 10)
            .await
            .unwrap()
            .is_empty(),
        "families whose tokens have all expired are not listed"
    );
}

const LIMITS: AttemptLimits = AttemptLimits {
    per_login: 3,
    per_address: 5,
    window_secs: 60,
};

/// Counts a sign-in attempt at `login` from `address` at `now`; `None` when refused.
async fn attempt(f: &Fixture, login: &str, address: &str, now: Timestamp) -> Option<(i64, i64)> {
    let counted = f.store.count_sign_in_attempt(login, address, LIMITS, now);
    let counts = counted.await.unwrap();
    counts.map(|AttemptCounts { login, address }| (login, address))
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_login_at_an_address_and_per_address() {
    let f = fixture().await;
    for n in 1..=3 {
        assert_eq!(attempt(&f, "octocat", "192.0.2.1", NOW).await, Some((n, n)));
    }
    assert_eq!(attempt(&f, "OctoCat", "192.0.2.1", NOW).await, None);
    assert_eq!(
        attempt(&f, "octocat", "2001:db8::/64", NOW).await,
        Some((1, 1)),
        "another address is not locked out"
    );
    assert_eq!(
        attempt(&f, "hubot", "192.0.2.1", NOW).await,
        Some((1, 4)),
        "a refused attempt is not counted"
    );
    assert_eq!(attempt(&f, "mona", "192.0.2.1", NOW).await, Some((1, 5)));
    assert_eq!(
        attempt(&f, "someone", "192.0.2.1", NOW).await,
        None,
        "the address reached its limit across logins"
    );
    assert_eq!(attempt(&f, "hubot", "192.0.2.1", NOW).await, None);
    assert_eq!(
        attempt(&f, "mona", "192.0.2.2", NOW).await,
        Some((1, 1)),
        "other addresses are not slowed"
    );
    let later = NOW.plus_secs(LIMITS.window_secs);
    assert_eq!(
        attempt(&f, "octocat", "192.0.2.1", later).await,
        Some((1, 1)),
        "both windows start over once ended"
    );
    assert_eq!(
        attempt(&f, "", "192.0.2.3", NOW).await,
        None,
        "no user has an empty login"
    );
}

#[tokio::test]
async fn a_successful_sign_in_clears_its_login_at_its_address_only() {
    let f = fixture().await;
    attempt(&f, "octocat", "192.0.2.1", NOW).await.unwrap();
    attempt(&f, "octocat", "192.0.2.1", NOW).await.unwrap();
    attempt(&f, "octocat", "192.0.2.2", NOW).await.unwrap();
    f.store
        .clear_sign_in_attempts("OCTOCAT", "192.0.2.1", NOW)
        .await
        .unwrap();
    assert_eq!(
        attempt(&f, "octocat", "192.0.2.1", NOW).await,
        Some((1, 2)),
        "the login starts over; the address keeps its one failure"
    );
    assert_eq!(
        attempt(&f, "octocat", "192.0.2.2", NOW).await,
        Some((2, 2)),
        "the other address keeps its count"
    );
}

#[tokio::test]
async fn concurrent_sign_in_attempts_never_slip_past_the_limit() {
    let f = fixture().await;
    let attempts: Vec<_> = (0..24)
        .map(|i| {
            let store = f.store.clone();
            // Half at one login, half at others, all from one address.
            let login = if i % 2 == 0 {
                "octocat".to_owned()
            } else {
                format!("user{i}")
            };
            tokio::spawn(async move {
                store
                    .count_sign_in_attempt(&login, "192.0.2.1", LIMITS, NOW)
                    .await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for attempt in attempts {
        if let Some(counts) = attempt.await.unwrap().unwrap() {
            seen.push(counts.address);
        }
    }
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4, 5], "each counted once, up to the limit");
}

#[tokio::test]
async fn the_sweep_deletes_attempt_counts_whose_window_has_ended() {
    let f = fixture().await;
    attempt(&f, "octocat", "192.0.2.1", NOW).await.unwrap();
    let later = NOW.plus_secs(30);
    attempt(&f, "octocat", "192.0.2.2", later).await.unwrap();
    f.store
        .sweep(NOW.plus_secs(LIMITS.window_secs), GRACE)
        .await
        .unwrap();
    assert_eq!(
        attempt(&f, "octocat", "192.0.2.1", later).await,
        Some((1, 1)),
        "the ended window was deleted (counting starts over even at an earlier time)"
    );
    assert_eq!(
        attempt(&f, "octocat", "192.0.2.2", later).await,
        Some((2, 2)),
        "a running window is kept"
    );
}

// Connections.

/// A database of its own, its URL (to read raw rows) and the store on it.
struct Scratch {
    store: Arc<dyn Store>,
    url: String,
    _dir: tempfile::TempDir,
}

async fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let url = refreshd_store::testing::scratch_database(dir.path()).await;
    Scratch {
        store: open(&url).await,
        url,
        _dir: dir,
    }
}

const MASTER_KEY: [u8; 32] = [42; 32];

fn sealer() -> TokenSealer {
    TokenSealer::new(&MASTER_KEY)
}

fn cid(raw: &str) -> ConnectionId {
    ConnectionId::parse(raw).unwrap()
}

/// Tokens `gho_access_{n}` (expiring in eight hours) and `ghr_refresh_{n}`, sealed for `id`.
fn sealed_tokens(id: &ConnectionId, n: u32) -> ConnectionTokens {
    let sealer = sealer();
    ConnectionTokens {
        access: sealer.seal(id, TokenRole::Access, &format!("gho_access_{n}")),
        access_expires_at: Some(NOW.plus_secs(28_800)),
        refresh: Some(sealer.seal(id, TokenRole::Refresh, &format!("ghr_refresh_{n}"))),
        refresh_expires_at: Some(NOW.plus_secs(15_811_200)),
        scopes: Scopes::parse("repo,user"),
    }
}

/// The clear tokens of a stored connection.
fn opened(connection: &Connection) -> (String, Option<String>) {
    let sealer = sealer();
    let id = &connection.id;
    let tokens = &connection.tokens;
    (
        sealer
            .unseal(id, TokenRole::Access, &tokens.access)
            .unwrap(),
        tokens
            .refresh
            .as_ref()
            .map(|r| sealer.unseal(id, TokenRole::Refresh, r).unwrap()),
    )
}

fn new_connection(id: &str, upstream: Upstream, next_refresh_at: Timestamp) -> NewConnection {
    NewConnection {
        id: cid(id),
        upstream,
        tokens: sealed_tokens(&cid(id), 0),
        next_refresh_at: Some(next_refresh_at),
        metadata: Some(r#"{"team":"a"}"#.into()),
    }
}

/// Puts connection `id` with GitHub, due at `next_refresh_at`.
async fn connect(store: &Arc<dyn Store>, id: &str, next_refresh_at: Timestamp) -> Connection {
    store
        .put_connection(new_connection(id, Upstream::Github, next_refresh_at), NOW)
        .await
        .unwrap()
}

fn backing_off(retry_after: Timestamp) -> Failure {
    Failure::BackingOff {
        error: "upstream answered 503".into(),
        retry_after,
    }
}

const HOLDER_A: [u8; 16] = [0xa; 16];
const HOLDER_B: [u8; 16] = [0xb; 16];

#[tokio::test]
async fn a_connection_is_put_found_and_replaced_as_a_whole() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW.plus_secs(100)).await;
    assert_eq!(put.id, cid("user-1"));
    assert_eq!(put.upstream, Upstream::Github);
    assert_eq!(put.status, ConnectionStatus::Live);
    assert_eq!(put.tokens.scopes, Scopes::parse("repo,user"));
    assert_eq!(
        (put.tokens.access_expires_at, put.tokens.refresh_expires_at),
        (Some(NOW.plus_secs(28_800)), Some(NOW.plus_secs(15_811_200)))
    );
    assert_eq!(
        opened(&put),
        ("gho_access_0".into(), Some("ghr_refresh_0".into()))
    );
    assert_eq!(put.next_refresh_at, Some(NOW.plus_secs(100)));
    assert_eq!((put.failure_count, put.last_error.as_deref()), (0, None));
    assert_eq!((put.retry_after, put.claimed_until), (None, None));
    assert_eq!(put.metadata.as_deref(), Some(r#"{"team":"a"}"#));
    assert_eq!(
        (put.last_refreshed_at, put.created_at, put.updated_at),
        (NOW, NOW, NOW)
    );
    assert_eq!(
        s.store.find_connection(&cid("user-1")).await.unwrap(),
        Some(put.clone())
    );
    assert_eq!(s.store.find_connection(&cid("user-2")).await.unwrap(), None);

    // A broken, claimed connection replaced: the new grant, live, no failures, no claim.
    let broken = s
        .store
        .record_failure(
            &put.id,
            put.version,
            Failure::Broken {
                error: "invalid_grant".into(),
            },
            NOW,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    s.store
        .claim_connection(&put.id, HOLDER_A, NOW.plus_secs(600), NOW)
        .await
        .unwrap();
    let later = NOW.plus_secs(60);
    let replacement = NewConnection {
        id: cid("user-1"),
        upstream: Upstream::Google,
        tokens: ConnectionTokens {
            access: sealer().seal(&cid("user-1"), TokenRole::Access, "ya29.new"),
            access_expires_at: Some(later.plus_secs(3599)),
            refresh: None,
            refresh_expires_at: None,
            scopes: Scopes::parse("openid email"),
        },
        next_refresh_at: None,
        metadata: None,
    };
    let replaced = s.store.put_connection(replacement, later).await.unwrap();
    let versions = [put.version, broken.version, replaced.version];
    assert!(versions[0] != versions[1] && versions[1] != versions[2] && versions[0] != versions[2]);
    assert_eq!(replaced.upstream, Upstream::Google);
    assert_eq!(replaced.status, ConnectionStatus::Live);
    assert_eq!(opened(&replaced), ("ya29.new".into(), None));
    assert_eq!(replaced.tokens.scopes.to_spaced(), "openid email");
    assert_eq!(
        (replaced.failure_count, replaced.last_error.as_deref()),
        (0, None)
    );
    assert_eq!(
        (
            replaced.claimed_until,
            replaced.next_refresh_at,
            replaced.metadata.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(
        (
            replaced.created_at,
            replaced.updated_at,
            replaced.last_refreshed_at
        ),
        (NOW, later, later)
    );
    assert_eq!(
        s.store.find_connection(&put.id).await.unwrap(),
        Some(replaced)
    );
}

#[tokio::test]
async fn a_version_never_repeats_for_an_id_even_after_a_delete() {
    let s = scratch().await;
    let first = connect(&s.store, "user-1", NOW).await;
    s.store
        .delete_connection(&first.id, None, None)
        .await
        .unwrap()
        .unwrap();
    let second = connect(&s.store, "user-1", NOW).await;
    assert_ne!(second.version, first.version);
    // A refresh of the deleted grant never lands on the new one.
    let stale = s
        .store
        .save_refresh(
            &first.id,
            first.version,
            sealed_tokens(&first.id, 9),
            None,
            NOW,
            None,
        )
        .await
        .unwrap();
    assert_eq!(stale, None);
    let failed = s
        .store
        .record_failure(&first.id, first.version, backing_off(NOW), NOW, None)
        .await;
    assert_eq!(failed.unwrap(), None);
    assert_eq!(
        s.store.find_connection(&first.id).await.unwrap(),
        Some(second)
    );
}

#[tokio::test]
async fn a_refresh_is_saved_only_at_the_version_it_read() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW).await;
    let later = NOW.plus_secs(30);
    let saved = s
        .store
        .save_refresh(
            &put.id,
            put.version,
            sealed_tokens(&put.id, 1),
            Some(later.plus_secs(900)),
            later,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_ne!(saved.version, put.version);
    assert_eq!(
        opened(&saved),
        ("gho_access_1".into(), Some("ghr_refresh_1".into()))
    );
    assert_eq!(
        (saved.last_refreshed_at, saved.updated_at, saved.created_at),
        (later, later, NOW)
    );
    assert_eq!(saved.next_refresh_at, Some(later.plus_secs(900)));
    assert_eq!(saved.metadata, put.metadata);
    assert_eq!(
        s.store.find_connection(&put.id).await.unwrap(),
        Some(saved.clone())
    );
    // The version it read has moved: nothing changes.
    let again = s
        .store
        .save_refresh(
            &put.id,
            put.version,
            sealed_tokens(&put.id, 2),
            None,
            later,
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    let missing = s
        .store
        .save_refresh(
            &cid("nobody"),
            saved.version,
            sealed_tokens(&cid("nobody"), 2),
            None,
            later,
            None,
        )
        .await
        .unwrap();
    assert_eq!(missing, None);
    assert_eq!(s.store.find_connection(&put.id).await.unwrap(), Some(saved));
}

#[tokio::test]
async fn of_concurrent_writes_naming_one_version_exactly_one_wins() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW).await;
    let writers: Vec<_> = (0..64u32)
        .map(|n| {
            let (store, id, version) = (s.store.clone(), put.id.clone(), put.version);
            tokio::spawn(async move {
                let written = if n % 4 == 3 {
                    store
                        .record_failure(&id, version, backing_off(NOW.plus_secs(30)), NOW, None)
                        .await
                } else {
                    store
                        .save_refresh(&id, version, sealed_tokens(&id, n), None, NOW, None)
                        .await
                };
                written.unwrap().map(|c| (n, c))
            })
        })
        .collect();
    let mut won = Vec::new();
    for writer in writers {
        won.extend(writer.await.unwrap());
    }
    assert_eq!(won.len(), 1, "exactly one writer wins");
    let (n, winner) = won.pop().unwrap();
    let stored = s.store.find_connection(&put.id).await.unwrap().unwrap();
    assert_eq!(stored, winner);
    if n % 4 == 3 {
        assert_eq!(
            (stored.status, stored.failure_count),
            (ConnectionStatus::BackingOff, 1)
        );
    } else {
        assert_eq!(opened(&stored).0, format!("gho_access_{n}"));
    }
}

#[tokio::test]
async fn failures_back_off_or_break_and_a_refresh_recovers() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW).await;
    let retry = NOW.plus_secs(30);
    let first = s
        .store
        .record_failure(&put.id, put.version, backing_off(retry), NOW, None)
        .await;
    let first = first.unwrap().unwrap();
    assert_eq!(first.status, ConnectionStatus::BackingOff);
    assert_eq!(
        (first.failure_count, first.last_error.as_deref()),
        (1, Some("upstream answered 503"))
    );
    assert_eq!(
        (first.retry_after, first.next_refresh_at),
        (Some(retry), Some(retry))
    );
    assert_eq!(opened(&first), opened(&put), "the tokens stay");
    let second = s
        .store
        .record_failure(
            &put.id,
            first.version,
            backing_off(NOW.plus_secs(90)),
            NOW.plus_secs(31),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.failure_count, second.updated_at),
        (2, NOW.plus_secs(31))
    );
    let recovered = s
        .store
        .save_refresh(
            &put.id,
            second.version,
            sealed_tokens(&put.id, 1),
            Some(NOW.plus_secs(999)),
            NOW.plus_secs(91),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recovered.status, ConnectionStatus::Live);
    assert_eq!(
        (
            recovered.failure_count,
            recovered.last_error,
            recovered.retry_after
        ),
        (0, None, None)
    );

    let long_error = "x".repeat(2000);
    let broken = s
        .store
        .record_failure(
            &put.id,
            recovered.version,
            Failure::Broken { error: long_error },
            NOW.plus_secs(92),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(broken.status, ConnectionStatus::Broken);
    assert_eq!(
        (
            broken.failure_count,
            broken.retry_after,
            broken.next_refresh_at
        ),
        (1, None, None)
    );
    assert_eq!(
        broken.last_error.unwrap().len(),
        refreshd_store::rules::connections::LAST_ERROR_MAX_CHARS
    );
    let far = NOW.plus_secs(10_000_000);
    assert!(
        s.store
            .claim_due(&Upstream::ALL, HOLDER_A, far.plus_secs(60), far, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn claim_due_takes_what_the_rule_calls_due_longest_due_first() {
    let s = scratch().await;
    // Due long ago, due now, due later, never; backing off; broken; claimed by another.
    connect(&s.store, "due-long-ago", NOW.plus_secs(-500)).await;
    connect(&s.store, "due-now", NOW).await;
    connect(&s.store, "due-later", NOW.plus_secs(1)).await;
    let mut never = new_connection("never", Upstream::Google, NOW);
    never.next_refresh_at = None;
    s.store.put_connection(never, NOW).await.unwrap();
    let waiting = connect(&s.store, "waiting", NOW.plus_secs(-100)).await;
    s.store
        .record_failure(
            &waiting.id,
            waiting.version,
            backing_off(NOW.plus_secs(20)),
            NOW,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let broken = connect(&s.store, "broken", NOW.plus_secs(-100)).await;
    s.store
        .record_failure(
            &broken.id,
            broken.version,
            Failure::Broken {
                error: "bad_refresh_token".into(),
            },
            NOW,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    connect(&s.store, "held", NOW.plus_secs(-300)).await;
    s.store
        .claim_connection(&cid("held"), HOLDER_B, NOW.plus_secs(10), NOW)
        .await
        .unwrap();

    for now in [NOW, NOW.plus_secs(10), NOW.plus_secs(20)] {
        let all = s
            .store
            .list_connections(&ConnectionFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut due: Vec<_> = all
            .iter()
            .filter(|c| rules::connections::is_due(c, now))
            .collect();
        due.sort_by_key(|c| c.next_refresh_at);
        let claimed = s
            .store
            .claim_due(&Upstream::ALL, HOLDER_A, now.plus_secs(60), now, 100)
            .await
            .unwrap();
        let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
        let expected: Vec<_> = due.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, expected, "at {now:?}");
        for c in &claimed {
            assert_eq!(c.claimed_until, Some(now.plus_secs(60)));
            let before = all.iter().find(|b| b.id == c.id).unwrap();
            assert_eq!(c.version, before.version, "a claim is not a change");
        }
        // Nothing is handed out twice while its claim lasts.
        let again = s
            .store
            .claim_due(&Upstream::ALL, HOLDER_B, now.plus_secs(60), now, 100)
            .await
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
    let at_20: Vec<_> = ["due-long-ago", "due-now", "due-later", "held", "waiting"].into();
    let mut claimed_by_20: Vec<_> = s
        .store
        .list_connections(&ConnectionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.claimed_until.is_some())
        .map(|c| c.id.as_str().to_owned())
        .collect();
    claimed_by_20.sort();
    let mut expected = at_20.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    expected.sort();
    assert_eq!(claimed_by_20, expected);
    // A claim that runs out (its holder died) hands the connection out again.
    let lapsed = NOW.plus_secs(60);
    let reclaimed = s
        .store
        .claim_due(&Upstream::ALL, HOLDER_B, lapsed.plus_secs(60), lapsed, 100)
        .await
        .unwrap();
    let ids: Vec<_> = reclaimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["due-long-ago", "due-now"],
        "claimed at NOW, until NOW + 60"
    );
    let lapsed = NOW.plus_secs(80);
    let reclaimed = s
        .store
        .claim_due(&Upstream::ALL, HOLDER_B, lapsed.plus_secs(60), lapsed, 100)
        .await
        .unwrap();
    let ids: Vec<_> = reclaimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["held", "due-later", "waiting"]);
}

#[tokio::test]
async fn claim_due_takes_only_the_upstreams_asked_for() {
    let s = scratch().await;
    for (id, upstream) in [("g1", Upstream::Github), ("o1", Upstream::Google)] {
        s.store
            .put_connection(new_connection(id, upstream, NOW.plus_secs(-1)), NOW)
            .await
            .unwrap();
    }
    let claim = |upstreams: &'static [Upstream], holder| {
        let store = s.store.clone();
        async move {
            let claimed = store
                .claim_due(upstreams, holder, NOW.plus_secs(60), NOW, 10)
                .await
                .unwrap();
            claimed
                .iter()
                .map(|c| c.id.as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(claim(&[], HOLDER_A).await.is_empty());
    assert_eq!(claim(&[Upstream::Google], HOLDER_A).await, ["o1"]);
    assert_eq!(claim(&Upstream::ALL, HOLDER_B).await, ["g1"]);
}

#[tokio::test]
async fn a_renewal_never_shortens_a_claim() {
    let s = scratch().await;
    let put = connect(&s.store, "r", NOW).await;
    let held = NOW.plus_secs(33);
    s.store
        .claim_connection(&put.id, HOLDER_A, held, NOW)
        .await
        .unwrap();
    // A renewal that lands after the claim was extended for the full hold leaves the hold.
    assert!(
        s.store
            .renew_claim(&put.id, HOLDER_A, NOW.plus_secs(5))
            .await
            .unwrap()
    );
    let found = s.store.find_connection(&put.id).await.unwrap().unwrap();
    assert_eq!(found.claimed_until, Some(held));
}

#[tokio::test]
async fn claim_due_takes_at_most_its_limit_and_a_saved_refresh_ends_the_claim() {
    let s = scratch().await;
    for n in 0..5 {
        connect(&s.store, &format!("c{n}"), NOW.plus_secs(-n)).await;
    }
    let claimed = s
        .store
        .claim_due(&Upstream::ALL, HOLDER_A, NOW.plus_secs(60), NOW, 2)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c4", "c3"]);
    assert!(
        s.store
            .claim_due(&Upstream::ALL, HOLDER_A, NOW.plus_secs(60), NOW, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let c4 = &claimed[0];
    let saved = s
        .store
        .save_refresh(
            &c4.id,
            c4.version,
            sealed_tokens(&c4.id, 1),
            Some(NOW),
            NOW,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.claimed_until, None);
    let next = s
        .store
        .claim_due(&Upstream::ALL, HOLDER_B, NOW.plus_secs(60), NOW, 10)
        .await
        .unwrap();
    let ids: Vec<_> = next.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c2", "c1", "c0", "c4"]);
}

#[tokio::test]
async fn concurrent_claimants_never_take_one_connection_twice() {
    let s = scratch().await;
    for n in 0..300 {
        connect(&s.store, &format!("c{n:03}"), NOW.plus_secs(-(n % 17))).await;
    }
    // Two stores on one database, as two instances: each with its own writer (SQLite) or
    // pool (PostgreSQL), several claimants each.
    let other = open(&s.url).await;
    let claimants: Vec<_> = (0..8u8)
        .map(|i| {
            let store = if i % 2 == 0 {
                s.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let batch = store
                        .claim_due(&Upstream::ALL, [i; 16], NOW.plus_secs(60), NOW, 7)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return taken;
                    }
                    taken.extend(batch.into_iter().map(|c| c.id));
                }
            })
        })
        .collect();
    let mut taken = Vec::new();
    for claimant in claimants {
        taken.extend(claimant.await.unwrap());
    }
    let distinct: std::collections::BTreeSet<_> = taken.iter().collect();
    assert_eq!(
        distinct.len(),
        taken.len(),
        "a connection was handed out twice"
    );
    assert_eq!(taken.len(), 300, "every due connection was claimed");
}

#[tokio::test]
async fn one_connection_is_claimed_by_one_holder_at_a_time() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW.plus_secs(3600)).await;
    let until = NOW.plus_secs(30);
    let ClaimAttempt::Claimed(claimed) = s
        .store
        .claim_connection(&put.id, HOLDER_A, until, NOW)
        .await
        .unwrap()
    else {
        panic!("a free connection is claimed, due or not");
    };
    assert_eq!(
        (claimed.claimed_until, claimed.version),
        (Some(until), put.version)
    );
    assert_eq!(
        s.store
            .claim_connection(&put.id, HOLDER_B, until, NOW)
            .await
            .unwrap(),
        ClaimAttempt::Held { until }
    );
    // The holder may claim again (and so extend it); the other may once it runs out.
    let longer = NOW.plus_secs(40);
    assert!(matches!(
        s.store.claim_connection(&put.id, HOLDER_A, longer, NOW).await.unwrap(),
        ClaimAttempt::Claimed(c) if c.claimed_until == Some(longer)
    ));
    assert!(
        !s.store
            .renew_claim(&put.id, HOLDER_B, NOW.plus_secs(99))
            .await
            .unwrap()
    );
    assert!(
        s.store
            .renew_claim(&put.id, HOLDER_A, NOW.plus_secs(50))
            .await
            .unwrap()
    );
    assert_eq!(
        s.store
            .claim_connection(&put.id, HOLDER_B, until, NOW.plus_secs(49))
            .await
            .unwrap(),
        ClaimAttempt::Held {
            until: NOW.plus_secs(50)
        }
    );
    assert!(matches!(
        s.store
            .claim_connection(&put.id, HOLDER_B, NOW.plus_secs(80), NOW.plus_secs(50))
            .await
            .unwrap(),
        ClaimAttempt::Claimed(_)
    ));
    // Only the holder releases; a release changes nothing else.
    assert!(!s.store.release_claim(&put.id, HOLDER_A).await.unwrap());
    assert!(s.store.release_claim(&put.id, HOLDER_B).await.unwrap());
    let released = s.store.find_connection(&put.id).await.unwrap().unwrap();
    assert_eq!(
        released,
        Connection {
            claimed_until: None,
            ..put.clone()
        }
    );
    assert!(!s.store.release_claim(&put.id, HOLDER_B).await.unwrap());
    assert_eq!(
        s.store
            .claim_connection(&cid("nobody"), HOLDER_A, until, NOW)
            .await
            .unwrap(),
        ClaimAttempt::Missing
    );
    assert!(
        !s.store
            .renew_claim(&cid("nobody"), HOLDER_A, until)
            .await
            .unwrap()
    );

    // Of concurrent claims on a free connection, exactly one wins.
    let claims: Vec<_> = (0..32u8)
        .map(|i| {
            let (store, id) = (s.store.clone(), put.id.clone());
            tokio::spawn(async move {
                store
                    .claim_connection(&id, [i; 16], NOW.plus_secs(200), NOW.plus_secs(100))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for claim in claims {
        match claim.await.unwrap().unwrap() {
            ClaimAttempt::Claimed(_) => won += 1,
            ClaimAttempt::Held { until } => assert_eq!(until, NOW.plus_secs(200)),
            ClaimAttempt::Missing => panic!("the connection exists"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn a_delete_at_a_version_leaves_a_connection_that_moved_on() {
    let s = scratch().await;
    let put = connect(&s.store, "d", NOW).await;
    let replaced = connect(&s.store, "d", NOW).await;
    assert_ne!(put.version, replaced.version);
    assert_eq!(
        s.store
            .delete_connection(&put.id, Some(put.version), None)
            .await
            .unwrap(),
        None
    );
    assert!(s.store.find_connection(&put.id).await.unwrap().is_some());
    assert_eq!(
        s.store
            .delete_connection(&put.id, Some(replaced.version), None)
            .await
            .unwrap(),
        Some(replaced)
    );
    assert!(s.store.find_connection(&put.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_delete_returns_what_it_deleted_once() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW).await;
    connect(&s.store, "user-2", NOW).await;
    assert_eq!(
        s.store
            .delete_connection(&put.id, None, None)
            .await
            .unwrap(),
        Some(put.clone())
    );
    assert_eq!(
        s.store
            .delete_connection(&put.id, None, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.store.find_connection(&put.id).await.unwrap(), None);
    assert!(
        s.store
            .find_connection(&cid("user-2"))
            .await
            .unwrap()
            .is_some()
    );

    let deletes: Vec<_> = (0..16)
        .map(|_| {
            let store = s.store.clone();
            tokio::spawn(async move { store.delete_connection(&cid("user-2"), None, None).await })
        })
        .collect();
    let mut deleted = 0;
    for delete in deletes {
        deleted += usize::from(delete.await.unwrap().unwrap().is_some());
    }
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn listing_pages_in_byte_order_and_filters_by_upstream_and_status() {
    let s = scratch().await;
    // Ids whose byte order differs from a language's collation.
    let raw = [
        "a", "B", "A", "b", "_x", "~z", "0", "Z~", "a-b", "a.b", "a_b", "aB", "ab", "-", "9",
        "user-10", "user-9", "User-1", "x~", "x.", "x-",
    ];
    for (n, id) in raw.iter().enumerate() {
        let upstream = if n % 3 == 0 {
            Upstream::Google
        } else {
            Upstream::Github
        };
        let put = s
            .store
            .put_connection(new_connection(id, upstream, NOW), NOW)
            .await
            .unwrap();
        if n % 4 == 0 {
            let broken = Failure::Broken {
                error: "invalid_grant".into(),
            };
            s.store
                .record_failure(&put.id, put.version, broken, NOW, None)
                .await
                .unwrap()
                .unwrap();
        }
    }
    let mut expected: Vec<&str> = raw.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

    async fn all_pages(store: &Arc<dyn Store>, mut filter: ConnectionFilter) -> Vec<Connection> {
        let mut all = Vec::new();
        loop {
            let page = store.list_connections(&filter).await.unwrap();
            assert!(page.len() <= filter.limit as usize);
            let Some(last) = page.last() else {
                return all;
            };
            filter.after = Some(last.id.clone());
            all.extend(page);
        }
    }
    let page = |limit| ConnectionFilter {
        limit,
        ..Default::default()
    };
    let listed = all_pages(&s.store, page(4)).await;
    let ids: Vec<_> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, expected);
    assert_eq!(s.store.list_connections(&page(0)).await.unwrap(), []);

    for upstream in [None, Some(Upstream::Github), Some(Upstream::Google)] {
        for status in [
            None,
            Some(ConnectionStatus::Live),
            Some(ConnectionStatus::Broken),
        ] {
            let filter = ConnectionFilter {
                upstream,
                status,
                after: None,
                limit: 3,
            };
            let got: Vec<_> = all_pages(&s.store, filter)
                .await
                .into_iter()
                .map(|c| c.id)
                .collect();
            let want: Vec<_> = listed
                .iter()
                .filter(|c| upstream.is_none_or(|u| c.upstream == u))
                .filter(|c| status.is_none_or(|st| c.status == st))
                .map(|c| c.id.clone())
                .collect();
            assert_eq!(got, want, "{upstream:?} {status:?}");
            assert!(!got.is_empty());
        }
    }
}

/// Every value of connection `id`'s row, as the database holds it (bytes as they are on
/// SQLite; PostgreSQL's text form of the row, its BYTEA as hex).
async fn raw_row(url: &str, id: &str) -> Vec<u8> {
    raw_row_in(url, "connections", "id", id).await
}

/// The row of `table` whose text `column` is `value`, every column in it as bytes.
async fn raw_row_in(url: &str, table: &str, column: &str, value: &str) -> Vec<u8> {
    match refreshd_store_sqlite::path_of(url) {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut statement = conn
                .prepare(&format!("SELECT * FROM {table} WHERE {column} = ?1"))
                .unwrap();
            let columns = statement.column_count();
            statement
                .query_row([value], |row| {
                    let mut all = Vec::new();
                    for i in 0..columns {
                        match row.get_ref(i)? {
                            rusqlite::types::ValueRef::Text(b)
                            | rusqlite::types::ValueRef::Blob(b) => all.extend_from_slice(b),
                            other => all.extend(format!("{other:?}").into_bytes()),
                        }
                        all.push(0);
                    }
                    Ok(all)
                })
                .unwrap()
        }
        None => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one(
                    &format!("SELECT r::text FROM {table} r WHERE {column} = $1"),
                    &[&value],
                )
                .await
                .unwrap();
            row.get::<_, String>(0).into_bytes()
        }
    }
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    let hex = hex_of(needle.as_bytes());
    [needle.as_bytes(), hex.as_bytes()]
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn tokens_are_stored_only_sealed_and_open_only_under_their_own_id() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW).await;
    let row = raw_row(&s.url, "user-1").await;
    assert!(
        holds(&row, "user-1") && holds(&row, "repo,user"),
        "the raw row was read"
    );
    for token in ["gho_access_0", "ghr_refresh_0"] {
        assert!(!holds(&row, token), "{token} is stored in clear");
    }
    let saved = s
        .store
        .save_refresh(
            &put.id,
            put.version,
            sealed_tokens(&put.id, 7),
            None,
            NOW,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let row = raw_row(&s.url, "user-1").await;
    for token in ["gho_access_7", "ghr_refresh_7", "gho_access_0"] {
        assert!(!holds(&row, token), "{token} is stored in clear");
    }
    // The row's sealed tokens copied to another id do not open there.
    let copy = NewConnection {
        id: cid("user-2"),
        upstream: Upstream::Github,
        tokens: saved.tokens.clone(),
        next_refresh_at: None,
        metadata: None,
    };
    let copied = s.store.put_connection(copy, NOW).await.unwrap();
    let sealer = sealer();
    assert_eq!(
        sealer.unseal(&copied.id, TokenRole::Access, &copied.tokens.access),
        None
    );
    let refresh = copied.tokens.refresh.as_ref().unwrap();
    assert_eq!(sealer.unseal(&copied.id, TokenRole::Refresh, refresh), None);
    assert_eq!(
        opened(&saved),
        ("gho_access_7".into(), Some("ghr_refresh_7".into()))
    );
}

#[tokio::test]
async fn concurrent_puts_of_one_id_each_get_a_version_of_their_own() {
    let s = scratch().await;
    let puts: Vec<_> = (0..16)
        .map(|_| {
            let store = s.store.clone();
            tokio::spawn(async move {
                store
                    .put_connection(new_connection("user-1", Upstream::Github, NOW), NOW)
                    .await
            })
        })
        .collect();
    let mut versions = std::collections::BTreeSet::new();
    for put in puts {
        versions.insert(put.await.unwrap().unwrap().version);
    }
    assert_eq!(versions.len(), 16);
    let stored = s
        .store
        .find_connection(&cid("user-1"))
        .await
        .unwrap()
        .unwrap();
    assert!(versions.contains(&stored.version));
}

// The webhook outbox.

/// Event `id` of `kind` at `NOW`, to `endpoints`.
fn webhook_event(id: &str, kind: WebhookEventKind, endpoints: &[&str]) -> WebhookEvent {
    WebhookEvent {
        id: id.into(),
        kind,
        payload: format!(r#"{{"type":"{}"}}"#, kind.as_str()),
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
        at: NOW,
    }
}

async fn deliveries(store: &Arc<dyn Store>) -> Vec<Delivery> {
    let filter = DeliveryFilter {
        status: None,
        limit: 1000,
    };
    store.list_deliveries(&filter).await.unwrap()
}

fn event_ids(deliveries: &[Delivery]) -> Vec<&str> {
    let mut ids: Vec<&str> = deliveries.iter().map(|d| d.event_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn an_event_is_written_exactly_when_its_write_wins() {
    let s = scratch().await;
    let put = connect(&s.store, "user-1", NOW).await;
    let endpoints = ["http://a.test/hook", "http://b.test/hook"];

    // A refresh at a version that moved writes neither the refresh nor its event.
    let stale = s
        .store
        .save_refresh(
            &put.id,
            put.version + 1000,
            sealed_tokens(&put.id, 1),
            None,
            NOW,
            Some(webhook_event(
                "msg_lost",
                WebhookEventKind::Refreshed,
                &endpoints,
            )),
        )
        .await
        .unwrap();
    assert_eq!(stale, None);
    let failed = s
        .store
        .record_failure(
            &put.id,
            put.version + 1000,
            Failure::Broken {
                error: "bad_refresh_token: revoked".into(),
            },
            NOW,
            Some(webhook_event(
                "msg_lost2",
                WebhookEventKind::Broken,
                &endpoints,
            )),
        )
        .await
        .unwrap();
    assert_eq!(failed, None);
    assert!(deliveries(&s.store).await.is_empty());

    // The winning write writes one delivery per endpoint, pending and due at the event.
    let broken = s
        .store
        .record_failure(
            &put.id,
            put.version,
            Failure::Broken {
                error: "bad_refresh_token: revoked".into(),
            },
            NOW,
            Some(webhook_event(
                "msg_broken",
                WebhookEventKind::Broken,
                &endpoints,
            )),
        )
        .await
        .unwrap()
        .unwrap();
    let written = deliveries(&s.store).await;
    assert_eq!(written.len(), 2);
    for d in &written {
        assert_eq!(d.event_id, "msg_broken");
        assert_eq!(d.kind, WebhookEventKind::Broken);
        assert_eq!(d.connection_id, put.id);
        assert_eq!(d.payload, r#"{"type":"connection.broken"}"#);
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!((d.attempts, d.next_attempt_at), (0, Some(NOW)));
        assert_eq!(d.created_at, NOW);
    }
    let mut to: Vec<&str> = written.iter().map(|d| d.endpoint.as_str()).collect();
    to.sort();
    assert_eq!(to, endpoints);

    // Of two writes naming one version, only the winner's event is written.
    let racing: Vec<_> = (0..2)
        .map(|n| {
            let (store, id, version) = (s.store.clone(), broken.id.clone(), broken.version);
            tokio::spawn(async move {
                let event = webhook_event(
                    &format!("msg_race{n}"),
                    WebhookEventKind::Recovered,
                    &["http://a.test/hook"],
                );
                store
                    .save_refresh(&id, version, sealed_tokens(&id, n), None, NOW, Some(event))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for race in racing {
        won += race.await.unwrap().is_some() as usize;
    }
    assert_eq!(won, 1);
    assert_eq!(deliveries(&s.store).await.len(), 3);

    // A delete writes its event; a delete of nothing writes none.
    let deleted = webhook_event("msg_deleted", WebhookEventKind::Deleted, &endpoints[..1]);
    assert!(
        s.store
            .delete_connection(&put.id, None, Some(deleted))
            .await
            .unwrap()
            .is_some()
    );
    let again = webhook_event("msg_deleted2", WebhookEventKind::Deleted, &endpoints[..1]);
    assert_eq!(
        s.store
            .delete_connection(&put.id, None, Some(again))
            .await
            .unwrap(),
        None
    );
    let all = deliveries(&s.store).await;
    let ids = event_ids(&all);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&"msg_broken") && ids.contains(&"msg_deleted"));
    // Newest first.
    assert_eq!(all[0].event_id, "msg_deleted");
}

/// `n` pending deliveries of one event, due at `NOW`.
async fn pending_deliveries(s: &Scratch, n: usize) -> Vec<Delivery> {
    let put = connect(&s.store, "user-1", NOW).await;
    let endpoints: Vec<String> = (0..n).map(|i| format!("http://{i}.test/hook")).collect();
    let endpoints: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let event = webhook_event("msg_one", WebhookEventKind::Deleted, &endpoints);
    s.store
        .delete_connection(&put.id, None, Some(event))
        .await
        .unwrap()
        .unwrap();
    deliveries(&s.store).await
}

#[tokio::test]
async fn concurrent_deliverers_never_claim_one_delivery_twice() {
    let s = scratch().await;
    let written = pending_deliveries(&s, 60).await;
    assert_eq!(written.len(), 60);
    let claimants: Vec<_> = (0..8u8)
        .map(|i| {
            let store = s.store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .claim_deliveries([i; 16], NOW.plus_secs(30), NOW, 4)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|d| d.id));
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimant in claimants {
        claimed.extend(claimant.await.unwrap());
    }
    claimed.sort();
    let count = claimed.len();
    claimed.dedup();
    assert_eq!(claimed.len(), count, "a delivery was claimed twice");
    assert_eq!(count, 60);

    // Claimed, none is handed out again until the claims run out; then all are.
    let again = s
        .store
        .claim_deliveries(HOLDER_A, NOW.plus_secs(60), NOW.plus_secs(29), 100)
        .await
        .unwrap();
    assert!(again.is_empty());
    let after = s
        .store
        .claim_deliveries(HOLDER_A, NOW.plus_secs(90), NOW.plus_secs(30), 100)
        .await
        .unwrap();
    assert_eq!(after.len(), 60);
}

#[tokio::test]
async fn attempts_retry_fail_and_are_redelivered() {
    let s = scratch().await;
    let written = pending_deliveries(&s, 2).await;
    let (first, second) = (written[0].id, written[1].id);
    let claimed = s
        .store
        .claim_deliveries(HOLDER_A, NOW.plus_secs(30), NOW, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // Due longest first, then in the order written.
    assert_eq!(claimed[0].id, first.min(second));

    // Only the holder records an attempt.
    let retry = |at: i64| DeliveryAttempt::NotDelivered {
        status: Some(500),
        error: "answered 500".into(),
        retry_at: Some(NOW.plus_secs(at)),
    };
    assert!(
        !s.store
            .record_attempt(first, HOLDER_B, retry(5), NOW)
            .await
            .unwrap()
    );
    assert!(
        s.store
            .record_attempt(first, HOLDER_A, retry(5), NOW)
            .await
            .unwrap()
    );
    let delivered = DeliveryAttempt::Delivered { status: 204 };
    assert!(
        s.store
            .record_attempt(second, HOLDER_A, delivered.clone(), NOW)
            .await
            .unwrap()
    );
    let find = |all: &[Delivery], id: i64| all.iter().find(|d| d.id == id).unwrap().clone();
    let all = deliveries(&s.store).await;
    let (f, d) = (find(&all, first), find(&all, second));
    assert_eq!(f.status, DeliveryStatus::Pending);
    assert_eq!((f.attempts, f.next_attempt_at), (1, Some(NOW.plus_secs(5))));
    assert_eq!(
        (f.last_status, f.last_error.as_deref()),
        (Some(500), Some("answered 500"))
    );
    assert_eq!(f.last_attempt_at, Some(NOW));
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(
        (d.attempts, d.last_status, d.delivered_at),
        (1, Some(204), Some(NOW))
    );
    assert_eq!(d.next_attempt_at, None);
    // The holder's claim ended with its record; a second record of it is refused.
    assert!(
        !s.store
            .record_attempt(second, HOLDER_A, delivered.clone(), NOW)
            .await
            .unwrap()
    );

    // Not due before its retry; due then, and only the pending one.
    let early = s
        .store
        .claim_deliveries(HOLDER_B, NOW.plus_secs(30), NOW.plus_secs(4), 10)
        .await
        .unwrap();
    assert!(early.is_empty());
    let due = s
        .store
        .claim_deliveries(HOLDER_B, NOW.plus_secs(35), NOW.plus_secs(5), 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [first]);
    assert_eq!(due[0].attempts, 1);
    let given_up = DeliveryAttempt::NotDelivered {
        status: None,
        error: "could not connect".into(),
        retry_at: None,
    };
    assert!(
        s.store
            .record_attempt(first, HOLDER_B, given_up, NOW.plus_secs(5))
            .await
            .unwrap()
    );
    let failed = DeliveryFilter {
        status: Some(DeliveryStatus::Failed),
        limit: 10,
    };
    let listed = s.store.list_deliveries(&failed).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].attempts), (first, 2));
    assert_eq!(listed[0].last_status, None);

    // Redelivering one queues it now, the schedule started over; an unknown one, none.
    let later = NOW.plus_secs(100);
    assert_eq!(
        s.store
            .redeliver(&Redelivery::Delivery(first), later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.store
            .redeliver(&Redelivery::Delivery(first.max(second) + 100), later)
            .await
            .unwrap(),
        0
    );
    let requeued = find(&deliveries(&s.store).await, first);
    assert_eq!(requeued.status, DeliveryStatus::Pending);
    assert_eq!(
        (requeued.attempts, requeued.next_attempt_at),
        (0, Some(later))
    );
    // Redelivering an event queues every delivery of it, delivered ones too.
    assert_eq!(
        s.store
            .redeliver(&Redelivery::Event("msg_one".into()), later)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.store
            .redeliver(&Redelivery::Event("msg_none".into()), later)
            .await
            .unwrap(),
        0
    );
    let due = s
        .store
        .claim_deliveries(HOLDER_A, later.plus_secs(30), later, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert!(
        due.iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.delivered_at.is_none())
    );
}

#[tokio::test]
async fn the_sweep_deletes_finished_deliveries_after_a_while() {
    let s = scratch().await;
    let written = pending_deliveries(&s, 3).await;
    s.store
        .claim_deliveries(HOLDER_A, NOW.plus_secs(30), NOW, 10)
        .await
        .unwrap();
    let delivered = DeliveryAttempt::Delivered { status: 200 };
    let failed = DeliveryAttempt::NotDelivered {
        status: Some(410),
        error: "answered 410".into(),
        retry_at: None,
    };
    let ids: Vec<i64> = written.iter().map(|d| d.id).collect();
    s.store
        .record_attempt(ids[0], HOLDER_A, delivered, NOW)
        .await
        .unwrap();
    s.store
        .record_attempt(ids[1], HOLDER_A, failed, NOW)
        .await
        .unwrap();
    let kept = |after: i64| {
        let store = s.store.clone();
        async move {
            store.sweep(NOW.plus_secs(after), GRACE).await.unwrap();
            let mut ids: Vec<i64> = deliveries(&store).await.iter().map(|d| d.id).collect();
            ids.sort();
            ids
        }
    };
    let mut all = ids.clone();
    all.sort();
    assert_eq!(kept(rules::webhooks::DELIVERED_KEPT_SECS - 1).await, all);
    let without_delivered: Vec<i64> = all.iter().copied().filter(|id| *id != ids[0]).collect();
    assert_eq!(
        kept(rules::webhooks::DELIVERED_KEPT_SECS).await,
        without_delivered
    );
    // The failed one is kept longer; the pending one until it is delivered or fails.
    assert_eq!(kept(rules::webhooks::FAILED_KEPT_SECS).await, vec![ids[2]]);
}

fn device_code(f: &Fixture, n: u32) -> NewDeviceCode {
    NewDeviceCode {
        device_digest: TokenDigest::of(&format!("device-{n}")),
        user_code_digest: TokenDigest::of(&format!("USER{n:04}")),
        app_id: f.grant.app_id,
        scopes: f.grant.scopes.clone(),
        interval_secs: 5,
        expires_at: NOW.plus_secs(899),
    }
}

async fn poll(f: &Fixture, n: u32, app_id: AppId, pair_n: u32, now: Timestamp) -> DevicePoll {
    f.store
        .poll_device_code(
            TokenDigest::of(&format!("device-{n}")),
            app_id,
            pair(pair_n),
            now,
        )
        .await
        .unwrap()
}

async fn decide(f: &Fixture, n: u32, approve: bool, now: Timestamp) -> bool {
    f.store
        .decide_device_code(
            TokenDigest::of(&format!("USER{n:04}")),
            f.grant.user_id,
            approve,
            now,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_device_code_is_polled_until_approved_then_redeemed_once() {
    let f = fixture().await;
    assert!(
        f.store
            .store_device_code(device_code(&f, 1), NOW)
            .await
            .unwrap()
    );
    let taken_user_code = NewDeviceCode {
        device_digest: TokenDigest::of("device-other"),
        ..device_code(&f, 1)
    };
    assert!(
        !f.store
            .store_device_code(taken_user_code, NOW)
            .await
            .unwrap(),
        "a user code taken already is refused"
    );
    let taken_device_code = NewDeviceCode {
        user_code_digest: TokenDigest::of("USER-OTHER"),
        ..device_code(&f, 1)
    };
    assert!(
        !f.store
            .store_device_code(taken_device_code, NOW)
            .await
            .unwrap()
    );

    let pending = f
        .store
        .pending_device_code(TokenDigest::of("USER0001"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.app.id, f.grant.app_id);
    assert_eq!(pending.scopes, f.grant.scopes);
    assert_eq!(pending.expires_at, NOW.plus_secs(899));
    assert!(
        f.store
            .pending_device_code(TokenDigest::of("USER0002"), NOW)
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        poll(&f, 1, f.grant.app_id, 1, NOW).await,
        DevicePoll::Pending
    );
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 1, NOW.plus_secs(4)).await,
        DevicePoll::SlowDown { interval_secs: 10 }
    );
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 1, NOW.plus_secs(13)).await,
        DevicePoll::SlowDown { interval_secs: 15 },
        "the interval counts from the last poll, slowed down or not"
    );
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 1, NOW.plus_secs(28)).await,
        DevicePoll::Pending
    );
    assert_eq!(
        poll(&f, 1, other_than(f.grant.app_id), 1, NOW.plus_secs(60)).await,
        DevicePoll::Unknown,
        "another app's code"
    );
    assert_eq!(
        poll(&f, 9, f.grant.app_id, 1, NOW).await,
        DevicePoll::Unknown
    );
    assert!(!live(&f, 1).await, "no pair is stored before the approval");

    assert!(decide(&f, 1, true, NOW.plus_secs(30)).await);
    assert!(
        !decide(&f, 1, false, NOW.plus_secs(30)).await,
        "decided once"
    );
    assert!(
        f.store
            .pending_device_code(TokenDigest::of("USER0001"), NOW.plus_secs(30))
            .await
            .unwrap()
            .is_none(),
        "a decided code is no longer pending"
    );
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 2, NOW.plus_secs(31)).await,
        DevicePoll::Issued {
            grant: f.grant.clone()
        },
        "an approved code answers at once, however soon after the last poll"
    );
    assert!(live(&f, 2).await, "the pair is stored with the redemption");
    assert!(matches!(
        rotate(&f, 2, 3, NOW.plus_secs(32)).await,
        Rotation::Rotated { .. }
    ));
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 4, NOW.plus_secs(60)).await,
        DevicePoll::Unknown,
        "single use"
    );
    assert!(!live(&f, 4).await);
}

#[tokio::test]
async fn a_denied_or_expired_device_code_issues_nothing() {
    let f = fixture().await;
    f.store
        .store_device_code(device_code(&f, 1), NOW)
        .await
        .unwrap();
    f.store
        .store_device_code(device_code(&f, 2), NOW)
        .await
        .unwrap();
    f.store
        .store_device_code(device_code(&f, 3), NOW)
        .await
        .unwrap();

    assert!(decide(&f, 1, false, NOW).await);
    assert!(!decide(&f, 1, true, NOW).await, "a denial stands");
    for _ in 0..2 {
        assert_eq!(
            poll(&f, 1, f.grant.app_id, 1, NOW).await,
            DevicePoll::Denied
        );
    }
    assert!(!live(&f, 1).await);

    let expiry = NOW.plus_secs(899);
    assert!(decide(&f, 2, true, NOW).await);
    assert_eq!(
        poll(&f, 2, f.grant.app_id, 2, expiry).await,
        DevicePoll::Expired,
        "approved, but not redeemed in time"
    );
    assert!(!live(&f, 2).await);
    assert!(!decide(&f, 3, true, expiry).await, "too late to approve");
    assert!(
        f.store
            .pending_device_code(TokenDigest::of("USER0003"), expiry)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        poll(&f, 3, f.grant.app_id, 3, expiry).await,
        DevicePoll::Expired
    );
}

/// Expired device authorizations are kept an hour, so late polls hear `expired_token`, then swept.
#[tokio::test]
async fn the_sweep_forgets_device_codes_an_hour_after_they_expire() {
    let f = fixture().await;
    for n in [1, 2] {
        f.store
            .store_device_code(device_code(&f, n), NOW)
            .await
            .unwrap();
    }
    let later = NOW.plus_secs(600);
    let late = NewDeviceCode {
        expires_at: later.plus_secs(899),
        ..device_code(&f, 2)
    };
    f.store.sweep(later, GRACE).await.unwrap();
    // Code 2 is re-stored later: its digests are free only if the sweep took the old row.
    assert!(
        !f.store
            .store_device_code(late.clone(), later)
            .await
            .unwrap()
    );

    let expiry = NOW.plus_secs(899);
    let kept = rules::sweep::DEVICE_CODES_KEPT_SECS;
    f.store
        .sweep(expiry.plus_secs(kept - 1), GRACE)
        .await
        .unwrap();
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 1, expiry.plus_secs(kept - 1)).await,
        DevicePoll::Expired,
        "kept for an hour after it expired"
    );
    f.store.sweep(expiry.plus_secs(kept), GRACE).await.unwrap();
    assert_eq!(
        poll(&f, 1, f.grant.app_id, 1, expiry.plus_secs(kept)).await,
        DevicePoll::Unknown,
        "swept an hour after it expired"
    );
    assert!(
        f.store
            .store_device_code(late, expiry.plus_secs(kept))
            .await
            .unwrap(),
        "the swept row's codes are free again"
    );
}

#[tokio::test]
async fn of_concurrent_polls_after_an_approval_exactly_one_gets_the_token() {
    let f = fixture().await;
    f.store
        .store_device_code(device_code(&f, 1), NOW)
        .await
        .unwrap();
    assert!(decide(&f, 1, true, NOW).await);
    let polls: Vec<_> = (0..8u32)
        .map(|n| {
            let store = f.store.clone();
            let app_id = f.grant.app_id;
            tokio::spawn(async move {
                store
                    .poll_device_code(TokenDigest::of("device-1"), app_id, pair(100 + n), NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for p in polls {
        answers.push(p.await.unwrap());
    }
    let issued = answers
        .iter()
        .filter(|a| matches!(a, DevicePoll::Issued { .. }))
        .count();
    assert_eq!(issued, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, DevicePoll::Issued { .. } | DevicePoll::Unknown)),
        "{answers:?}"
    );
    assert_eq!(count_live(&f, 100..108).await, 1);
}

async fn public_family(f: &Fixture, refresh_n: u32, app_id: AppId) -> bool {
    f.store
        .public_family_of(TokenDigest::of(&format!("refresh-{refresh_n}")), app_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_family_started_through_the_device_flow_is_marked_public() {
    let f = fixture().await;
    f.store
        .store_device_code(device_code(&f, 1), NOW)
        .await
        .unwrap();
    assert!(decide(&f, 1, true, NOW).await);
    assert!(matches!(
        poll(&f, 1, f.grant.app_id, 1, NOW.plus_secs(5)).await,
        DevicePoll::Issued { .. }
    ));
    assert!(public_family(&f, 1, f.grant.app_id).await);
    assert!(
        !public_family(&f, 1, other_than(f.grant.app_id)).await,
        "another app's token"
    );
    assert!(matches!(
        rotate(&f, 1, 2, NOW.plus_secs(6)).await,
        Rotation::Rotated { .. }
    ));
    assert!(
        public_family(&f, 2, f.grant.app_id).await,
        "the successor is of the same family"
    );
    assert!(
        public_family(&f, 1, f.grant.app_id).await,
        "a spent token still names its family (a replay must reach the rotation rules)"
    );

    // Families started otherwise are a confidential client's.
    f.store
        .store_code(NewCode {
            digest: TokenDigest::of("code-1"),
            grant: f.grant.clone(),
            redirect_uri: None,
            code_challenge: None,
            code_challenge_method: None,
            expires_at: NOW.plus_secs(600),
            with_refresh: true,
            nonce: None,
        })
        .await
        .unwrap();
    f.store
        .exchange_code(TokenDigest::of("code-1"), f.grant.app_id, pair(3), NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(!public_family(&f, 3, f.grant.app_id).await);
    f.store
        .issue_pair(f.grant.clone(), pair(4), NOW)
        .await
        .unwrap();
    assert!(!public_family(&f, 4, f.grant.app_id).await);
    assert!(!public_family(&f, 9, f.grant.app_id).await, "unknown token");
}

// Signing keys.

/// A signing key of `generation` whose private key is `private-key-{generation}`, sealed.
fn signing_key(generation: i64, signs_from: Timestamp) -> SigningKey {
    let kid = format!("{:040x}", 0xabc0 + generation);
    let private = format!("private-key-{generation}");
    SigningKey {
        generation,
        sealed_private_key: KeySealer::new(&MASTER_KEY).seal(&kid, private.as_bytes()),
        kid,
        cert_pem: format!(
            "-----BEGIN CERTIFICATE-----\ncert{generation}\n-----END CERTIFICATE-----\n"
        ),
        jwk_n: format!("n{generation}"),
        jwk_e: "AQAB".into(),
        created_at: NOW,
        signs_from,
    }
}

#[tokio::test]
async fn signing_keys_are_added_once_per_generation_listed_in_order_and_dropped() {
    let s = scratch().await;
    assert!(s.store.signing_keys().await.unwrap().is_empty());
    let first = signing_key(1, NOW);
    let second = signing_key(2, NOW.plus_secs(3600));
    assert!(s.store.add_signing_key(&second).await.unwrap());
    assert!(s.store.add_signing_key(&first).await.unwrap());
    assert_eq!(
        s.store.signing_keys().await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    let mut rival = signing_key(2, NOW);
    rival.kid = "f".repeat(40);
    assert!(
        !s.store.add_signing_key(&rival).await.unwrap(),
        "generation 2 is taken"
    );
    assert_eq!(s.store.signing_keys().await.unwrap()[1], second);

    assert_eq!(s.store.drop_signing_keys_before(2).await.unwrap(), 1);
    assert_eq!(s.store.drop_signing_keys_before(2).await.unwrap(), 0);
    assert_eq!(s.store.signing_keys().await.unwrap(), vec![second]);
}

#[tokio::test]
async fn of_concurrent_creators_of_a_generation_exactly_one_wins() {
    let s = scratch().await;
    let tries = (0..8).map(|i| {
        let store = s.store.clone();
        tokio::spawn(async move {
            let mut key = signing_key(1, NOW);
            key.kid = format!("{i:040x}");
            key.sealed_private_key = KeySealer::new(&MASTER_KEY).seal(&key.kid, b"private");
            let won = store.add_signing_key(&key).await.unwrap();
            (won, key)
        })
    });
    let mut winners = Vec::new();
    for t in tries {
        let (won, key) = t.await.unwrap();
        if won {
            winners.push(key);
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(s.store.signing_keys().await.unwrap(), winners);
}

#[tokio::test]
async fn a_private_key_is_stored_only_sealed_and_opens_only_as_its_own_kid() {
    let s = scratch().await;
    let key = signing_key(1, NOW);
    assert!(s.store.add_signing_key(&key).await.unwrap());
    let row = raw_row_in(&s.url, "signing_keys", "kid", &key.kid).await;
    assert!(holds(&row, &key.kid), "the row is the key's");
    assert!(!holds(&row, "private-key-1"));

    let stored = s.store.signing_keys().await.unwrap().remove(0);
    let sealer = KeySealer::new(&MASTER_KEY);
    assert_eq!(
        sealer
            .unseal(&key.kid, &stored.sealed_private_key)
            .as_deref(),
        Some(b"private-key-1".as_slice())
    );
    let other_kid = signing_key(2, NOW).kid;
    assert_eq!(sealer.unseal(&other_kid, &stored.sealed_private_key), None);
    assert_eq!(
        KeySealer::new(&[1; 32]).unseal(&key.kid, &stored.sealed_private_key),
        None
    );
}
