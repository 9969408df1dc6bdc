//! Reading rows back into records, and the lookups several writes share.

use refreshd_core::{AppId, AppKind, ClientId, Login, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::rules::PairState;
use refreshd_store::{App, Authorization, StoreError, User};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::unavailable;

pub(super) fn digest_of(row: &Row, idx: &str) -> rusqlite::Result<TokenDigest> {
    let bytes: Vec<u8> = row.get(idx)?;
    TokenDigest::from_slice(&bytes).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "digest is not 32 bytes".into(),
        )
    })
}

/// A stored login as a `Login`.
pub(super) fn login_of(stored: String) -> rusqlite::Result<Login> {
    Login::parse(&stored).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "a stored login breaks the rules for logins".into(),
        )
    })
}

/// A pair's stored state code as its state.
pub(super) fn state_of(code: i64) -> rusqlite::Result<PairState> {
    PairState::from_code(code).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            format!("no pair state has code {code}").into(),
        )
    })
}

pub(super) const APP_COLUMNS: &str = "a.id AS app_id, a.client_id, a.name AS app_name, a.kind, a.redirect_uri,
    a.secret_digest, a.expiring_tokens, a.device_flow, a.owner_id, a.created_at AS app_created_at, a.updated_at AS app_updated_at";
pub(super) const USER_COLUMNS: &str = "u.id AS user_id, u.login, u.name AS user_name, u.email,
    u.created_at AS user_created_at, u.updated_at AS user_updated_at";

pub(super) fn app_of(row: &Row) -> rusqlite::Result<App> {
    let kind: String = row.get("kind")?;
    Ok(App {
        id: AppId(row.get("app_id")?),
        client_id: ClientId::parse(&row.get::<_, String>("client_id")?).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                "bad client_id".into(),
            )
        })?,
        name: row.get("app_name")?,
        kind: AppKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                "bad app kind".into(),
            )
        })?,
        redirect_uri: row.get("redirect_uri")?,
        secret_digest: digest_of(row, "secret_digest")?,
        expiring_tokens: row.get("expiring_tokens")?,
        device_flow: row.get("device_flow")?,
        owner_id: row.get::<_, Option<i64>>("owner_id")?.map(UserId),
        created_at: Timestamp(row.get("app_created_at")?),
        updated_at: Timestamp(row.get("app_updated_at")?),
    })
}

pub(super) fn user_of(row: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get("user_id")?),
        login: login_of(row.get::<_, String>("login")?)?,
        name: row.get("user_name")?,
        email: row.get("email")?,
        created_at: Timestamp(row.get("user_created_at")?),
        updated_at: Timestamp(row.get("user_updated_at")?),
    })
}

pub(super) fn find_app_in(conn: &Connection, client_id: &str) -> Result<Option<App>, StoreError> {
    // Built once: this lookup runs on every token request.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.client_id = ?1")
    });
    conn.prepare_cached(&SQL)
        .and_then(|mut s| s.query_row([client_id], app_of).optional())
        .map_err(unavailable)
}

pub(super) fn find_user_in(conn: &Connection, login: &Login) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.login = ?1"
    ))
    .and_then(|mut s| s.query_row([login.as_str()], user_of).optional())
    .map_err(unavailable)
}

/// The live, unexpired authorization of an access token: its pair is live and its family
/// not revoked.
pub(super) fn find_authorization_in(
    conn: &Connection,
    access: &TokenDigest,
    now: Timestamp,
) -> Result<Option<Authorization>, StoreError> {
    // Built once: this lookup runs on every API call with an access token.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT p.id, f.scopes, p.access_digest, p.access_last_eight, p.access_expires_at,
                    p.created_at, p.updated_at, {APP_COLUMNS}, {USER_COLUMNS}
             FROM token_pairs p
             JOIN families f ON f.id = p.family_id
             JOIN apps a ON a.id = f.app_id
             JOIN users u ON u.id = f.user_id
             WHERE p.access_digest = ?1 AND p.state = 0 AND f.revoked_at IS NULL
               AND (p.access_expires_at IS NULL OR p.access_expires_at > ?2)"
        )
    });
    conn.prepare_cached(&SQL)
        .and_then(|mut s| {
            s.query_row(params![access.as_bytes(), now.secs()], |row| {
                Ok(Authorization {
                    id: row.get("id")?,
                    app: app_of(row)?,
                    user: user_of(row)?,
                    scopes: Scopes::parse(&row.get::<_, String>("scopes")?),
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
