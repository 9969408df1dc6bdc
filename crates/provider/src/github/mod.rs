//! GitHub's dialect: the OAuth token endpoint and the REST routes GitHub's clients call.

pub(crate) mod applications;
pub(crate) mod device;
mod format;
mod objects;
mod rest_error;
pub(crate) mod token;
pub(crate) mod user;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, post};

use crate::{MAX_BODY_BYTES, Provider};

/// GitHub's routes: OAuth under `/login/oauth`, REST both at `/` and under `/api/v3` (as on
/// GitHub Enterprise Server).
pub fn router(provider: Provider) -> Router {
    let rest = Router::new()
        .route(
            "/applications/{client_id}/token",
            post(applications::check)
                .patch(applications::reset)
                .delete(applications::delete_token),
        )
        .route(
            "/applications/{client_id}/grant",
            delete(applications::delete_grant),
        )
        .route("/user", axum::routing::get(user::me))
        .method_not_allowed_fallback(rest_error::not_found);
    Router::new()
        .route("/login/oauth/access_token", post(token::access_token))
        .route("/login/device/code", post(device::device_code))
        .merge(rest.clone())
        .nest("/api/v3", rest)
        .fallback(rest_error::not_found)
        .method_not_allowed_fallback(rest_error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(provider)
}
