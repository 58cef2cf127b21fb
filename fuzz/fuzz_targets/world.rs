//! The fixture world the decision targets share (`authorize_request`,
//! `graphql_request`): a snapshot of the embedded catalog with two users, a group, a
//! private project, a public personal project and six tokens, and the credential a
//! presented token string comes to. Each fuzz target is a crate root of its own and
//! includes this file with `#[path = "world.rs"] mod world;`.
//!
//! The world:
//! - users `alice` (1) and `root` (2, an admin);
//! - the public Premium group `acme` (10), in which alice is a reporter;
//! - the private project `acme/app` (42), in which alice is a developer;
//! - alice's public personal project `alice/dotfiles` (43);
//! - the tokens of `TOKENS`.
#![allow(
    dead_code,
    reason = "shared by several fuzz targets, each of which uses part of it"
)]

use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use patrol::catalog::{Catalog, load_embedded};
use patrol::domain::{AccessKind, AccessLevel, Plan, Visibility};
use patrol::engine::{
    Credential, Grant, GranularScope, GroupId, GroupSpec, Owner, ProjectId, ProjectSpec, Snapshot,
    Token, TokenId, User, UserId,
};
use patrol::secret::{Prefix, Prefixes, SecretDigest, assemble, parse};

/// Unix seconds the decisions are made at (fixed: runs are reproducible).
pub const NOW: i64 = 1_800_000_000;

/// A fixture token: what the snapshot holds and what a caller presents.
pub struct Fixture {
    pub id: u64,
    pub kind: Prefix,
    pub lookup_id: &'static str,
    pub secret: &'static str,
    pub plaintext: String,
    /// Whether the snapshot may ever allow it.
    pub usable: bool,
}

pub struct World {
    pub snapshot: Snapshot,
    pub prefixes: Prefixes,
    pub tokens: Vec<Fixture>,
}

/// The fixture tokens; fuzz/seeds/authorize_request/ and fuzz/seeds/graphql_request/
/// hold their plaintexts (fuzz/make_seeds.py `FIXTURE`).
pub const TOKENS: [(u64, Prefix, &str, &str, bool); 6] = [
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

/// The fine-grained token (id 2): the one project it selects, and its permissions.
pub const FINE_TOKEN: u64 = 2;
pub const FINE_PROJECT: u64 = 42;
pub const FINE_PERMISSIONS: [&str; 3] = ["read_issue", "create_issue", "read_repository"];

pub static WORLD: LazyLock<World> = LazyLock::new(world);

pub fn world() -> World {
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
        [ProjectId(FINE_PROJECT)],
        [],
        FINE_PERMISSIONS,
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
pub fn credential<'w>(w: &'w World, presented: &str) -> (Credential, Option<&'w Fixture>) {
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
