//! The device flow's page, GitHub's `/login/device`: the user types the code their device
//! shows (any case, dash or not), signs in if needed, sees the app and its scopes, and
//! approves or cancels; the device's next poll learns which.
//!
//! Codes are looked up only for a signed-in user, and every lookup and decision is counted
//! with the sign-in attempts (see [`LIMITS`]), so user codes cannot be guessed at speed.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use refreshd_core::UserCode;
use refreshd_core::audit::AUDIT;
use refreshd_store::{AttemptLimits, PendingDevice, User};
use serde::Deserialize;

use super::{ClientAddress, PageError, Posted, Visitor, authorize, page, signin};
use crate::Provider;

/// Where the page is (`verification_uri`); the code form and the sign-in form post here.
pub const PATH: &str = "/login/device";
/// The same page at Google's name (`verification_url`); its forms post to [`PATH`].
pub const GOOGLE_PATH: &str = crate::google::device::VERIFICATION_PATH;
/// Where the approve and cancel buttons post.
pub const DECIDE_PATH: &str = "/login/device/confirm";

/// Code lookups and decisions allowed in 15 minutes without a success, counted in the
/// database with the sign-in attempts but in buckets of their own (the user's id under the
/// address `device:{address}`), so guessing codes never locks anyone out of signing in. Per
/// user at one address 10, per address 20: at 20 guesses a quarter-hour against a space of
/// 20^8 codes, a guesser's chance of meeting any live code stays negligible.
const LIMITS: AttemptLimits = AttemptLimits {
    per_login: 10,
    per_address: 20,
    window_secs: 15 * 60,
};

/// Lookups by one user from every address together in 15 minutes, found or not (never
/// cleared), so that moving between addresses does not buy more guesses.
const ACCOUNT_LIMITS: AttemptLimits = AttemptLimits {
    per_login: 30,
    per_address: 30,
    window_secs: 15 * 60,
};

const UNKNOWN: &str = "This code is not valid, or it has expired or been used. \
     Check the code on your device and try again.";

#[derive(Deserialize)]
pub struct Prefill {
    user_code: Option<String>,
}

/// The code form, filled in from `?user_code=` when a device links here with it.
pub async fn show(visitor: Visitor, Query(query): Query<Prefill>) -> Response {
    let typed = query.user_code.unwrap_or_default();
    let shown = UserCode::normalize(&typed).map_or(String::new(), |code| code.display());
    code_form(&visitor, &shown, None, StatusCode::OK)
}

/// The code form or the sign-in form it led to, posted.
#[derive(Deserialize)]
pub struct Entered {
    csrf: String,
    user_code: String,
    action: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// A code entered: sign in first (the sign-in form carries the code along), then the code is
/// looked up and, if pending, the app asks for approval.
pub async fn enter(
    State(provider): State<Provider>,
    mut visitor: Visitor,
    client: ClientAddress,
    Posted(form): Posted<Entered>,
) -> Result<Response, PageError> {
    visitor.check_csrf(&form.csrf)?;
    if visitor.user.is_none() {
        let (Some("sign_in"), Some(login), Some(password)) = (
            form.action.as_deref(),
            form.username.as_deref(),
            form.password.as_deref(),
        ) else {
            return Ok(sign_in_page(&visitor, &form.user_code, "", None));
        };
        match signin::verify(&provider, &client, login, password).await? {
            Some(user) => visitor.sign_in(&provider, user).await?,
            None => {
                let error = Some(signin::INCORRECT);
                return Ok(sign_in_page(&visitor, &form.user_code, login, error));
            }
        }
    }
    let user = visitor.user(PATH)?.clone();
    match look_up(&provider, &client, &user, &form.user_code).await? {
        Some((code, pending)) => Ok(approval_page(&visitor, &user, &code, &pending)),
        None => Ok(code_form(
            &visitor,
            &form.user_code,
            Some(UNKNOWN),
            StatusCode::BAD_REQUEST,
        )),
    }
}

#[derive(Deserialize)]
pub struct Decided {
    csrf: String,
    user_code: String,
    action: String,
}

/// Approve or cancel, posted from the approval page.
pub async fn decide(
    State(provider): State<Provider>,
    visitor: Visitor,
    client: ClientAddress,
    Posted(form): Posted<Decided>,
) -> Result<Response, PageError> {
    let user = visitor.user(PATH)?.clone();
    visitor.check_csrf(&form.csrf)?;
    let approve = match form.action.as_str() {
        "authorize" => true,
        "cancel" => false,
        _ => return Err(PageError::BadRequest("Unknown action.".into())),
    };
    // Counted as a lookup: a decision names a code too, and must not be a way to guess one.
    let Some((code, pending)) = look_up(&provider, &client, &user, &form.user_code).await? else {
        return Ok(code_form(
            &visitor,
            "",
            Some(UNKNOWN),
            StatusCode::BAD_REQUEST,
        ));
    };
    let now = provider.clock.now();
    let store = &provider.store;
    if !store
        .decide_device_code(code.digest(), user.id, approve, now)
        .await?
    {
        // Decided elsewhere, or expired, since the lookup.
        return Ok(code_form(
            &visitor,
            "",
            Some(UNKNOWN),
            StatusCode::BAD_REQUEST,
        ));
    }
    let app = &pending.app;
    tracing::info!(
        target: AUDIT,
        event = if approve { "device.authorized" } else { "device.denied" },
        client_id = %app.client_id,
        user = %user.login,
        scopes = %pending.scopes.to_github(),
        "the user decided a device authorization"
    );
    let body = html! {
        div.card.consent {
            @if approve {
                h1 { "Device authorized" }
                p.lead { strong { (app.name) } " can now access your " strong { (user.login) }
                    " account. You can return to your device." }
            } @else {
                h1 { "Authorization cancelled" }
                p.lead { strong { (app.name) } " was not given access. You can close this page." }
            }
        }
    };
    let title = if approve {
        "Device authorized"
    } else {
        "Authorization cancelled"
    };
    Ok(page(&visitor, StatusCode::OK, title, body))
}

/// The pending authorization `typed` names, counting the lookup against [`LIMITS`] first;
/// a found code clears the user's count at that address, as a sign-in does.
async fn look_up(
    provider: &Provider,
    client: &ClientAddress,
    user: &User,
    typed: &str,
) -> Result<Option<(UserCode, PendingDevice)>, PageError> {
    let bucket = format!("device:{}", client.known()?);
    let key = format!("user:{}", user.id);
    let now = provider.clock.now();
    let store = &provider.store;
    let Some(counts) = store
        .count_sign_in_attempt(&key, &bucket, LIMITS, now)
        .await?
    else {
        return Err(PageError::TooManyCodes);
    };
    let account = format!("device-user:{}", user.id);
    let Some(on_account) = store
        .count_sign_in_attempt(&key, &account, ACCOUNT_LIMITS, now)
        .await?
    else {
        return Err(PageError::TooManyCodes);
    };
    if on_account.address == ACCOUNT_LIMITS.per_address {
        tracing::warn!(target: AUDIT, event = "device.locked", user = %user.login,
            client = %account, "device code lookups locked for the account");
    }
    let found = match UserCode::normalize(typed) {
        Some(code) => store
            .pending_device_code(code.digest(), now)
            .await?
            // An app whose device flow was switched off since: its device could never redeem.
            .filter(|pending| pending.app.device_flow)
            .map(|pending| (code, pending)),
        None => None,
    };
    if found.is_some() {
        store.clear_sign_in_attempts(&key, &bucket, now).await?;
    } else if counts.login == LIMITS.per_login || counts.address == LIMITS.per_address {
        tracing::warn!(target: AUDIT, event = "device.locked", user = %user.login,
            client = %bucket, "device code lookups locked");
    }
    Ok(found)
}

fn code_form(visitor: &Visitor, typed: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        h1 { "Device activation" }
        p.lead { "Enter the code displayed on your device." }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.card method="post" action=(PATH) {
            input type="hidden" name="csrf" value=(visitor.csrf());
            label for="user_code" { "Code" }
            input #user_code type="text" name="user_code" value=(typed) placeholder="XXXX-XXXX"
                autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="20"
                required autofocus;
            button.primary type="submit" name="action" value="continue" { "Continue" }
        }
    };
    page(visitor, status, "Device activation", body)
}

fn sign_in_page(visitor: &Visitor, typed: &str, login: &str, error: Option<&str>) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let body = html! {
        p.lead { "Sign in to activate your device." }
        (signin::form(visitor, PATH, login, &[("user_code", typed)], error))
    };
    page(visitor, status, "Sign in", body)
}

fn approval_page(
    visitor: &Visitor,
    user: &User,
    code: &UserCode,
    pending: &PendingDevice,
) -> Response {
    let app = &pending.app;
    let scopes = &pending.scopes;
    let body = html! {
        div.card.consent {
            h1 { "Authorize " (app.name) }
            p.lead {
                strong { (app.name) } " wants to access your "
                strong { (user.login) } " account from a device."
            }
            p { "Code " code { (code.display()) } }
            @if scopes.as_slice().is_empty() {
                p { "It asks for no scopes: read-only access to public information." }
            } @else {
                ul.scopes {
                    @for scope in scopes.as_slice() {
                        li {
                            code { (scope) }
                            @let words = authorize::describe(scope);
                            @if !words.is_empty() { " — " (words) }
                        }
                    }
                }
            }
            form method="post" action=(DECIDE_PATH) {
                input type="hidden" name="csrf" value=(visitor.csrf());
                input type="hidden" name="user_code" value=(code.display());
                div.actions {
                    button.secondary type="submit" name="action" value="cancel" { "Cancel" }
                    button.primary type="submit" name="action" value="authorize" {
                        "Authorize " (app.name)
                    }
                }
            }
            p.note { "Authorize only if you started this sign-in on your own device." }
        }
    };
    page(
        visitor,
        StatusCode::OK,
        &format!("Authorize {}", app.name),
        body,
    )
}
