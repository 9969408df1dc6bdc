//! `refreshd`: parse the command line, load the configuration, run the command.

use clap::Parser;
use refreshd::cli::{Cli, Command};
use refreshd::{Config, admin, connection_admin, server, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(&config.log, config.log_format);
    let outcome = match cli.command {
        Command::Serve(_) => server::serve(config).await,
        Command::Migrate(args) => admin::migrate(&config, args.json).await,
        Command::App(command) => admin::app(&config, command).await,
        Command::User(command) => admin::user(&config, command).await,
        Command::Token(command) => admin::token(&config, command).await,
        Command::Code(command) => admin::code(&config, command).await,
        Command::Key(command) => admin::key(&config, command).await,
        Command::SigningKey(command) => admin::signing_key(&config, command).await,
        Command::Connection(command) => connection_admin::connection(&config, command).await,
        Command::Webhook(command) => admin::webhook(&config, command).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
