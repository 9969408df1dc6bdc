//! The command line: `refreshd serve` and the admin commands, which work on the database directly.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "refreshd",
    version,
    about = "An OAuth token service: expiring, rotating tokens in GitHub's and Google's dialects, and a broker that refreshes GitHub and Google tokens"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "REFRESHD_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Database URL [default: sqlite://refreshd.db; env: REFRESHD_DATABASE_URL].
    #[arg(long, global = true)]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(JsonFlag),
    /// Manage OAuth applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage the users tokens are issued to.
    #[command(subcommand)]
    User(UserCommand),
    /// Mint tokens directly.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Mint authorization codes directly, for testing the code grant without a browser.
    #[command(subcommand)]
    Code(CodeCommand),
    /// Manage the API keys backends call the broker with.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the keys id_tokens are signed with (never shows key material).
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// Manage connections: the users' GitHub and Google grants refreshd holds.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// See and resend webhook deliveries of connections' events.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// List connections in id order (never a token).
    List {
        #[arg(long, value_enum)]
        provider: Option<UpstreamArg>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// At most this many [default: all].
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        limit: Option<i64>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show a connection's state (never a token).
    Show {
        id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Refresh a connection at its upstream now, through its claim, so never at the same time
    /// as a running server.
    Refresh {
        id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Revoke a connection's grant at its upstream, then delete it here (even if the upstream
    /// did not revoke it, which is reported).
    Delete {
        id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum UpstreamArg {
    Github,
    Google,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatusArg {
    Live,
    Broken,
    #[value(name = "backing_off")]
    BackingOff,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; prints it (under `key` with --json) only this once.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List API keys (never the keys themselves).
    List(JsonFlag),
    /// Revoke an API key by its id.
    Revoke {
        id: i64,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Add a new signing key, published at once; it signs once verifiers' cached key sets
    /// hold it (after the certs' max-age and 5 minutes of clock skew), the previous key
    /// stays published until the id_tokens it signed have expired.
    Rotate {
        /// Sign with the new key at once (tests; a compromised key): verifiers holding a
        /// cached key set reject its id_tokens until they fetch the keys again.
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List the signing keys: kid, generation, created, signs from, state.
    List(JsonFlag),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env: REFRESHD_LISTEN].
    #[arg(long)]
    pub listen: Option<String>,
    /// URL clients use to reach refreshd, used in `url` fields [env: REFRESHD_PUBLIC_URL].
    #[arg(long)]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    GithubApp,
    OauthApp,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum DialectArg {
    #[default]
    Github,
    Google,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    pub fn is_on(self) -> bool {
        matches!(self, Self::On)
    }
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app; prints its client_id and client_secret (the secret only this once).
    Create {
        #[arg(long)]
        name: String,
        /// The redirect (callback) URI; repeat the flag to register several, the first being
        /// the default.
        #[arg(long, required = true)]
        redirect_uri: Vec<String>,
        /// The provider user (login) who manages the app in the settings pages.
        #[arg(long)]
        owner: Option<String>,
        /// GitHub's kind of app (GitHub dialect only) [default: github-app].
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Which provider's wire format the app speaks.
        #[arg(long, value_enum, default_value = "github")]
        dialect: DialectArg,
        /// GitHub's "User-to-server token expiration" setting: expire user tokens and give a
        /// refresh token with them; on by default, and always on for Google-dialect apps.
        #[arg(long, value_enum, default_value = "on")]
        expiring_tokens: OnOff,
        /// GitHub's "Enable Device Flow" setting: whether the app may start the device flow;
        /// off by default, as on GitHub.
        #[arg(long, value_enum, default_value = "off")]
        device_flow: OnOff,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List apps (never their secrets).
    List(JsonFlag),
    /// Change what new grants of an app get, or who manages it.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)))]
    Update {
        client_id: String,
        /// GitHub's "User-to-server token expiration" setting for new grants; tokens already
        /// issued keep their expiry (GitHub-dialect apps only).
        #[arg(long, value_enum, group = "change")]
        expiring_tokens: Option<OnOff>,
        /// Whether the app may start the device flow.
        #[arg(long, value_enum, group = "change")]
        device_flow: Option<OnOff>,
        /// The provider user (login) who manages the app in the settings pages.
        #[arg(long, group = "change")]
        owner: Option<String>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Replace an app's client secret; prints the new one, only this once.
    ResetSecret {
        client_id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the user's password (for signing in) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Set a user's password from the first line of standard input; ends their sessions.
    SetPassword {
        #[arg(long)]
        login: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a grant directly; prints exactly the JSON the token endpoint would.
    Issue {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        login: String,
        /// Scopes, comma- or space-separated.
        #[arg(long, default_value = "")]
        scope: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum CodeCommand {
    /// Mint a single-use authorization code, as if the user had approved the app.
    Issue {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        login: String,
        #[arg(long, default_value = "")]
        scope: String,
        /// The redirect_uri the code is bound to; the app's registered one if absent.
        #[arg(long)]
        redirect_uri: Option<String>,
        /// PKCE code challenge.
        #[arg(long, requires = "code_challenge_method")]
        code_challenge: Option<String>,
        #[arg(long, requires = "code_challenge")]
        code_challenge_method: Option<String>,
        /// OpenID Connect nonce, returned in the id_token of the exchange (Google apps, scope
        /// openid); at most 512 bytes.
        #[arg(long)]
        nonce: Option<String>,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// List webhook deliveries, newest first: event id and type, connection, endpoint,
    /// attempts, the last answer or error, the next attempt, when delivered.
    List {
        /// Only deliveries in this state.
        #[arg(long, value_enum)]
        status: Option<DeliveryStatusArg>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Queue a delivery (by its number) or every delivery of an event (`msg_…`) again, due
    /// now, with the retry schedule started over; a running server sends it within seconds.
    Redeliver {
        /// A delivery's number, or an event's id (`msg_…`).
        id: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DeliveryStatusArg {
    Pending,
    Delivered,
    Failed,
}
