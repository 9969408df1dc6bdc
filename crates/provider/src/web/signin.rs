//! Signing in with a provider user's password (`refreshd user create --password-stdin`) and
//! signing out.

use std::sync::LazyLock;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use refreshd_core::audit::AUDIT;
use refreshd_core::{Login, password};
use refreshd_store::{AttemptLimits, User};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{Button, ClientAddress, PageError, Posted, Visitor};
use crate::Provider;

/// Password checks at once: each Argon2id verification takes tens of milliseconds and 19 MiB,
/// so a flood of sign-ins waits here instead of exhausting memory.
static VERIFYING: Semaphore = Semaphore::const_new(4);

/// Checked when the login is unknown, so both failures take the same time.
static DECOY: LazyLock<String> = LazyLock::new(|| password::hash("refreshd decoy password"));

/// Sign-in attempts without a success allowed in 15 minutes, counted in the database so every
/// instance shares them. Per login at one address: a guesser locks only their own address out,
/// and the user signs in from theirs. Per address across logins: three logins' worth, so
/// someone mistyping at a couple of accounts is not slowed, while one address spraying a
/// password over many logins gets 30 guesses a quarter-hour instead of dozens a second.
const LIMITS: AttemptLimits = AttemptLimits {
    per_login: 10,
    per_address: 30,
    window_secs: 15 * 60,
};

/// The user `login` names, if `password` is theirs. The attempt is counted before the password
/// is checked, so concurrent guesses cannot slip past `LIMITS`; past them it is refused
/// without a check until the window ends, and a success clears the login's count at that
/// address. Known and unknown logins cost the same queries and the same hash check.
pub async fn verify(
    provider: &Provider,
    client: &ClientAddress,
    login: &str,
    password: &str,
) -> Result<Option<User>, PageError> {
    // A login no user can have is refused before it is looked up or counted, so the attempt
    // counts stay small whatever is posted.
    let Some(login) = Login::parse(login) else {
        return Ok(None);
    };
    let address = client.known()?;
    let now = provider.clock.now();
    let store = &provider.store;
    let Some(counts) = store
        .count_sign_in_attempt(login.as_str(), address, LIMITS, now)
        .await?
    else {
        return Err(PageError::TooManyAttempts);
    };
    let user = store.find_user(&login).await?;
    let stored = store.password_hash(&login).await?;
    let _slot = VERIFYING
        .acquire()
        .await
        .map_err(|_| PageError::Unavailable)?;
    let (password, has_password) = (password.to_owned(), stored.is_some());
    let matches = tokio::task::spawn_blocking(move || {
        password::verify(&password, stored.as_deref().unwrap_or(&DECOY))
    })
    .await
    .map_err(|_| PageError::Unavailable)?;
    let user = user.filter(|_| matches && has_password);
    if user.is_some() {
        store
            .clear_sign_in_attempts(login.as_str(), address, now)
            .await?;
        return Ok(user);
    }
    // Counts are unique while they rise, so each lock is reported once: by the failure that
    // reached the limit.
    if counts.login == LIMITS.per_login {
        locked(login.as_str(), address, "login");
    }
    if counts.address == LIMITS.per_address {
        locked(login.as_str(), address, "address");
    }
    Ok(None)
}

/// The security event of a lock: `scope` is `login` (this login from this address) or
/// `address` (this address, at any login).
fn locked(login: &str, address: &str, scope: &'static str) {
    let login = login.to_lowercase();
    metrics::counter!("refreshd_signin_lockouts_total", "scope" => scope).increment(1);
    tracing::warn!(target: AUDIT, event = "signin.locked", login = %login,
        client = %address, scope = scope, "sign-in locked");
}

/// The sign-in form. `hidden` are fields to carry through (an authorize request's).
pub fn form(
    visitor: &Visitor,
    action: &str,
    login: &str,
    hidden: &[(&str, &str)],
    error: Option<&str>,
) -> Markup {
    html! {
        h1 { "Sign in to refreshd" }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.card method="post" action=(action) {
            input type="hidden" name="csrf" value=(visitor.csrf());
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            label for="username" { "Username" }
            input #username type="text" name="username" value=(login) autocomplete="username"
                autocapitalize="none" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password"
                required;
            button.primary type="submit" name="action" value="sign_in" { "Sign in" }
        }
    }
}

/// Where to go after signing in: a path on refreshd, never another site. Only visible ASCII
/// is kept (browsers drop tabs and newlines from a `Location`, so `/\t/evil` would become
/// `//evil`), with no backslash, and not starting with `//`.
fn local_path(return_to: Option<&str>) -> String {
    match return_to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Deserialize)]
pub struct SignInPage {
    return_to: Option<String>,
}

pub async fn show(visitor: Visitor, Query(query): Query<SignInPage>) -> Response {
    let return_to = local_path(query.return_to.as_deref());
    if visitor.user.is_some() {
        return Redirect::to(&return_to).into_response();
    }
    let body = form(&visitor, "/session", "", &[("return_to", &return_to)], None);
    super::page(&visitor, StatusCode::OK, "Sign in", body)
}

#[derive(Deserialize)]
pub struct SignIn {
    csrf: String,
    username: String,
    password: String,
    return_to: Option<String>,
}

pub async fn sign_in(
    State(provider): State<Provider>,
    mut visitor: Visitor,
    client: ClientAddress,
    Posted(posted): Posted<SignIn>,
) -> Result<Response, PageError> {
    visitor.check_csrf(&posted.csrf)?;
    let return_to = local_path(posted.return_to.as_deref());
    match verify(&provider, &client, &posted.username, &posted.password).await? {
        Some(user) => {
            visitor.sign_in(&provider, user).await?;
            let mut response = Redirect::to(&return_to).into_response();
            visitor.set_cookies(&mut response);
            Ok(response)
        }
        None => {
            let hidden = [("return_to", return_to.as_str())];
            let error = Some(INCORRECT);
            let body = form(&visitor, "/session", &posted.username, &hidden, error);
            Ok(super::page(
                &visitor,
                StatusCode::UNAUTHORIZED,
                "Sign in",
                body,
            ))
        }
    }
}

pub const INCORRECT: &str = "Incorrect username or password.";

pub async fn sign_out(
    State(provider): State<Provider>,
    mut visitor: Visitor,
    Posted(form): Posted<Button>,
) -> Result<Response, PageError> {
    visitor.check_csrf(&form.csrf)?;
    visitor.sign_out(&provider).await?;
    let mut response = Redirect::to("/login").into_response();
    visitor.set_cookies(&mut response);
    Ok(response)
}
