//! A signed-in user's authorized apps, GitHub's `/settings/connections/applications`: what they
//! approved, and revoking it (the approval, every token and every code).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use refreshd_core::audit::AUDIT;

use super::{Button, PageError, Posted, Visitor, app_named, page, when};
use crate::Provider;

const HERE: &str = "/settings/connections/applications";

pub async fn list(
    State(provider): State<Provider>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let user = visitor.user(HERE)?;
    let consents = provider.store.list_consents(user.id).await?;
    let csrf = visitor.csrf();
    let body = html! {
        h1 { "Authorized apps" }
        @if consents.is_empty() {
            p.empty { "You have not authorized any applications." }
        }
        @for consent in &consents {
            section.card.app {
                h2 { (consent.app.name) }
                p.meta {
                    "Approved " (when(consent.created_at))
                    @if consent.updated_at != consent.created_at {
                        ", last changed " (when(consent.updated_at))
                    }
                }
                p { "Scopes: "
                    @let scopes = &consent.scopes;
                    @if scopes.as_slice().is_empty() { "none (public information only)" }
                    @for scope in scopes.as_slice() { code { (scope) } " " }
                }
                form method="post"
                    action={ (HERE) "/" (consent.app.client_id.as_str()) "/revoke" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" { "Revoke access" }
                }
            }
        }
    };
    Ok(page(&visitor, StatusCode::OK, "Authorized apps", body))
}

pub async fn revoke(
    State(provider): State<Provider>,
    visitor: Visitor,
    Path(client_id): Path<String>,
    Posted(form): Posted<Button>,
) -> Result<Response, PageError> {
    let user = visitor.user(HERE)?;
    visitor.check_csrf(&form.csrf)?;
    let app = app_named(&provider, &client_id)
        .await?
        .ok_or(PageError::NotFound)?;
    let now = provider.clock.now();
    provider.store.revoke_consent(app.id, user.id, now).await?;
    tracing::info!(
        target: AUDIT,
        event = "app.revoked",
        client_id = %app.client_id,
        user = %user.login,
        via = "authorized apps page",
        "the user revoked the app's access"
    );
    Ok(Redirect::to(HERE).into_response())
}
