//! `patrol::secret::parse` on arbitrary strings.
//!
//! Input: UTF-8 text. The whole input is parsed as a token with the default prefixes
//! (`glpat-`, `glcbt-`). If the input is `<personal> <job>\n<token>` and both prefixes
//! are ones `patrol.toml` accepts (2 to 20 of `[a-z0-9_-]`, ending in `-` or `_`,
//! neither starting the other), `<token>` is parsed again with those prefixes.
//!
//! Properties:
//! - `parse` never panics;
//! - a parse success means a well-formed, checksum-valid token: re-assembling the
//!   kind's prefix, the lookup id and the secret reproduces the input exactly (no
//!   "allow" from garbage), and the parts have their documented lengths and alphabet;
//! - the other way round, any base62 lookup id and secret of the right lengths (taken
//!   from the input's bytes) assemble into a token that parses back to those parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use patrol::secret::{
    CHECKSUM_LEN, LOOKUP_ID_LEN, Prefixes, SECRET_LEN, Prefix, assemble, parse,
};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fuzz_target!(|data: &[u8]| {
    // Every byte string gets a round trip of its own (the second property).
    assembled_tokens_parse_back(data);

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    parses_only_what_it_could_have_assembled(&Prefixes::default(), text);

    if let Some((line, token)) = text.split_once('\n')
        && let Some((personal, job)) = line.split_once(' ')
        && prefix_ok(personal)
        && prefix_ok(job)
        && !personal.starts_with(job)
        && !job.starts_with(personal)
    {
        let custom = Prefixes {
            personal: personal.to_owned(),
            job: job.to_owned(),
        };
        parses_only_what_it_could_have_assembled(&custom, token);
    }
});

fn parses_only_what_it_could_have_assembled(prefixes: &Prefixes, text: &str) {
    let Ok(parsed) = parse(prefixes, text) else {
        return;
    };
    let prefix = prefixes.of(parsed.prefix);
    assert!(
        text.starts_with(prefix),
        "parsed as {:?} but {text:?} does not start with {prefix:?}",
        parsed.prefix
    );
    assert_eq!(parsed.lookup_id.len(), LOOKUP_ID_LEN, "lookup id length");
    assert_eq!(parsed.secret.len(), SECRET_LEN, "secret length");
    assert!(
        parsed
            .lookup_id
            .bytes()
            .chain(parsed.secret.bytes())
            .all(|b| b.is_ascii_alphanumeric()),
        "lookup id or secret outside base62"
    );
    assert_eq!(
        text.len(),
        prefix.len() + LOOKUP_ID_LEN + SECRET_LEN + CHECKSUM_LEN,
        "token length"
    );
    let again = assemble(prefix, parsed.lookup_id, parsed.secret);
    assert_eq!(
        again, text,
        "parse accepted a token that re-assembles differently"
    );
}

fn assembled_tokens_parse_back(data: &[u8]) {
    if data.len() < LOOKUP_ID_LEN + SECRET_LEN + 1 {
        return;
    }
    let body: String = data[..LOOKUP_ID_LEN + SECRET_LEN]
        .iter()
        .map(|&b| char::from(ALPHABET[usize::from(b) % 62]))
        .collect();
    let (lookup_id, secret) = body.split_at(LOOKUP_ID_LEN);
    let prefixes = Prefixes::default();
    let kind = if data[LOOKUP_ID_LEN + SECRET_LEN] & 1 == 0 {
        Prefix::Personal
    } else {
        Prefix::Job
    };
    let token = assemble(prefixes.of(kind), lookup_id, secret);
    let parsed = parse(&prefixes, &token)
        .unwrap_or_else(|e| panic!("an assembled token does not parse: {e}"));
    assert_eq!(parsed.prefix, kind);
    assert_eq!(parsed.lookup_id, lookup_id);
    assert_eq!(parsed.secret, secret);
}

/// The rule `patrol.toml` applies to `personal_token_prefix` and `job_token_prefix`
/// (src/config.rs `check_prefix`).
fn prefix_ok(prefix: &str) -> bool {
    (2..=20).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && (prefix.ends_with('-') || prefix.ends_with('_'))
}
