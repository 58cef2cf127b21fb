//! Secrets at rest and in the cache.
//!
//! A token's secret is machine-made (178 bits from the OS CSPRNG), so it is stored as a
//! salted HMAC-SHA256 digest, `$hmac-sha256$<salt>$<mac>`, as GitHub and GitLab keep
//! theirs: no offline search can hope to find a 178-bit secret, however fast each guess,
//! and the salt makes every row its own target. Verifying one costs about a microsecond,
//! so a token's first use after a restart is one store read, not 50 ms of CPU.
//!
//! Service keys keep argon2id (the cost `PATROL_ARGON2` names), and so does any token
//! hash written before the digest: both forms verify, and the decision path rewrites an
//! argon2id token hash as a digest on its next successful verification.
//!
//! Once verified, an unsalted SHA-256 digest of the secret is what the in-memory cache
//! compares against, in constant time, so repeated checks do no hashing work and a
//! wrong secret never matches.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
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
    #[error("HMAC-SHA256 refused its key")]
    Digest,
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

const DIGEST_PREFIX: &str = "$hmac-sha256$";
const SALT_LEN: usize = 16;

/// Stores a machine-made secret: HMAC-SHA256 keyed by a fresh random salt, both in hex.
/// Cheap: fine on the async runtime.
pub fn digest_secret(secret: &str) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| HashError::Random)?;
    let mac = mac(&salt, secret).ok_or(HashError::Digest)?;
    Ok(format!(
        "{DIGEST_PREFIX}{}${}",
        hex::encode(salt),
        hex::encode(mac)
    ))
}

/// HMAC-SHA256 of `secret` keyed by `salt`. HMAC takes a key of any length, so this is
/// never `None`; were it, the secret would match nothing.
fn mac(salt: &[u8], secret: &str) -> Option<[u8; 32]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).ok()?;
    mac.update(secret.as_bytes());
    Some(mac.finalize().into_bytes().into())
}

/// How a stored secret hash is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// A salted HMAC-SHA256 digest: microseconds.
    Digest,
    /// An argon2id PHC string: tens of milliseconds, off the async runtime.
    Argon2,
}

impl HashKind {
    pub fn of(hash: &str) -> Self {
        if hash.starts_with(DIGEST_PREFIX) {
            Self::Digest
        } else {
            Self::Argon2
        }
    }
}

/// Whether `secret` matches a stored hash of either kind (an argon2id hash carries its
/// parameters). A hash that does not parse matches nothing. An argon2id hash is
/// CPU-heavy: call this off the async runtime unless `HashKind::of(hash)` is `Digest`.
pub fn verify_secret(hash: &str, secret: &str) -> bool {
    match HashKind::of(hash) {
        HashKind::Digest => verify_digest(hash, secret),
        HashKind::Argon2 => PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        }),
    }
}

fn verify_digest(hash: &str, secret: &str) -> bool {
    let Some((salt, expected)) = hash
        .strip_prefix(DIGEST_PREFIX)
        .and_then(|rest| rest.split_once('$'))
    else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (hex::decode(salt), hex::decode(expected)) else {
        return false;
    };
    salt.len() == SALT_LEN
        && mac(&salt, secret).is_some_and(|mac| bool::from(mac.as_slice().ct_eq(&expected)))
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
    fn a_digest_verifies_its_secret_and_nothing_else() {
        let hash = digest_secret("s3cret").unwrap();
        assert_eq!(HashKind::of(&hash), HashKind::Digest);
        assert_eq!(hash.len(), DIGEST_PREFIX.len() + 2 * SALT_LEN + 1 + 64);
        assert!(verify_secret(&hash, "s3cret"));
        assert!(!verify_secret(&hash, "s3creT"));
        assert!(!verify_secret(&hash, ""));
        assert_ne!(hash, digest_secret("s3cret").unwrap(), "salted");
        // A damaged digest matches nothing: not the secret, not an empty one.
        let (head, mac) = hash.rsplit_once('$').unwrap();
        for damaged in [
            format!("{head}$"),
            format!("{head}${}", &mac[..62]),
            format!("{head}$zz{}", &mac[2..]),
            format!("{DIGEST_PREFIX}${mac}"),
            DIGEST_PREFIX.to_owned(),
        ] {
            assert!(!verify_secret(&damaged, "s3cret"), "{damaged}");
            assert!(!verify_secret(&damaged, ""), "{damaged}");
        }
    }

    #[test]
    fn both_kinds_verify_and_are_told_apart() {
        let argon2 = hash_secret(CHEAP, "s3cret").unwrap();
        assert_eq!(HashKind::of(&argon2), HashKind::Argon2);
        assert!(verify_secret(&argon2, "s3cret"));
        let digest = digest_secret("s3cret").unwrap();
        assert!(verify_secret(&digest, "s3cret"));
        assert!(!verify_secret(
            &digest.replace("hmac-sha256", "argon2id"),
            "s3cret"
        ));
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
