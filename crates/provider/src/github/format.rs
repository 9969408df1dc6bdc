//! The token endpoint's three answer formats, chosen by `Accept` as GitHub chooses them.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
    Form,
}

impl Format {
    /// `application/json` → JSON, `application/xml` → XML, anything else → form encoding.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        if accept.contains("application/json") {
            Self::Json
        } else if accept.contains("application/xml") {
            Self::Xml
        } else {
            Self::Form
        }
    }

    /// Renders a flat object with its keys in alphabetical order. No answer may be cached.
    pub fn render(self, status: StatusCode, body: &impl Serialize) -> Response {
        let fields = match serde_json::to_value(body) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        let (content_type, text) = match self {
            Self::Json => (
                "application/json; charset=utf-8",
                Value::Object(fields).to_string(),
            ),
            Self::Xml => ("application/xml; charset=utf-8", to_xml(&fields)),
            Self::Form => (
                "application/x-www-form-urlencoded; charset=utf-8",
                to_form(&fields),
            ),
        };
        let mut response = (status, text).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn to_form(fields: &Map<String, Value>) -> String {
    let pairs: Vec<(&str, String)> = fields.iter().map(|(k, v)| (k.as_str(), plain(v))).collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn to_xml(fields: &Map<String, Value>) -> String {
    let mut out = String::from("<OAuth>");
    for (key, value) in fields {
        out.push_str(&format!("<{key}>{}</{key}>", escape_xml(&plain(value))));
    }
    out.push_str("</OAuth>");
    out
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn negotiates_like_github() {
        assert_eq!(Format::negotiate(&accept("application/json")), Format::Json);
        assert_eq!(
            Format::negotiate(&accept("Application/JSON; q=1")),
            Format::Json
        );
        assert_eq!(Format::negotiate(&accept("application/xml")), Format::Xml);
        assert_eq!(Format::negotiate(&accept("*/*")), Format::Form);
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Form);
    }

    #[test]
    fn form_and_xml_keep_alphabetical_order_and_escape() {
        let body = serde_json::json!({"scope": "a,b", "access_token": "x&y", "expires_in": 5});
        let Value::Object(fields) = body else {
            unreachable!()
        };
        assert_eq!(
            to_form(&fields),
            "access_token=x%26y&expires_in=5&scope=a%2Cb"
        );
        assert_eq!(
            to_xml(&fields),
            "<OAuth><access_token>x&amp;y</access_token><expires_in>5</expires_in><scope>a,b</scope></OAuth>"
        );
    }
}
