//! Who asks: a caller as its service key (or token) names it, and an actor as the
//! audit trail records it.

use crate::keys::KeyRole;

/// What a presented `X-Patrol-Key` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVerdict {
    Valid { role: KeyRole, caller: Caller },
    Invalid,
}

/// Which key a caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The bootstrap `PATROL_ADMIN_KEY`.
    AdminKey,
    ServiceKey(u64),
    /// An operator at the command line (`patrol service-key create`).
    CommandLine,
    /// A token acting on itself (`/v1/tokens/self`).
    Token(u64),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AdminKey => f.write_str("admin_key"),
            Self::ServiceKey(id) => write!(f, "service_key:{id}"),
            Self::CommandLine => f.write_str("command_line"),
            Self::Token(id) => write!(f, "token:{id}"),
        }
    }
}

/// Who asks for a change, as the audit trail names them (`service_key:<id>` or
/// `admin_key`), and where from. Copy: made for every request, used by few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub caller: Caller,
    pub ip: Option<std::net::IpAddr>,
}
