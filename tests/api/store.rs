//! The store conformance suite: every store method, called directly, behaves the same on
//! SQLite and Postgres.

use patrol::audit::NewAuditEvent;
use patrol::directory::{
    DisplayName, Group, MemberOf, Membership, PathSegment, Project, ProjectOwner, TokenPolicy, User,
};
use patrol::domain::{AccessKind, AccessLevel, FeatureAccess, Plan, Visibility};
use patrol::jobs::{AllowlistRecord, JobTokenScopeRecord, SourceKind};
use patrol::keys::{KeyRole, NewServiceKey};
use patrol::settings::InstanceSettings;
use patrol::store::{AuditFilter, Holds, Store, StoreError, TokenFilter};
use patrol::tokens::{JobRef, NewTokenRecord, Scope, TokenKind, TokenState};

use crate::on_both_backends;
use crate::support::{Backend, TestDb};

on_both_backends!(
    directory_round_trips,
    deletes_take_memberships_and_policies_with_them,
    tokens_round_trip_and_filter,
    revocation_is_once,
    service_keys_round_trip,
    settings_round_trip,
    unique_rules_are_conflicts,
    an_uncommitted_transaction_writes_nothing,
    migrations_are_idempotent,
    job_tokens_round_trip,
    job_token_scopes_and_allowlists_round_trip,
    audit_events_round_trip_in_order,
);

/// A migrated store on a fresh database; the database is removed by `finish`.
async fn open(backend: Backend) -> (Store, TestDb) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let expected = match db.backend {
        Backend::Sqlite => patrol::store::Backend::Sqlite,
        Backend::Postgres => patrol::store::Backend::Postgres,
    };
    assert_eq!(store.backend(), expected);
    (store, db)
}

async fn finish(store: Store, db: TestDb) {
    store.close().await;
    db.remove().await;
}

fn user(name: &str) -> User {
    User {
        username: PathSegment::parse(name, "username").unwrap(),
        blocked: false,
        admin: false,
    }
}

fn group(parent_id: Option<u64>, path: &str, visibility: Visibility) -> Group {
    Group {
        parent_id,
        path: PathSegment::parse(path, "path").unwrap(),
        name: DisplayName::parse(&path.to_uppercase()).unwrap(),
        visibility,
        plan: Plan::Free,
    }
}

fn project(namespace: ProjectOwner, path: &str, features: &[(&str, FeatureAccess)]) -> Project {
    Project::restore(
        namespace,
        PathSegment::parse(path, "path").unwrap(),
        DisplayName::parse(&format!("The {path}")).unwrap(),
        Visibility::Private,
        features
            .iter()
            .map(|&(name, access)| (name.to_owned(), access))
            .collect(),
    )
}

fn member(of: MemberOf, namespace_id: u64, user_id: u64, level: AccessLevel) -> Membership {
    Membership {
        of,
        namespace_id,
        user_id,
        access_level: level,
    }
}

fn date(text: &str) -> time::Date {
    patrol::clock::parse_date(text).unwrap()
}

fn token_row(user_id: u64, name: &str, lookup_id: &str) -> NewTokenRecord {
    NewTokenRecord {
        user_id,
        kind: TokenKind::Legacy,
        name: name.to_owned(),
        description: String::new(),
        lookup_id: lookup_id.to_owned(),
        secret_hash: format!("$argon2id$hash-of-{lookup_id}"),
        scopes: vec!["api".to_owned()],
        granular_scopes: Vec::new(),
        allowed_ips: Vec::new(),
        created_at: 1_700_000_000,
        expires_at: Some(date("2030-01-01")),
        job: None,
        family_id: None,
    }
}

fn filter() -> TokenFilter {
    TokenFilter {
        page: 1,
        per_page: 100,
        ..TokenFilter::default()
    }
}

async fn directory_round_trips(backend: Backend) {
    let (store, db) = open(backend).await;
    assert_eq!(
        store.load_directory().await.unwrap(),
        Default::default(),
        "starts empty"
    );

    let mut blocked = user("carol");
    blocked.blocked = true;
    let mut admin = user("root");
    admin.admin = true;
    // The child group has the lower id: loading must still put its parent first.
    let mut parent = group(None, "acme", Visibility::Public);
    parent.plan = Plan::Ultimate;
    let child = group(Some(9), "web", Visibility::Internal);
    let site = project(
        ProjectOwner::Group(2),
        "site",
        &[
            ("issues", FeatureAccess::Private),
            ("wiki", FeatureAccess::Disabled),
        ],
    );
    let notes = project(ProjectOwner::User(1), "notes", &[]);
    let policy = TokenPolicy {
        enforce_fine_grained: true,
        enforced_after: Some(time::macros::date!(2026 - 01 - 01)),
    };

    let mut tx = store.begin().await.unwrap();
    tx.put_user(1, &user("alice")).await.unwrap();
    tx.put_user(3, &admin).await.unwrap();
    tx.put_user(4, &blocked).await.unwrap();
    tx.put_group(9, &parent).await.unwrap();
    tx.put_group(2, &child).await.unwrap();
    tx.put_project(43, &site).await.unwrap();
    tx.put_project(45, &notes).await.unwrap();
    tx.put_member(&member(MemberOf::Group, 9, 1, AccessLevel::DEVELOPER))
        .await
        .unwrap();
    tx.put_member(&member(MemberOf::Project, 43, 4, AccessLevel::GUEST))
        .await
        .unwrap();
    tx.put_token_policy(9, &policy).await.unwrap();
    tx.commit().await.unwrap();

    let dump = store.load_directory().await.unwrap();
    assert_eq!(dump.users, [(1, user("alice")), (3, admin), (4, blocked)]);
    assert_eq!(dump.groups, [(9, parent), (2, child)], "parents first");
    assert_eq!(dump.projects, [(43, site), (45, notes)]);
    assert_eq!(
        dump.memberships,
        [
            member(MemberOf::Group, 9, 1, AccessLevel::DEVELOPER),
            member(MemberOf::Project, 43, 4, AccessLevel::GUEST),
        ]
    );
    assert_eq!(dump.token_policies, [(9, policy)]);

    // A put replaces: a changed username, a new access level, a lifted policy.
    let mut tx = store.begin().await.unwrap();
    tx.put_user(1, &user("alice2")).await.unwrap();
    tx.put_member(&member(MemberOf::Group, 9, 1, AccessLevel::OWNER))
        .await
        .unwrap();
    let lifted = TokenPolicy {
        enforce_fine_grained: false,
        enforced_after: None,
    };
    tx.put_token_policy(9, &lifted).await.unwrap();
    tx.commit().await.unwrap();
    let dump = store.load_directory().await.unwrap();
    assert_eq!(dump.users[0].1.username.as_str(), "alice2");
    assert_eq!(dump.memberships[0].access_level, AccessLevel::OWNER);
    assert_eq!(dump.memberships.len(), 2);
    assert_eq!(dump.token_policies, [(9, lifted)]);
    finish(store, db).await;
}

async fn deletes_take_memberships_and_policies_with_them(backend: Backend) {
    let (store, db) = open(backend).await;
    let mut tx = store.begin().await.unwrap();
    tx.put_user(1, &user("alice")).await.unwrap();
    tx.put_user(2, &user("bob")).await.unwrap();
    tx.put_group(7, &group(None, "acme", Visibility::Private))
        .await
        .unwrap();
    tx.put_project(42, &project(ProjectOwner::Group(7), "app", &[]))
        .await
        .unwrap();
    tx.put_member(&member(MemberOf::Group, 7, 1, AccessLevel::DEVELOPER))
        .await
        .unwrap();
    tx.put_member(&member(MemberOf::Group, 7, 2, AccessLevel::GUEST))
        .await
        .unwrap();
    tx.put_member(&member(MemberOf::Project, 42, 2, AccessLevel::REPORTER))
        .await
        .unwrap();
    tx.put_token_policy(
        7,
        &TokenPolicy {
            enforce_fine_grained: true,
            enforced_after: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_member(MemberOf::Group, 7, 1).await.unwrap());
    assert!(
        !tx.delete_member(MemberOf::Group, 7, 1).await.unwrap(),
        "already gone"
    );
    assert!(tx.delete_user(2).await.unwrap());
    assert!(!tx.delete_user(2).await.unwrap());
    tx.commit().await.unwrap();
    let dump = store.load_directory().await.unwrap();
    assert!(dump.memberships.is_empty(), "{:?}", dump.memberships);
    assert_eq!(dump.users.len(), 1);

    let mut tx = store.begin().await.unwrap();
    assert!(tx.delete_project(42).await.unwrap());
    assert!(!tx.delete_project(42).await.unwrap());
    assert!(tx.delete_group(7).await.unwrap());
    assert!(!tx.delete_group(7).await.unwrap());
    tx.commit().await.unwrap();
    let dump = store.load_directory().await.unwrap();
    assert!(dump.groups.is_empty() && dump.projects.is_empty());
    assert!(
        dump.token_policies.is_empty(),
        "the policy goes with its group"
    );
    finish(store, db).await;
}

async fn tokens_round_trip_and_filter(backend: Backend) {
    let (store, db) = open(backend).await;
    let fine = NewTokenRecord {
        kind: TokenKind::FineGrained,
        description: "CI reader".to_owned(),
        scopes: Vec::new(),
        granular_scopes: vec![Scope {
            access: AccessKind::SelectedMemberships,
            project_ids: vec![42],
            group_ids: vec![7, 8],
            permissions: vec!["read_issue".to_owned(), "read_code".to_owned()],
        }],
        allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
        expires_at: None,
        ..token_row(1, "Fine_100%", "lookupfine0000000001")
    };
    let rows = [
        token_row(1, "Alpha", "lookupalpha000000001"),
        token_row(2, "beta", "lookupbeta0000000001"),
        NewTokenRecord {
            expires_at: Some(date("2026-01-01")),
            ..token_row(1, "Expired alpha", "lookupexpired0000001")
        },
        fine.clone(),
    ];
    let mut ids = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for row in &rows {
        ids.push(tx.insert_token(row).await.unwrap());
    }
    tx.commit().await.unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    let record = store
        .token_by_lookup("lookupfine0000000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id, ids[3]);
    assert_eq!(
        (
            record.user_id,
            record.kind,
            record.name.as_str(),
            record.description.as_str()
        ),
        (1, TokenKind::FineGrained, "Fine_100%", "CI reader")
    );
    assert_eq!(record.secret_hash, fine.secret_hash);
    assert_eq!(record.granular_scopes, fine.granular_scopes);
    assert_eq!(record.allowed_ips, fine.allowed_ips);
    assert!(record.scopes.is_empty());
    assert_eq!(
        (record.created_at, record.expires_at),
        (1_700_000_000, None)
    );
    assert!(!record.revoked && record.revoked_at.is_none());
    assert!(record.last_used_at.is_none() && record.last_used_ips.is_empty());
    assert_eq!(store.token(ids[3]).await.unwrap().as_ref(), Some(&record));
    assert!(
        store
            .token_by_lookup("lookupnone0000000001")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.token(9_999).await.unwrap().is_none());

    let mut tx = store.begin().await.unwrap();
    assert!(tx.revoke_token(ids[1], 1_700_000_500).await.unwrap());
    tx.commit().await.unwrap();

    let today = "2026-06-01";
    let names = |(records, _): &(Vec<patrol::tokens::TokenRecord>, u64)| -> Vec<String> {
        records.iter().map(|r| r.name.clone()).collect()
    };
    let cases: Vec<(&str, time::Date, TokenFilter, Vec<&str>, u64)> = vec![
        (
            "all, newest first",
            date(today),
            filter(),
            vec!["Fine_100%", "Expired alpha", "beta", "Alpha"],
            4,
        ),
        (
            "by user",
            date(today),
            TokenFilter {
                user_id: Some(2),
                ..filter()
            },
            vec!["beta"],
            1,
        ),
        (
            "by kind",
            date(today),
            TokenFilter {
                kind: Some(TokenKind::FineGrained),
                ..filter()
            },
            vec!["Fine_100%"],
            1,
        ),
        (
            "active: not revoked, not expired",
            date(today),
            TokenFilter {
                state: Some(TokenState::Active),
                ..filter()
            },
            vec!["Fine_100%", "Alpha"],
            2,
        ),
        (
            "inactive: revoked or expired",
            date(today),
            TokenFilter {
                state: Some(TokenState::Inactive),
                ..filter()
            },
            vec!["Expired alpha", "beta"],
            2,
        ),
        (
            "a token expires at 00:00 UTC of its date",
            date("2026-01-01"),
            TokenFilter {
                state: Some(TokenState::Active),
                ..filter()
            },
            vec!["Fine_100%", "Alpha"],
            2,
        ),
        (
            "the day before, it is active",
            date("2025-12-31"),
            TokenFilter {
                state: Some(TokenState::Active),
                ..filter()
            },
            vec!["Fine_100%", "Expired alpha", "Alpha"],
            3,
        ),
        (
            "search ignores case",
            date(today),
            TokenFilter {
                search: Some("ALPHA".to_owned()),
                ..filter()
            },
            vec!["Expired alpha", "Alpha"],
            2,
        ),
        (
            "search is literal: %",
            date(today),
            TokenFilter {
                search: Some("100%".to_owned()),
                ..filter()
            },
            vec!["Fine_100%"],
            1,
        ),
        (
            "search is literal: _",
            date(today),
            TokenFilter {
                search: Some("e_1".to_owned()),
                ..filter()
            },
            vec!["Fine_100%"],
            1,
        ),
        (
            "search, no match",
            date(today),
            TokenFilter {
                search: Some("a%a".to_owned()),
                ..filter()
            },
            vec![],
            0,
        ),
        (
            "page 2 of 3",
            date(today),
            TokenFilter {
                page: 2,
                per_page: 3,
                ..filter()
            },
            vec!["Alpha"],
            4,
        ),
        (
            "past the end",
            date(today),
            TokenFilter {
                page: 9,
                per_page: 3,
                ..filter()
            },
            vec![],
            4,
        ),
        (
            "filters combine",
            date(today),
            TokenFilter {
                user_id: Some(1),
                kind: Some(TokenKind::Legacy),
                state: Some(TokenState::Active),
                ..filter()
            },
            vec!["Alpha"],
            1,
        ),
        (
            "by access kind",
            date(today),
            TokenFilter {
                access: Some(AccessKind::SelectedMemberships),
                ..filter()
            },
            vec!["Fine_100%"],
            1,
        ),
        (
            "no token has this access kind",
            date(today),
            TokenFilter {
                access: Some(AccessKind::Instance),
                ..filter()
            },
            vec![],
            0,
        ),
        (
            "holding a permission through a legacy scope or a granular scope",
            date(today),
            TokenFilter {
                holds: Some(Holds {
                    scopes: vec!["api".to_owned()],
                    permissions: vec!["read_code".to_owned()],
                }),
                ..filter()
            },
            vec!["Fine_100%", "Expired alpha", "beta", "Alpha"],
            4,
        ),
        (
            "a granular permission matches whole names only",
            date(today),
            TokenFilter {
                holds: Some(Holds {
                    scopes: vec![],
                    permissions: vec!["read_cod".to_owned(), "issue".to_owned()],
                }),
                ..filter()
            },
            vec![],
            0,
        ),
        (
            "nothing grants it",
            date(today),
            TokenFilter {
                holds: Some(Holds::default()),
                ..filter()
            },
            vec![],
            0,
        ),
        (
            "expiring in a range (no expiry: outside every range)",
            date(today),
            TokenFilter {
                expires_after: Some(date("2026-01-01")),
                expires_before: Some(date("2030-01-01")),
                ..filter()
            },
            vec!["Expired alpha"],
            1,
        ),
        (
            "never used: outside every last-use range",
            date(today),
            TokenFilter {
                last_used_after: Some(date("1970-01-01")),
                ..filter()
            },
            vec![],
            0,
        ),
        (
            "personal tokens only, not revoked",
            date(today),
            TokenFilter {
                personal: true,
                revoked: Some(false),
                ..filter()
            },
            vec!["Fine_100%", "Expired alpha", "Alpha"],
            3,
        ),
    ];
    for (case, today, filter, expected, total) in cases {
        let page = store.list_tokens(&filter, today).await.unwrap();
        assert_eq!(names(&page), expected, "{case}");
        assert_eq!(page.1, total, "{case}: total");
    }
    finish(store, db).await;
}

async fn revocation_is_once(backend: Backend) {
    let (store, db) = open(backend).await;
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .insert_token(&token_row(1, "t", "lookuprevoke00000001"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert!(tx.revoke_token(id, 1_700_000_100).await.unwrap());
    assert!(
        !tx.revoke_token(id, 1_700_000_200).await.unwrap(),
        "a second revoke changes nothing"
    );
    assert!(
        !tx.revoke_token(9_999, 1_700_000_200).await.unwrap(),
        "no such token"
    );
    tx.commit().await.unwrap();
    let record = store.token(id).await.unwrap().unwrap();
    assert!(record.revoked);
    assert_eq!(
        record.revoked_at,
        Some(1_700_000_100),
        "the first revocation's time stays"
    );
    finish(store, db).await;
}

async fn service_keys_round_trip(backend: Backend) {
    let (store, db) = open(backend).await;
    assert!(store.service_keys().await.unwrap().is_empty());
    let keys = [
        ("gateway", KeyRole::Authorize, "keylookup00000000001"),
        ("sync", KeyRole::Manage, "keylookup00000000002"),
        ("ops", KeyRole::Admin, "keylookup00000000003"),
    ];
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for (name, role, lookup_id) in keys {
        let key = NewServiceKey {
            name: name.to_owned(),
            role,
            lookup_id: lookup_id.to_owned(),
            secret_hash: format!("$argon2id$hash-of-{name}"),
            created_at: 1_700_000_000,
        };
        ids.push(tx.insert_service_key(&key).await.unwrap());
    }
    tx.commit().await.unwrap();

    let listed = store.service_keys().await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|k| (k.name.as_str(), k.role, k.lookup_id.as_str()))
        .collect();
    assert_eq!(summary, keys, "oldest first");
    let found = store
        .service_key_by_lookup("keylookup00000000002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.secret_hash.as_str()),
        (ids[1], "$argon2id$hash-of-sync")
    );
    assert!(
        store
            .service_key_by_lookup("keylookup00000000009")
            .await
            .unwrap()
            .is_none()
    );

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.revoke_service_key(ids[1], 1_700_000_300)
            .await
            .unwrap()
            .as_deref(),
        Some("keylookup00000000002")
    );
    assert_eq!(
        tx.revoke_service_key(ids[1], 1_700_000_400).await.unwrap(),
        None,
        "once"
    );
    assert_eq!(
        tx.revoke_service_key(9_999, 1_700_000_400).await.unwrap(),
        None
    );
    tx.commit().await.unwrap();
    let revoked = store
        .service_key_by_lookup("keylookup00000000002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(1_700_000_300));
    assert_eq!(
        store.service_keys().await.unwrap().len(),
        3,
        "revoked keys are still listed"
    );
    finish(store, db).await;
}

async fn settings_round_trip(backend: Backend) {
    let (store, db) = open(backend).await;
    assert_eq!(store.settings().await.unwrap(), InstanceSettings::default());
    let changed = InstanceSettings {
        max_lifetime_days: 3650,
        require_expiry: false,
        allow_legacy_token_creation: false,
    };
    let mut tx = store.begin().await.unwrap();
    tx.put_settings(&changed).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.settings().await.unwrap(), changed);
    finish(store, db).await;
}

async fn unique_rules_are_conflicts(backend: Backend) {
    let (store, db) = open(backend).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_token(&token_row(1, "a", "lookupsame0000000001"))
        .await
        .unwrap();
    let again = tx
        .insert_token(&token_row(1, "b", "lookupsame0000000001"))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    drop(tx);

    let key = NewServiceKey {
        name: "k".to_owned(),
        role: KeyRole::Admin,
        lookup_id: "keylookupsame0000001".to_owned(),
        secret_hash: "h".to_owned(),
        created_at: 0,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_service_key(&key).await.unwrap();
    let again = tx.insert_service_key(&key).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    drop(tx);

    // The message names the field, not the backend's constraint.
    let mut tx = store.begin().await.unwrap();
    tx.put_user(1, &user("alice")).await.unwrap();
    let again = tx.put_user(2, &user("alice")).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m == "`username` is taken by another user"),
        "{again:?}"
    );
    finish(store, db).await;
}

async fn an_uncommitted_transaction_writes_nothing(backend: Backend) {
    let (store, db) = open(backend).await;
    let mut tx = store.begin().await.unwrap();
    tx.put_user(1, &user("alice")).await.unwrap();
    tx.insert_token(&token_row(1, "a", "lookuprollback000001"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.put_user(2, &user("bob")).await.unwrap();
    drop(tx);
    assert!(store.load_directory().await.unwrap().users.is_empty());
    assert_eq!(
        store
            .list_tokens(&filter(), date("2026-06-01"))
            .await
            .unwrap()
            .1,
        0
    );
    finish(store, db).await;
}

async fn migrations_are_idempotent(backend: Backend) {
    let (store, db) = open(backend).await;
    let mut tx = store.begin().await.unwrap();
    tx.put_user(1, &user("alice")).await.unwrap();
    tx.commit().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    store.close().await;

    // A second process on the same database migrates again and sees the same data.
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.load_directory().await.unwrap().users.len(), 1);
    finish(store, db).await;
}

#[tokio::test]
async fn bad_urls_are_refused_before_connecting() {
    for url in ["mysql://localhost/db", "patrol.db", "postgres://[::1"] {
        let error = Store::connect(url).await.unwrap_err();
        assert!(matches!(error, StoreError::Url { .. }), "{url}: {error:?}");
    }
}

async fn job_tokens_round_trip(backend: Backend) {
    let (store, db) = open(backend).await;
    let job = JobRef {
        project_id: 43,
        job_id: 555,
        expires_unix: 1_800_000_000,
    };
    let row = NewTokenRecord {
        kind: TokenKind::Job,
        scopes: Vec::new(),
        job: Some(job),
        ..token_row(1, "job 555", "lookupjob00000000001")
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_token(&row).await.unwrap();
    tx.insert_token(&token_row(1, "pat", "lookuppat00000000001"))
        .await
        .unwrap();
    let again = tx
        .insert_token(&NewTokenRecord {
            lookup_id: "lookupjob00000000002".to_owned(),
            ..row.clone()
        })
        .await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m == "this job already has a token"),
        "one token per job: {again:?}"
    );
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    tx.insert_token(&row).await.unwrap();
    tx.insert_token(&token_row(1, "pat", "lookuppat00000000001"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let found = store.token_by_job(555).await.unwrap().unwrap();
    assert_eq!((found.kind, found.job), (TokenKind::Job, Some(job)));
    assert_eq!(
        store
            .token_by_lookup("lookuppat00000000001")
            .await
            .unwrap()
            .unwrap()
            .job,
        None
    );
    assert!(store.token_by_job(556).await.unwrap().is_none());
    finish(store, db).await;
}

async fn job_token_scopes_and_allowlists_round_trip(backend: Backend) {
    let (store, db) = open(backend).await;
    assert!(store.job_token_scopes().await.unwrap().is_empty());
    assert!(store.allowlist(None).await.unwrap().is_empty());
    let scope = JobTokenScopeRecord {
        project_id: 42,
        inbound_enabled: false,
        fine_grained_enabled: true,
    };
    let entry = |project_id, source, source_id, policies: &[&str]| AllowlistRecord {
        project_id,
        source,
        source_id,
        default_permissions: policies.is_empty(),
        policies: policies.iter().map(|p| (*p).to_owned()).collect(),
        created_at: 1_700_000_000,
    };
    let entries = [
        entry(42, SourceKind::Group, 7, &["read_packages"]),
        entry(
            42,
            SourceKind::Project,
            43,
            &["admin_jobs", "read_packages"],
        ),
        entry(44, SourceKind::Project, 43, &[]),
    ];
    let mut tx = store.begin().await.unwrap();
    tx.put_job_token_scope(&scope).await.unwrap();
    for e in &entries {
        tx.put_allowlist_entry(e).await.unwrap();
    }
    assert_eq!(
        tx.allowlist_entry(42, SourceKind::Project, 43)
            .await
            .unwrap()
            .as_ref(),
        Some(&entries[1]),
        "a transaction reads its own writes"
    );
    tx.commit().await.unwrap();
    assert_eq!(store.job_token_scopes().await.unwrap(), [scope]);
    let all = store.allowlist(None).await.unwrap();
    assert_eq!(
        all,
        [entries[1].clone(), entries[0].clone(), entries[2].clone()],
        "projects first"
    );
    assert_eq!(
        store.allowlist(Some(44)).await.unwrap(),
        [entries[2].clone()]
    );

    // A put replaces the policies and keeps `created_at`; a scope put replaces the flags.
    let mut tx = store.begin().await.unwrap();
    let replaced = AllowlistRecord {
        policies: vec!["read_jobs".to_owned()],
        created_at: 1_800_000_000,
        ..entries[1].clone()
    };
    tx.put_allowlist_entry(&replaced).await.unwrap();
    tx.put_job_token_scope(&JobTokenScopeRecord {
        inbound_enabled: true,
        ..scope
    })
    .await
    .unwrap();
    assert!(
        tx.delete_allowlist_entry(42, SourceKind::Group, 7)
            .await
            .unwrap()
    );
    assert!(
        !tx.delete_allowlist_entry(42, SourceKind::Group, 7)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let now = store.allowlist(Some(42)).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].policies, ["read_jobs"]);
    assert_eq!(now[0].created_at, 1_700_000_000);
    assert!(store.job_token_scopes().await.unwrap()[0].inbound_enabled);

    // Deleting project 43 forgets the entries naming it; deleting 42 its own scope.
    let mut tx = store.begin().await.unwrap();
    tx.delete_project(43).await.unwrap();
    tx.delete_project(42).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.allowlist(None).await.unwrap().is_empty());
    assert!(store.job_token_scopes().await.unwrap().is_empty());
    finish(store, db).await;
}

async fn audit_events_round_trip_in_order(backend: Backend) {
    let (store, db) = open(backend).await;
    let event = |action: &'static str, target_id: u64| NewAuditEvent {
        actor: "service_key:1".to_owned(),
        action,
        target_type: "project",
        target_id,
        source_ip: Some("127.0.0.1".to_owned()),
        details: serde_json::json!({"source_id": 43, "policies": ["read_packages"]}),
    };
    let mut tx = store.begin().await.unwrap();
    tx.record_event(&event("job_token_allowlist_added", 42), 100)
        .await
        .unwrap();
    tx.record_event(&event("job_token_policies_updated", 42), 100)
        .await
        .unwrap();
    tx.record_event(&event("job_token_allowlist_added", 44), 101)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.record_event(&event("job_token_allowlist_removed", 42), 102)
        .await
        .unwrap();
    drop(tx);

    let all = AuditFilter {
        action: None,
        target_type: None,
        target_id: None,
        page: 1,
        per_page: 100,
    };
    let (events, total) = store.audit_events(&all).await.unwrap();
    assert_eq!(total, 3, "the rolled-back event is not there");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "job_token_allowlist_added",
            "job_token_policies_updated",
            "job_token_allowlist_added"
        ],
        "in the order they happened"
    );
    assert_eq!(events[0].details, event("x", 42).details);
    assert_eq!(events[0].created_at, "1970-01-01T00:01:40Z");
    assert_eq!(events[0].source_ip.as_deref(), Some("127.0.0.1"));
    let by_target = AuditFilter {
        target_id: Some(42),
        ..all.clone()
    };
    assert_eq!(store.audit_events(&by_target).await.unwrap().1, 2);
    let by_action = AuditFilter {
        action: Some("job_token_allowlist_added".to_owned()),
        ..all.clone()
    };
    assert_eq!(store.audit_events(&by_action).await.unwrap().1, 2);
    let by_type = AuditFilter {
        target_type: Some("token".to_owned()),
        ..all.clone()
    };
    assert_eq!(store.audit_events(&by_type).await.unwrap().1, 0);
    let second_page = AuditFilter {
        page: 2,
        per_page: 2,
        ..all
    };
    let (page, total) = store.audit_events(&second_page).await.unwrap();
    assert_eq!((page.len(), total, page[0].target_id), (1, 3, 44));
    finish(store, db).await;
}
