//! The body of `POST /v1/authorize` (and `/v1/authorize/batch`) through the same path
//! the server takes, up to and including the decision:
//!
//! 1. `patrol::http::extract::parse_json` (what the `ApiJson` extractor calls: the plain
//!    serde_json parser, then serde_path_to_error to name the field at fault);
//! 2. `AuthorizeRequest::check` (the request to a service `Check`, 400s naming fields);
//! 3. the credential: `secret::parse` with the default prefixes, then the lookup id and
//!    the secret's digest compared with the fixture tokens, as `Service::credential`
//!    does for a token it verified before (the store and argon2 are not involved);
//! 4. `patrol::service::decide` (the `Check` to an engine request, `engine::decide`,
//!    the `Outcome` with its message) on a snapshot of the embedded catalog and a small
//!    fixture world (world.rs, shared with `graphql_request`): two users, a group, a
//!    private project and six tokens.
//!
//! Input: the request body, any bytes.
//!
//! Properties: nothing panics; a body that does not parse is a 400 naming a field; a
//! token that is not exactly one of the fixture tokens is never allowed (it is
//! `token_invalid`, without token or user id), and neither is a revoked or expired
//! one; an allow is `granted` and carries the token's id.
#![no_main]

#[path = "world.rs"]
mod world;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use patrol::engine::Reason;
use patrol::http::extract::parse_json;
use patrol::http::{ApiError, AuthorizeRequest, BatchRequest};
use patrol::service::{Check, Outcome, decide};
use world::{NOW, WORLD, World, credential};

/// `patrol::http::authorize::MAX_BATCH` (not reachable from outside the crate).
const MAX_BATCH: usize = 1000;

/// `PATROL_FUZZ_DEBUG=1` prints each decision (to check what the seeds reach).
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("PATROL_FUZZ_DEBUG").is_some());

fn expect_bad_request(e: &ApiError, what: &str) {
    match e {
        // The field may be empty: `{"": 1}` is an unknown field named "".
        ApiError::BadRequest { field: Some(_), .. } => {}
        other => panic!("{what}: expected a 400 naming a field, got {other:?}"),
    }
}

fn decide_one(w: &World, check: &Check) -> Outcome {
    let (cred, fixture) = credential(w, &check.token);
    let outcome = decide(&w.snapshot, check, cred, NOW);
    if *DEBUG {
        eprintln!(
            "{cred:?} {:?} -> {} {}",
            check.action, outcome.allowed, outcome.reason
        );
    }
    assert_eq!(
        outcome.allowed,
        outcome.reason == Reason::Granted,
        "allowed and reason disagree: {outcome:?}"
    );
    match fixture {
        None => {
            assert!(!outcome.allowed, "garbage token allowed: {check:?}");
            assert_eq!(outcome.reason, Reason::TokenInvalid, "{check:?}");
            assert_eq!(outcome.token_id, None, "an invalid token was named");
            assert_eq!(outcome.user_id, None, "an invalid token's user was named");
        }
        Some(t) => {
            assert_eq!(check.token, t.plaintext, "credential for another string");
            if outcome.allowed {
                assert!(t.usable, "revoked or expired token {} allowed", t.id);
                assert_eq!(outcome.token_id, Some(t.id));
            }
        }
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let w = &*WORLD;
    match parse_json::<AuthorizeRequest>(data) {
        Ok(request) => match request.check() {
            Ok(check) => {
                decide_one(w, &check);
            }
            Err(e) => expect_bad_request(&e, "check"),
        },
        Err(e) => expect_bad_request(&e, "parse_json"),
    }
    // The batch body shares the parser; only try it when the body looks like one.
    if data.windows(8).any(|w| w == b"\"checks\"") {
        match parse_json::<BatchRequest>(data) {
            Ok(batch) if batch.checks.len() <= MAX_BATCH => {
                for request in batch.checks {
                    match request.check() {
                        Ok(check) => {
                            decide_one(w, &check);
                        }
                        Err(e) => expect_bad_request(&e, "batch check"),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => expect_bad_request(&e, "parse_json batch"),
        }
    }
});
