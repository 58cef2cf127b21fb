//! The shared vocabulary of patrol: access levels, boundaries, visibility, plans and
//! feature access. Each type is parsed once from outside input and is valid by
//! construction; nothing downstream re-checks a raw string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A GitLab access level (none 0 ... owner 50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u8")]
pub struct AccessLevel(u8);

impl AccessLevel {
    pub const NONE: Self = Self(0);
    pub const MINIMAL: Self = Self(5);
    pub const GUEST: Self = Self(10);
    pub const PLANNER: Self = Self(15);
    pub const REPORTER: Self = Self(20);
    pub const DEVELOPER: Self = Self(30);
    pub const MAINTAINER: Self = Self(40);
    pub const OWNER: Self = Self(50);

    pub const ALL: [Self; 8] = [
        Self::NONE,
        Self::MINIMAL,
        Self::GUEST,
        Self::PLANNER,
        Self::REPORTER,
        Self::DEVELOPER,
        Self::MAINTAINER,
        Self::OWNER,
    ];

    /// The level for a number, if it is one of GitLab's levels.
    pub fn from_number(n: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|l| u64::from(l.0) == n)
    }

    pub fn number(self) -> u8 {
        self.0
    }

    pub fn role_name(self) -> &'static str {
        match self.0 {
            0 => "none",
            5 => "minimal",
            10 => "guest",
            15 => "planner",
            20 => "reporter",
            30 => "developer",
            40 => "maintainer",
            _ => "owner",
        }
    }

    pub fn from_role_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.role_name() == name)
    }
}

impl From<AccessLevel> for u8 {
    fn from(level: AccessLevel) -> u8 {
        level.0
    }
}

impl<'de> Deserialize<'de> for AccessLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Self::from_number(n).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{n}` is not an access level (0, 5, 10, 15, 20, 30, 40, 50)"
            ))
        })
    }
}

/// The least a caller must be to exercise a permission on one kind of boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinRole {
    /// An effective access level on the namespace (`none` for user and instance boundaries).
    Level(AccessLevel),
    /// An instance administrator.
    Admin,
}

impl MinRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::Level(level) => level.role_name(),
            Self::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        if name == "admin" {
            return Some(Self::Admin);
        }
        AccessLevel::from_role_name(name).map(Self::Level)
    }
}

/// What a permission is bounded to, and what a granular scope covers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BoundaryKind {
    Project,
    Group,
    User,
    Instance,
}

impl BoundaryKind {
    pub const ALL: [Self; 4] = [Self::Project, Self::Group, Self::User, Self::Instance];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Group => "group",
            Self::User => "user",
            Self::Instance => "instance",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for BoundaryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BoundaryKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|b| b.as_str() == s).ok_or(())
    }
}

/// Who can see a group or project. Ordered from least to most visible.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Private,
    Internal,
    Public,
}

/// A licensed tier. Ordered: a namespace on `ultimate` has every `premium` feature.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    #[default]
    Free,
    Premium,
    Ultimate,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Premium => "premium",
            Self::Ultimate => "ultimate",
        }
    }
}

/// Who may use a project feature (issues, repository, ...).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FeatureAccess {
    /// Everyone who can see the project.
    #[default]
    Enabled,
    /// Members of the project only.
    Private,
    /// Nobody.
    Disabled,
}

/// The kinds of access a fine-grained token's granular scope may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    PersonalProjects,
    AllMemberships,
    SelectedMemberships,
    User,
    Instance,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PersonalProjects => "personal_projects",
            Self::AllMemberships => "all_memberships",
            Self::SelectedMemberships => "selected_memberships",
            Self::User => "user",
            Self::Instance => "instance",
        }
    }
}

impl AccessKind {
    pub const ALL: [Self; 5] = [
        Self::PersonalProjects,
        Self::AllMemberships,
        Self::SelectedMemberships,
        Self::User,
        Self::Instance,
    ];

    /// The kinds of boundary that permissions of a scope with this access apply to.
    pub fn boundaries(self) -> &'static [BoundaryKind] {
        match self {
            Self::PersonalProjects => &[BoundaryKind::Project],
            Self::AllMemberships | Self::SelectedMemberships => {
                &[BoundaryKind::Project, BoundaryKind::Group]
            }
            Self::User => &[BoundaryKind::User],
            Self::Instance => &[BoundaryKind::Instance],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_levels_round_trip_through_names_and_numbers() {
        for level in AccessLevel::ALL {
            assert_eq!(AccessLevel::from_role_name(level.role_name()), Some(level));
            assert_eq!(AccessLevel::from_number(level.number().into()), Some(level));
        }
        assert_eq!(AccessLevel::from_number(25), None);
        assert_eq!(MinRole::from_name("admin"), Some(MinRole::Admin));
        assert_eq!(MinRole::from_name("boss"), None);
    }

    #[test]
    fn plans_and_visibility_are_ordered() {
        assert!(Plan::Free < Plan::Premium && Plan::Premium < Plan::Ultimate);
        assert!(
            Visibility::Private < Visibility::Internal && Visibility::Internal < Visibility::Public
        );
    }
}
