//! The idempotent-replay vault: for a while after a refresh, the same old refresh token from
//! the same caller gets the same answer again without an upstream call. Answers are stored
//! only encrypted, under a key derived from the master key and the old token itself, and
//! found by a digest of (upstream, caller, old token).

use refreshd_core::seal::{self, Purpose};
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{Store, StoreError};

use crate::master_key::MasterKey;
use crate::upstream::{Refreshed, Upstream};

pub struct Vault {
    master_key: MasterKey,
}

impl Vault {
    pub fn new(master_key: MasterKey) -> Self {
        Self { master_key }
    }

    pub fn lookup(upstream: Upstream, caller: &str, refresh_token: &str) -> TokenDigest {
        TokenDigest::of(&format!("{}\0{caller}\0{refresh_token}", upstream.name()))
    }

    fn purpose(&self) -> Purpose<'_> {
        Purpose::BrokerReplay {
            master_key: self.master_key.bytes(),
        }
    }

    pub async fn get(
        &self,
        store: &dyn Store,
        lookup: TokenDigest,
        refresh_token: &str,
        now: Timestamp,
    ) -> Result<Option<Refreshed>, StoreError> {
        let Some(sealed) = store.get_replay(lookup, now).await? else {
            return Ok(None);
        };
        let plain = seal::unseal(self.purpose(), refresh_token, &sealed);
        Ok(plain.and_then(|p| serde_json::from_slice(&p).ok()))
    }

    pub async fn put(
        &self,
        store: &dyn Store,
        lookup: TokenDigest,
        refresh_token: &str,
        answer: &Refreshed,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let plain = serde_json::to_vec(answer).expect("a refresh answer serializes");
        store
            .put_replay(
                lookup,
                seal::seal(self.purpose(), refresh_token, &plain),
                expires_at,
            )
            .await
    }
}
