//! The OpenAPI 3.1 document of every endpoint (`/openapi.json`), generated from the handlers'
//! annotations, and a browsable page (`/docs`) served from vendored Swagger UI assets.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;

/// refreshd's own routes, beside the provider's and the broker's.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "refreshd",
        description = "An OAuth token service: a GitHub- and Google-compatible provider of expiring, rotating tokens, and a broker that refreshes GitHub and Google tokens without ever burning a rotating refresh token. GitHub REST routes are also served under `/api/v3`.\n\nA method a path does not serve is answered `405 Method Not Allowed` with an `Allow` header (in the Google dialect's or the broker's error shape on their paths, with no body on refreshd's own), and `404 Not Found` in GitHub's shape on GitHub's paths, as GitHub answers it. Request bodies over 64 KiB are refused with 413."
    ),
    paths(healthz, openapi_json)
)]
struct ServiceApi;

/// The whole document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ServiceApi::openapi();
    doc.merge(refreshd_provider::ProviderApi::openapi());
    doc.merge(refreshd_broker::BrokerApi::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// Liveness: 200 whenever the process serves HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "Service",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "Service",
    responses((status = 200, description = "OpenAPI 3.1", body = Object, content_type = "application/json")))]
async fn openapi_json() -> Response {
    axum::Json(openapi()).into_response()
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

async fn page() -> Response {
    let mut response = asset(
        "text/html; charset=utf-8",
        include_bytes!("../assets/docs.html"),
    );
    let headers = response.headers_mut();
    // Swagger UI sets inline styles; scripts come only from refreshd itself.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(page))
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
                )
            }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_bytes!("../assets/swagger-ui/swagger-ui.css"),
                )
            }),
        )
        .route(
            "/docs/init.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_bytes!("../assets/docs-init.js"),
                )
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_route() {
        let doc = serde_json::to_value(openapi()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/login/oauth/access_token",
            "/applications/{client_id}/token",
            "/applications/{client_id}/grant",
            "/user",
            "/token",
            "/revoke",
            "/tokeninfo",
            "/oauth2/v3/userinfo",
            "/auth/github",
            "/auth/github/refresh",
            "/auth/google",
            "/auth/google/exchange",
            "/auth/google/refresh",
            "/health",
            "/healthz",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path} is not documented");
        }
        assert_eq!(
            paths["/applications/{client_id}/token"]
                .as_object()
                .unwrap()
                .len(),
            3,
            "POST, PATCH, DELETE"
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }

    fn operations(doc: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                out.push((format!("{} {path}", method.to_uppercase()), operation));
            }
        }
        out
    }

    #[test]
    fn every_operation_has_its_own_id() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let mut seen = std::collections::HashMap::new();
        for (route, operation) in operations(&doc) {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            if let Some(other) = seen.insert(id.clone(), route.clone()) {
                panic!("{route} and {other} share the operation id {id}");
            }
        }
        assert!(seen.contains_key("googleTokenInfoPost"), "POST /tokeninfo");
    }

    /// `POST /revoke` and `POST /tokeninfo` read their one parameter from the query string too.
    #[test]
    fn bodies_that_may_be_left_out_are_optional() {
        let doc = serde_json::to_value(openapi()).unwrap();
        for path in ["/revoke", "/tokeninfo"] {
            let body = &doc["paths"][path]["post"]["requestBody"];
            assert_eq!(body["required"], false, "{path}");
            let schema = &body["content"]["application/x-www-form-urlencoded"]["schema"];
            assert!(schema["$ref"].is_string(), "{path}: {schema}");
        }
    }

    /// Each scheme on the routes it applies to, and no others: a `{}` alternative marks
    /// credentials that may come in the request instead.
    #[test]
    fn security_schemes_apply_where_they_apply() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["basic"]["scheme"], "basic");
        for name in ["bearer", "githubToken", "googleToken"] {
            assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
        }
        let expected = |route: &str| -> &[&str] {
            match route {
                "POST /login/oauth/access_token" | "POST /token" => &["", "basic"],
                r if r.contains("/applications/") => &["basic"],
                "GET /user" => &["githubToken"],
                "GET /oauth2/v3/userinfo" | "GET /v1/userinfo" => &["googleToken"],
                "GET /tokeninfo" | "POST /tokeninfo" => &["", "googleToken"],
                r if r.starts_with("POST /auth/") => &["bearer"],
                r if r.contains(" /connections") => &["bearer"],
                _ => &[],
            }
        };
        for (route, operation) in operations(&doc) {
            let actual: Vec<String> = operation["security"]
                .as_array()
                .map(|alternatives| {
                    alternatives
                        .iter()
                        .map(|a| a.as_object().unwrap().keys().cloned().collect())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(actual, expected(&route), "{route}");
        }
    }
}
