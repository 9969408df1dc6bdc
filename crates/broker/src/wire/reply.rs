//! What the broker answers on success: the handlers build these and axum serializes them, so
//! `/openapi.json` describes exactly what goes on the wire. Fields are declared in alphabetical
//! order, the order the answers have always had; `Option` fields are sent as `null`.

use refreshd_core::ConnectionId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::upstream::Refreshed;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubRefreshed {
    /// Same as `token` (for compatibility).
    access_token: String,
    /// When the new access token expires, Unix time in **milliseconds**.
    #[schema(required = true)]
    expires_at: Option<i64>,
    /// The new refresh token (GitHub rotates them).
    #[schema(required = true)]
    refresh_token: Option<String>,
    success: bool,
    /// The new access token.
    token: String,
}

impl From<Refreshed> for GithubRefreshed {
    fn from(refreshed: Refreshed) -> Self {
        Self {
            access_token: refreshed.token.clone(),
            expires_at: refreshed.expires_at,
            refresh_token: refreshed.refresh_token,
            success: true,
            token: refreshed.token,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoogleRefreshed {
    /// Unix time in milliseconds.
    #[schema(required = true)]
    expires_at: Option<i64>,
    /// Google's new refresh token if it sent one, else the one the caller sent (still valid).
    refresh_token: String,
    success: bool,
    token: String,
}

impl GoogleRefreshed {
    /// `sent` is the refresh token the caller refreshed with.
    pub fn new(refreshed: Refreshed, sent: String) -> Self {
        Self {
            expires_at: refreshed.expires_at,
            // Google normally returns no new refresh token: the one sent stays valid.
            refresh_token: refreshed.refresh_token.unwrap_or(sent),
            success: true,
            token: refreshed.token,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exchanged {
    /// The connection the grant was kept as, when the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_id: Option<String>,
    #[schema(required = true)]
    expires_at: Option<i64>,
    /// `null` when the grant was kept as a connection: refreshd holds it.
    #[schema(required = true)]
    refresh_token: Option<String>,
    success: bool,
    token: String,
}

impl From<Refreshed> for Exchanged {
    fn from(tokens: Refreshed) -> Self {
        Self {
            connection_id: None,
            expires_at: tokens.expires_at,
            refresh_token: tokens.refresh_token,
            success: true,
            token: tokens.token,
        }
    }
}

impl Exchanged {
    /// The answer once the grant is kept as connection `id`: named, without its refresh token.
    pub fn kept_as(self, id: &ConnectionId) -> Self {
        Self {
            connection_id: Some(id.to_string()),
            refresh_token: None,
            ..self
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedIn {
    auth_state: AuthState,
    /// The connection the grant was kept as, when the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_id: Option<String>,
    /// `Authentication successful`.
    message: &'static str,
    success: bool,
}

impl LoggedIn {
    /// `session` is the new refreshd session token; `provider` is `GITHUB` or `GOOGLE`.
    pub fn new(user: AuthUser, session: String, provider: &'static str, tokens: Refreshed) -> Self {
        Self {
            auth_state: AuthState {
                access_token: tokens.token,
                expires_at: tokens.expires_at,
                provider,
                refresh_token: tokens.refresh_token,
                token: session,
                user,
            },
            connection_id: None,
            message: "Authentication successful",
            success: true,
        }
    }

    /// The answer once the grant is kept as connection `id`: named, without its refresh token.
    pub fn kept_as(mut self, id: &ConnectionId) -> Self {
        self.connection_id = Some(id.to_string());
        self.auth_state.refresh_token = None;
        self
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthState {
    access_token: String,
    /// Unix time in milliseconds.
    #[schema(required = true)]
    expires_at: Option<i64>,
    /// `GITHUB` or `GOOGLE`.
    provider: &'static str,
    /// `null` when the grant was kept as a connection: refreshd holds it.
    #[schema(required = true)]
    refresh_token: Option<String>,
    /// A refreshd session token (`rfs_…`), usable as the caller's Bearer afterwards.
    token: String,
    user: AuthUser,
}

// Who signed in, as the upstream describes them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthUser {
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub image_url: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthReport {
    pub database: DatabaseHealth,
    pub status: HealthStatus,
    /// `true` with status 200.
    pub success: bool,
    pub upstreams: UpstreamsHealth,
}

/// `ok` when the database answers and no configured upstream is unreachable, `degraded` when
/// one is, `unavailable` when the database does not answer.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
    Unavailable,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseHealth {
    Ok,
    Unavailable,
}

/// `reachable` when the upstream's token endpoint answered HTTP at all.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamHealth {
    Reachable,
    Unreachable,
    NotConfigured,
}

#[derive(Serialize, ToSchema)]
pub struct UpstreamsHealth {
    pub github: UpstreamHealth,
    pub google: UpstreamHealth,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refreshed(refresh_token: Option<&str>, expires_at: Option<i64>) -> Refreshed {
        Refreshed {
            token: "a".into(),
            refresh_token: refresh_token.map(str::to_owned),
            expires_at,
            scope: None,
            refresh_expires_at: None,
        }
    }

    fn json(reply: &impl Serialize) -> String {
        serde_json::to_string(reply).unwrap()
    }

    /// Byte for byte what the endpoints have always answered: keys in alphabetical order,
    /// unknowns as `null`.
    #[test]
    fn replies_keep_their_bytes() {
        assert_eq!(
            json(&GithubRefreshed::from(refreshed(Some("r"), Some(5)))),
            r#"{"accessToken":"a","expiresAt":5,"refreshToken":"r","success":true,"token":"a"}"#
        );
        assert_eq!(
            json(&GithubRefreshed::from(refreshed(None, None))),
            r#"{"accessToken":"a","expiresAt":null,"refreshToken":null,"success":true,"token":"a"}"#
        );
        assert_eq!(
            json(&GoogleRefreshed::new(
                refreshed(None, Some(5)),
                "sent".into()
            )),
            r#"{"expiresAt":5,"refreshToken":"sent","success":true,"token":"a"}"#
        );
        assert_eq!(
            json(&GoogleRefreshed::new(
                refreshed(Some("new"), None),
                "sent".into()
            )),
            r#"{"expiresAt":null,"refreshToken":"new","success":true,"token":"a"}"#
        );
        assert_eq!(
            json(&Exchanged::from(refreshed(None, None))),
            r#"{"expiresAt":null,"refreshToken":null,"success":true,"token":"a"}"#
        );
        let user = AuthUser {
            email: Some("e".into()),
            image_url: None,
            name: Some("n".into()),
        };
        assert_eq!(
            json(&LoggedIn::new(
                user,
                "rfs_s".into(),
                "GITHUB",
                refreshed(Some("r"), Some(5))
            )),
            concat!(
                r#"{"authState":{"accessToken":"a","expiresAt":5,"provider":"GITHUB","#,
                r#""refreshToken":"r","token":"rfs_s","user":{"email":"e","imageUrl":null,"name":"n"}},"#,
                r#""message":"Authentication successful","success":true}"#
            )
        );
        let kept = ConnectionId::parse("user-1").unwrap();
        assert_eq!(
            json(&Exchanged::from(refreshed(Some("r"), Some(5))).kept_as(&kept)),
            r#"{"connectionId":"user-1","expiresAt":5,"refreshToken":null,"success":true,"token":"a"}"#
        );
        let user = AuthUser {
            email: None,
            image_url: None,
            name: None,
        };
        let logged_in = LoggedIn::new(user, "rfs_s".into(), "GOOGLE", refreshed(Some("r"), None));
        assert_eq!(
            json(&logged_in.kept_as(&kept)),
            concat!(
                r#"{"authState":{"accessToken":"a","expiresAt":null,"provider":"GOOGLE","#,
                r#""refreshToken":null,"token":"rfs_s","user":{"email":null,"imageUrl":null,"name":null}},"#,
                r#""connectionId":"user-1","message":"Authentication successful","success":true}"#
            )
        );
        let report = HealthReport {
            database: DatabaseHealth::Ok,
            status: HealthStatus::Degraded,
            success: true,
            upstreams: UpstreamsHealth {
                github: UpstreamHealth::Unreachable,
                google: UpstreamHealth::NotConfigured,
            },
        };
        assert_eq!(
            json(&report),
            r#"{"database":"ok","status":"degraded","success":true,"upstreams":{"github":"unreachable","google":"not_configured"}}"#
        );
    }
}
