//! Secrets at rest and in the cache. A secret is stored only as an argon2id hash (salted,
//! so it cannot be searched: the lookup id finds the row). Once verified, a SHA-256
//! digest of the secret is what the in-memory cache compares against, in constant time,
//! so repeated checks do no argon2 work and a wrong secret never matches.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// argon2id cost parameters, written `m=19456,t=2,p=1` (memory in KiB, passes, lanes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for Argon2Params {
    /// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl fmt::Display for Argon2Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},t={},p={}", self.m_cost, self.t_cost, self.p_cost)
    }
}

impl FromStr for Argon2Params {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut params = Self::default();
        let (mut m, mut t, mut p) = (false, false, false);
        for part in s.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected `m=..,t=..,p=..`, not `{s}`"))?;
            let value: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{}` must be a whole number", key.trim()))?;
            match key.trim() {
                "m" => (params.m_cost, m) = (value, true),
                "t" => (params.t_cost, t) = (value, true),
                "p" => (params.p_cost, p) = (value, true),
                other => return Err(format!("unknown argon2 parameter `{other}`")),
            }
        }
        if !(m && t && p) {
            return Err(format!("expected `m=..,t=..,p=..`, not `{s}`"));
        }
        Params::new(params.m_cost, params.t_cost, params.p_cost, None)
            .map_err(|e| format!("invalid argon2 parameters `{s}`: {e}"))?;
        Ok(params)
    }
}

#[derive(Debug, Error)]
pub enum HashError {
    #[error("the operating system's random source is unavailable")]
    Random,
    #[error("argon2 failed: {0}")]
    Argon2(String),
}

/// Hashes a secret with argon2id and a fresh random salt, as a PHC string. CPU-heavy:
/// call it off the async runtime.
pub fn hash_secret(params: Argon2Params, secret: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| HashError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Argon2(e.to_string()))?;
    let params = Params::new(params.m_cost, params.t_cost, params.p_cost, None)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Whether `secret` matches a stored PHC hash (the parameters are read from the hash).
/// A hash that does not parse matches nothing. CPU-heavy: call it off the async runtime.
pub fn verify_secret(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The fast digest a verified secret is remembered by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn a_hash_verifies_its_secret_and_nothing_else() {
        let hash = hash_secret(CHEAP, "s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_secret(&hash, "s3cret"));
        assert!(!verify_secret(&hash, "s3creT"));
        assert!(!verify_secret("not a hash", "s3cret"));
        assert_ne!(hash, hash_secret(CHEAP, "s3cret").unwrap(), "salted");
    }

    #[test]
    fn parameters_parse_and_name_what_is_wrong() {
        assert_eq!(
            "m=19456,t=2,p=1".parse::<Argon2Params>(),
            Ok(Argon2Params::default())
        );
        assert_eq!(Argon2Params::default().to_string(), "m=19456,t=2,p=1");
        assert!("m=1,t=2".parse::<Argon2Params>().is_err());
        assert!(
            "m=19456,t=x,p=1"
                .parse::<Argon2Params>()
                .unwrap_err()
                .contains("`t`")
        );
        assert!(
            "m=19456,t=2,q=1"
                .parse::<Argon2Params>()
                .unwrap_err()
                .contains("`q`")
        );
        assert!(
            "m=1,t=1,p=1".parse::<Argon2Params>().is_err(),
            "m too small"
        );
    }

    #[test]
    fn digests_compare_by_value() {
        assert!(SecretDigest::of("a").matches(&SecretDigest::of("a")));
        assert!(!SecretDigest::of("a").matches(&SecretDigest::of("b")));
        assert_eq!(format!("{:?}", SecretDigest::of("a")), "SecretDigest(..)");
    }
}
