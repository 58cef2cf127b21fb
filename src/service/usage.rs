//! Last-use tracking (DESIGN.md section 4): a decision notes its token's use in memory,
//! and a background task writes what was noted to the store in one batch every
//! `usage_flush`. A decision never waits for the store on this account.

use std::net::IpAddr;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::{Outcome, Result, Service};
use crate::engine::Reason;
use crate::store::{LAST_USED_IPS, TokenUse};

/// Uses noted since the last flush, by token id.
#[derive(Debug, Default)]
pub(super) struct Usage {
    on: bool,
    pending: Mutex<FxHashMap<u64, Seen>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    at: i64,
    /// Most recent first, distinct.
    ips: Vec<IpAddr>,
}

impl Seen {
    fn note(&mut self, at: i64, ip: Option<IpAddr>) {
        self.at = self.at.max(at);
        if let Some(ip) = ip
            && self.ips.first() != Some(&ip)
        {
            self.ips.retain(|known| *known != ip);
            self.ips.insert(0, ip);
            self.ips.truncate(LAST_USED_IPS);
        }
    }
}

/// Whether a decision used its token: the token was genuine, alive and allowed from
/// where it came, whatever the permission's answer.
fn used(reason: Reason) -> bool {
    !matches!(
        reason,
        Reason::TokenInvalid
            | Reason::TokenRevoked
            | Reason::TokenExpired
            | Reason::UserBlocked
            | Reason::IpNotAllowed
    )
}

impl Usage {
    pub(super) fn new(on: bool) -> Self {
        Self {
            on,
            pending: Mutex::default(),
        }
    }

    /// Notes the uses among answered checks: one short lock per call.
    pub(super) fn note<'a>(
        &self,
        answered: impl Iterator<Item = (&'a Outcome, Option<IpAddr>)>,
        now: i64,
    ) {
        if !self.on {
            return;
        }
        let mut answered = answered
            .filter_map(|(outcome, ip)| {
                outcome
                    .token_id
                    .filter(|_| used(outcome.reason))
                    .map(|id| (id, ip))
            })
            .peekable();
        if answered.peek().is_none() {
            return;
        }
        let mut pending = self.pending.lock();
        for (id, ip) in answered {
            pending
                .entry(id)
                .or_insert_with(|| Seen {
                    at: now,
                    ips: Vec::new(),
                })
                .note(now, ip);
        }
    }

    /// Everything noted so far, leaving nothing.
    fn take(&self) -> FxHashMap<u64, Seen> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Puts back uses that could not be written: what was noted since is newer.
    fn restore(&self, taken: FxHashMap<u64, Seen>) {
        let mut pending = self.pending.lock();
        for (id, older) in taken {
            match pending.get_mut(&id) {
                Some(newer) => {
                    let mut merged = older;
                    for ip in newer.ips.iter().rev() {
                        merged.note(newer.at, Some(*ip));
                    }
                    merged.at = merged.at.max(newer.at);
                    *newer = merged;
                }
                None => {
                    pending.insert(id, older);
                }
            }
        }
    }
}

impl Service {
    /// Writes the uses noted since the last flush, in one transaction. On a store error
    /// they are kept for the next flush. Returns how many tokens were written.
    pub async fn flush_usage(&self) -> Result<usize> {
        let taken = self.usage.take();
        if taken.is_empty() {
            return Ok(0);
        }
        let uses: Vec<TokenUse> = taken
            .iter()
            .map(|(id, seen)| TokenUse {
                id: *id,
                at: seen.at,
                ips: seen.ips.clone(),
            })
            .collect();
        match self.store.record_usage(&uses).await {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                self.usage.restore(taken);
                Err(e.into())
            }
        }
    }

    /// Flushes every `every`, until the process ends.
    pub async fn flush_usage_forever(&self, every: std::time::Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.flush_usage().await {
                tracing::warn!(error = %e, "cannot record token use yet");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_token_keeps_its_five_most_recent_distinct_addresses() {
        let mut seen = Seen {
            at: 10,
            ips: Vec::new(),
        };
        for (at, addr) in [(11, "10.0.0.1"), (12, "10.0.0.2"), (13, "10.0.0.1")] {
            seen.note(at, Some(ip(addr)));
        }
        seen.note(9, None);
        assert_eq!(seen.at, 13, "the last use only moves forward");
        assert_eq!(seen.ips, [ip("10.0.0.1"), ip("10.0.0.2")]);
        for n in 3..=8 {
            seen.note(20, Some(ip(&format!("10.0.0.{n}"))));
        }
        assert_eq!(seen.ips.len(), LAST_USED_IPS);
        assert_eq!(seen.ips[0], ip("10.0.0.8"));
        assert_eq!(seen.ips[4], ip("10.0.0.4"));
    }

    #[test]
    fn uses_that_could_not_be_written_are_kept_under_newer_ones() {
        let usage = Usage::new(true);
        usage.pending.lock().insert(
            1,
            Seen {
                at: 5,
                ips: vec![ip("10.0.0.1")],
            },
        );
        let taken = usage.take();
        usage.pending.lock().insert(
            1,
            Seen {
                at: 7,
                ips: vec![ip("10.0.0.2")],
            },
        );
        usage.restore(taken);
        let pending = usage.take();
        assert_eq!(
            pending.get(&1),
            Some(&Seen {
                at: 7,
                ips: vec![ip("10.0.0.2"), ip("10.0.0.1")],
            })
        );
    }

    #[test]
    fn only_genuine_live_tokens_count_as_used() {
        assert!(used(Reason::Granted));
        assert!(used(Reason::PermissionNotGranted));
        assert!(!used(Reason::TokenRevoked));
        assert!(!used(Reason::IpNotAllowed));
    }
}
