//! Keeps guessing cheap on the decision path. Unknown lookup ids are remembered for a
//! while, so a stream of well-formed guesses reads the store once per id, not once per
//! guess. A lookup id whose presented secret was wrong is remembered with what it was
//! checked against: a digest, so that the next wrong secret is refused without a store
//! read while the right one still gets in; or the mark of an argon2id hash (written
//! before digests), which gets at most one more verification per window, so argon2
//! cannot be used to pin the CPU. A token verified once is answered from the
//! verified-token cache and never meets either.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// Keys noted within the last `window`, each with a value, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct Recent<V = ()> {
    noted: Mutex<FxHashMap<String, (Instant, V)>>,
    window: Duration,
    capacity: usize,
}

impl<V: Clone> Recent<V> {
    pub(super) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            noted: Mutex::new(FxHashMap::default()),
            window,
            capacity,
        }
    }

    /// What `key` was noted with, if less than a window ago.
    pub(super) fn get(&self, key: &str, now: Instant) -> Option<V> {
        self.noted
            .lock()
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.window)
            .map(|(_, value)| value.clone())
    }

    /// Whether `key` was noted less than a window ago.
    pub(super) fn contains(&self, key: &str, now: Instant) -> bool {
        self.get(key, now).is_some()
    }

    pub(super) fn note_with(&self, key: &str, value: V, now: Instant) {
        let mut noted = self.noted.lock();
        if noted.len() >= self.capacity && !noted.contains_key(key) {
            noted.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.window);
            if noted.len() >= self.capacity {
                // Full of live entries: forgetting them costs store reads, not safety.
                noted.clear();
            }
        }
        noted.insert(key.to_owned(), (now, value));
    }

    pub(super) fn forget(&self, key: &str) {
        self.noted.lock().remove(key);
    }

    pub(super) fn clear(&self) {
        self.noted.lock().clear();
    }
}

impl Recent {
    pub(super) fn note(&self, key: &str, now: Instant) {
        self.note_with(key, (), now);
    }
}

/// What a lookup id's last wrong secret was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failed {
    /// The token's stored digest: the next secret is checked against it first.
    Digest(String),
    /// An argon2id hash: no more verifications until the window ends.
    Argon2,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_remembered_for_a_window() {
        let recent: Recent = Recent::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        assert!(!recent.contains("a", start));
        recent.note("a", start);
        assert!(recent.contains("a", start + Duration::from_secs(9)));
        assert!(!recent.contains("a", start + Duration::from_secs(10)));
        recent.note("a", start + Duration::from_secs(10));
        assert!(recent.contains("a", start + Duration::from_secs(11)));
        recent.forget("a");
        assert!(!recent.contains("a", start + Duration::from_secs(11)));
    }

    #[test]
    fn capacity_bounds_memory() {
        let recent: Recent = Recent::new(Duration::from_secs(10), 3);
        let start = Instant::now();
        for key in ["a", "b", "c"] {
            recent.note(key, start);
        }
        // "a" has expired by now, so it makes room; the others stay.
        recent.note("a", start);
        let later = start + Duration::from_secs(11);
        recent.note("d", later);
        assert!(recent.contains("d", later));
        assert!(recent.noted.lock().len() <= 3);
        // All live and full: the map starts over rather than grow.
        recent.note("e", later);
        recent.note("f", later);
        recent.note("g", later);
        assert!(recent.noted.lock().len() <= 3);
        assert!(recent.contains("g", later));
    }

    #[test]
    fn a_value_is_kept_for_its_window() {
        let recent = Recent::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        recent.note_with("a", Failed::Digest("$hmac-sha256$..".to_owned()), start);
        recent.note_with("b", Failed::Argon2, start);
        assert_eq!(
            recent.get("a", start + Duration::from_secs(9)),
            Some(Failed::Digest("$hmac-sha256$..".to_owned()))
        );
        assert_eq!(recent.get("b", start), Some(Failed::Argon2));
        assert_eq!(recent.get("a", start + Duration::from_secs(10)), None);
        assert_eq!(recent.get("c", start), None);
    }
}
