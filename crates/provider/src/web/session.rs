//! Who is visiting: the signed-in user from the session cookie, and the CSRF token every form
//! carries. Signed in, the token is derived from the session's secret; before sign-in it is
//! the value of a pre-session cookie (a double-submit), so sign-in forms cannot be forged
//! either.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use cookie::{Cookie, SameSite};
use refreshd_core::{TokenDigest, random};
use refreshd_store::User;

use super::PageError;
use crate::Provider;

const SESSION_COOKIE: &str = "refreshd_session";
const CSRF_COOKIE: &str = "refreshd_csrf";
/// Behind https the cookies take the `__Host-` prefix: the browser then accepts them only
/// from this host, `Secure`, for the whole path, so a sibling subdomain or a plain-http
/// response cannot plant a session or a CSRF cookie.
const HOST_PREFIX: &str = "__Host-";
/// How long a sign-in lasts.
pub const SESSION_SECS: i64 = 14 * 24 * 3600;

pub struct Visitor {
    pub user: Option<User>,
    /// The session cookie's secret, when it names a live session.
    session: Option<String>,
    pre_session: String,
    /// Cookies to set with the response.
    set: Vec<Cookie<'static>>,
    secure: bool,
}

/// Cookie values refreshd issued: base62, 43 characters. Anything else is not looked up.
fn plausible(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl FromRequestParts<Provider> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, provider: &Provider) -> Result<Self, PageError> {
        let secure = provider.public_url.starts_with("https://");
        let prefix = if secure { HOST_PREFIX } else { "" };
        let (mut session, mut pre_session) = (None, None);
        let cookies = parts.headers.get_all(header::COOKIE).iter();
        for cookie in cookies
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .flatten()
        {
            let value = Some(cookie.value().to_owned()).filter(|v| plausible(v));
            match cookie.name().strip_prefix(prefix) {
                Some(SESSION_COOKIE) => session = value,
                Some(CSRF_COOKIE) => pre_session = value,
                _ => {}
            }
        }
        let user = match &session {
            Some(secret) => {
                let now = provider.clock.now();
                provider
                    .store
                    .find_web_session(TokenDigest::of(secret), now)
                    .await?
            }
            None => None,
        };
        let fresh = pre_session.is_none();
        let mut visitor = Self {
            session: session.filter(|_| user.is_some()),
            user,
            pre_session: pre_session.unwrap_or_else(|| random::base62(43)),
            set: Vec::new(),
            secure,
        };
        if fresh {
            let cookie = visitor.cookie(CSRF_COOKIE, visitor.pre_session.clone(), None);
            visitor.set.push(cookie);
        }
        Ok(visitor)
    }
}

impl Visitor {
    /// The token this visitor's forms must carry.
    pub fn csrf(&self) -> String {
        match &self.session {
            Some(secret) => TokenDigest::of(&format!("csrf:{secret}")).to_hex(),
            None => self.pre_session.clone(),
        }
    }

    /// Compared in constant time (as digests).
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if TokenDigest::of(presented) == TokenDigest::of(&self.csrf()) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// The signed-in user, or a trip to the sign-in page that comes back to `here`.
    pub fn user(&self, here: &str) -> Result<&User, PageError> {
        self.user
            .as_ref()
            .ok_or_else(|| PageError::SignIn(here.to_owned()))
    }

    /// Starts a session for `user`: stored by digest, its secret only in the cookie.
    pub async fn sign_in(&mut self, provider: &Provider, user: User) -> Result<(), PageError> {
        let secret = random::base62(43);
        let now = provider.clock.now();
        let expires = now.plus_secs(SESSION_SECS);
        provider
            .store
            .create_web_session(TokenDigest::of(&secret), user.id, expires, now)
            .await?;
        let cookie = self.cookie(SESSION_COOKIE, secret.clone(), Some(SESSION_SECS));
        self.set.push(cookie);
        self.session = Some(secret);
        self.user = Some(user);
        Ok(())
    }

    /// Ends the session in storage and in the browser.
    pub async fn sign_out(&mut self, provider: &Provider) -> Result<(), PageError> {
        if let Some(secret) = self.session.take() {
            let digest = TokenDigest::of(&secret);
            provider.store.delete_web_session(digest).await?;
        }
        self.user = None;
        let cookie = self.cookie(SESSION_COOKIE, String::new(), Some(0));
        self.set.push(cookie);
        Ok(())
    }

    /// Adds the cookies this visit set to `response`.
    pub fn set_cookies(&self, response: &mut Response) {
        for cookie in &self.set {
            if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
    }

    fn cookie(&self, name: &'static str, value: String, max_age: Option<i64>) -> Cookie<'static> {
        let name = if self.secure {
            format!("{HOST_PREFIX}{name}")
        } else {
            name.to_owned()
        };
        let mut cookie = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure);
        if let Some(secs) = max_age {
            cookie = cookie.max_age(time::Duration::seconds(secs));
        }
        cookie.build()
    }
}
