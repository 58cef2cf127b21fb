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
//!    fixture world: two users, a group, a private project and six tokens.
//!
//! Input: the request body, any bytes.
//!
//! Properties: nothing panics; a body that does not parse is a 400 naming a field; a
//! token that is not exactly one of the fixture tokens is never allowed (it is
//! `token_invalid`, without token or user id), and neither is a revoked or expired
//! one; an allow is `granted` and carries the token's id.
#![no_main]

use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use patrol::catalog::{Catalog, load_embedded};
use patrol::domain::{AccessKind, AccessLevel, Plan, Visibility};
use patrol::engine::{
    Credential, Grant, GranularScope, GroupId, GroupSpec, Owner, ProjectId, ProjectSpec, Reason,
    Snapshot, Token, TokenId, User, UserId,
};
use patrol::http::extract::parse_json;
use patrol::http::{ApiError, AuthorizeRequest, BatchRequest};
use patrol::service::{Check, Outcome, decide};
use patrol::secret::{Prefixes, SecretDigest, Prefix, assemble, parse};

/// Unix seconds the decisions are made at (fixed: runs are reproducible).
const NOW: i64 = 1_800_000_000;
/// `patrol::http::authorize::MAX_BATCH` (not reachable from outside the crate).
const MAX_BATCH: usize = 1000;

/// A fixture token: what the snapshot holds and what a caller presents.
struct Fixture {
    id: u64,
    kind: Prefix,
    lookup_id: &'static str,
    secret: &'static str,
    plaintext: String,
    /// Whether the snapshot may ever allow it.
    usable: bool,
}

struct World {
    snapshot: Snapshot,
    prefixes: Prefixes,
    tokens: Vec<Fixture>,
}

/// The fixture tokens; fuzz/seeds/authorize_request/ holds their plaintexts.
const TOKENS: [(u64, Prefix, &str, &str, bool); 6] = [
    // alice, legacy `api`
    (
        1,
        Prefix::Personal,
        "aliceLegacy1",
        "SecretSecretSecretSecretSecre1",
        true,
    ),
    // alice, fine-grained on project 42, from 10.0.0.0/8 only
    (
        2,
        Prefix::Personal,
        "aliceFine000",
        "SecretSecretSecretSecretSecre2",
        true,
    ),
    // a job token of a job in project 42, run by alice
    (
        3,
        Prefix::Job,
        "aliceJob0000",
        "SecretSecretSecretSecretSecre3",
        true,
    ),
    // root (an admin), legacy `api` and `admin_mode`
    (
        4,
        Prefix::Personal,
        "rootAdmin000",
        "SecretSecretSecretSecretSecre4",
        true,
    ),
    // alice, revoked
    (
        5,
        Prefix::Personal,
        "aliceRevoked",
        "SecretSecretSecretSecretSecre5",
        false,
    ),
    // alice, expired
    (
        6,
        Prefix::Personal,
        "aliceExpired",
        "SecretSecretSecretSecretSecre6",
        false,
    ),
];

static WORLD: LazyLock<World> = LazyLock::new(world);
/// `PATROL_FUZZ_DEBUG=1` prints each decision (to check what the seeds reach).
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("PATROL_FUZZ_DEBUG").is_some());

fn world() -> World {
    let catalog: Arc<Catalog> = match load_embedded() {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("the embedded catalog does not load: {e}"),
    };
    let mut s = Snapshot::new(catalog.clone());
    let ok = |r: Result<(), patrol::engine::SnapshotError>| {
        if let Err(e) = r {
            panic!("fixture world: {e}");
        }
    };
    let (alice, root) = (UserId(1), UserId(2));
    ok(s.upsert_user(
        alice,
        User {
            username: "alice".to_owned(),
            blocked: false,
            admin: false,
        },
    ));
    ok(s.upsert_user(
        root,
        User {
            username: "root".to_owned(),
            blocked: false,
            admin: true,
        },
    ));
    ok(s.upsert_group(
        GroupId(10),
        GroupSpec {
            parent: None,
            path: "acme".to_owned(),
            visibility: Visibility::Public,
            plan: Plan::Premium,
        },
    ));
    ok(s.upsert_project(
        ProjectId(42),
        ProjectSpec {
            namespace: Owner::Group(GroupId(10)),
            path: "app".to_owned(),
            visibility: Visibility::Private,
            features: Vec::new(),
        },
    ));
    ok(s.upsert_project(
        ProjectId(43),
        ProjectSpec {
            namespace: Owner::User(alice),
            path: "dotfiles".to_owned(),
            visibility: Visibility::Public,
            features: Vec::new(),
        },
    ));
    ok(s.set_group_member(GroupId(10), alice, Some(AccessLevel::REPORTER)));
    ok(s.set_project_member(ProjectId(42), alice, Some(AccessLevel::DEVELOPER)));

    let legacy = |scopes: &[&str]| match Grant::legacy(&catalog, scopes.iter().copied()) {
        Ok(g) => g,
        Err(e) => panic!("fixture token: {e}"),
    };
    let fine = match GranularScope::new(
        &catalog,
        AccessKind::SelectedMemberships,
        [ProjectId(42)],
        [],
        ["read_issue", "create_issue", "read_repository"],
    ) {
        Ok(scope) => Grant::FineGrained {
            scopes: vec![scope],
        },
        Err(e) => panic!("fixture token: {e}"),
    };
    let ten = match ipnet::IpNet::from_str("10.0.0.0/8") {
        Ok(net) => net,
        Err(e) => panic!("{e}"),
    };
    let grants = [
        (alice, legacy(&["api"]), false, None, vec![]),
        (alice, fine, false, None, vec![ten]),
        (
            alice,
            Grant::Job {
                project: ProjectId(42),
                job_id: 7,
            },
            false,
            None,
            vec![],
        ),
        (root, legacy(&["api", "admin_mode"]), false, None, vec![]),
        (alice, legacy(&["api"]), true, None, vec![]),
        (alice, legacy(&["api"]), false, Some(NOW - 86_400), vec![]),
    ];
    let prefixes = Prefixes::default();
    let mut tokens = Vec::new();
    for ((id, kind, lookup_id, secret, usable), (user_id, grant, revoked, expires_at, ips)) in
        TOKENS.into_iter().zip(grants)
    {
        s.insert_token(Token {
            id: TokenId(id),
            user_id,
            revoked,
            expires_at,
            allowed_ips: ips,
            grant,
        });
        let plaintext = assemble(prefixes.of(kind), lookup_id, secret);
        assert!(parse(&prefixes, &plaintext).is_ok(), "fixture token {id}");
        tokens.push(Fixture {
            id,
            kind,
            lookup_id,
            secret,
            plaintext,
            usable,
        });
    }
    World {
        snapshot: s,
        prefixes,
        tokens,
    }
}

/// `Service::credential` for tokens verified before: parse, then the lookup id and the
/// secret's digest (never the secret itself) decide.
fn credential<'w>(w: &'w World, presented: &str) -> (Credential, Option<&'w Fixture>) {
    let Ok(parsed) = parse(&w.prefixes, presented) else {
        return (Credential::Invalid, None);
    };
    let digest = SecretDigest::of(parsed.secret);
    match w.tokens.iter().find(|t| t.lookup_id == parsed.lookup_id) {
        Some(t) if t.kind == parsed.prefix && SecretDigest::of(t.secret).matches(&digest) => {
            (Credential::Token(TokenId(t.id)), Some(t))
        }
        _ => (Credential::Invalid, None),
    }
}

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
