//! What every provider handler needs: storage, time, lifetimes and the public URL.

use std::sync::Arc;

use refreshd_core::{Clock, Lifetimes};
use refreshd_store::Store;

#[derive(Clone)]
pub struct Provider {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub lifetimes: Lifetimes,
    /// Where clients reach refreshd, without a trailing slash; used in `url` fields.
    pub public_url: String,
}

impl Provider {
    /// Base of REST resource URLs, GitHub Enterprise style.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.public_url)
    }
}
