//! The token string: `<prefix><lookup id><secret><checksum>`, all base62 after the
//! prefix so that a double-click selects the whole token body. The lookup id is public
//! and indexed; the secret (at least 160 bits from the OS CSPRNG) is only ever stored
//! as an argon2id hash; the CRC32 checksum lets patrol and secret scanners reject a
//! mistyped or forged token without touching the database.
//!
//! Parsing never allocates and never looks anything up: it is safe to run on every
//! request before any store or argon2 work.

use std::fmt;

use thiserror::Error;

/// Length of the lookup id, in base62 characters (about 71 bits).
pub const LOOKUP_ID_LEN: usize = 12;
/// Length of the secret, in base62 characters (about 178 bits).
pub const SECRET_LEN: usize = 30;
/// Length of the checksum: a CRC32 in base62, zero-padded (62^6 > 2^32).
pub const CHECKSUM_LEN: usize = 6;
const BODY_LEN: usize = LOOKUP_ID_LEN + SECRET_LEN + CHECKSUM_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Which of the instance's prefixes a token carries: what kind of owner it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// A personal access token, legacy or fine-grained (`glpat-` by default).
    Personal,
    /// A CI/CD job token (`glcbt-` by default).
    Job,
}

/// The instance's token prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub personal: String,
    pub job: String,
}

impl Default for Prefixes {
    fn default() -> Self {
        Self {
            personal: "glpat-".to_owned(),
            job: "glcbt-".to_owned(),
        }
    }
}

impl Prefixes {
    pub fn of(&self, prefix: Prefix) -> &str {
        match prefix {
            Prefix::Personal => &self.personal,
            Prefix::Job => &self.job,
        }
    }
}

/// Why a string is not a token. Callers answer every one of these with the same
/// `token_invalid`: the variants exist for tests and metrics, not for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FormatError {
    #[error("the token has no known prefix")]
    Prefix,
    #[error("the token has the wrong length")]
    Length,
    #[error("the token has a character outside base62")]
    Alphabet,
    #[error("the token's checksum does not match")]
    Checksum,
}

/// A well-formed token whose checksum matches: not yet a verified one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    pub prefix: Prefix,
    pub lookup_id: &'a str,
    pub secret: &'a str,
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log, even through `{:?}`.
        f.debug_struct("ParsedToken")
            .field("prefix", &self.prefix)
            .field("lookup_id", &self.lookup_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A freshly minted token. The plaintext is shown once, then dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    pub plaintext: String,
    pub lookup_id: String,
    pub secret: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("lookup_id", &self.lookup_id)
            .finish_non_exhaustive()
    }
}

/// The OS random source failed; no token can be made safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the operating system's random source is unavailable")]
pub struct RandomUnavailable;

/// Mints a token with `prefix` from the OS CSPRNG.
pub fn generate(prefixes: &Prefixes, prefix: Prefix) -> Result<NewToken, RandomUnavailable> {
    let lookup_id = random_base62(LOOKUP_ID_LEN)?;
    let secret = random_base62(SECRET_LEN)?;
    Ok(NewToken {
        plaintext: assemble(prefixes.of(prefix), &lookup_id, &secret),
        lookup_id,
        secret,
    })
}

/// The token string for its parts, checksum appended. Scanners and tests use it to
/// build well-formed tokens; only `generate` makes secrets.
pub fn assemble(prefix: &str, lookup_id: &str, secret: &str) -> String {
    let mut plaintext = String::with_capacity(prefix.len() + BODY_LEN);
    plaintext.push_str(prefix);
    plaintext.push_str(lookup_id);
    plaintext.push_str(secret);
    let checksum = checksum(&plaintext);
    plaintext.push_str(std::str::from_utf8(&checksum).unwrap_or_default());
    plaintext
}

/// Parses and checks a token string: prefix, length, alphabet, checksum.
pub fn parse<'a>(prefixes: &Prefixes, token: &'a str) -> Result<ParsedToken<'a>, FormatError> {
    let (prefix, body) = [Prefix::Personal, Prefix::Job]
        .into_iter()
        .find_map(|prefix| {
            let text = prefixes.of(prefix);
            (!text.is_empty())
                .then(|| token.strip_prefix(text))
                .flatten()
                .map(|body| (prefix, body))
        })
        .ok_or(FormatError::Prefix)?;
    if body.len() != BODY_LEN {
        return Err(FormatError::Length);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FormatError::Alphabet);
    }
    let (signed, given) = token.split_at(token.len() - CHECKSUM_LEN);
    if checksum(signed).as_slice() != given.as_bytes() {
        return Err(FormatError::Checksum);
    }
    let (lookup_id, rest) = body.split_at(LOOKUP_ID_LEN);
    Ok(ParsedToken {
        prefix,
        lookup_id,
        secret: &rest[..SECRET_LEN],
    })
}

/// CRC32 of everything before the checksum, as six base62 digits.
fn checksum(signed: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(signed.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `len` uniformly random base62 characters (rejection sampling: no modulo bias).
fn random_base62(len: usize) -> Result<String, RandomUnavailable> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|_| RandomUnavailable)?;
        for &b in &buf {
            // 248 = 4 * 62: bytes at or above it would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mint(kind: Prefix) -> NewToken {
        generate(&Prefixes::default(), kind).unwrap()
    }

    #[test]
    fn minted_tokens_parse_back_to_their_parts() {
        for kind in [Prefix::Personal, Prefix::Job] {
            let token = mint(kind);
            let prefix = Prefixes::default().of(kind).to_owned();
            assert!(token.plaintext.starts_with(&prefix));
            assert_eq!(token.plaintext.len(), prefix.len() + BODY_LEN);
            let parsed = parse(&Prefixes::default(), &token.plaintext).unwrap();
            assert_eq!(parsed.prefix, kind);
            assert_eq!(parsed.lookup_id, token.lookup_id);
            assert_eq!(parsed.secret, token.secret);
        }
    }

    #[test]
    fn secrets_carry_at_least_160_bits_and_differ() {
        assert!(SECRET_LEN as f64 * 62f64.log2() >= 160.0);
        let a = mint(Prefix::Personal);
        let b = mint(Prefix::Personal);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.lookup_id, b.lookup_id);
    }

    #[test]
    fn malformed_tokens_are_refused_with_their_reason() {
        let good = mint(Prefix::Personal).plaintext;
        let p = Prefixes::default();
        assert_eq!(parse(&p, "").unwrap_err(), FormatError::Prefix);
        assert_eq!(
            parse(&p, &good.replacen("glpat-", "ghp_", 1)).unwrap_err(),
            FormatError::Prefix
        );
        assert_eq!(
            parse(&p, &good[..good.len() - 1]).unwrap_err(),
            FormatError::Length
        );
        assert_eq!(
            parse(&p, &format!("{good}0")).unwrap_err(),
            FormatError::Length
        );
        let mut odd = good.clone();
        odd.replace_range(10..11, "-");
        assert_eq!(parse(&p, &odd).unwrap_err(), FormatError::Alphabet);
        let custom = Prefixes {
            personal: "acme_".to_owned(),
            job: "acmejob_".to_owned(),
        };
        assert_eq!(parse(&custom, &good).unwrap_err(), FormatError::Prefix);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token = mint(Prefix::Personal);
        let parsed = parse(&Prefixes::default(), &token.plaintext).unwrap();
        assert!(!format!("{parsed:?}").contains(parsed.secret));
        assert!(!format!("{token:?}").contains(&token.secret));
    }

    proptest! {
        /// Any single-character typo in the body is caught by the checksum (CRC32
        /// detects every single-symbol error).
        #[test]
        fn a_single_changed_character_fails_the_checksum(at in 0usize..BODY_LEN, by in 1u8..62) {
            let token = mint(Prefix::Personal).plaintext;
            let i = "glpat-".len() + at;
            let old = ALPHABET.iter().position(|&c| c == token.as_bytes()[i]).unwrap();
            let new = char::from(ALPHABET[(old + usize::from(by)) % 62]);
            let mut typo = token.clone();
            typo.replace_range(i..=i, &new.to_string());
            prop_assert_eq!(parse(&Prefixes::default(), &typo).unwrap_err(), FormatError::Checksum);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,80}") {
            let _ = parse(&Prefixes::default(), &s);
        }
    }
}
