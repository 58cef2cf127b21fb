//! The minting invariant (DESIGN.md section 4): a token that `engine::exceeds` lets a
//! holder make never allows a decision its maker denies, on any boundary, on random
//! worlds, holders and minting requests, now and after random changes to the directory.
//!
//! The one reason left out is `legacy_token_forbidden`: a top-level group that enforces
//! fine-grained tokens denies a legacy maker for its kind, not for what it may do, and a
//! legacy token making the fine-grained token such a group asks for is the way out of it.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use patrol::domain::{AccessKind, AccessLevel, Visibility};
use patrol::engine::{
    GroupId, GroupSpec, Owner, ProjectId, Reason, Snapshot, Token, TokenId, TokenPolicy, UserId,
    exceeds,
};

use crate::world::{
    MISSING, PERMISSIONS, SCOPES, WKind, WRequest, WScope, WToken, World, grant, group_spec, kind,
    project_spec, snapshot, user_spec, world_and_requests,
};
use crate::{catalog, engine};

/// Minting requests asked of each world.
const MINTS_PER_WORLD: usize = 24;
/// Worlds in the default run: 4,200 x 24 = 100,800 minting cases, each accepted one
/// checked against 16 requests before and after the directory changes.
const WORLDS: u32 = 4_200;
const REQUESTS_PER_WORLD: usize = 16;
/// Ids of minted tokens start here, clear of the world's own.
const MINTED: u64 = 10_000;

/// A minting request: which token of the world asks, and for what.
#[derive(Debug, Clone)]
struct Mint {
    holder: Index,
    wanted: Wanted,
}

/// What is asked for: something made from the holder's own grant (so that many
/// requests are near the edge and accepted), or anything at all.
#[derive(Debug, Clone)]
enum Wanted {
    Derived(Vec<u32>),
    Any(WKind),
}

/// A change to the directory after minting; refused changes are no change.
#[derive(Debug, Clone)]
enum DirChange {
    /// A project moves into a group (`Some`) or into a user's personal namespace.
    MoveProject(Index, Option<Index>, Index),
    /// A group moves below another group, or to the top level.
    MoveGroup(Index, Option<Index>),
    /// A membership is set (a level) or removed (`None`).
    Member(bool, Index, Index, Option<u8>),
    Visibility(bool, Index, Visibility),
    /// A user becomes (or stops being) an administrator, or is blocked.
    User(Index, bool, bool),
    /// A top-level group starts or stops enforcing fine-grained tokens.
    Policy(Index, bool),
}

fn mint() -> impl Strategy<Value = Mint> {
    let wanted = prop_oneof![
        3 => vec(any::<u32>(), 24).prop_map(Wanted::Derived),
        1 => kind(6, 6).prop_map(Wanted::Any),
    ];
    (any::<Index>(), wanted).prop_map(|(holder, wanted)| Mint { holder, wanted })
}

fn dir_change() -> impl Strategy<Value = DirChange> {
    let visibility = select(vec![
        Visibility::Private,
        Visibility::Internal,
        Visibility::Public,
    ]);
    let level = proptest::option::weighted(0.6, select(vec![5u8, 10, 20, 30, 40, 50]));
    prop_oneof![
        (
            any::<Index>(),
            proptest::option::weighted(0.7, any::<Index>()),
            any::<Index>()
        )
            .prop_map(|(p, g, u)| DirChange::MoveProject(p, g, u)),
        (any::<Index>(), proptest::option::of(any::<Index>()))
            .prop_map(|(g, to)| DirChange::MoveGroup(g, to)),
        (any::<bool>(), any::<Index>(), any::<Index>(), level)
            .prop_map(|(group, ns, u, l)| DirChange::Member(group, ns, u, l)),
        (any::<bool>(), any::<Index>(), visibility)
            .prop_map(|(group, ns, v)| DirChange::Visibility(group, ns, v)),
        (any::<Index>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(u, admin, blocked)| DirChange::User(u, admin, blocked)),
        (any::<Index>(), any::<bool>()).prop_map(|(g, on)| DirChange::Policy(g, on)),
    ]
}

/// A small deterministic die over the random numbers a case was given.
struct Dice<'a> {
    rolls: &'a [u32],
    next: usize,
}

impl Dice<'_> {
    fn roll(&mut self, n: usize) -> usize {
        let r = self.rolls.get(self.next % self.rolls.len().max(1)).copied();
        self.next += 1;
        (r.unwrap_or(0) as usize).wrapping_add(self.next) % n.max(1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.roll(100) < percent
    }
}

/// A grant near the holder's own: part of it, sometimes widened by one step (another
/// id, another access kind, one more permission or scope), sometimes of the other kind.
fn derive(holder: &WKind, rolls: &[u32]) -> WKind {
    let mut dice = Dice { rolls, next: 0 };
    let pick_id = |dice: &mut Dice| match dice.roll(8) {
        0 => MISSING,
        n => n as u64,
    };
    let random_permission = |dice: &mut Dice| PERMISSIONS[dice.roll(PERMISSIONS.len())];
    match holder {
        WKind::Legacy(scopes) if !dice.chance(25) => {
            let mut wanted: Vec<&'static str> =
                scopes.iter().copied().filter(|_| dice.chance(60)).collect();
            if wanted.is_empty() || dice.chance(30) {
                wanted.push(SCOPES[dice.roll(SCOPES.len())]);
            }
            WKind::Legacy(wanted)
        }
        WKind::Fine(scopes) if !dice.chance(15) => {
            let mut wanted: Vec<WScope> = Vec::new();
            for scope in scopes {
                if !dice.chance(70) {
                    continue;
                }
                let mut s = scope.clone();
                s.permissions.retain(|_| dice.chance(70));
                if dice.chance(20) {
                    s.permissions.push(random_permission(&mut dice));
                }
                if s.access == AccessKind::SelectedMemberships {
                    s.projects.retain(|_| dice.chance(70));
                    s.groups.retain(|_| dice.chance(70));
                    if dice.chance(25) {
                        s.projects.push(pick_id(&mut dice));
                    }
                    if dice.chance(25) {
                        s.groups.push(pick_id(&mut dice));
                    }
                }
                if dice.chance(10) {
                    s.access = AccessKind::ALL[dice.roll(AccessKind::ALL.len())];
                    if s.access == AccessKind::SelectedMemberships {
                        s.projects.push(pick_id(&mut dice));
                    } else {
                        s.projects.clear();
                        s.groups.clear();
                    }
                }
                s.projects.sort_unstable();
                s.projects.dedup();
                s.groups.sort_unstable();
                s.groups.dedup();
                wanted.push(s);
            }
            if wanted.is_empty() {
                wanted.push(WScope {
                    access: AccessKind::ALL[dice.roll(AccessKind::ALL.len())],
                    projects: vec![pick_id(&mut dice)],
                    groups: Vec::new(),
                    permissions: vec![random_permission(&mut dice)],
                });
            }
            WKind::Fine(wanted)
        }
        // A legacy grant asked of a fine-grained or job holder, and the other way round.
        WKind::Fine(_) | WKind::Job { .. } => WKind::Legacy(vec![SCOPES[dice.roll(SCOPES.len())]]),
        WKind::Legacy(_) => WKind::Fine(vec![WScope {
            access: AccessKind::ALL[dice.roll(AccessKind::ALL.len())],
            projects: vec![pick_id(&mut dice)],
            groups: vec![pick_id(&mut dice)],
            permissions: vec![random_permission(&mut dice), random_permission(&mut dice)],
        }]),
    }
}

/// A `selected_memberships` scope names namespaces; the others name none. (Creation
/// refuses anything else before minting is asked.)
fn well_formed(kind: &mut WKind) {
    if let WKind::Fine(scopes) = kind {
        for s in scopes.iter_mut() {
            if s.access != AccessKind::SelectedMemberships {
                s.projects.clear();
                s.groups.clear();
            }
        }
    }
}

fn apply(snap: &mut Snapshot, world: &World, change: &DirChange) {
    let catalog = catalog();
    let project = |ix: &Index| &world.projects[ix.index(world.projects.len())];
    let group = |ix: &Index| &world.groups[ix.index(world.groups.len())];
    let user = |ix: &Index| &world.users[ix.index(world.users.len())];
    // Refused changes (a cycle, a child more visible than its parent, a path taken, a
    // removed namespace) leave the snapshot as it was.
    let _ = match change {
        DirChange::MoveProject(p, to_group, to_user) => {
            let p = project(p);
            let mut spec = project_spec(&catalog, p);
            spec.namespace = match to_group {
                Some(g) => Owner::Group(GroupId(group(g).id)),
                None => Owner::User(UserId(user(to_user).id)),
            };
            snap.upsert_project(ProjectId(p.id), spec)
        }
        DirChange::MoveGroup(g, to) => {
            let g = group(g);
            let spec = GroupSpec {
                parent: to.as_ref().map(|to| GroupId(group(to).id)),
                ..group_spec(g)
            };
            snap.upsert_group(GroupId(g.id), spec)
        }
        DirChange::Member(on_group, ns, u, level) => {
            let level = level.and_then(|l| AccessLevel::from_number(l.into()));
            let user = UserId(user(u).id);
            if *on_group {
                snap.set_group_member(GroupId(group(ns).id), user, level)
            } else {
                snap.set_project_member(ProjectId(project(ns).id), user, level)
            }
        }
        DirChange::Visibility(on_group, ns, visibility) => {
            if *on_group {
                let g = group(ns);
                let spec = GroupSpec {
                    visibility: *visibility,
                    ..group_spec(g)
                };
                snap.upsert_group(GroupId(g.id), spec)
            } else {
                let p = project(ns);
                let mut spec = project_spec(&catalog, p);
                spec.visibility = *visibility;
                snap.upsert_project(ProjectId(p.id), spec)
            }
        }
        DirChange::User(u, admin, blocked) => {
            let u = user(u);
            let mut spec = user_spec(u, u.name.clone());
            spec.admin = *admin;
            spec.blocked = *blocked;
            snap.upsert_user(UserId(u.id), spec)
        }
        DirChange::Policy(g, on) => snap.set_token_policy(
            GroupId(group(g).id),
            Some(TokenPolicy {
                enforce_fine_grained: *on,
                enforced_after: None,
            }),
        ),
    };
}

/// The tokens a world's holders minted, with what each was asked for.
struct Minted {
    holder: WToken,
    wanted: WKind,
    id: u64,
}

/// Every accepted minted token allows only what its maker allows, in `snap`.
fn within(
    snap: &Snapshot,
    world: &World,
    minted: &[Minted],
    requests: &[WRequest],
    when: &str,
) -> Result<(), TestCaseError> {
    for m in minted {
        for request in requests {
            let as_minted = WRequest {
                token: Some(m.id),
                ..request.clone()
            };
            if !engine(snap, &as_minted).allowed {
                continue;
            }
            let as_holder = WRequest {
                token: Some(m.holder.id),
                ..request.clone()
            };
            let maker = engine(snap, &as_holder);
            prop_assert!(
                maker.allowed || maker.reason == Reason::LegacyTokenForbidden,
                "{when}: a token minted by token {} is allowed what its maker is denied ({})\n\
                 maker: {:?}\nminted: {:?}\nrequest: {:#?}\nworld: {:#?}",
                m.holder.id,
                maker.reason,
                m.holder.kind,
                m.wanted,
                request,
                world
            );
        }
    }
    Ok(())
}

/// Mints what the world's live holders ask for; returns the accepted ones.
fn mint_all(snap: &mut Snapshot, world: &World, mints: &[Mint]) -> Vec<Minted> {
    let catalog = catalog();
    let mut minted = Vec::new();
    for (k, m) in mints.iter().enumerate() {
        let holder = m.holder.get(&world.tokens).clone();
        // A revoked token cannot authenticate to ask.
        if holder.revoked {
            continue;
        }
        let mut wanted = match &m.wanted {
            Wanted::Derived(rolls) => derive(&holder.kind, rolls),
            Wanted::Any(kind) => kind.clone(),
        };
        well_formed(&mut wanted);
        if matches!(wanted, WKind::Job { .. }) {
            continue;
        }
        let grant = grant(&catalog, &wanted, 0);
        let Some(maker) = snap.token(TokenId(holder.id)).cloned() else {
            continue;
        };
        if exceeds(snap, &maker, &grant).is_some() {
            continue;
        }
        let id = MINTED + k as u64;
        // The service keeps addresses and expiry within the maker's; here they are equal.
        snap.insert_token(Token {
            id: TokenId(id),
            user_id: maker.user_id,
            revoked: false,
            expires_at: maker.expires_at,
            allowed_ips: maker.allowed_ips.clone(),
            grant,
        });
        minted.push(Minted { holder, wanted, id });
    }
    minted
}

fn case_strategy() -> impl Strategy<Value = ((World, Vec<WRequest>), Vec<Mint>, Vec<DirChange>)> {
    (
        world_and_requests(REQUESTS_PER_WORLD),
        vec(mint(), MINTS_PER_WORLD),
        vec(dir_change(), 1..8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: WORLDS,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    })]

    /// 4,200 worlds x 24 minting requests = 100,800 cases.
    #[test]
    fn a_minted_token_never_allows_what_its_maker_denies(
        ((world, requests), mints, changes) in case_strategy()
    ) {
        let catalog = catalog();
        let mut snap = snapshot(&catalog, &world);
        let minted = mint_all(&mut snap, &world, &mints);
        within(&snap, &world, &minted, &requests, "at minting")?;
        for change in &changes {
            apply(&mut snap, &world, change);
        }
        within(&snap, &world, &minted, &requests, &format!("after {changes:?}"))?;
    }
}

/// The property is not vacuous: across 300 worlds many minting requests are accepted,
/// of both kinds, and their tokens are allowed decisions, before and after changes.
#[test]
fn minting_cases_accept_and_allow() {
    let catalog = catalog();
    let mut runner = TestRunner::deterministic();
    let strategy = case_strategy();
    let (mut asked, mut accepted, mut legacy, mut fine, mut allowed) = (0, 0, 0, 0, 0);
    for _ in 0..300 {
        let ((world, requests), mints, _) = strategy.new_tree(&mut runner).unwrap().current();
        let mut snap = snapshot(&catalog, &world);
        asked += mints.len();
        let minted = mint_all(&mut snap, &world, &mints);
        accepted += minted.len();
        for m in &minted {
            match m.wanted {
                WKind::Legacy(_) => legacy += 1,
                _ => fine += 1,
            }
            allowed += requests
                .iter()
                .filter(|r| {
                    let r = WRequest {
                        token: Some(m.id),
                        ..(*r).clone()
                    };
                    engine(&snap, &r).allowed
                })
                .count();
        }
    }
    assert!(
        accepted * 5 > asked && legacy > 50 && fine > 200 && allowed > 500,
        "asked {asked}, accepted {accepted} ({legacy} legacy, {fine} fine-grained), \
         minted tokens allowed {allowed} decisions"
    );
}
