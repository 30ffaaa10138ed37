//! The machine identity's tokens, kept in memory and renewed before they
//! expire: a tenth of their life ahead, and at least a minute.

use crate::cloud::agent::{MachineIdentity, token_for};
use anyhow::Result;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tether_cloud_api::identity::TokenResponse;

struct Cached {
    token: TokenResponse,
    renew_at: Instant,
}

#[derive(Default)]
pub struct TokenCache {
    by_resource: Mutex<HashMap<String, Cached>>,
}

impl TokenCache {
    /// A token for `resource`: the cached one while it has life left,
    /// otherwise a fresh one.
    pub fn get(&self, identity: &MachineIdentity<'_>, resource: &str) -> Result<TokenResponse> {
        let key = resource.trim_end_matches('/').to_ascii_lowercase();
        if let Some(cached) = self.lock().get(&key)
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        let token = token_for(identity, resource)?;
        let life = Duration::from_secs(token.expires_in);
        let margin = (life / 10).max(Duration::from_secs(60)).min(life);
        self.lock().insert(
            key,
            Cached {
                token: token.clone(),
                renew_at: Instant::now() + (life - margin),
            },
        );
        tracing::debug!("renewed the machine identity's token for {resource}");
        Ok(token)
    }

    /// Forgets every token (a 401, a disconnect, a new registration).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.by_resource
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
