//! The authorize endpoints, GitHub's `/login/oauth/authorize` and Google's `/o/oauth2/v2/auth`:
//! sign in if needed, approve (or not) on the consent page, then back to the app with a code.
//!
//! An unknown client or a redirect URI the app did not register is shown as an error page and
//! never redirected to; every later problem is sent to the app as an OAuth error, with `state`.
//! The pages post back to the same path, carrying the request's parameters, so one handler
//! sees a request through sign-in and consent. Whatever came in, `decide` picks the next
//! [`Step`] and `render` turns it into a page or a redirect.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use refreshd_core::audit::AUDIT;
use refreshd_core::{Dialect, Scopes};
use refreshd_store::{App, User};
use url::Url;

use super::{ClientAddress, PageError, Posted, Visitor, page, signin};
use crate::Provider;

/// The parameters an authorize request may carry, and that its pages carry along.
const PARAMETERS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "login",
    "allow_signup",
    "code_challenge",
    "code_challenge_method",
    "response_type",
    "access_type",
    "prompt",
    "login_hint",
    "include_granted_scopes",
    "nonce",
];

/// Where each dialect's authorize endpoint is; its pages post back to the same path.
pub const GITHUB_PATH: &str = "/login/oauth/authorize";
pub const GOOGLE_PATH: &str = "/o/oauth2/v2/auth";

fn path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Github => GITHUB_PATH,
        Dialect::Google => GOOGLE_PATH,
    }
}

/// The dialect of the endpoint a request reached (the handlers serve only those two paths).
fn dialect_at(uri: &Uri) -> Dialect {
    if uri.path() == GOOGLE_PATH {
        Dialect::Google
    } else {
        Dialect::Github
    }
}

/// An authorize request, as an app sends it.
pub async fn show(
    State(provider): State<Provider>,
    visitor: Visitor,
    client: ClientAddress,
    uri: Uri,
) -> Result<Response, PageError> {
    let params = parse(uri.query().unwrap_or(""))?;
    let dialect = dialect_at(&uri);
    authorize(&provider, visitor, &client, dialect, params, None).await
}

/// The sign-in or consent page of the flow, posted back.
pub async fn submit(
    State(provider): State<Provider>,
    visitor: Visitor,
    client: ClientAddress,
    uri: Uri,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (params, action) = posted(form)?;
    let dialect = dialect_at(&uri);
    authorize(&provider, visitor, &client, dialect, params, Some(action)).await
}

/// What a page of the flow posted back.
struct Action {
    csrf: String,
    kind: ActionKind,
}

enum ActionKind {
    SignIn { login: String, password: String },
    Authorize,
    Cancel,
}

/// The request's known parameters, in name order (as the pages carry them).
type Params = BTreeMap<String, String>;

/// The known parameters of a query, each at most once (RFC 6749 §3.1).
fn parse(query: &str) -> Result<Params, PageError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| PageError::BadRequest("The authorization request is malformed.".into()))?;
    known(pairs)
}

fn known(pairs: Vec<(String, String)>) -> Result<Params, PageError> {
    let mut params = Params::new();
    for (name, value) in pairs {
        if !PARAMETERS.contains(&name.as_str()) {
            continue;
        }
        if params.insert(name.clone(), value).is_some() {
            return Err(PageError::BadRequest(format!(
                "The parameter {name} was given more than once."
            )));
        }
    }
    Ok(params)
}

/// Splits a posted page into the request's parameters and what the user did.
fn posted(form: Vec<(String, String)>) -> Result<(Params, Action), PageError> {
    let (mut fields, mut request) = (HashMap::new(), Vec::new());
    for (name, value) in form {
        match name.as_str() {
            "csrf" | "action" | "username" | "password" => {
                fields.insert(name, value);
            }
            _ => request.push((name, value)),
        }
    }
    let mut field = |name: &str| {
        fields
            .remove(name)
            .ok_or_else(|| PageError::BadRequest("The form is missing fields.".into()))
    };
    let kind = match field("action")?.as_str() {
        "sign_in" => ActionKind::SignIn {
            login: field("username")?,
            password: field("password")?,
        },
        "authorize" => ActionKind::Authorize,
        "cancel" => ActionKind::Cancel,
        _ => return Err(PageError::BadRequest("Unknown action.".into())),
    };
    let csrf = field("csrf")?;
    Ok((known(request)?, Action { csrf, kind }))
}

/// A request whose client and redirect URI checked out: from here on, problems go to the app.
struct Checked {
    dialect: Dialect,
    app: App,
    redirect: Url,
    params: Params,
}

/// Finds the app and its redirect URI, or says why on an error page.
async fn check_client(
    provider: &Provider,
    dialect: Dialect,
    params: Params,
) -> Result<Checked, PageError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| PageError::BadRequest("The request has no client_id.".into()))?;
    let unknown = || {
        PageError::BadRequest(format!(
            "There is no application with the client_id {client_id:?}."
        ))
    };
    let app = super::app_named(provider, client_id)
        .await?
        .filter(|app| app.kind.dialect() == dialect)
        .ok_or_else(unknown)?;
    let redirect_uri = match (params.get("redirect_uri"), dialect) {
        (Some(given), _) if crate::redirect::allowed(&app, given) => given.as_str(),
        (Some(_), _) => {
            return Err(PageError::BadRequest(
                "The redirect_uri is not one registered for this application, so refreshd will \
                 not send you there."
                    .into(),
            ));
        }
        (None, Dialect::Github) => app
            .redirect_uris()
            .next()
            .ok_or_else(|| PageError::BadRequest("The application has no redirect URI.".into()))?,
        (None, Dialect::Google) => {
            return Err(PageError::BadRequest(
                "Missing required parameter: redirect_uri".into(),
            ));
        }
    };
    let redirect = Url::parse(redirect_uri)
        .map_err(|_| PageError::BadRequest("The redirect_uri is malformed.".into()))?;
    Ok(Checked {
        dialect,
        app,
        redirect,
        params,
    })
}

/// An OAuth error sent to the app (RFC 6749 §4.1.2.1).
struct Refusal {
    error: &'static str,
    description: &'static str,
}

const fn refusal(error: &'static str, description: &'static str) -> Refusal {
    Refusal { error, description }
}

/// What the request asks for, once its parameters are valid.
struct Ask {
    scopes: Scopes,
    challenge: Option<(String, String)>,
    /// Google's `prompt`: `none` and `consent` change the flow.
    prompt_none: bool,
    prompt_consent: bool,
    /// Google's `access_type=offline`: the grant may get a refresh token.
    offline: bool,
    /// Google's OpenID Connect `nonce`, for the code's id_token.
    nonce: Option<String>,
}

fn check_params(request: &Checked) -> Result<Ask, Refusal> {
    let get = |name: &str| request.params.get(name).map(String::as_str);
    if request.dialect == Dialect::Google {
        match get("response_type") {
            Some("code") => {}
            None => {
                return Err(refusal(
                    "invalid_request",
                    "Required parameter is missing: response_type",
                ));
            }
            Some(_) => {
                return Err(refusal(
                    "unsupported_response_type",
                    "Only response_type=code is supported.",
                ));
            }
        }
        if get("scope").is_none_or(|s| s.trim().is_empty()) {
            return Err(refusal(
                "invalid_request",
                "Missing required parameter: scope",
            ));
        }
    }
    let scopes = crate::scopes::requested(get("scope").unwrap_or(""))
        .ok_or_else(|| refusal("invalid_scope", crate::scopes::TOO_MANY))?;
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(challenge), method) => {
            let method = method.unwrap_or("plain");
            let well_formed = refreshd_core::pkce::is_well_formed(challenge);
            if !refreshd_core::pkce::is_supported_method(method) || !well_formed {
                return Err(refusal(
                    "invalid_request",
                    "Unsupported code_challenge_method or malformed code_challenge.",
                ));
            }
            Some((challenge.to_owned(), method.to_owned()))
        }
        (None, Some(_)) => {
            return Err(refusal(
                "invalid_request",
                "code_challenge_method without code_challenge.",
            ));
        }
    };
    if !matches!(get("access_type"), None | Some("online" | "offline")) {
        return Err(refusal("invalid_request", "Invalid access_type."));
    }
    let prompts: Vec<&str> = get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !["none", "consent", "select_account"].contains(p))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return Err(refusal("invalid_request", "Invalid prompt."));
    }
    let nonce = match get("nonce") {
        // An empty nonce is none: it would bind nothing.
        Some(nonce) if request.dialect == Dialect::Google && !nonce.is_empty() => Some(nonce),
        _ => None,
    };
    if nonce.is_some_and(|n| n.len() > crate::MAX_NONCE_LEN) {
        return Err(refusal(
            "invalid_request",
            "The nonce parameter is too long.",
        ));
    }
    Ok(Ask {
        scopes,
        challenge,
        prompt_none: prompts.contains(&"none"),
        prompt_consent: prompts.contains(&"consent"),
        offline: get("access_type") == Some("offline"),
        nonce: nonce.map(str::to_owned),
    })
}

/// Where a request whose client checked out goes next: [`decide`] picks it, [`render`] shows
/// it. Every rule of the flow is in `decide`; every page and redirect in `render`.
enum Step {
    /// The sign-in page, with `login` filled in; `failed`: the one just posted was wrong.
    SignIn { login: String, failed: bool },
    /// The consent page: `user` is asked to approve the app for `scopes`.
    AskConsent { user: User, scopes: Scopes },
    /// Back to the app with a code for `scopes`.
    RedirectWithCode { code: String, scopes: Scopes },
    /// Back to the app with an OAuth error.
    Refuse(Refusal),
}

/// One request of the flow: an error page if its client or redirect URI does not check out,
/// otherwise the step it leads to.
async fn authorize(
    provider: &Provider,
    mut visitor: Visitor,
    client: &ClientAddress,
    dialect: Dialect,
    params: Params,
    action: Option<Action>,
) -> Result<Response, PageError> {
    let request = check_client(provider, dialect, params).await?;
    let step = decide(provider, &mut visitor, client, &request, action).await?;
    Ok(render(&request, &visitor, step))
}

/// The flow's rules: sign in first (checking a posted password), refuse what the app may not
/// ask, ask consent unless the user approved these scopes before, then issue a code. Signing
/// in, recording consent and issuing the code happen here; `visitor` carries the new session.
async fn decide(
    provider: &Provider,
    visitor: &mut Visitor,
    client: &ClientAddress,
    request: &Checked,
    action: Option<Action>,
) -> Result<Step, PageError> {
    if let Some(action) = &action {
        visitor.check_csrf(&action.csrf)?;
    }
    let ask = match check_params(request) {
        Ok(ask) => ask,
        Err(refusal) => return Ok(Step::Refuse(refusal)),
    };
    let user = match (visitor.user.clone(), action.map(|a| a.kind)) {
        (Some(user), kind) => Some((user, kind)),
        (None, Some(ActionKind::SignIn { login, password })) => {
            match signin::verify(provider, client, &login, &password).await? {
                Some(user) => {
                    visitor.sign_in(provider, user.clone()).await?;
                    Some((user, None))
                }
                None => {
                    return Ok(Step::SignIn {
                        login,
                        failed: true,
                    });
                }
            }
        }
        (None, _) => None,
    };
    let Some((user, kind)) = user else {
        if ask.prompt_none {
            let refusal = refusal("login_required", "The user is not signed in.");
            return Ok(Step::Refuse(refusal));
        }
        let suggested = request
            .params
            .get("login")
            .or(request.params.get("login_hint"));
        let login = suggested.cloned().unwrap_or_default();
        return Ok(Step::SignIn {
            login,
            failed: false,
        });
    };
    if let Some(ActionKind::Cancel) = kind {
        let refusal = refusal(
            "access_denied",
            "The user has denied your application access.",
        );
        return Ok(Step::Refuse(refusal));
    }
    let approved = provider
        .store
        .consented_scopes(request.app.id, user.id)
        .await?;
    let earlier = approved.clone().unwrap_or_default();
    // Google hands out a refresh token for offline access only when the user has just
    // approved the consent page, not when it was skipped (its first-authorization rule).
    let approved_now = matches!(kind, Some(ActionKind::Authorize));
    if approved_now {
        let scopes = earlier.union(&ask.scopes);
        let now = provider.clock.now();
        provider
            .store
            .record_consent(request.app.id, user.id, &scopes, now)
            .await?;
        tracing::info!(
            target: AUDIT,
            event = "app.authorized",
            client_id = %request.app.client_id,
            user = %user.login,
            scopes = %scopes.to_github(),
            "the user approved the app"
        );
    } else {
        let covered = approved.is_some_and(|approved| approved.covers(&ask.scopes));
        if !covered || ask.prompt_consent {
            if ask.prompt_none {
                let refusal = refusal(
                    "consent_required",
                    "The user has not approved these scopes.",
                );
                return Ok(Step::Refuse(refusal));
            }
            let scopes = ask.scopes;
            return Ok(Step::AskConsent { user, scopes });
        }
    }
    // Google's include_granted_scopes: the grant covers what was approved before, too.
    let scopes = match request.params.get("include_granted_scopes") {
        Some(yes) if yes == "true" && request.dialect == Dialect::Google => {
            earlier.union(&ask.scopes)
        }
        _ => ask.scopes.clone(),
    };
    let terms = crate::CodeTerms {
        redirect_uri: Some(request.redirect.to_string()),
        code_challenge: ask.challenge.clone(),
        with_refresh: match request.dialect {
            Dialect::Github => true,
            Dialect::Google => ask.offline && approved_now,
        },
        nonce: ask.nonce.clone(),
    };
    let code = crate::issue_code_with(provider, &request.app, &user, &scopes, terms)
        .await
        .map_err(|e| match e {
            crate::IssueError::Store(e) => PageError::from(e),
            other => PageError::BadRequest(other.to_string()),
        })?;
    Ok(Step::RedirectWithCode { code, scopes })
}

/// A step as the browser gets it: a page, or a redirect to the app.
fn render(request: &Checked, visitor: &Visitor, step: Step) -> Response {
    match step {
        Step::SignIn { login, failed } => {
            let (error, status) = if failed {
                (Some(signin::INCORRECT), StatusCode::UNAUTHORIZED)
            } else {
                (None, StatusCode::OK)
            };
            sign_in_page(request, visitor, &login, error, status)
        }
        Step::AskConsent { user, scopes } => consent_page(request, &scopes, visitor, &user),
        Step::RedirectWithCode { code, scopes } => {
            back_to_app(request, visitor, Ok((code, &scopes)))
        }
        Step::Refuse(refusal) => back_to_app(request, visitor, Err(refusal)),
    }
}

/// The redirect to the app: a code (and Google's `scope`), or an error; `state` either way.
fn back_to_app(
    request: &Checked,
    visitor: &Visitor,
    outcome: Result<(String, &Scopes), Refusal>,
) -> Response {
    let mut target = request.redirect.clone();
    {
        let mut query = target.query_pairs_mut();
        match &outcome {
            Ok((code, scopes)) => {
                query.append_pair("code", code);
                if request.dialect == Dialect::Google {
                    query.append_pair("scope", &scopes.to_spaced());
                }
            }
            Err(refusal) => {
                query.append_pair("error", refusal.error);
                if request.dialect == Dialect::Github {
                    query.append_pair("error_description", refusal.description);
                }
            }
        }
        if let Some(state) = request.params.get("state") {
            query.append_pair("state", state);
        }
    }
    let mut response = Redirect::to(target.as_str()).into_response();
    // GitHub answers 302 Found, as clients expect; a form post still becomes a GET.
    *response.status_mut() = StatusCode::FOUND;
    visitor.set_cookies(&mut response);
    response
}

/// The request's parameters, as hidden fields of the flow's forms.
fn carried(request: &Checked) -> Vec<(&str, &str)> {
    let params = request.params.iter();
    params.map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn sign_in_page(
    request: &Checked,
    visitor: &Visitor,
    login: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let action = path(request.dialect);
    let body = html! {
        p.lead { "Sign in to continue to " strong { (request.app.name) } "." }
        (signin::form(visitor, action, login, &carried(request), error))
    };
    page(visitor, status, "Sign in", body)
}

/// What a scope lets an app do, in words, for the scopes people meet most.
pub(super) fn describe(scope: &str) -> &'static str {
    match scope {
        "repo" => "Full control of private repositories",
        "public_repo" => "Access public repositories",
        "user" => "Update all user data",
        "read:user" => "Read all user profile data",
        "user:email" => "Access user email addresses (read-only)",
        "gist" => "Create gists",
        "notifications" => "Access notifications",
        "read:org" => "Read org and team membership",
        "workflow" => "Update GitHub Action workflows",
        "openid" => "Associate you with your personal info",
        "email" => "See your primary email address",
        "profile" => "See your personal info",
        _ => "",
    }
}

fn consent_page(request: &Checked, scopes: &Scopes, visitor: &Visitor, user: &User) -> Response {
    let app = &request.app;
    let destination = request.redirect.origin().ascii_serialization();
    let body = html! {
        div.card.consent {
            h1 { "Authorize " (app.name) }
            p.lead {
                strong { (app.name) } " wants to access your "
                strong { (user.login) } " account."
            }
            @if scopes.as_slice().is_empty() {
                p { "It asks for no scopes: read-only access to public information." }
            } @else {
                ul.scopes {
                    @for scope in scopes.as_slice() {
                        li {
                            code { (scope) }
                            @let words = describe(scope);
                            @if !words.is_empty() { " — " (words) }
                        }
                    }
                }
            }
            form method="post" action=(path(request.dialect)) {
                input type="hidden" name="csrf" value=(visitor.csrf());
                @for (name, value) in carried(request) {
                    input type="hidden" name=(name) value=(value);
                }
                div.actions {
                    button.secondary type="submit" name="action" value="cancel" { "Cancel" }
                    button.primary type="submit" name="action" value="authorize" {
                        "Authorize " (app.name)
                    }
                }
            }
            p.note { "Authorizing will redirect to " code { (destination) } }
        }
    };
    // Never framed: every page carries `X-Frame-Options: DENY` (see `secure_headers`).
    page(
        visitor,
        StatusCode::OK,
        &format!("Authorize {}", app.name),
        body,
    )
}
