//! The admin commands: each opens the database, does one thing, and prints text or JSON.

mod webhooks;
pub use webhooks::webhook;

use std::sync::Arc;

use refreshd_core::{AppKind, ClientId, Login, Scopes, SystemClock, TokenDigest};
use refreshd_provider::Provider;
use refreshd_provider::apps::{self, Registration, Via};
use refreshd_store::rules::{KeyState, key_state};
use refreshd_store::{App, NewUser, SigningKey, Store};
use serde_json::{Value, json};

use crate::Config;
use crate::cli::{
    AppCommand, CodeCommand, DialectArg, KeyCommand, Kind, SigningKeyCommand, TokenCommand,
    UserCommand,
};
use crate::server::BoxError;

async fn provider(config: &Config) -> Result<Provider, BoxError> {
    Ok(Provider {
        store: config.open_store().await?,
        clock: Arc::new(SystemClock),
        lifetimes: config.lifetimes,
        public_url: config.public_url(),
        trusted_proxies: Default::default(),
        oidc: Default::default(),
    })
}

pub(crate) fn print(json: bool, value: &Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

fn app_json(app: &App) -> Value {
    json!({
        "client_id": app.client_id.as_str(),
        "name": app.name,
        "kind": app.kind.as_str(),
        "dialect": app.kind.dialect().as_str(),
        "redirect_uri": app.redirect_uris().next(),
        "redirect_uris": app.redirect_uris().collect::<Vec<_>>(),
        "expiring_tokens": app.expiring_tokens,
        "device_flow": app.device_flow,
        "owner_id": app.owner_id,
    })
}

fn app_text(app: &App) -> String {
    let expiring = if app.expiring_tokens { "on" } else { "off" };
    format!(
        "{}  {}  {}  expiring-tokens={expiring}  {}",
        app.client_id,
        app.kind.as_str(),
        app.name,
        app.redirect_uris().collect::<Vec<_>>().join(" ")
    )
}

async fn find_app(store: &Arc<dyn Store>, client_id: &str) -> Result<App, BoxError> {
    let id =
        ClientId::parse(client_id).ok_or_else(|| format!("{client_id:?} is not a client id"))?;
    Ok(store
        .find_app(&id)
        .await?
        .ok_or_else(|| format!("no app with client_id {client_id}"))?)
}

pub async fn migrate(config: &Config, json: bool) -> Result<(), BoxError> {
    config.open_store().await?;
    print(json, &json!({ "migrated": true }), || {
        "database is up to date".into()
    });
    Ok(())
}

pub async fn app(config: &Config, command: AppCommand) -> Result<(), BoxError> {
    let p = provider(config).await?;
    let now = p.clock.now();
    match command {
        AppCommand::Create {
            name,
            redirect_uri,
            owner,
            kind,
            dialect,
            expiring_tokens,
            device_flow,
            output,
        } => {
            let owner = match owner {
                Some(login) => Some(find_user(&p, &login).await?),
                None => None,
            };
            let kind = match (dialect, kind) {
                (DialectArg::Github, None | Some(Kind::GithubApp)) => AppKind::GithubApp,
                (DialectArg::Github, Some(Kind::OauthApp)) => AppKind::OAuthApp,
                (DialectArg::Google, None) => AppKind::GoogleClient,
                (DialectArg::Google, Some(_)) => {
                    return Err("--kind applies to GitHub-dialect apps only".into());
                }
            };
            let registration = Registration {
                name,
                kind,
                redirect_uris: redirect_uri.join("\n"),
                expiring_tokens: expiring_tokens.is_on(),
                device_flow: device_flow.is_on(),
                owner,
            };
            let (app, secret) = apps::register_app(&p, registration).await?;
            let mut value = app_json(&app);
            value["client_secret"] = json!(secret.expose());
            print(output.json, &value, || {
                format!(
                    "client_id:     {}\nclient_secret: {}\n(the secret is shown only now; store it safely)",
                    app.client_id,
                    secret.expose()
                )
            });
        }
        AppCommand::List(output) => {
            let apps = p.store.list_apps().await?;
            let value = Value::Array(apps.iter().map(app_json).collect());
            print(output.json, &value, || {
                apps.iter().map(app_text).collect::<Vec<_>>().join("\n")
            });
        }
        AppCommand::Update {
            client_id,
            expiring_tokens,
            device_flow,
            owner,
            output,
        } => {
            let mut app = find_app(&p.store, &client_id).await?;
            // The owner is looked up first, so an unknown login changes nothing.
            let owner_id = match owner {
                Some(login) => Some(find_user(&p, &login).await?.id),
                None => None,
            };
            // Refused for a Google-dialect app before the owner changes.
            if let Some(expiring) = expiring_tokens {
                app = apps::set_expiring_tokens(&p, &app, expiring.is_on()).await?;
            }
            if let Some(enabled) = device_flow {
                app = apps::set_device_flow(&p, &app, enabled.is_on(), Via::Cli).await?;
            }
            if let Some(owner_id) = owner_id {
                app = p
                    .store
                    .set_owner(&app.client_id, owner_id, now)
                    .await?
                    .ok_or("the app was deleted meanwhile")?;
            }
            print(output.json, &app_json(&app), || app_text(&app));
        }
        AppCommand::ResetSecret { client_id, output } => {
            let app = find_app(&p.store, &client_id).await?;
            let (app, secret) = apps::reset_secret(&p, &app, Via::Cli).await?;
            let id = app.client_id;
            let value = json!({ "client_id": id.as_str(), "client_secret": secret.expose() });
            print(output.json, &value, || {
                format!(
                    "client_secret: {}\n(the old secret no longer works)",
                    secret.expose()
                )
            });
        }
    }
    Ok(())
}

pub async fn user(config: &Config, command: UserCommand) -> Result<(), BoxError> {
    let p = provider(config).await?;
    match command {
        UserCommand::Create {
            login,
            name,
            email,
            password_stdin,
            output,
        } => {
            let new = (login, name, email);
            create_user(&p, new, password_stdin, output.json).await
        }
        UserCommand::SetPassword { login, output } => {
            let hash = read_password()?;
            let known = match Login::parse(&login) {
                Some(valid) => p.store.set_password(&valid, &hash, p.clock.now()).await?,
                None => false,
            };
            if !known {
                return Err(format!("no user with login {login}").into());
            }
            print(
                output.json,
                &json!({ "login": login, "password_set": true }),
                || format!("set the password of {login}; their sessions have ended"),
            );
            Ok(())
        }
    }
}

async fn create_user(
    p: &Provider,
    (login, name, email): (String, Option<String>, Option<String>),
    password_stdin: bool,
    json: bool,
) -> Result<(), BoxError> {
    let Some(login) = Login::parse(&login) else {
        return Err(
            format!("{login:?} is not a valid login: up to 39 letters, digits or hyphens").into(),
        );
    };
    let new = NewUser { login, name, email };
    // Read and checked before anything is stored, so a bad password leaves no user behind.
    let password_hash = password_stdin.then(read_password).transpose()?;
    let user = p.store.create_user(new, p.clock.now()).await?;
    if let Some(hash) = password_hash {
        p.store
            .set_password(&user.login, &hash, p.clock.now())
            .await?;
    }
    let value =
        json!({ "id": user.id, "login": user.login, "name": user.name, "email": user.email });
    print(json, &value, || {
        format!("created user {} (id {})", user.login, user.id)
    });
    Ok(())
}

/// Most characters a password may have; Argon2id takes any length, this bounds the work.
const MAX_PASSWORD_CHARS: usize = 1024;

/// The first line of standard input, checked and hashed (Argon2id); the password itself is
/// never stored, printed or logged.
fn read_password() -> Result<String, BoxError> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    let chars = password.chars().count();
    if !(8..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(format!(
            "the password must have 8 to {MAX_PASSWORD_CHARS} characters, not {chars}"
        )
        .into());
    }
    Ok(refreshd_core::password::hash(password))
}

async fn find_user(p: &Provider, login: &str) -> Result<refreshd_store::User, BoxError> {
    let found = match Login::parse(login) {
        Some(valid) => p.store.find_user(&valid).await?,
        None => None,
    };
    Ok(found.ok_or_else(|| format!("no user with login {login}"))?)
}

pub async fn token(config: &Config, command: TokenCommand) -> Result<(), BoxError> {
    let p = provider(config).await?;
    let TokenCommand::Issue {
        client_id,
        login,
        scope,
        output: _,
    } = command;
    let app = find_app(&p.store, &client_id).await?;
    let user = find_user(&p, &login).await?;
    let answer = refreshd_provider::issue_family(&p, &app, user.id, &Scopes::parse(&scope)).await?;
    // Always JSON: exactly what the token endpoint answers with `Accept: application/json`.
    println!("{}", serde_json::to_string(&answer)?);
    Ok(())
}

pub async fn code(config: &Config, command: CodeCommand) -> Result<(), BoxError> {
    let p = provider(config).await?;
    let CodeCommand::Issue {
        client_id,
        login,
        scope,
        redirect_uri,
        code_challenge,
        code_challenge_method,
        nonce,
        output,
    } = command;
    if nonce
        .as_ref()
        .is_some_and(|n| n.len() > refreshd_provider::MAX_NONCE_LEN)
    {
        return Err(format!(
            "the nonce may have at most {} bytes",
            refreshd_provider::MAX_NONCE_LEN
        )
        .into());
    }
    let app = find_app(&p.store, &client_id).await?;
    let user = find_user(&p, &login).await?;
    let challenge = code_challenge.zip(code_challenge_method);
    let scopes = Scopes::parse(&scope);
    let terms = refreshd_provider::CodeTerms {
        redirect_uri,
        code_challenge: challenge,
        with_refresh: true,
        nonce,
    };
    let code = refreshd_provider::issue_code_with(&p, &app, &user, &scopes, terms).await?;
    let value = json!({ "code": code, "expires_in": p.lifetimes.code_secs });
    print(output.json, &value, || code.clone());
    Ok(())
}

pub async fn key(config: &Config, command: KeyCommand) -> Result<(), BoxError> {
    let p = provider(config).await?;
    let now = p.clock.now();
    match command {
        KeyCommand::Create { name, output } => {
            let key = refreshd_broker::new_api_key();
            let last_four = &key[key.len() - 4..];
            let created = p
                .store
                .create_api_key(&name, TokenDigest::of(&key), last_four, now)
                .await?;
            let value = json!({ "id": created.id, "name": created.name, "key": key });
            print(output.json, &value, || {
                format!(
                    "key: {key}\n(id {}; the key is shown only now; store it safely)",
                    created.id
                )
            });
        }
        KeyCommand::List(output) => {
            let keys = p.store.list_api_keys().await?;
            let value: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({ "id": k.id, "name": k.name, "last_four": k.last_four,
                            "revoked": k.revoked_at.is_some() })
                })
                .collect();
            print(output.json, &Value::Array(value), || {
                keys.iter()
                    .map(|k| {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "live"
                        };
                        format!("{}  {}  …{}  {state}", k.id, k.name, k.last_four)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeyCommand::Revoke { id, output } => {
            if !p.store.revoke_api_key(id, now).await? {
                return Err(format!("no live API key with id {id}").into());
            }
            print(output.json, &json!({ "id": id, "revoked": true }), || {
                format!("revoked key {id}")
            });
        }
    }
    Ok(())
}

fn signing_key_json(key: &SigningKey, state: KeyState) -> Value {
    json!({
        "kid": key.kid,
        "generation": key.generation,
        "created_at": key.created_at.secs(),
        "signs_from": key.signs_from.secs(),
        "state": state.as_str(),
        "published": state.published(),
        "current": state == KeyState::Current,
    })
}

fn signing_key_text(key: &SigningKey, state: KeyState) -> String {
    format!(
        "{}  generation {}  created {}  signs from {}  {}",
        key.kid,
        key.generation,
        key.created_at.secs(),
        key.signs_from.secs(),
        state.as_str()
    )
}

/// `refreshd signing-key rotate|list`. Rotation needs the master key the keys are sealed
/// under (never generates one).
pub async fn signing_key(config: &Config, command: SigningKeyCommand) -> Result<(), BoxError> {
    let p = provider(config).await?;
    let now = p.clock.now();
    let state = |key: &SigningKey, keys: &[SigningKey]| {
        key_state(
            key,
            keys,
            now,
            refreshd_provider::oidc::id_token::ID_TOKEN_SECS,
        )
    };
    match command {
        SigningKeyCommand::Rotate {
            now: immediately,
            output,
        } => {
            let master_key = refreshd_broker::MasterKey::load(
                config.master_key.as_ref(),
                &config.master_key_path(),
                false,
            )?;
            let sealer = refreshd_core::KeySealer::new(master_key.bytes());
            let key = refreshd_provider::oidc::rotate_signing_key(
                p.store.as_ref(),
                &sealer,
                now,
                immediately,
            )
            .await?;
            let keys = p.store.signing_keys().await?;
            let value = signing_key_json(&key, state(&key, &keys));
            print(output.json, &value, || {
                signing_key_text(&key, state(&key, &keys))
            });
        }
        SigningKeyCommand::List(output) => {
            let keys = p.store.signing_keys().await?;
            let value: Vec<Value> = keys
                .iter()
                .map(|k| signing_key_json(k, state(k, &keys)))
                .collect();
            print(output.json, &Value::Array(value), || {
                keys.iter()
                    .map(|k| signing_key_text(k, state(k, &keys)))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
