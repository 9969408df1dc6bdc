//! OAuth parameters, gathered from the query string and a form or JSON body.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};

/// Why a request's parameters could not be read; rendered by each endpoint in its own shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("the request body is larger than {} bytes", crate::MAX_BODY_BYTES)]
    TooLarge,
    #[error("the request body could not be read")]
    Unreadable,
    #[error("the request body is not valid UTF-8")]
    NotUtf8,
    #[error("the request body is not valid JSON: {0}")]
    BadJson(String),
    #[error("parameter {0:?} must be a string")]
    NotAString(String),
    #[error("the request body is not a valid form: {0}")]
    BadForm(String),
    #[error(
        "unsupported Content-Type {0:?}; send application/x-www-form-urlencoded or application/json"
    )]
    ContentType(String),
}

impl ParamsError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn from_rejection(rejection: &axum::extract::rejection::BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge
        } else {
            Self::Unreadable
        }
    }
}

/// Parameters by name; a body value overrides a query value of the same name.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, ParamsError> {
        let mut params = HashMap::new();
        if let Some(query) = query {
            params.extend(parse_form(query.as_bytes())?);
        }
        if !body.is_empty() {
            let body_params = match media_type(headers).as_deref() {
                Some("application/json") => parse_json(body)?,
                None | Some("application/x-www-form-urlencoded") => parse_form(body)?,
                Some(other) => return Err(ParamsError::ContentType(other.to_owned())),
            };
            params.extend(body_params);
        }
        Ok(Self(params))
    }
}

/// The media type of `Content-Type`, lowercased and without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    Some(
        text.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

fn parse_form(raw: &[u8]) -> Result<Vec<(String, String)>, ParamsError> {
    std::str::from_utf8(raw).map_err(|_| ParamsError::NotUtf8)?;
    serde_urlencoded::from_bytes(raw).map_err(|e| ParamsError::BadForm(e.to_string()))
}

fn parse_json(raw: &[u8]) -> Result<Vec<(String, String)>, ParamsError> {
    std::str::from_utf8(raw).map_err(|_| ParamsError::NotUtf8)?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(raw).map_err(|e| ParamsError::BadJson(e.to_string()))?;
    object
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(ParamsError::NotAString(k)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn typed(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        h
    }

    #[test]
    fn merges_query_and_body_with_the_body_winning() {
        let body = Bytes::from_static(b"code=body&client_id=c");
        let p = Params::parse(
            Some("code=query&state=s"),
            &typed("application/x-www-form-urlencoded"),
            &body,
        )
        .unwrap();
        assert_eq!(p.get("code"), Some("body"));
        assert_eq!(p.get("state"), Some("s"));
        assert_eq!(p.get("client_id"), Some("c"));
    }

    #[test]
    fn reads_json_bodies_of_strings_only() {
        let json = typed("application/json; charset=utf-8");
        let p = Params::parse(
            None,
            &json,
            &Bytes::from_static(br#"{"code":"x","n":null}"#),
        )
        .unwrap();
        assert_eq!(p.get("code"), Some("x"));
        let err = Params::parse(None, &json, &Bytes::from_static(br#"{"code":1}"#)).unwrap_err();
        assert_eq!(err, ParamsError::NotAString("code".into()));
        assert!(matches!(
            Params::parse(None, &json, &Bytes::from_static(b"{")),
            Err(ParamsError::BadJson(_))
        ));
        assert!(matches!(
            Params::parse(None, &json, &Bytes::from_static(b"[1]")),
            Err(ParamsError::BadJson(_))
        ));
    }

    #[test]
    fn refuses_other_media_and_bad_bytes() {
        let err =
            Params::parse(None, &typed("text/xml"), &Bytes::from_static(b"<a/>")).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let err =
            Params::parse(None, &HeaderMap::new(), &Bytes::from_static(b"code=\xff")).unwrap_err();
        assert_eq!(err, ParamsError::NotUtf8);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::parse(Some("code="), &HeaderMap::new(), &Bytes::new()).unwrap();
        assert_eq!(p.get("code"), None);
    }
}
