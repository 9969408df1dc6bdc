//! The provider's pages: sign-in, authorize (both dialects), the device flow's code page, an
//! app owner's settings and a user's authorized apps. Server-rendered HTML with one stylesheet and no scripts; every form
//! carries a CSRF token, and every page is served under a strict Content-Security-Policy.

pub(crate) mod authorize;
mod authorized;
mod client_address;
mod developer;
mod device;
mod session;
mod signin;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use refreshd_core::ClientId;
use refreshd_store::{App, StoreError};

use crate::Provider;
pub use client_address::{ClientAddress, TrustedProxies};
pub use session::Visitor;

const STYLESHEET: &str = include_str!("refreshd.css");

/// Every page's policy: no scripts at all, styles only from refreshd's stylesheet, never
/// framed. `form-action` is absent on purpose: the consent form ends in a redirect to the
/// app, which Chromium would check against it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

pub fn router(provider: Provider) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(signin::show))
        .route("/session", post(signin::sign_in))
        .route("/logout", post(signin::sign_out))
        .route(
            authorize::GITHUB_PATH,
            get(authorize::show).post(authorize::submit),
        )
        .route(
            authorize::GOOGLE_PATH,
            get(authorize::show).post(authorize::submit),
        )
        .route(device::PATH, get(device::show).post(device::enter))
        .route(device::GOOGLE_PATH, get(device::show))
        .route(device::DECIDE_PATH, post(device::decide))
        .route("/settings/connections/applications", get(authorized::list))
        .route(
            "/settings/connections/applications/{client_id}/revoke",
            post(authorized::revoke),
        )
        .route(
            "/settings/developers",
            get(developer::list).post(developer::create),
        )
        .route("/settings/applications/{client_id}", get(developer::show))
        .route(
            "/settings/applications/{client_id}/secret",
            post(developer::new_secret),
        )
        .route(
            "/settings/applications/{client_id}/redirect_uris",
            post(developer::redirect_uris),
        )
        .route(
            "/settings/applications/{client_id}/expiration",
            post(developer::expiration_switch),
        )
        .route(
            "/settings/applications/{client_id}/device_flow",
            post(developer::device_flow_switch),
        )
        .route(
            "/settings/applications/{client_id}/tokens/{family_id}/revoke",
            post(developer::revoke_token),
        )
        .route("/refreshd.css", get(stylesheet))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .with_state(provider)
}

async fn home(visitor: Visitor) -> Redirect {
    if visitor.user.is_some() {
        Redirect::to("/settings/connections/applications")
    } else {
        Redirect::to("/login")
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Headers every response of the pages carries, unless the handler set its own.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Authorize URLs carry `state`, and callbacks a code: neither leaves in a Referer.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// Why a page could not be shown; rendered as an error page, never as a redirect to an app.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("There is no such page, or it is not yours.")]
    NotFound,
    #[error(
        "This form has expired or did not come from refreshd. Go back, reload the page and try again."
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("The form is larger than refreshd accepts.")]
    TooLarge,
    #[error("Forms must be sent as application/x-www-form-urlencoded.")]
    ContentType,
    #[error("refreshd cannot reach its database right now. Try again in a moment.")]
    Unavailable,
    #[error("Too many failed sign-ins for this account. Try again in 15 minutes.")]
    TooManyAttempts,
    #[error(
        "Too many codes looked up, from this address or by this account. Try again in 15 minutes."
    )]
    TooManyCodes,
    /// The server was started without connection info, so sign-in attempts cannot be counted.
    #[error("refreshd cannot tell where this sign-in comes from, so it cannot accept it.")]
    NoClientAddress,
    /// Not signed in: off to the sign-in page, then back to this local path.
    #[error("sign in first")]
    SignIn(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failed while serving a page");
        Self::Unavailable
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyAttempts | Self::TooManyCodes => StatusCode::TOO_MANY_REQUESTS,
            Self::NoClientAddress => StatusCode::INTERNAL_SERVER_ERROR,
            Self::SignIn(return_to) => {
                let query =
                    serde_urlencoded::to_string([("return_to", return_to)]).unwrap_or_default();
                return Redirect::to(&format!("/login?{query}")).into_response();
            }
        };
        let body = html! {
            h1 { "Something went wrong" }
            p.error role="alert" { (self.to_string()) }
            p { a href="/" { "Go to refreshd" } }
        };
        (status, Html(layout("Error", None, body).into_string())).into_response()
    }
}

/// A submitted form, or the error page saying why it could not be read.
pub struct Posted<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(PageError::ContentType),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(PageError::TooLarge),
            Err(_) => Err(PageError::BadRequest(
                "The form is missing fields or has malformed ones.".into(),
            )),
        }
    }
}

/// A form whose only field is its CSRF token: a button.
#[derive(serde::Deserialize)]
pub struct Button {
    csrf: String,
}

/// The app `client_id` names; `None` for an unknown or malformed one.
async fn app_named(provider: &Provider, client_id: &str) -> Result<Option<App>, PageError> {
    match ClientId::parse(client_id) {
        Some(id) => Ok(provider.store.find_app(&id).await?),
        None => Ok(None),
    }
}

/// A whole page: the frame around `body`, with the visitor's navigation and cookies.
pub fn page(visitor: &Visitor, status: StatusCode, title: &str, body: Markup) -> Response {
    let page = layout(title, Some(visitor), body).into_string();
    let mut response = (status, Html(page)).into_response();
    visitor.set_cookies(&mut response);
    response
}

fn layout(title: &str, visitor: Option<&Visitor>, body: Markup) -> Markup {
    let signed_in = visitor.and_then(|v| v.user.as_ref().map(|user| (v, user)));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · refreshd" }
                link rel="stylesheet" href="/refreshd.css";
            }
            body {
                header.top {
                    a.brand href="/" { "refreshd" }
                    @if let Some((visitor, user)) = signed_in {
                        nav {
                            a href="/settings/connections/applications" { "Authorized apps" }
                            a href="/settings/developers" { "Developer settings" }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(visitor.csrf());
                                button.link type="submit" { "Sign out " (user.login) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A timestamp as a UTC date and time, for tables.
fn when(at: refreshd_core::Timestamp) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(at.secs())
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "—".into())
}
