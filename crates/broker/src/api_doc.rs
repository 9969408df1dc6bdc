//! The broker's OpenAPI description for the document at `/openapi.json`: its endpoints, read
//! from the handlers and the types they take and return, and the Bearer scheme they require.
//! Bodies are JSON objects (`Content-Type: application/json` or `…+json`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorEnvelope;
use crate::wire::{
    CodeRequest, ConnectionDeleted, ConnectionPage, ConnectionSaved, ConnectionShown,
    ConnectionView, CreateConnection, Exchanged, GithubRefreshed, GoogleExchangeRequest,
    GoogleLoginRequest, GoogleRefreshed, HealthReport, LoggedIn, Provider, RefreshRequest,
    TokenReply,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key (`refreshd key create`) or a session token from a login endpoint",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::refresh::github,
        crate::refresh::google,
        crate::login::github,
        crate::login::google_exchange,
        crate::login::google,
        crate::health::health,
        crate::connections::create,
        crate::connections::list,
        crate::connections::show,
        crate::connections::token,
        crate::connections::refresh,
        crate::connections::delete,
    ),
    components(schemas(
        RefreshRequest, GithubRefreshed, GoogleRefreshed, CodeRequest, GoogleExchangeRequest,
        GoogleLoginRequest, LoggedIn, Exchanged, ErrorEnvelope, HealthReport, CreateConnection,
        ConnectionSaved, TokenReply, ConnectionView, ConnectionShown, ConnectionPage,
        ConnectionDeleted, Provider
    )),
    modifiers(&BearerAuth)
)]
pub struct BrokerApi;
