//! The embedded default: one SQLite file in WAL mode, a single group-committing writer and a
//! pool of readers.

mod checkpointer;
mod readers;
mod writer;

use async_trait::async_trait;
use refreshd_core::rotation::{ReuseVerdict, RotatedPair, judge_reuse};
use refreshd_core::{AppKind, ClientId, Timestamp, TokenDigest};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    App, Apps, Authorization, Grant, Grants, NewAccess, NewApp, NewCode, NewPair, NewUser,
    RedeemedCode, Rotation, StoreError, User, Users,
};
use checkpointer::Checkpointer;
use readers::Readers;
use writer::Writer;

const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// The file path in a `sqlite://PATH` or `sqlite:PATH` URL.
pub fn path_of(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
}

pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, StoreError> {
                let conn = connect(&path)?;
                migrate(&conn)?;
                // Checkpoints run on their own thread so commits never wait for one.
                conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
                    .map_err(unavailable)?;
                Ok(conn)
            }
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(Self {
            writer: Writer::start(conn),
            _checkpointer: Checkpointer::start(connect(&path)?),
            readers: Readers::new(path),
        })
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn connect(path: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    // synchronous=FULL: in WAL mode NORMAL may lose the last commits on power loss, and every
    // acknowledged rotation must survive one.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(unavailable)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // The version is read inside the write lock so concurrent starts cannot both migrate.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
    let applied = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, usize>(0))
        .and_then(|applied| {
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
                conn.execute_batch(sql)?;
                conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            }
            conn.execute_batch("COMMIT")
        });
    applied.map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        unavailable(e)
    })
}

fn digest_of(row: &Row, idx: &str) -> rusqlite::Result<TokenDigest> {
    let bytes: Vec<u8> = row.get(idx)?;
    TokenDigest::from_slice(&bytes).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "digest is not 32 bytes".into(),
        )
    })
}

const APP_COLUMNS: &str = "a.id AS app_id, a.client_id, a.name AS app_name, a.kind, a.redirect_uri,
    a.secret_digest, a.expiring_tokens, a.created_at AS app_created_at, a.updated_at AS app_updated_at";
const USER_COLUMNS: &str = "u.id AS user_id, u.login, u.name AS user_name, u.email,
    u.created_at AS user_created_at, u.updated_at AS user_updated_at";

fn app_of(row: &Row) -> rusqlite::Result<App> {
    let kind: String = row.get("kind")?;
    Ok(App {
        id: row.get("app_id")?,
        client_id: ClientId::parse(&row.get::<_, String>("client_id")?).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                "bad client_id".into(),
            )
        })?,
        name: row.get("app_name")?,
        kind: AppKind::parse(&kind).unwrap_or(AppKind::GithubApp),
        redirect_uri: row.get("redirect_uri")?,
        secret_digest: digest_of(row, "secret_digest")?,
        expiring_tokens: row.get("expiring_tokens")?,
        created_at: Timestamp(row.get("app_created_at")?),
        updated_at: Timestamp(row.get("app_updated_at")?),
    })
}

fn user_of(row: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get("user_id")?,
        login: row.get("login")?,
        name: row.get("user_name")?,
        email: row.get("email")?,
        created_at: Timestamp(row.get("user_created_at")?),
        updated_at: Timestamp(row.get("user_updated_at")?),
    })
}

fn find_app_in(conn: &Connection, client_id: &str) -> Result<Option<App>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {APP_COLUMNS} FROM apps a WHERE a.client_id = ?1"
    ))
    .and_then(|mut s| s.query_row([client_id], app_of).optional())
    .map_err(unavailable)
}

fn find_user_in(conn: &Connection, login: &str) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.login = ?1"
    ))
    .and_then(|mut s| s.query_row([login], user_of).optional())
    .map_err(unavailable)
}

fn find_authorization_in(
    conn: &Connection,
    access: &TokenDigest,
    now: Timestamp,
) -> Result<Option<Authorization>, StoreError> {
    let sql = format!(
        "SELECT p.id, p.scopes, p.access_digest, p.access_last_eight, p.access_expires_at,
                p.created_at, p.updated_at, {APP_COLUMNS}, {USER_COLUMNS}
         FROM token_pairs p JOIN apps a ON a.id = p.app_id JOIN users u ON u.id = p.user_id
         WHERE p.access_digest = ?1 AND p.state = 'live'
           AND (p.access_expires_at IS NULL OR p.access_expires_at > ?2)"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![access.as_bytes(), now.secs()], |row| {
                Ok(Authorization {
                    id: row.get("id")?,
                    app: app_of(row)?,
                    user: user_of(row)?,
                    scopes: row.get("scopes")?,
                    access_digest: digest_of(row, "access_digest")?,
                    access_last_eight: row.get("access_last_eight")?,
                    access_expires_at: row
                        .get::<_, Option<i64>>("access_expires_at")?
                        .map(Timestamp),
                    created_at: Timestamp(row.get("created_at")?),
                    updated_at: Timestamp(row.get("updated_at")?),
                })
            })
            .optional()
        })
        .map_err(unavailable)
}

fn insert_pair(
    conn: &Connection,
    family_id: Option<i64>,
    grant: &Grant,
    pair: &NewPair,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let (refresh_digest, refresh_expires_at) = match &pair.refresh {
        Some((digest, expires_at)) => (Some(digest.as_bytes().to_vec()), Some(expires_at.secs())),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO token_pairs (family_id, app_id, user_id, scopes, access_digest,
             access_last_eight, access_expires_at, refresh_digest, refresh_expires_at,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            family_id,
            grant.app_id,
            grant.user_id,
            grant.scopes,
            pair.access.digest.as_bytes(),
            pair.access.last_eight,
            pair.access.expires_at.map(Timestamp::secs),
            refresh_digest,
            refresh_expires_at,
            now.secs(),
        ])
    })
    .map_err(unavailable)?;
    Ok(conn.last_insert_rowid())
}

/// Why a refresh token's conditional update matched nothing, and what follows from it.
fn judge_failed_rotation(
    conn: &Connection,
    presented: &TokenDigest,
    app_id: i64,
    now: Timestamp,
    grace_window_secs: i64,
) -> Result<Rotation, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT COALESCE(p.family_id, p.id), p.app_id, p.state, p.rotated_at,
                    p.successor_sealed, s.state = 'live', p.user_id, p.scopes
             FROM token_pairs p LEFT JOIN token_pairs s ON s.refresh_digest = p.successor_refresh
             WHERE p.refresh_digest = ?1",
        )
        .and_then(|mut s| {
            s.query_row([presented.as_bytes()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, Option<bool>>(5)?,
                    Grant {
                        app_id,
                        user_id: r.get(6)?,
                        scopes: r.get(7)?,
                    },
                ))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let Some((family, owner, state, rotated_at, sealed, successor_live, grant)) = found else {
        return Ok(Rotation::Rejected);
    };
    if owner != app_id || state != "rotated" {
        return Ok(Rotation::Rejected);
    }
    let pair = RotatedPair {
        rotated_at: Timestamp(rotated_at.unwrap_or(0)),
        successor_is_live: successor_live.unwrap_or(false),
        successor_sealed: sealed.is_some(),
    };
    match (judge_reuse(pair, now, grace_window_secs), sealed) {
        (ReuseVerdict::Replay, Some(sealed)) => Ok(Rotation::Replay { sealed, grant }),
        _ => {
            conn.prepare_cached(
                "UPDATE token_pairs SET state = 'revoked', successor_sealed = NULL, updated_at = ?2
                 WHERE (id = ?1 OR family_id = ?1) AND state <> 'revoked'",
            )
            .and_then(|mut s| s.execute(params![family, now.secs()]))
            .map_err(unavailable)?;
            Ok(Rotation::FamilyRevoked)
        }
    }
}

#[async_trait]
impl Apps for SqliteStore {
    async fn create_app(&self, app: NewApp, now: Timestamp) -> Result<App, StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO apps (client_id, name, kind, redirect_uri, secret_digest,
                         expiring_tokens, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                    params![
                        app.client_id.as_str(),
                        app.name,
                        app.kind.as_str(),
                        app.redirect_uri,
                        app.secret_digest.as_bytes(),
                        app.expiring_tokens,
                        now.secs()
                    ],
                )
                .map_err(|e| conflict_or_unavailable(e, "app"))?;
                find_app_in(conn, app.client_id.as_str())?
                    .ok_or_else(|| StoreError::Corrupt("app vanished after insert".into()))
            })
            .await
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps a ORDER BY a.id"))
                .map_err(unavailable)?;
            let apps = s.query_map([], app_of).map_err(unavailable)?;
            apps.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn find_app(&self, client_id: &ClientId) -> Result<Option<App>, StoreError> {
        self.readers
            .read(|conn| find_app_in(conn, client_id.as_str()))
    }

    async fn set_expiring_tokens(
        &self,
        client_id: &ClientId,
        expiring: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE apps SET expiring_tokens = ?2, updated_at = ?3 WHERE client_id = ?1",
                    params![client_id, expiring, now.secs()],
                )
                .map_err(unavailable)?;
                find_app_in(conn, &client_id)
            })
            .await
    }

    async fn set_client_secret(
        &self,
        client_id: &ClientId,
        secret: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE apps SET secret_digest = ?2, updated_at = ?3 WHERE client_id = ?1",
                    params![client_id, secret.as_bytes(), now.secs()],
                )
                .map_err(unavailable)?;
                find_app_in(conn, &client_id)
            })
            .await
    }
}

fn conflict_or_unavailable(e: rusqlite::Error, what: &'static str) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(what),
        _ => unavailable(e),
    }
}

#[async_trait]
impl Users for SqliteStore {
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User, StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO users (login, name, email, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![user.login, user.name, user.email, now.secs()],
                )
                .map_err(|e| conflict_or_unavailable(e, "user"))?;
                find_user_in(conn, &user.login)?
                    .ok_or_else(|| StoreError::Corrupt("user vanished after insert".into()))
            })
            .await
    }

    async fn find_user(&self, login: &str) -> Result<Option<User>, StoreError> {
        self.readers.read(|conn| find_user_in(conn, login))
    }
}

#[async_trait]
impl Grants for SqliteStore {
    async fn store_code(&self, code: NewCode) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO codes (digest, app_id, user_id, scopes, redirect_uri,
                         code_challenge, code_challenge_method, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        code.digest.as_bytes(),
                        code.grant.app_id,
                        code.grant.user_id,
                        code.grant.scopes,
                        code.redirect_uri,
                        code.code_challenge,
                        code.code_challenge_method,
                        code.expires_at.secs()
                    ],
                )
                .map_err(|e| conflict_or_unavailable(e, "code"))?;
                Ok(())
            })
            .await
    }

    async fn redeem_code(
        &self,
        code: TokenDigest,
        app_id: i64,
        now: Timestamp,
    ) -> Result<Option<RedeemedCode>, StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE codes SET redeemed = 1
                     WHERE digest = ?1 AND app_id = ?2 AND redeemed = 0 AND expires_at > ?3
                     RETURNING user_id, scopes, redirect_uri, code_challenge, code_challenge_method",
                )
                .and_then(|mut s| {
                    s.query_row(params![code.as_bytes(), app_id, now.secs()], |r| {
                        Ok(RedeemedCode {
                            grant: Grant { app_id, user_id: r.get(0)?, scopes: r.get(1)? },
                            redirect_uri: r.get(2)?,
                            code_challenge: r.get(3)?,
                            code_challenge_method: r.get(4)?,
                        })
                    })
                    .optional()
                })
                .map_err(unavailable)
            })
            .await
    }

    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.writer
            .write(move |conn| insert_pair(conn, None, &grant, &pair, now))
            .await
    }

    async fn rotate_refresh(
        &self,
        presented: TokenDigest,
        app_id: i64,
        successor: NewPair,
        sealed: Vec<u8>,
        now: Timestamp,
        grace_window_secs: i64,
    ) -> Result<Rotation, StoreError> {
        self.writer
            .write(move |conn| {
                let successor_refresh = successor.refresh.as_ref().map(|(digest, _)| digest.as_bytes().to_vec());
                let won = conn
                    .prepare_cached(
                        "UPDATE token_pairs
                         SET state = 'rotated', rotated_at = ?4, updated_at = ?4, successor_sealed = ?3,
                             successor_refresh = ?5
                         WHERE refresh_digest = ?1 AND app_id = ?2 AND state = 'live'
                           AND refresh_expires_at > ?4
                         RETURNING COALESCE(family_id, id), user_id, scopes",
                    )
                    .and_then(|mut s| {
                        let args = params![presented.as_bytes(), app_id, sealed, now.secs(), successor_refresh];
                        s.query_row(args, |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?))).optional()
                    })
                    .map_err(unavailable)?;
                let Some((family, user_id, scopes)) = won else {
                    return judge_failed_rotation(conn, &presented, app_id, now, grace_window_secs);
                };
                let grant = Grant { app_id, user_id, scopes };
                insert_pair(conn, Some(family), &grant, &successor, now)?;
                Ok(Rotation::Rotated { grant })
            })
            .await
    }

    async fn find_authorization(
        &self,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        self.readers
            .read(|conn| find_authorization_in(conn, &access, now))
    }

    async fn reset_access(
        &self,
        app_id: i64,
        old: TokenDigest,
        new: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        self.writer
            .write(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE token_pairs
                         SET access_digest = ?3, access_last_eight = ?4, access_expires_at = ?5,
                             updated_at = ?6
                         WHERE access_digest = ?1 AND app_id = ?2 AND state = 'live'
                           AND (access_expires_at IS NULL OR access_expires_at > ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            old.as_bytes(),
                            app_id,
                            new.digest.as_bytes(),
                            new.last_eight,
                            new.expires_at.map(Timestamp::secs),
                            now.secs()
                        ])
                    })
                    .map_err(unavailable)?;
                if changed == 0 {
                    return Ok(None);
                }
                find_authorization_in(conn, &new.digest, now)
            })
            .await
    }

    async fn revoke_access(
        &self,
        app_id: i64,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE token_pairs SET state = 'revoked', successor_sealed = NULL, updated_at = ?3
                     WHERE access_digest = ?1 AND app_id = ?2 AND state = 'live'
                       AND (access_expires_at IS NULL OR access_expires_at > ?3)",
                )
                .and_then(|mut s| s.execute(params![access.as_bytes(), app_id, now.secs()]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn revoke_grant(
        &self,
        app_id: i64,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                let Some(auth) = find_authorization_in(conn, &access, now)? else {
                    return Ok(false);
                };
                if auth.app.id != app_id {
                    return Ok(false);
                }
                conn.execute(
                    "UPDATE token_pairs SET state = 'revoked', successor_sealed = NULL, updated_at = ?3
                     WHERE app_id = ?1 AND user_id = ?2 AND state <> 'revoked'",
                    params![app_id, auth.user.id, now.secs()],
                )
                .map_err(unavailable)?;
                conn.execute(
                    "DELETE FROM codes WHERE app_id = ?1 AND user_id = ?2",
                    params![app_id, auth.user.id],
                )
                .map_err(unavailable)?;
                Ok(true)
            })
            .await
    }
}
