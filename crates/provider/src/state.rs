//! What every provider handler needs: storage, time, lifetimes, the public URL and the proxies
//! whose word on a client's address is believed.

use std::sync::Arc;

use refreshd_core::{Clock, Lifetimes};
use refreshd_store::Store;

use crate::web::TrustedProxies;

#[derive(Clone)]
pub struct Provider {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub lifetimes: Lifetimes,
    /// Where clients reach refreshd, without a trailing slash; used in `url` fields.
    pub public_url: String,
    /// Peers whose `X-Forwarded-For` names the client whose sign-in attempts are counted.
    pub trusted_proxies: TrustedProxies,
}

impl Provider {
    /// Base of REST resource URLs, GitHub Enterprise style.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.public_url)
    }
}
