//! A GraphQL request through the server's decision path:
//!
//! 1. `patrol::catalog::graphql::plan::plan` with `Limits::default()` (what
//!    `Service::graphql_needs` calls): the document parsed and validated against the
//!    embedded catalog's GitLab schema by apollo-compiler, the operation picked, the
//!    variables coerced, then every (permission, boundary) the operation needs;
//! 2. `GraphqlChecks::new` (each distinct need one service `Check`, or one
//!    `Authenticate` when nothing is needed);
//! 3. each check decided as `authorize_request` decides one: the credential from the
//!    presented token (world.rs `credential`), then `patrol::service::decide` on the
//!    shared fixture world (world.rs);
//! 4. `GraphqlChecks::outcome`, the operation's answer.
//!
//! Input: any bytes. Up to the first NUL, the query (lossy UTF-8); after it, the
//! variables as JSON (an object, else none); after a second NUL, the operationName
//! (lossy UTF-8, possibly empty). Each input is decided twice, from 10.0.0.1: with the
//! fine-grained fixture token (alice; project 42 `acme/app` selected; `read_issue`,
//! `create_issue`, `read_repository`; from 10.0.0.0/8 only), and with a garbage token
//! (checksum-valid, the fine-grained token's lookup id, another secret).
//!
//! Properties:
//! - nothing panics, and no input runs over libFuzzer's `-timeout` (deep nesting,
//!   fragment bombs and long lists are bounded by the limits);
//! - a `plan` error names `query`, `operationName` or `variables`, and is never
//!   `NoSchema`; a need without a permission has an unresolved boundary;
//! - the answer has one check per need, in order, each naming its need's permission;
//!   `allowed` is `reason == granted`, for the whole and for each check; with checks,
//!   the whole is allowed exactly when every check is (worked out here from `checks`),
//!   and otherwise has the reason of the first check denied; no check without a
//!   permission or with an unresolved boundary is ever allowed;
//! - the garbage token: the whole and every check are denied, `token_invalid`, naming no
//!   token and no user;
//! - the fixture token: an operation that needs nothing is allowed; every check allowed
//!   names token 2 and user 1, and is allowed where the token reaches (checked against
//!   the world, not the engine): on project 42 (`ProjectId(42)`, or a `ProjectPath`
//!   naming `acme/app` in any case) when the token holds every permission the check
//!   requires (the three it was given, or what they imply), or on a public namespace
//!   (group 10 `acme`, project 43 `alice/dotfiles`, by id or path) when every permission
//!   it requires is `public`. Nothing is allowed at the user or the instance, nor at
//!   any other boundary.
#![no_main]

#[path = "world.rs"]
mod world;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use patrol::catalog::graphql::plan::{Boundary, Limits, Need, PlanError, plan};
use patrol::catalog::{Catalog, PermissionId};
use patrol::engine::Reason;
use patrol::secret::{Prefix, assemble};
use patrol::service::{Check, GraphqlChecks, GraphqlOutcome, Outcome, decide};
use world::{FINE_PERMISSIONS, FINE_PROJECT, FINE_TOKEN, NOW, WORLD, World, credential};

/// Where the request comes from: inside the fine-grained token's 10.0.0.0/8.
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// alice, the fine-grained token's user.
const ALICE: u64 = 1;

/// `PATROL_FUZZ_DEBUG=1` prints each plan error and decision (to check what the seeds
/// reach).
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("PATROL_FUZZ_DEBUG").is_some());

/// The fine-grained fixture token, and a garbage one: well-formed and checksum-valid,
/// with the fine-grained token's lookup id and a secret that is not its own.
static TOKENS: LazyLock<(String, String)> = LazyLock::new(|| {
    let w = &*WORLD;
    let Some(fine) = w.tokens.iter().find(|t| t.id == FINE_TOKEN) else {
        panic!("no fixture token {FINE_TOKEN}");
    };
    let garbage = assemble(
        w.prefixes.of(Prefix::Personal),
        fine.lookup_id,
        "NotTheSecretNotTheSecretNotThe",
    );
    assert!(
        credential(w, &garbage).1.is_none(),
        "the garbage token is valid"
    );
    assert!(
        credential(w, &fine.plaintext).1.is_some(),
        "the fixture token is invalid"
    );
    (fine.plaintext.clone(), garbage)
});

/// Where a boundary lies in the fixture world, as far as the fine-grained token goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Project 42 `acme/app` (private): the token's own project.
    Selected,
    /// Group 10 `acme` or project 43 `alice/dotfiles` (public): a visitor's reach.
    Public,
    /// Anything else: the user, the instance, an unresolved boundary, a namespace that
    /// does not exist or a path of the wrong kind.
    Outside,
}

/// Namespace paths are found whatever their ASCII case (`ACME/App` is `acme/app`).
fn reach(boundary: &Boundary) -> Reach {
    let is = |path: &str, full: &str| path.eq_ignore_ascii_case(full);
    match boundary {
        Boundary::ProjectId(id) if *id == FINE_PROJECT => Reach::Selected,
        Boundary::ProjectPath(p) if is(p, "acme/app") => Reach::Selected,
        Boundary::ProjectId(43) | Boundary::GroupId(10) => Reach::Public,
        Boundary::ProjectPath(p) if is(p, "alice/dotfiles") => Reach::Public,
        Boundary::GroupPath(p) if is(p, "acme") => Reach::Public,
        _ => Reach::Outside,
    }
}

/// Whether the fine-grained token holds `id`: one of its permissions, or implied by one.
fn held(catalog: &Catalog, id: PermissionId) -> bool {
    FINE_PERMISSIONS.iter().any(|name| {
        catalog
            .permission_id(name)
            .is_some_and(|own| catalog.permission(own).implied.contains(id))
    })
}

/// Splits at the first NUL: before it, and after it (if there is one).
fn split_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    }
}

/// As `authorize_request`'s `decide_one`: the credential from the presented token.
fn decide_one(w: &World, check: &Check) -> Outcome {
    let (cred, _) = credential(w, &check.token);
    decide(&w.snapshot, check, cred, NOW)
}

/// `Service::authorize_graphql`, with each check decided by `decide_one`.
fn decide_all(w: &World, token: &str, needs: Vec<Need>) -> GraphqlOutcome {
    let catalog = w.snapshot.catalog();
    let checks = GraphqlChecks::new(catalog, token, Some(CLIENT_IP), &needs);
    let outcomes: Vec<Outcome> = checks.checks.iter().map(|c| decide_one(w, c)).collect();
    checks.outcome(catalog, needs, outcomes)
}

/// What holds whatever the token.
fn check_shape(catalog: &Catalog, needs: &[Need], answer: &GraphqlOutcome) {
    let whole = &answer.outcome;
    assert_eq!(
        whole.allowed,
        whole.reason == Reason::Granted,
        "allowed and reason disagree: {whole:?}"
    );
    assert_eq!(answer.checks.len(), needs.len(), "one check per need");
    for (check, need) in answer.checks.iter().zip(needs) {
        assert_eq!(&check.need, need, "checks out of order");
        let o = &check.outcome;
        assert_eq!(
            o.allowed,
            o.reason == Reason::Granted,
            "allowed and reason disagree: {check:?}"
        );
        assert_eq!(
            check.permission.as_deref(),
            need.permission
                .map(|id| catalog.permission(id).name.as_str()),
            "{check:?}"
        );
        if o.allowed {
            assert!(
                check.permission.is_some(),
                "uncovered field allowed: {check:?}"
            );
            assert!(
                !matches!(need.boundary, Boundary::Unresolved(_)),
                "unresolved boundary allowed: {check:?}"
            );
        }
    }
    if !answer.checks.is_empty() {
        let first_denied = answer.checks.iter().find(|c| !c.outcome.allowed);
        assert_eq!(
            whole.allowed,
            first_denied.is_none(),
            "the whole and its checks disagree: {whole:?}"
        );
        if let Some(denied) = first_denied {
            assert_eq!(
                whole.reason, denied.outcome.reason,
                "not the first denial's reason"
            );
        }
    }
}

fn check_garbage(answer: &GraphqlOutcome) {
    let outcomes = std::iter::once(&answer.outcome).chain(answer.checks.iter().map(|c| &c.outcome));
    for o in outcomes {
        assert!(!o.allowed, "garbage token allowed: {o:?}");
        assert_eq!(o.reason, Reason::TokenInvalid, "{o:?}");
        assert_eq!(o.token_id, None, "an invalid token was named");
        assert_eq!(o.user_id, None, "an invalid token's user was named");
    }
}

fn check_fixture(catalog: &Catalog, answer: &GraphqlOutcome) {
    if answer.checks.is_empty() {
        // Only `__typename` or introspection: a valid token from its network is enough.
        assert!(
            answer.outcome.allowed,
            "nothing needed, yet denied: {:?}",
            answer.outcome
        );
    }
    if answer.outcome.allowed {
        assert_eq!(answer.outcome.token_id, Some(FINE_TOKEN));
    }
    for check in answer.checks.iter().filter(|c| c.outcome.allowed) {
        assert_eq!(check.outcome.token_id, Some(FINE_TOKEN), "{check:?}");
        assert_eq!(check.outcome.user_id, Some(ALICE), "{check:?}");
        let Some(id) = check.need.permission else {
            panic!("uncovered field allowed: {check:?}");
        };
        let required = &catalog.permission(id).required;
        match reach(&check.need.boundary) {
            Reach::Selected => {
                if let Some(&missing) = required.iter().find(|&&r| !held(catalog, r)) {
                    panic!(
                        "allowed on project 42 without `{}`: {check:?}",
                        catalog.permission(missing).name
                    );
                }
            }
            Reach::Public => {
                if let Some(&private) = required.iter().find(|&&r| !catalog.permission(r).public) {
                    panic!(
                        "allowed on a public namespace with `{}`, which is not public: {check:?}",
                        catalog.permission(private).name
                    );
                }
            }
            Reach::Outside => panic!("allowed outside the token's reach: {check:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let w = &*WORLD;
    let (fixture, garbage) = &*TOKENS;
    let catalog = w.snapshot.catalog();
    let (query, rest) = split_nul(data);
    let (variables, operation_name) = match rest {
        Some(rest) => split_nul(rest),
        None => (&[][..], None),
    };
    let query = String::from_utf8_lossy(query);
    let variables: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(variables).unwrap_or_default();
    let operation_name = operation_name.map(String::from_utf8_lossy);
    let needs = match plan(
        catalog,
        Limits::default(),
        &query,
        operation_name.as_deref(),
        &variables,
    ) {
        Ok(needs) => needs,
        Err(e) => {
            if *DEBUG {
                eprintln!("plan: {}: {e}", e.field());
            }
            assert!(
                !matches!(e, PlanError::NoSchema),
                "the embedded catalog has a schema"
            );
            assert!(
                matches!(e.field(), "query" | "operationName" | "variables"),
                "plan error names {}: {e}",
                e.field()
            );
            return;
        }
    };
    for need in &needs {
        assert!(
            need.permission.is_some() || matches!(need.boundary, Boundary::Unresolved(_)),
            "a need without a permission has a boundary: {need:?}"
        );
    }

    let answer = decide_all(w, fixture, needs.clone());
    if *DEBUG {
        for c in &answer.checks {
            eprintln!(
                "{} {} {:?} -> {} {}",
                c.need.path,
                c.permission.as_deref().unwrap_or("-"),
                c.need.boundary,
                c.outcome.allowed,
                c.outcome.reason
            );
        }
        eprintln!(
            "operation ({} checks) -> {} {}",
            answer.checks.len(),
            answer.outcome.allowed,
            answer.outcome.reason
        );
    }
    check_shape(catalog, &needs, &answer);
    check_fixture(catalog, &answer);

    let answer = decide_all(w, garbage, needs.clone());
    check_shape(catalog, &needs, &answer);
    check_garbage(&answer);
});
