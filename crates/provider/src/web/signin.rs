//! Signing in with a provider user's password (`refreshd user create --password-stdin`) and
//! signing out.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use refreshd_core::{Timestamp, password};
use refreshd_store::User;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{Button, PageError, Posted, Visitor};
use crate::Provider;

/// Password checks at once: each Argon2id verification takes tens of milliseconds and 19 MiB,
/// so a flood of sign-ins waits here instead of exhausting memory.
static VERIFYING: Semaphore = Semaphore::const_new(4);

/// Checked when the login is unknown, so both failures take the same time.
static DECOY: LazyLock<String> = LazyLock::new(|| password::hash("refreshd decoy password"));

/// Sign-in attempts allowed per login in a window without one succeeding, on each instance.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// Logins with attempts remembered at most.
const REMEMBERED_LOGINS: usize = 10_000;

/// Recent attempts that have not (yet) succeeded, by lowercased login: (start of the window,
/// count).
static ATTEMPTS: LazyLock<Mutex<HashMap<String, (Timestamp, u32)>>> =
    LazyLock::new(Default::default);

/// Counts an attempt at `login` before its password is checked, so concurrent attempts
/// cannot slip past the limit; `false` when the login has used up its window.
fn take_attempt(login: &str, now: Timestamp) -> bool {
    let mut attempts = ATTEMPTS.lock().unwrap_or_else(PoisonError::into_inner);
    let ended = |since: &Timestamp| now.secs() >= since.secs() + FAILURE_WINDOW_SECS;
    if attempts.len() >= REMEMBERED_LOGINS {
        attempts.retain(|_, (since, _)| !ended(since));
        // Still full: forget the logins with the fewest attempts first, so a flood of
        // one-off logins cannot wipe the count of one being guessed at.
        while attempts.len() >= REMEMBERED_LOGINS {
            let fewest = attempts.values().map(|(_, n)| *n).min().unwrap_or(0);
            attempts.retain(|_, (_, n)| *n > fewest);
        }
    }
    let entry = attempts.entry(login.to_lowercase()).or_insert((now, 0));
    if ended(&entry.0) {
        *entry = (now, 0);
    }
    if entry.1 >= MAX_FAILURES {
        return false;
    }
    entry.1 += 1;
    true
}

/// A successful sign-in clears the login's count.
fn succeeded(login: &str) {
    let mut attempts = ATTEMPTS.lock().unwrap_or_else(PoisonError::into_inner);
    attempts.remove(&login.to_lowercase());
}

/// The user `login` names, if `password` is theirs. After `MAX_FAILURES` attempts for a login
/// in `FAILURE_WINDOW_SECS` without a success, it is refused without a check until the
/// window ends. Known and unknown logins cost the same queries and the same hash check.
pub async fn verify(
    provider: &Provider,
    login: &str,
    password: &str,
) -> Result<Option<User>, PageError> {
    // A login no user can have is refused before it is looked up or remembered, so the
    // attempt counts stay small whatever is posted.
    if !refreshd_core::is_valid_login(login) {
        return Ok(None);
    }
    if !take_attempt(login, provider.clock.now()) {
        return Err(PageError::TooManyAttempts);
    }
    let user = provider.store.find_user(login).await?;
    let stored = provider.store.password_hash(login).await?;
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
        succeeded(login);
    }
    Ok(user)
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
    Posted(posted): Posted<SignIn>,
) -> Result<Response, PageError> {
    visitor.check_csrf(&posted.csrf)?;
    let return_to = local_path(posted.return_to.as_deref());
    match verify(&provider, &posted.username, &posted.password).await? {
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
