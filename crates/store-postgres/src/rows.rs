//! Reading PostgreSQL rows back into records, and the lookups several operations share.

use deadpool_postgres::GenericClient;
use refreshd_core::{AppId, AppKind, ClientId, Login, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::rules::PairState;
use refreshd_store::{App, Authorization, StoreError, User};
use tokio_postgres::Row;

use super::{Column, query_opt};

pub(super) const APP_COLUMNS: &str = "a.id AS app_id, a.client_id, a.name AS app_name, a.kind, a.redirect_uri,
    a.secret_digest, a.expiring_tokens, a.device_flow, a.owner_id, a.created_at AS app_created_at, a.updated_at AS app_updated_at";
pub(super) const USER_COLUMNS: &str = "u.id AS user_id, u.login, u.name AS user_name, u.email,
    u.created_at AS user_created_at, u.updated_at AS user_updated_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// A stored login as a `Login`.
pub(super) fn login_of(stored: &str) -> Result<Login, StoreError> {
    Login::parse(stored).ok_or_else(|| corrupt("a stored login breaks the rules for logins"))
}

/// A pair's stored state code as its state.
pub(super) fn state_of(code: i64) -> Result<PairState, StoreError> {
    PairState::from_code(code).ok_or_else(|| corrupt("a pair state code is unknown"))
}

pub(super) fn digest_of(row: &Row, column: &str) -> Result<TokenDigest, StoreError> {
    let bytes: &[u8] = row.col(column)?;
    TokenDigest::from_slice(bytes).ok_or_else(|| corrupt("a digest is not 32 bytes"))
}

pub(super) fn app_of(row: &Row) -> Result<App, StoreError> {
    let kind: &str = row.col("kind")?;
    Ok(App {
        id: AppId(row.col("app_id")?),
        client_id: ClientId::parse(row.col("client_id")?)
            .ok_or_else(|| corrupt("bad client_id"))?,
        name: row.col("app_name")?,
        kind: AppKind::parse(kind).ok_or_else(|| corrupt("bad app kind"))?,
        redirect_uri: row.col("redirect_uri")?,
        secret_digest: digest_of(row, "secret_digest")?,
        expiring_tokens: row.col("expiring_tokens")?,
        device_flow: row.col("device_flow")?,
        owner_id: row.col::<_, Option<i64>>("owner_id")?.map(UserId),
        created_at: Timestamp(row.col("app_created_at")?),
        updated_at: Timestamp(row.col("app_updated_at")?),
    })
}

pub(super) fn user_of(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(row.col("user_id")?),
        login: login_of(row.col("login")?)?,
        name: row.col("user_name")?,
        email: row.col("email")?,
        created_at: Timestamp(row.col("user_created_at")?),
        updated_at: Timestamp(row.col("user_updated_at")?),
    })
}

pub(super) async fn find_app_in(
    client: &impl GenericClient,
    client_id: &str,
) -> Result<Option<App>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.client_id = $1")
    });
    let row = query_opt(client, &SQL, &[&client_id]).await?;
    row.as_ref().map(app_of).transpose()
}

pub(super) async fn find_user_in(
    client: &impl GenericClient,
    login: &Login,
) -> Result<Option<User>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {USER_COLUMNS} FROM users u WHERE lower(u.login) = lower($1)")
    });
    let row = query_opt(client, &SQL, &[&login.as_str()]).await?;
    row.as_ref().map(user_of).transpose()
}

/// The live, unexpired authorization of an access token: its pair is live and its family
/// not revoked.
pub(super) async fn find_authorization_in(
    client: &impl GenericClient,
    access: &TokenDigest,
    now: Timestamp,
) -> Result<Option<Authorization>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT p.id, f.scopes, p.access_digest, p.access_last_eight, p.access_expires_at,
                    p.created_at, p.updated_at, {APP_COLUMNS}, {USER_COLUMNS}
             FROM token_pairs p
             JOIN families f ON f.id = p.family_id
             JOIN apps a ON a.id = f.app_id
             JOIN users u ON u.id = f.user_id
             WHERE p.access_digest = $1 AND p.state = 0 AND f.revoked_at IS NULL
               AND (p.access_expires_at IS NULL OR p.access_expires_at > $2)"
        )
    });
    let row = query_opt(client, &SQL, &[&access.as_bytes().as_slice(), &now.secs()]).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Authorization {
        id: row.col("id")?,
        app: app_of(&row)?,
        user: user_of(&row)?,
        scopes: Scopes::parse(row.col::<_, &str>("scopes")?),
        access_digest: digest_of(&row, "access_digest")?,
        access_last_eight: row.col("access_last_eight")?,
        access_expires_at: row
            .col::<_, Option<i64>>("access_expires_at")?
            .map(Timestamp),
        created_at: Timestamp(row.col("created_at")?),
        updated_at: Timestamp(row.col("updated_at")?),
    }))
}
