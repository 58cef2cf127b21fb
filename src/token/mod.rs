//! Tokens as strings and secrets: minting and parsing the
//! `<prefix><lookup id><secret><checksum>` format, and hashing and verifying secrets.

mod format;
mod hash;

pub use format::{
    CHECKSUM_LEN, FormatError, LOOKUP_ID_LEN, NewToken, ParsedToken, Prefixes, RandomUnavailable,
    SECRET_LEN, TokenKind, assemble, generate, parse,
};
pub use hash::{Argon2Params, HashError, SecretDigest, hash_secret, verify_secret};
