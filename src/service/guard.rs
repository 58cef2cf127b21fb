//! Keeps guessing cheap on the decision path. Unknown lookup ids are remembered for a
//! while, so a stream of well-formed guesses reads the store once per id, not once per
//! guess; and a lookup id whose presented secret failed argon2 gets at most one more
//! argon2 verification per window, so argon2 cannot be used to pin the CPU. A token
//! verified once is answered from the verified-token cache and never meets either.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

/// Keys noted within the last `window`, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct Recent {
    noted: Mutex<FxHashMap<String, Instant>>,
    window: Duration,
    capacity: usize,
}

impl Recent {
    pub(super) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            noted: Mutex::new(FxHashMap::default()),
            window,
            capacity,
        }
    }

    /// Whether `key` was noted less than a window ago.
    pub(super) fn contains(&self, key: &str, now: Instant) -> bool {
        self.noted
            .lock()
            .get(key)
            .is_some_and(|&at| now.saturating_duration_since(at) < self.window)
    }

    pub(super) fn note(&self, key: &str, now: Instant) {
        let mut noted = self.noted.lock();
        if noted.len() >= self.capacity && !noted.contains_key(key) {
            noted.retain(|_, at| now.saturating_duration_since(*at) < self.window);
            if noted.len() >= self.capacity {
                // Full of live entries: forgetting them costs store reads, not safety.
                noted.clear();
            }
        }
        noted.insert(key.to_owned(), now);
    }

    pub(super) fn forget(&self, key: &str) {
        self.noted.lock().remove(key);
    }

    pub(super) fn clear(&self) {
        self.noted.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_remembered_for_a_window() {
        let recent = Recent::new(Duration::from_secs(10), 100);
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
        let recent = Recent::new(Duration::from_secs(10), 3);
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
}
