//! A token's string and its secret: minting and parsing the
//! `<prefix><lookup id><secret><checksum>` format, and storing and verifying secrets.

mod format;
mod hash;

pub use format::{
    CHECKSUM_LEN, FormatError, LOOKUP_ID_LEN, NewToken, ParsedToken, Prefix, Prefixes,
    RandomUnavailable, SECRET_LEN, assemble, generate, parse,
};
pub use hash::{
    Argon2Params, HashError, HashKind, SecretDigest, digest_secret, hash_secret, verify_secret,
};
