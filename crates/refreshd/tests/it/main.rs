//! refreshd's integration tests, in one binary (one link step): real servers on loopback,
//! started in-process or as separate processes, driven over HTTP, from the CLI, by real client
//! libraries and by a headless browser.

mod common;

mod applications_api;
mod broker;
mod browser;
mod cli;
mod connections;
mod connections_api;
mod connections_cli;
mod connections_refresher;
mod device_browser;
mod device_flow;
mod device_page;
mod google_device;
mod google_dialect;
mod metrics;
mod oidc;
mod oidc_browser;
mod openapi;
mod pages;
mod postgres;
mod readme;
mod real_clients;
mod token_endpoint;
mod wal;
mod webhooks;
