//! `refreshd-loadgen`: sets up token families in refreshd's database, then refreshes them
//! through the real HTTP endpoint from many keep-alive connections, and reports throughput
//! and latency percentiles. Each request rotates a different family, as real clients would.
//! Other scenarios (`--scenario`, in `connections.rs`) measure the connections API and the
//! connection refresher.

mod connections;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use refreshd_core::{AppKind, ClientId, ClientSecret, Lifetimes, Login, Scopes, SystemClock};
use refreshd_provider::Provider;
use refreshd_store::{NewApp, NewUser};

type BoxError = Box<dyn std::error::Error>;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Refresh grants at `POST /login/oauth/access_token`, a different family each.
    Refresh,
    /// `GET /user` and `GET /connections/{id}/token` (served from stored tokens), a random
    /// family or connection per request (needs `--api-key` and `REFRESHD_MASTER_KEY`).
    Token,
    /// Mint `--families` families at an upstream refreshd's store and put as many connections,
    /// all due, into the broker's (`--database`).
    DrainSeed,
    /// Watch the broker's metrics until its refresher has refreshed `--families`
    /// connections; report refreshes/s.
    DrainWatch,
}

/// Whose token endpoint the `refresh` scenario drives.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dialect {
    /// `POST /login/oauth/access_token`: each refresh rotates the refresh token.
    Github,
    /// `POST /token`: the refresh token stays; with `openid` in `--scope` each answer carries
    /// a freshly signed id_token.
    Google,
}

impl Dialect {
    fn kind(self) -> AppKind {
        match self {
            Dialect::Github => AppKind::GithubApp,
            Dialect::Google => AppKind::GoogleClient,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Dialect::Github => "/login/oauth/access_token",
            Dialect::Google => "/token",
        }
    }
}

#[derive(Parser)]
#[command(
    about = "Refresh distinct token families through refreshd's HTTP endpoint and report grants/s and latency"
)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::Refresh)]
    scenario: Scenario,
    /// `refresh`: the dialect whose token endpoint is driven.
    #[arg(long, value_enum, default_value_t = Dialect::Github)]
    dialect: Dialect,
    /// `refresh`: the families' scopes.
    #[arg(long, default_value = "repo")]
    scope: String,
    /// The database the server under test uses (fixtures are written to it directly).
    #[arg(long)]
    database: String,
    /// PostgreSQL connections for setting up fixtures.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// The server under test.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Token families to set up; each request rotates one, round robin per connection.
    #[arg(long, default_value_t = 20_000)]
    families: usize,
    /// Seconds of warm-up, not counted.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// `token`: how many times each endpoint is measured, alternating.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// `token`: a broker API key of the server under test.
    #[arg(long)]
    api_key: Option<String>,
    /// `drain-seed`: the upstream refreshd's database.
    #[arg(long)]
    upstream_database: Option<String>,
    /// `drain-seed`: the client id of the upstream's GitHub app the broker uses.
    #[arg(long)]
    client_id: Option<String>,
    /// `drain-watch`: the broker's metrics listener (HOST:PORT).
    #[arg(long)]
    metrics: Option<String>,
}

/// A GitHub App for the load generator's families.
async fn create_app(provider: &Provider) -> Result<refreshd_store::App, BoxError> {
    let now = refreshd_core::Clock::now(&SystemClock);
    let secret = ClientSecret::generate(AppKind::GithubApp);
    let new = NewApp {
        client_id: ClientId::generate(AppKind::GithubApp),
        name: "loadgen".into(),
        kind: AppKind::GithubApp,
        redirect_uri: "http://localhost/cb".into(),
        secret_digest: secret.digest(),
        expiring_tokens: true,
        device_flow: false,
        owner_id: None,
    };
    Ok(provider.store.create_app(new, now).await?)
}

/// A login of this run's own.
fn login() -> String {
    format!("loadgen-{}", refreshd_core::Clock::now(&SystemClock).secs())
}

struct Fixture {
    dialect: Dialect,
    /// Whether the families' scopes have `openid` (Google's answers then carry an id_token).
    openid: bool,
    client_id: String,
    secret: String,
    refresh_tokens: Vec<String>,
}

async fn set_up(args: &Args) -> Result<Fixture, Box<dyn std::error::Error>> {
    let provider = Provider {
        store: refreshd::store::open(&args.database, args.pool_size).await?,
        clock: Arc::new(SystemClock),
        lifetimes: Lifetimes::default(),
        public_url: format!("http://{}", args.addr),
        trusted_proxies: Default::default(),
        oidc: Default::default(),
    };
    let now = refreshd_core::Clock::now(&SystemClock);
    let kind = args.dialect.kind();
    let secret = ClientSecret::generate(kind);
    let app = provider
        .store
        .create_app(
            NewApp {
                client_id: ClientId::generate(kind),
                name: "loadgen".into(),
                kind,
                redirect_uri: "http://localhost/cb".into(),
                secret_digest: secret.digest(),
                expiring_tokens: true,
                device_flow: false,
                owner_id: None,
            },
            now,
        )
        .await?;
    let login = format!("loadgen-{}", now.secs());
    let user = provider
        .store
        .create_user(
            NewUser {
                login: Login::parse(&login).expect("loadgen's logins follow the rules"),
                name: None,
                email: None,
            },
            now,
        )
        .await?;
    // A few hundred at a time: enough to batch commits, few enough not to queue for long on
    // PostgreSQL's connection pool.
    let mut tasks = tokio::task::JoinSet::new();
    let mut refresh_tokens = Vec::with_capacity(args.families);
    let scopes = Scopes::parse(&args.scope);
    for i in 0..args.families {
        let (provider, app, scopes) = (provider.clone(), app.clone(), scopes.clone());
        tasks.spawn(async move {
            refreshd_provider::issue_family(&provider, &app, user.id, &scopes).await
        });
        if tasks.len() == 256 || i + 1 == args.families {
            while let Some(issued) = tasks.join_next().await {
                refresh_tokens.push(
                    issued??
                        .refresh_token
                        .ok_or("the app does not issue refresh tokens")?,
                );
            }
        }
    }
    Ok(Fixture {
        dialect: args.dialect,
        openid: scopes.as_slice().iter().any(|s| s == "openid"),
        client_id: app.client_id.to_string(),
        secret: secret.expose().to_owned(),
        refresh_tokens,
    })
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn connection(
    addr: String,
    fixture: Arc<Fixture>,
    mut tokens: Vec<String>,
    warm_until: Instant,
    end: Instant,
) -> Result<Tally, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut tally = Tally::default();
    let mut next = 0;
    while Instant::now() < end {
        let i = next % tokens.len();
        next += 1;
        let body = format!(
            "client_id={}&client_secret={}&grant_type=refresh_token&refresh_token={}",
            fixture.client_id, fixture.secret, tokens[i]
        );
        let request = hyper::Request::post(fixture.dialect.path())
            .header("host", &addr)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))?;
        let started = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        // GitHub rotates the refresh token; Google's stays and answers only an access token
        // (and an id_token when the scopes have `openid`).
        let wants_id_token = fixture.dialect == Dialect::Google && fixture.openid;
        match (fixture.dialect, answer["refresh_token"].as_str()) {
            (Dialect::Github, Some(successor)) => tokens[i] = successor.to_owned(),
            (Dialect::Google, None)
                if answer["access_token"].is_string()
                    && answer["id_token"].is_string() == wants_id_token => {}
            _ => tally.errors += 1,
        }
        if started >= warm_until {
            tally
                .latencies_us
                .push(elapsed.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    Ok(tally)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank]) / 1000.0
}

/// Prints one JSON line of `all`'s throughput and latency percentiles (sorting them).
fn report(args: &Args, endpoint: &str, all: &mut Tally) {
    all.latencies_us.sort_unstable();
    let measured = all.latencies_us.len();
    println!(
        "{{\"endpoint\":\"{endpoint}\",\"connections\":{},\"seconds\":{},\"requests\":{measured},\"errors\":{},\"per_second\":{:.0},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        args.connections,
        args.seconds,
        all.errors,
        measured as f64 / args.seconds as f64,
        percentile(&all.latencies_us, 50.0),
        percentile(&all.latencies_us, 90.0),
        percentile(&all.latencies_us, 99.0),
        percentile(&all.latencies_us, 100.0),
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    match args.scenario {
        Scenario::Refresh => {}
        Scenario::Token => return connections::token(&args).await,
        Scenario::DrainSeed => return connections::drain_seed(&args).await,
        Scenario::DrainWatch => return connections::drain_watch(&args).await,
    }
    assert!(
        args.connections > 0 && args.families >= args.connections,
        "need at least one family per connection"
    );
    let setup = Instant::now();
    let fixture = Arc::new(set_up(&args).await?);
    eprintln!(
        "set up {} token families in {:.1?}",
        args.families,
        setup.elapsed()
    );

    let start = Instant::now();
    let warm_until = start + Duration::from_secs(args.warmup);
    let end = warm_until + Duration::from_secs(args.seconds);
    let mut slices: Vec<Vec<String>> = vec![Vec::new(); args.connections];
    for (i, token) in fixture.refresh_tokens.iter().enumerate() {
        slices[i % args.connections].push(token.clone());
    }
    let mut workers = tokio::task::JoinSet::new();
    for tokens in slices {
        workers.spawn(connection(
            args.addr.clone(),
            fixture.clone(),
            tokens,
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
    all.latencies_us.sort_unstable();
    let measured = all.latencies_us.len();
    println!(
        "{{\"connections\":{},\"seconds\":{},\"refreshes\":{measured},\"errors\":{},\"per_second\":{:.0},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        args.connections,
        args.seconds,
        all.errors,
        measured as f64 / args.seconds as f64,
        percentile(&all.latencies_us, 50.0),
        percentile(&all.latencies_us, 90.0),
        percentile(&all.latencies_us, 99.0),
        percentile(&all.latencies_us, 100.0),
    );
    if all.errors > 0 {
        return Err(format!("{} refreshes failed", all.errors).into());
    }
    Ok(())
}
