//! Engine and model agree on random worlds; and the invariants of docs/decisions.md hold.

use proptest::prelude::*;

use patrol::engine::Reason;

use crate::world::{Rng, WAction, WBoundary, WKind, WRequest, WToken, World, snapshot};
use crate::{catalog, engine, model};

/// Requests asked of each random world.
const REQUESTS_PER_WORLD: usize = 25;

/// Runs `worlds` random worlds of `REQUESTS_PER_WORLD` requests each; the seed names the
/// world, so a failure prints a seed that reproduces it.
fn agree(seed: u64) -> Result<(), TestCaseError> {
    let catalog = catalog();
    let mut rng = Rng::new(seed);
    let world = World::random(&mut rng);
    let snap = snapshot(&catalog, &world);
    for _ in 0..REQUESTS_PER_WORLD {
        let request = world.random_request(&mut rng);
        let decision = engine(&snap, &request);
        let (reason, failed) = model::decide(&catalog, &world, &request);
        let engine_failed = decision
            .failed
            .map(|id| catalog.permission(id).name.clone());
        prop_assert_eq!(
            (decision.reason, &engine_failed),
            (reason, &failed),
            "engine vs model disagree (seed {}) on {:#?}\nworld: {:#?}",
            seed,
            request,
            world
        );
        // Invariants that hold whatever the model says.
        prop_assert_eq!(decision.allowed, decision.reason == Reason::Granted);
        if decision.allowed
            && !matches!(&request.action, WAction::Route(_, p) if p == "/api/v4/version")
        {
            prop_assert!(
                !decision.required.is_empty(),
                "an allow names what it required"
            );
        }
        let token = request
            .token
            .and_then(|id| world.tokens.iter().find(|t| t.id == id));
        let user = token.and_then(|t| world.users.iter().find(|u| u.id == t.user));
        if token.is_none_or(|t| t.revoked || t.expires_at.is_some_and(|at| request.now >= at))
            || user.is_none_or(|u| u.blocked)
        {
            prop_assert!(!decision.allowed, "dead tokens never allow");
        }
        if decision.allowed {
            if let Some(token) = token {
                never_exceeds_user(&world, token, &request)?;
            }
        }
    }
    Ok(())
}

/// A token never does more than its user: the same request through an unrestricted
/// legacy token (api + admin_mode) of the same user, on a world without fine-grained
/// enforcement, is allowed too.
fn never_exceeds_user(
    world: &World,
    token: &WToken,
    request: &WRequest,
) -> Result<(), TestCaseError> {
    let mut free = world.clone();
    for g in &mut free.groups {
        g.policy = None;
    }
    let id = free.tokens.iter().map(|t| t.id).max().unwrap_or(0) + 1;
    free.tokens.push(WToken {
        id,
        user: token.user,
        revoked: false,
        expires_at: None,
        ips: Vec::new(),
        kind: WKind::Legacy(vec!["api", "admin_mode"]),
    });
    if matches!(token.kind, WKind::Job { .. })
        && matches!(
            request.boundary,
            Some(WBoundary::User | WBoundary::Instance)
        )
    {
        return Ok(());
    }
    let snap = snapshot(&catalog(), &free);
    let as_user = WRequest {
        token: Some(id),
        ..request.clone()
    };
    let decision = engine(&snap, &as_user);
    prop_assert!(
        decision.allowed,
        "token {} was allowed {:?} but its user is not ({})",
        token.id,
        request.action,
        decision.reason
    );
    Ok(())
}

proptest! {
    // 4,000 worlds x 25 requests = 100,000 decisions compared per default run.
    #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn engine_agrees_with_the_reference_model(seed in any::<u64>()) {
        agree(seed)?;
    }
}

proptest! {
    // The long run: `cargo test --test engine -- --ignored` (2,000,000 decisions).
    #![proptest_config(ProptestConfig { cases: 80_000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    #[ignore = "long run"]
    fn engine_agrees_with_the_reference_model_long(seed in any::<u64>()) {
        agree(seed)?;
    }
}

/// The generator is not vacuous: across a few hundred worlds it reaches every reason,
/// so the agreement above is tested on every path of the decision.
#[test]
fn random_worlds_reach_every_reason() {
    let catalog = catalog();
    let mut seen = std::collections::BTreeMap::new();
    for seed in 0..400u64 {
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let world = World::random(&mut rng);
        let snap = snapshot(&catalog, &world);
        for _ in 0..REQUESTS_PER_WORLD {
            let decision = engine(&snap, &world.random_request(&mut rng));
            *seen.entry(decision.reason).or_insert(0u32) += 1;
        }
    }
    let missing: Vec<_> = Reason::ALL
        .iter()
        .filter(|r| !seen.contains_key(r))
        .collect();
    assert!(
        missing.is_empty(),
        "never reached: {missing:?}; seen: {seen:?}"
    );
}
