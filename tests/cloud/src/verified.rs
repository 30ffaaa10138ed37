//! Tokens this cloud issued and has verified once. An RSA signature check
//! is most of what a heartbeat costs, and a machine presents the same token
//! on every heartbeat for an hour: a token is looked up by its SHA-256 and
//! its signature checked only the first time. Expiry is still checked on
//! every use, against the cloud's clock (which the admin API moves).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tether_cloud_api::jwt::JwtError;

/// Tokens remembered at most; past this the memory starts over rather
/// than grow (each is verified again once).
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct VerifiedTokens {
    by_digest: Mutex<HashMap<[u8; 32], Verified>>,
}

struct Verified {
    claims: Value,
    expires: u64,
}

impl VerifiedTokens {
    /// The claims of `token`: remembered, or checked by `verify` (which
    /// is given `now`) and remembered if it passes.
    pub fn verify(
        &self,
        token: &str,
        now: u64,
        verify: impl FnOnce(u64) -> Result<Value, JwtError>,
    ) -> Result<Value, JwtError> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.lock().get(&digest) {
            if known.expires <= now {
                return Err(JwtError::Expired);
            }
            return Ok(known.claims.clone());
        }
        let claims = verify(now)?;
        let Some(expires) = claims.get("exp").and_then(Value::as_u64) else {
            // Nothing to bound it by: verified every time.
            return Ok(claims);
        };
        let mut known = self.lock();
        if known.len() >= CAPACITY {
            known.clear();
        }
        known.insert(
            digest,
            Verified {
                claims: claims.clone(),
                expires,
            },
        );
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.by_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_verified_once_and_expires_on_the_clock() {
        let cache = VerifiedTokens::default();
        let claims = serde_json::json!({"exp": 100, "oid": "m"});
        let mut checks = 0;
        for now in [10, 50] {
            let got = cache.verify("token", now, |_| {
                checks += 1;
                Ok(claims.clone())
            });
            assert_eq!(got, Ok(claims.clone()));
        }
        assert_eq!(checks, 1);
        assert_eq!(
            cache.verify("token", 100, |_| Ok(claims.clone())),
            Err(JwtError::Expired)
        );
        // A refused token is not remembered: another presenting it is
        // checked again.
        assert_eq!(
            cache.verify("forged", 10, |_| Err(JwtError::BadSignature)),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            cache.verify("forged", 10, |_| Err(JwtError::BadSignature)),
            Err(JwtError::BadSignature)
        );
    }
}
