//! The refreshd binary's library half: configuration, the server, and the admin commands,
//! so integration tests can start the real server in-process.

pub mod admin;
pub mod cli;
pub mod config;
pub mod connection_admin;
pub mod docs;
pub mod listener;
pub mod metrics;
pub mod server;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use server::{RunningServer, launch};
