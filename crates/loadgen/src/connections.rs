//! The connections scenarios: `GET /connections/{id}/token` served from stored tokens beside
//! `GET /user` (both over many connections, a random one per request), and the refresher
//! draining due connections against a refreshd upstream (seeded here, watched through the
//! broker's metrics).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use refreshd_core::{
    ClientId, Clock, ConnectionId, Lifetimes, Login, Scopes, SystemClock, Timestamp, TokenRole,
    TokenSealer, Upstream,
};
use refreshd_provider::{Provider, TokenAnswer};
use refreshd_store::{App, ConnectionTokens, NewConnection, Store};

use crate::{Args, BoxError, Tally, report};

/// The master key the server under test seals connections under (`REFRESHD_MASTER_KEY`).
fn sealer() -> Result<TokenSealer, BoxError> {
    let hex_key = std::env::var("REFRESHD_MASTER_KEY")
        .map_err(|_| "REFRESHD_MASTER_KEY must be the server's master key")?;
    let bytes: [u8; 32] = hex::decode(hex_key.trim())?
        .try_into()
        .map_err(|_| "REFRESHD_MASTER_KEY must be 64 hex characters")?;
    Ok(TokenSealer::new(&bytes))
}

fn provider_on(store: Arc<dyn Store>, addr: &str) -> Provider {
    Provider {
        store,
        clock: Arc::new(SystemClock),
        lifetimes: Lifetimes::default(),
        public_url: format!("http://{addr}"),
        trusted_proxies: Default::default(),
        oidc: Default::default(),
    }
}

/// `n` fresh token families of one user at `app`, minted a few hundred at a time.
async fn families(
    provider: &Provider,
    app: &App,
    login: &str,
    n: usize,
) -> Result<Vec<TokenAnswer>, BoxError> {
    let now = SystemClock.now();
    let login = Login::parse(login).ok_or("a loadgen login breaks the rules")?;
    let user = match provider.store.find_user(&login).await? {
        Some(user) => user,
        None => {
            let new = refreshd_store::NewUser {
                login,
                name: None,
                email: None,
            };
            provider.store.create_user(new, now).await?
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        let (provider, app) = (provider.clone(), app.clone());
        tasks.spawn(async move {
            refreshd_provider::issue_family(&provider, &app, user.id, &Scopes::parse("repo")).await
        });
        if tasks.len() == 256 || i + 1 == n {
            while let Some(issued) = tasks.join_next().await {
                answers.push(issued??);
            }
        }
    }
    Ok(answers)
}

/// Puts connections `c00000…` holding `answers`' tokens into `store`: the access token
/// valid for `access_secs` (the answer's own lifetime when `None`), due at `due` (never when
/// `None`).
async fn put_connections(
    store: &Arc<dyn Store>,
    answers: &[TokenAnswer],
    access_secs: Option<i64>,
    due: Option<Timestamp>,
) -> Result<Vec<String>, BoxError> {
    let sealer = Arc::new(sealer()?);
    let now = SystemClock.now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = Vec::with_capacity(answers.len());
    for (i, answer) in answers.iter().enumerate() {
        let id_text = format!("c{i:05}");
        let id = ConnectionId::parse(&id_text).ok_or("a loadgen connection id")?;
        ids.push(id_text);
        let expires = |secs: Option<i64>| secs.map(|secs| now.plus_secs(secs));
        let tokens = ConnectionTokens {
            access: sealer.seal(&id, TokenRole::Access, &answer.access_token),
            access_expires_at: expires(access_secs.or(answer.expires_in)),
            refresh: answer
                .refresh_token
                .as_deref()
                .map(|token| sealer.seal(&id, TokenRole::Refresh, token)),
            refresh_expires_at: expires(answer.refresh_token_expires_in),
            scopes: Scopes::parse(&answer.scope),
        };
        let new = NewConnection {
            id,
            upstream: Upstream::Github,
            tokens,
            next_refresh_at: due,
            metadata: None,
        };
        let store = store.clone();
        tasks.spawn(async move { store.put_connection(new, now).await });
        if tasks.len() == 256 || i + 1 == answers.len() {
            while let Some(put) = tasks.join_next().await {
                put??;
            }
        }
    }
    Ok(ids)
}

/// A small xorshift generator: a random connection per request without a syscall each.
struct Xorshift(u64);

impl Xorshift {
    fn seeded() -> Self {
        Self(u64::from_le_bytes(refreshd_core::random::bytes::<8>()) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One keep-alive connection sending `GET`s for `warmup + seconds`: each to a random path of
/// `paths` with the matching bearer token; an answer other than 200 counts as an error.
async fn get_loop(
    addr: String,
    requests: Arc<Vec<(String, String)>>,
    warm_until: Instant,
    end: Instant,
) -> Result<Tally, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut tally = Tally::default();
    let mut random = Xorshift::seeded();
    while Instant::now() < end {
        let (path, bearer) = &requests[random.below(requests.len())];
        let request = hyper::Request::get(path.as_str())
            .header("host", &addr)
            .header("authorization", format!("Bearer {bearer}"))
            .body(Empty::<Bytes>::new())?;
        let started = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let ok = response.status() == hyper::StatusCode::OK;
        response.into_body().collect().await?;
        let elapsed = started.elapsed();
        if !ok {
            tally.errors += 1;
        }
        if started >= warm_until {
            tally
                .latencies_us
                .push(elapsed.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    Ok(tally)
}

/// Runs `get_loop` on `args.connections` connections; prints one JSON line named `endpoint`.
async fn measure(
    args: &Args,
    endpoint: &str,
    requests: Arc<Vec<(String, String)>>,
) -> Result<u64, BoxError> {
    let warm_until = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_until + Duration::from_secs(args.seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        workers.spawn(get_loop(
            args.addr.clone(),
            requests.clone(),
            warm_until,
            end,
        ));
    }
    let mut all = Tally::default();
    while let Some(done) = workers.join_next().await {
        let tally = done?.map_err(|e| e.to_string())?;
        all.latencies_us.extend(tally.latencies_us);
        all.errors += tally.errors;
    }
    report(args, endpoint, &mut all);
    Ok(all.errors)
}

/// `GET /user` with random families' access tokens, then `GET /connections/{id}/token` of
/// random connections whose stored tokens stay valid for a year, `args.rounds` times each.
pub async fn token(args: &Args) -> Result<(), BoxError> {
    let api_key = args
        .api_key
        .clone()
        .ok_or("--api-key: a broker API key of the server under test")?;
    let setup = Instant::now();
    let store = refreshd::store::open(&args.database, args.pool_size).await?;
    let provider = provider_on(store.clone(), &args.addr);
    let app = crate::create_app(&provider).await?;
    let answers = families(&provider, &app, &crate::login(), args.families).await?;
    let ids = put_connections(&store, &answers, Some(365 * 24 * 3600), None).await?;
    eprintln!(
        "set up {} token families and {} connections in {:.1?}",
        answers.len(),
        ids.len(),
        setup.elapsed()
    );
    let users: Vec<(String, String)> = answers
        .iter()
        .map(|answer| ("/user".to_owned(), answer.access_token.clone()))
        .collect();
    let tokens: Vec<(String, String)> = ids
        .iter()
        .map(|id| (format!("/connections/{id}/token"), api_key.clone()))
        .collect();
    let (users, tokens) = (Arc::new(users), Arc::new(tokens));
    let mut errors = 0;
    for _ in 0..args.rounds {
        errors += measure(args, "GET /user", users.clone()).await?;
        errors += measure(args, "GET /connections/{id}/token", tokens.clone()).await?;
    }
    if errors > 0 {
        return Err(format!("{errors} requests failed").into());
    }
    Ok(())
}

/// Mints `args.families` families at the upstream's store (`--upstream-database`, app
/// `--client-id`) and puts as many connections holding them into the broker's store
/// (`--database`), all due now.
pub async fn drain_seed(args: &Args) -> Result<(), BoxError> {
    let (Some(upstream_database), Some(client_id)) = (&args.upstream_database, &args.client_id)
    else {
        return Err("drain-seed needs --upstream-database and --client-id".into());
    };
    let setup = Instant::now();
    let upstream = provider_on(
        refreshd::store::open(upstream_database, args.pool_size).await?,
        &args.addr,
    );
    let client_id = ClientId::parse(client_id).ok_or("--client-id")?;
    let app = upstream
        .store
        .find_app(&client_id)
        .await?
        .ok_or("no app with --client-id at the upstream")?;
    let answers = families(&upstream, &app, &crate::login(), args.families).await?;
    let broker = refreshd::store::open(&args.database, args.pool_size).await?;
    let due = SystemClock.now().plus_secs(-1);
    let ids = put_connections(&broker, &answers, None, Some(due)).await?;
    eprintln!(
        "set up {} connections due now in {:.1?}",
        ids.len(),
        setup.elapsed()
    );
    Ok(())
}

/// Watches the broker's `refreshd_connection_refreshes_total` at `--metrics` until it has
/// grown by `args.families`; prints refreshes/s from the first refresh seen to the last.
pub async fn drain_watch(args: &Args) -> Result<(), BoxError> {
    let metrics = args
        .metrics
        .clone()
        .ok_or("drain-watch needs --metrics HOST:PORT")?;
    let expected = args.families as u64;
    let started = Instant::now();
    let give_up = started + Duration::from_secs(args.seconds.max(600));
    let mut first: Option<Instant> = None;
    let (refreshed, others) = loop {
        let (refreshed, others) = refresh_counts(&metrics).await.unwrap_or((0, 0));
        let now = Instant::now();
        if refreshed + others > 0 && first.is_none() {
            first = Some(now);
        }
        if refreshed + others >= expected {
            break (refreshed, others);
        }
        if now > give_up {
            return Err(format!("only {refreshed} of {expected} refreshed").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seconds = first.map_or(0.0, |first| first.elapsed().as_secs_f64());
    println!(
        "{{\"scenario\":\"drain\",\"refreshed\":{refreshed},\"failed\":{others},\"seconds\":{seconds:.2},\"per_second\":{:.0},\"since_watch_start_s\":{:.2}}}",
        refreshed as f64 / seconds.max(0.001),
        started.elapsed().as_secs_f64()
    );
    if others > 0 {
        return Err(format!("{others} refreshes failed").into());
    }
    Ok(())
}

/// The broker's refresher counts: refreshed, and every other outcome.
async fn refresh_counts(addr: &str) -> Result<(u64, u64), BoxError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/metrics")
        .header("host", addr)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let text = String::from_utf8(response.into_body().collect().await?.to_bytes().to_vec())?;
    let (mut refreshed, mut others) = (0, 0);
    for line in text.lines() {
        if !line.starts_with("refreshd_connection_refreshes_total{") {
            continue;
        }
        let Some(n) = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()) else {
            continue;
        };
        if line.contains("outcome=\"refreshed\"") {
            refreshed += n as u64;
        } else {
            others += n as u64;
        }
    }
    Ok((refreshed, others))
}
