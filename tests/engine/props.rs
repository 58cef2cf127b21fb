//! Engine and model agree on random worlds; and the invariants of docs/decisions.md hold
//! (checked on the engine alone, whatever the model says).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use patrol::catalog::RouteKind;
use patrol::engine::{Reason, Snapshot};

use crate::world::{WAction, WKind, WRequest, WToken, World, snapshot, world_and_requests};
use crate::{catalog, engine, model};

/// Requests asked of each random world.
const REQUESTS_PER_WORLD: usize = 32;
/// Worlds in the default differential run: 20,000 x 32 = 640,000 decisions compared
/// (about 1.5 s with the test profile).
const WORLDS: u32 = 20_000;
/// Worlds in the long run (`cargo test --test engine -- --ignored`): 20x more,
/// 400,000 x 32 = 12,800,000 decisions (about 30 s).
const WORLDS_LONG: u32 = 400_000;
/// Worlds for each invariant property: 1,500 x 32 = 48,000 decisions each.
const WORLDS_INVARIANTS: u32 = 1_500;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    }
}

fn describe(world: &World, request: &WRequest) -> String {
    format!("request: {request:#?}\nworld: {world:#?}")
}

/// Engine and model give the same reason, the same failed permission, and the same
/// `allowed`, for every request.
fn agree(world: &World, requests: &[WRequest]) -> Result<(), TestCaseError> {
    let catalog = catalog();
    let snap = snapshot(&catalog, world);
    for request in requests {
        let decision = engine(&snap, request);
        let verdict = model::decide(&catalog, world, request);
        let failed = decision
            .failed
            .map(|id| catalog.permission(id).name.clone());
        prop_assert_eq!(
            (decision.reason, &failed, decision.allowed),
            (verdict.reason, &verdict.failed, verdict.allowed()),
            "engine (left) and model (right) disagree\n{}",
            describe(world, request)
        );
    }
    Ok(())
}

/// The same world without any fine-grained enforcement, with one unrestricted legacy
/// token (`api` + `admin_mode`, no expiry, no IP list) per user, id `1000 + user id`.
fn with_unrestricted_tokens(world: &World) -> World {
    let mut free = world.clone();
    for g in &mut free.groups {
        g.policy = None;
    }
    for u in &world.users {
        free.tokens.push(WToken {
            id: 1000 + u.id,
            user: u.id,
            revoked: false,
            expires_at: None,
            ips: Vec::new(),
            kind: WKind::Legacy(vec!["api", "admin_mode"]),
        });
    }
    free
}

/// (a) A token never exceeds its user: whenever the engine allows a token, the user's
/// unrestricted legacy token is allowed the same request, in the same world without
/// fine-grained enforcement (step 9 aside).
fn never_exceeds_user(world: &World, requests: &[WRequest]) -> Result<(), TestCaseError> {
    let catalog = catalog();
    let snap = snapshot(&catalog, world);
    let mut free: Option<(World, Snapshot)> = None;
    for request in requests {
        if !engine(&snap, request).allowed {
            continue;
        }
        let token = world
            .tokens
            .iter()
            .find(|t| Some(t.id) == request.token)
            .unwrap();
        let (free_world, free_snap) = free.get_or_insert_with(|| {
            let w = with_unrestricted_tokens(world);
            let s = snapshot(&catalog, &w);
            (w, s)
        });
        let as_user = WRequest {
            token: Some(1000 + token.user),
            ..request.clone()
        };
        let decision = engine(free_snap, &as_user);
        prop_assert!(
            decision.allowed,
            "token {} ({:?}) is allowed, its user's unrestricted legacy token is not ({})\n{}",
            token.id,
            token.kind,
            decision.reason,
            describe(free_world, request)
        );
    }
    Ok(())
}

/// (b) Revoked, expired, blocked-user (or unknown-user) and invalid credentials never
/// allow; nor does a job token of a project that is gone.
fn dead_stay_dead(world: &World, requests: &[WRequest]) -> Result<(), TestCaseError> {
    let catalog = catalog();
    let snap = snapshot(&catalog, world);
    for request in requests {
        let token = request
            .token
            .and_then(|id| world.tokens.iter().find(|t| t.id == id));
        let dead = match token {
            None => true,
            Some(t) => {
                t.revoked
                    || t.expires_at.is_some_and(|at| request.now >= at)
                    || !world.users.iter().any(|u| u.id == t.user && !u.blocked)
                    || matches!(t.kind, WKind::Job { project }
                        if !world.projects.iter().any(|p| p.id == project && !p.deleted))
            }
        };
        if dead {
            let decision = engine(&snap, request);
            prop_assert!(
                !decision.allowed,
                "a dead credential was allowed\n{}",
                describe(world, request)
            );
        }
    }
    Ok(())
}

/// (c) Allowed if and only if the reason is `granted`; (d) an allow lists exactly the
/// required permissions `R` (from the catalog: the permission or route's `required`),
/// which are empty only for a skipped route; a failed permission is one of `R`.
fn reasons_and_required(world: &World, requests: &[WRequest]) -> Result<(), TestCaseError> {
    let catalog = catalog();
    let snap = snapshot(&catalog, world);
    for request in requests {
        let decision = engine(&snap, request);
        prop_assert_eq!(
            decision.allowed,
            decision.reason == Reason::Granted,
            "allowed and reason disagree\n{}",
            describe(world, request)
        );
        let (expected, skipped): (Vec<&str>, bool) = match &request.action {
            WAction::Permission(name) => match catalog.permission_by_name(name) {
                Some(p) => (
                    p.required
                        .iter()
                        .map(|&id| catalog.permission(id).name.as_str())
                        .collect(),
                    false,
                ),
                None => (Vec::new(), false),
            },
            WAction::Route(method, path) => {
                match catalog.routes.resolve(method, &crate::routed(path)) {
                    Some(found) => (
                        found
                            .required
                            .iter()
                            .map(|&id| catalog.permission(id).name.as_str())
                            .collect(),
                        matches!(found.entry.kind, RouteKind::Skipped { .. }),
                    ),
                    None => (Vec::new(), false),
                }
            }
        };
        if decision.allowed {
            let got: Vec<&str> = decision.required_names(&catalog).collect();
            prop_assert_eq!(
                &got,
                &expected,
                "an allow lists what it required\n{}",
                describe(world, request)
            );
            prop_assert!(
                skipped || !got.is_empty(),
                "an allow of a protected action required nothing\n{}",
                describe(world, request)
            );
        }
        if let Some(failed) = decision.failed {
            let name = catalog.permission(failed).name.as_str();
            prop_assert!(
                expected.contains(&name),
                "failed `{}` is not required\n{}",
                name,
                describe(world, request)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(WORLDS))]

    /// The differential test: 20,000 worlds x 32 requests = 640,000 decisions.
    #[test]
    fn engine_agrees_with_the_reference_model(
        (world, requests) in world_and_requests(REQUESTS_PER_WORLD)
    ) {
        agree(&world, &requests)?;
    }
}

proptest! {
    #![proptest_config(config(WORLDS_LONG))]

    /// The long run: 400,000 worlds x 32 requests = 12,800,000 decisions.
    #[test]
    #[ignore = "long run: cargo test --test engine -- --ignored"]
    fn engine_agrees_with_the_reference_model_long(
        (world, requests) in world_and_requests(REQUESTS_PER_WORLD)
    ) {
        agree(&world, &requests)?;
    }
}

proptest! {
    #![proptest_config(config(WORLDS_INVARIANTS))]

    #[test]
    fn a_token_never_exceeds_its_user(
        (world, requests) in world_and_requests(REQUESTS_PER_WORLD)
    ) {
        never_exceeds_user(&world, &requests)?;
    }

    #[test]
    fn dead_credentials_never_allow(
        (world, requests) in world_and_requests(REQUESTS_PER_WORLD)
    ) {
        dead_stay_dead(&world, &requests)?;
    }

    #[test]
    fn allowed_iff_granted_and_allows_list_what_they_required(
        (world, requests) in world_and_requests(REQUESTS_PER_WORLD)
    ) {
        reasons_and_required(&world, &requests)?;
    }
}

/// The generator is not vacuous: across 500 worlds every reason comes up, and
/// every kind of token is both granted and denied, so agreement is tested on every path.
#[test]
fn random_worlds_reach_every_reason() {
    let catalog = catalog();
    let mut runner = TestRunner::deterministic();
    let strategy = world_and_requests(REQUESTS_PER_WORLD);
    let mut seen: BTreeMap<Reason, u32> = BTreeMap::new();
    let mut by_kind: BTreeSet<(&str, bool)> = BTreeSet::new();
    for _ in 0..500 {
        let (world, requests) = strategy.new_tree(&mut runner).unwrap().current();
        let snap = snapshot(&catalog, &world);
        for request in &requests {
            let decision = engine(&snap, request);
            *seen.entry(decision.reason).or_default() += 1;
            if let Some(t) = world.tokens.iter().find(|t| Some(t.id) == request.token) {
                let kind = match t.kind {
                    WKind::Legacy(_) => "legacy",
                    WKind::Fine(_) => "fine-grained",
                    WKind::Job { .. } => "job",
                };
                by_kind.insert((kind, decision.allowed));
            }
        }
    }
    // Each reason at least 10 times in 16,000 decisions (the rarest, confidential_resource,
    // comes up about 40 times).
    let rare: Vec<_> = Reason::ALL
        .iter()
        .filter(|r| seen.get(r).copied().unwrap_or(0) < 10)
        .collect();
    assert!(
        rare.is_empty(),
        "rarely or never reached: {rare:?}; seen: {seen:?}"
    );
    assert_eq!(by_kind.len(), 6, "kinds x outcomes reached: {by_kind:?}");
}
