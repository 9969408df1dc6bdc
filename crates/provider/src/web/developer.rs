//! An app owner's settings, GitHub's Developer settings: their apps, creating one, and for each
//! app its client ID, a new client secret (shown once), redirect URIs, GitHub's
//! "User-to-server token expiration" switch, and its live tokens with revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use refreshd_core::audit::AUDIT;
use refreshd_core::{AppKind, ClientSecret, Dialect, FamilyId};
use refreshd_store::App;
use serde::Deserialize;

use super::{Button, PageError, Posted, Visitor, app_named, page, when};
use crate::Provider;
use crate::apps::{self, AppError, MAX_NAME_CHARS, Registration, Via};

const LIST: &str = "/settings/developers";
/// Live tokens shown on an app's page.
const SHOWN_TOKENS: i64 = 100;

fn app_path(app: &App) -> String {
    format!("/settings/applications/{}", app.client_id.as_str())
}

pub async fn list(
    State(provider): State<Provider>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let user = visitor.user(LIST)?;
    let apps = provider.store.list_owned_apps(user.id).await?;
    Ok(list_page(&visitor, &apps, "", "", None, StatusCode::OK))
}

fn list_page(
    visitor: &Visitor,
    apps: &[App],
    name: &str,
    redirect_uris: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let body = html! {
        h1 { "Developer settings" }
        h2 { "Your apps" }
        @if apps.is_empty() {
            p.empty { "You have no apps yet." }
        }
        ul.apps {
            @for app in apps {
                li {
                    a href=(app_path(app)) { (app.name) }
                    " " span.meta { (app.kind.dialect().as_str()) " · " code { (app.client_id.as_str()) } }
                }
            }
        }
        h2 { "New app" }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.card method="post" action=(LIST) {
            input type="hidden" name="csrf" value=(visitor.csrf());
            label for="name" { "Application name" }
            input #name type="text" name="name" value=(name) maxlength="100" required;
            label for="redirect_uris" { "Redirect URIs (one per line)" }
            textarea #redirect_uris name="redirect_uris" rows="3" required { (redirect_uris) }
            label for="dialect" { "Dialect" }
            select #dialect name="dialect" {
                option value="github" selected { "GitHub (GitHub App, expiring tokens)" }
                option value="google" { "Google (OAuth client)" }
            }
            button.primary type="submit" { "Register application" }
        }
    };
    page(visitor, status, "Developer settings", body)
}

#[derive(Deserialize)]
pub struct Create {
    csrf: String,
    name: String,
    redirect_uris: String,
    dialect: String,
}

pub async fn create(
    State(provider): State<Provider>,
    visitor: Visitor,
    Posted(form): Posted<Create>,
) -> Result<Response, PageError> {
    let user = visitor.user(LIST)?;
    visitor.check_csrf(&form.csrf)?;
    let kind = match form.dialect.as_str() {
        "github" => AppKind::GithubApp,
        "google" => AppKind::GoogleClient,
        _ => return Err(PageError::BadRequest("Unknown dialect.".into())),
    };
    let registration = Registration {
        name: form.name.clone(),
        kind,
        redirect_uris: form.redirect_uris.clone(),
        expiring_tokens: true,
        device_flow: false,
        owner: Some(user.clone()),
    };
    let error = match apps::register_app(&provider, registration).await {
        Ok((app, secret)) => {
            let status = StatusCode::CREATED;
            return app_page(&provider, &visitor, &app, Some(&secret), status).await;
        }
        Err(AppError::Name { .. }) => {
            format!("The name must be 1 to {MAX_NAME_CHARS} characters.")
        }
        Err(AppError::Store(e)) => return Err(e.into()),
        Err(other) => other.to_string(),
    };
    let apps = provider.store.list_owned_apps(user.id).await?;
    let (name, uris) = (&form.name, &form.redirect_uris);
    let status = StatusCode::BAD_REQUEST;
    Ok(list_page(&visitor, &apps, name, uris, Some(&error), status))
}

/// The app `client_id` names, if the visitor owns it; anyone else sees "not found". A form's
/// `csrf` token is checked first, so a forged post never reaches the database.
async fn owned_app(
    provider: &Provider,
    visitor: &Visitor,
    client_id: &str,
    csrf: Option<&str>,
) -> Result<App, PageError> {
    let here = format!("/settings/applications/{client_id}");
    let user = visitor.user(&here)?;
    if let Some(csrf) = csrf {
        visitor.check_csrf(csrf)?;
    }
    app_named(provider, client_id)
        .await?
        .filter(|app| app.owner_id == Some(user.id))
        .ok_or(PageError::NotFound)
}

pub async fn show(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let app = owned_app(&provider, &visitor, &client_id, None).await?;
    app_page(&provider, &visitor, &app, None, StatusCode::OK).await
}

async fn app_page(
    provider: &Provider,
    visitor: &Visitor,
    app: &App,
    new_secret: Option<&ClientSecret>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let now = provider.clock.now();
    let tokens = provider
        .store
        .active_tokens(app.id, now, SHOWN_TOKENS)
        .await?;
    let path = app_path(app);
    let csrf = visitor.csrf();
    let body = html! {
        p.crumbs { a href=(LIST) { "Developer settings" } " / " (app.name) }
        h1 { (app.name) }
        section.card {
            h2 { "Client ID" }
            p { code #client-id { (app.client_id.as_str()) } }
            h2 { "Client secret" }
            @if let Some(secret) = new_secret {
                p.notice role="status" {
                    "Copy your new client secret now. You won't be able to see it again."
                }
                p { code #client-secret.secret { (secret.expose()) } }
            } @else {
                p { "The secret is stored only as a hash; a new one replaces it at once." }
            }
            form method="post" action={ (path) "/secret" } {
                input type="hidden" name="csrf" value=(csrf);
                button.secondary type="submit" { "Generate a new client secret" }
            }
        }
        section.card {
            h2 { "Redirect URIs" }
            form method="post" action={ (path) "/redirect_uris" } {
                input type="hidden" name="csrf" value=(csrf);
                label.hint for="redirect_uris" {
                    "One per line; the first is the default. Authorization requests must use one of them (a loopback one on any port)."

                }
                textarea #redirect_uris name="redirect_uris" rows="3" required {
                    (app.redirect_uri)
                }
                button.secondary type="submit" { "Update redirect URIs" }
            }
        }
        @if app.kind.dialect() == Dialect::Github {
            (expiration(app, &path, &csrf))
        }
        (device_flow(app, &path, &csrf))
        section.card {
            h2 { "Active tokens" }
            @if tokens.is_empty() {
                p.empty { "No live tokens." }
            } @else {
                div.scroll {
                    table {
                        thead { tr { th { "User" } th { "Token" } th { "Created" } th { "Expires" } th {} } }
                        tbody {
                            @for token in &tokens {
                                tr {
                                    td { (token.login) }
                                    td { code { "…" (token.access_last_eight) } }
                                    td { (when(token.created_at)) }
                                    td { (token.expires_at.map(when).unwrap_or_else(|| "never".into())) }
                                    td {
                                        form method="post" action={ (path) "/tokens/" (token.family_id) "/revoke" } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.danger.small type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(visitor, status, &app.name, body))
}

/// GitHub's "User-to-server token expiration" switch, with what it does.
fn expiration(app: &App, path: &str, csrf: &str) -> Markup {
    html! {
        section.card #expiration {
            h2 { "User-to-server token expiration" }
            @if app.expiring_tokens {
                p { "Opted in. " strong { "User access tokens expire after 8 hours" }
                    " and come with a refresh token (valid for 6 months) that is exchanged for a new pair and can be used only once." }
                p { "Opting out makes the next authorizations get access tokens that never expire, without a refresh token. Tokens already issued keep their expiry." }
            } @else {
                p { "Opted out. " strong { "User access tokens do not expire" } " and come without a refresh token." }
                p { "Opting in makes the next authorizations get access tokens that expire after 8 hours, with a refresh token. Tokens already issued keep working until revoked: send users through the authorize flow again to give them expiring tokens." }
            }
            form method="post" action={ (path) "/expiration" } {
                input type="hidden" name="csrf" value=(csrf);
                @if app.expiring_tokens {
                    button.secondary type="submit" name="expiring" value="off" { "Opt-out" }
                } @else {
                    button.primary type="submit" name="expiring" value="on" { "Opt-in" }
                }
            }
        }
    }
}

/// GitHub's "Enable Device Flow" switch, with what it does.
fn device_flow(app: &App, path: &str, csrf: &str) -> Markup {
    // Where each dialect sends the user, and what a device hears once the flow is off.
    let (page, refusal) = match app.kind.dialect() {
        Dialect::Github => (crate::web::device::PATH, "device_flow_disabled"),
        Dialect::Google => (crate::web::device::GOOGLE_PATH, "invalid_client"),
    };
    html! {
        section.card #device-flow {
            h2 { "Device Flow" }
            @if app.device_flow {
                p { "Enabled. " strong { "This app may authorize users via the device flow" }
                    ": a device shows a code that the user enters at " code { (page) } "." }
                p { "Disabling it makes device authorizations fail with " code { (refusal) } ", those already started too." }
            } @else {
                p { "Disabled. " strong { "This app cannot authorize users via the device flow" } "." }
                p { "Enabling it lets a device without a browser (a CLI, a TV) ask for a code that the user enters at " code { (page) } "." }
            }
            form method="post" action={ (path) "/device_flow" } {
                input type="hidden" name="csrf" value=(csrf);
                @if app.device_flow {
                    button.secondary type="submit" name="device_flow" value="off" { "Disable Device Flow" }
                } @else {
                    button.primary type="submit" name="device_flow" value="on" { "Enable Device Flow" }
                }
            }
        }
    }
}

pub async fn new_secret(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path(client_id): Path<String>,
    Posted(form): Posted<Button>,
) -> Result<Response, PageError> {
    let app = owned_app(&provider, &visitor, &client_id, Some(&form.csrf)).await?;
    let by = visitor.user.as_ref().map_or("", |u| u.login.as_str());
    let (app, secret) = apps::reset_secret(&provider, &app, Via::SettingsPage { by })
        .await
        .map_err(page_error)?;
    app_page(&provider, &visitor, &app, Some(&secret), StatusCode::OK).await
}

/// A change to an app refused or failed: the error page says why.
fn page_error(error: AppError) -> PageError {
    match error {
        AppError::Store(e) => e.into(),
        AppError::Gone => PageError::NotFound,
        other => PageError::BadRequest(other.to_string()),
    }
}

#[derive(Deserialize)]
pub struct RedirectUris {
    csrf: String,
    redirect_uris: String,
}

pub async fn redirect_uris(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path(client_id): Path<String>,
    Posted(form): Posted<RedirectUris>,
) -> Result<Response, PageError> {
    let app = owned_app(&provider, &visitor, &client_id, Some(&form.csrf)).await?;
    let uris = crate::redirect_uris(&form.redirect_uris)
        .map_err(|e| PageError::BadRequest(e.to_string()))?;
    let now = provider.clock.now();
    provider
        .store
        .set_redirect_uris(&app.client_id, &uris, now)
        .await?;
    Ok(Redirect::to(&app_path(&app)).into_response())
}

#[derive(Deserialize)]
pub struct Expiration {
    csrf: String,
    expiring: String,
}

pub async fn expiration_switch(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path(client_id): Path<String>,
    Posted(form): Posted<Expiration>,
) -> Result<Response, PageError> {
    let app = owned_app(&provider, &visitor, &client_id, Some(&form.csrf)).await?;
    let expiring = match form.expiring.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(PageError::BadRequest("expiring must be on or off.".into())),
    };
    apps::set_expiring_tokens(&provider, &app, expiring)
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!("{}#expiration", app_path(&app))).into_response())
}

#[derive(Deserialize)]
pub struct DeviceFlow {
    csrf: String,
    device_flow: String,
}

pub async fn device_flow_switch(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path(client_id): Path<String>,
    Posted(form): Posted<DeviceFlow>,
) -> Result<Response, PageError> {
    let app = owned_app(&provider, &visitor, &client_id, Some(&form.csrf)).await?;
    let enabled = match form.device_flow.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            return Err(PageError::BadRequest(
                "device_flow must be on or off.".into(),
            ));
        }
    };
    let by = visitor.user.as_ref().map_or("", |u| u.login.as_str());
    apps::set_device_flow(&provider, &app, enabled, Via::SettingsPage { by })
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!("{}#device-flow", app_path(&app))).into_response())
}

pub async fn revoke_token(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path((client_id, family_id)): Path<(String, String)>,
    Posted(form): Posted<Button>,
) -> Result<Response, PageError> {
    let app = owned_app(&provider, &visitor, &client_id, Some(&form.csrf)).await?;
    let family_id = FamilyId(family_id.parse().map_err(|_| PageError::NotFound)?);
    let now = provider.clock.now();
    // An unknown or already revoked family: nothing happened, so nothing is audited.
    if provider.store.revoke_family(app.id, family_id, now).await? {
        tracing::info!(
            target: AUDIT,
            event = "app.revoked",
            client_id = %app.client_id,
            family_id = family_id.0,
            by = visitor.user.as_ref().map_or("", |u| u.login.as_str()),
            via = "app settings page",
            "the app's owner revoked a token family"
        );
    }
    Ok(Redirect::to(&app_path(&app)).into_response())
}
