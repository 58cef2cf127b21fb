//! Tokens as strings: minting and parsing the `<prefix><lookup id><secret><checksum>`
//! format. Verifying a secret against its stored hash belongs to the store layer.

mod format;

pub use format::{
    CHECKSUM_LEN, FormatError, LOOKUP_ID_LEN, NewToken, ParsedToken, Prefixes, RandomUnavailable,
    SECRET_LEN, TokenKind, generate, parse,
};
