//! Registering an app, replacing its client secret and switching its token expiration: the
//! rules the admin CLI and the settings pages share, each written once here.

use refreshd_core::audit::AUDIT;
use refreshd_core::{AppKind, ClientId, ClientSecret, Dialect};
use refreshd_store::{App, NewApp, StoreError, User};

use crate::{Provider, RedirectUriError};

/// Most characters an app's name may have (GitHub's limit).
pub const MAX_NAME_CHARS: usize = 100;

/// An app to register, as its registrant typed it.
pub struct Registration {
    /// Surrounding whitespace is dropped.
    pub name: String,
    pub kind: AppKind,
    /// One per line, blank lines ignored; checked by [`crate::redirect_uris`].
    pub redirect_uris: String,
    /// GitHub's "User-to-server token expiration" setting. Google-dialect tokens always expire.
    pub expiring_tokens: bool,
    /// Whether the app may start the device flow (GitHub's "Enable Device Flow"; off by default).
    pub device_flow: bool,
    /// Who manages the app in the settings pages; `None`: only the CLI does.
    pub owner: Option<User>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the name must have 1 to {MAX_NAME_CHARS} characters, not {chars}")]
    Name { chars: usize },
    #[error(transparent)]
    RedirectUris(#[from] RedirectUriError),
    #[error("Google-dialect tokens always expire after an hour.")]
    GoogleTokensExpire,
    /// The app was deleted while it was being changed.
    #[error("the app was deleted meanwhile")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who changed an app, for the audit log.
#[derive(Clone, Copy)]
pub enum Via<'a> {
    Cli,
    /// The app's owner, signed in to the settings pages.
    SettingsPage {
        by: &'a str,
    },
}

impl<'a> Via<'a> {
    /// Who made the change and through what, as audit events name them.
    fn audited(self) -> (Option<&'a str>, &'static str) {
        match self {
            Via::Cli => (None, "cli"),
            Via::SettingsPage { by } => (Some(by), "settings page"),
        }
    }
}

/// Checks a registration and stores the app with a new client ID and secret. The secret is
/// returned only here: storage keeps its digest.
pub async fn register_app(
    provider: &Provider,
    registration: Registration,
) -> Result<(App, ClientSecret), AppError> {
    let name = registration.name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(AppError::Name { chars });
    }
    let redirect_uri = crate::redirect_uris(&registration.redirect_uris)?;
    let kind = registration.kind;
    if kind.dialect() == Dialect::Google && !registration.expiring_tokens {
        return Err(AppError::GoogleTokensExpire);
    }
    let secret = ClientSecret::generate(kind);
    let new = NewApp {
        client_id: ClientId::generate(kind),
        name: name.to_owned(),
        kind,
        redirect_uri,
        secret_digest: secret.digest(),
        expiring_tokens: registration.expiring_tokens,
        device_flow: registration.device_flow,
        owner_id: registration.owner.map(|owner| owner.id),
    };
    let app = provider.store.create_app(new, provider.clock.now()).await?;
    Ok((app, secret))
}

/// Replaces the app's client secret at once (the old one stops working) and returns the new
/// one, which is shown only this once.
pub async fn reset_secret(
    provider: &Provider,
    app: &App,
    via: Via<'_>,
) -> Result<(App, ClientSecret), AppError> {
    let secret = ClientSecret::generate(app.kind);
    let now = provider.clock.now();
    let app = provider
        .store
        .set_client_secret(&app.client_id, secret.digest(), now)
        .await?
        .ok_or(AppError::Gone)?;
    let (by, via) = via.audited();
    tracing::info!(
        target: AUDIT,
        event = "app.secret_reset",
        client_id = %app.client_id,
        by,
        via,
        "a new client secret replaced the old one"
    );
    Ok((app, secret))
}

/// GitHub's "User-to-server token expiration" setting: whether new grants of the app get
/// expiring tokens with a refresh token. Tokens already issued keep their own expiry. A
/// Google-dialect app's tokens always expire: turning that off is refused, as at registration.
pub async fn set_expiring_tokens(
    provider: &Provider,
    app: &App,
    expiring: bool,
) -> Result<App, AppError> {
    if app.kind.dialect() == Dialect::Google && !expiring {
        return Err(AppError::GoogleTokensExpire);
    }
    let now = provider.clock.now();
    provider
        .store
        .set_expiring_tokens(&app.client_id, expiring, now)
        .await?
        .ok_or(AppError::Gone)
}

/// GitHub's "Enable Device Flow" setting: whether the app may start device authorizations.
/// Switched off, authorizations already started end too: their devices' polls are answered
/// `device_flow_disabled` and their codes are no longer found on the device page.
pub async fn set_device_flow(
    provider: &Provider,
    app: &App,
    enabled: bool,
    via: Via<'_>,
) -> Result<App, AppError> {
    let now = provider.clock.now();
    let app = provider
        .store
        .set_device_flow(&app.client_id, enabled, now)
        .await?
        .ok_or(AppError::Gone)?;
    let (by, via) = via.audited();
    tracing::info!(
        target: AUDIT,
        event = "app.device_flow",
        client_id = %app.client_id,
        enabled,
        by,
        via,
        "the app's device flow setting changed"
    );
    Ok(app)
}
