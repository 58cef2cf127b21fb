//! A set of catalog permissions as a bitset sized for its catalog: membership is one
//! shift and mask, and a token's expanded permissions cost a few words of memory.

use crate::PermissionId;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PermSet {
    words: Box<[u64]>,
}

impl PermSet {
    /// An empty set able to hold permission ids below `n`.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64)].into_boxed_slice(),
        }
    }

    pub fn contains(&self, id: PermissionId) -> bool {
        let i = id.index();
        self.words
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Adds `id`, growing the set if it was sized for a smaller catalog.
    pub fn insert(&mut self, id: PermissionId) {
        let i = id.index();
        if i / 64 >= self.words.len() {
            let mut words = self.words.to_vec();
            words.resize(i / 64 + 1, 0);
            self.words = words.into_boxed_slice();
        }
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub fn union_with(&mut self, other: &Self) {
        if other.words.len() > self.words.len() {
            let mut words = self.words.to_vec();
            words.resize(other.words.len(), 0);
            self.words = words.into_boxed_slice();
        }
        for (w, o) in self.words.iter_mut().zip(other.words.iter()) {
            *w |= o;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Whether every permission in `self` is also in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.words.iter().enumerate().all(|(i, &w)| {
            let o = other.words.get(i).copied().unwrap_or(0);
            w & !o == 0
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = PermissionId> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |b| w >> b & 1 == 1)
                .filter_map(move |b| u16::try_from(i * 64 + b).ok().map(PermissionId))
        })
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl FromIterator<PermissionId> for PermSet {
    fn from_iter<I: IntoIterator<Item = PermissionId>>(iter: I) -> Self {
        let mut set = Self::default();
        for id in iter {
            set.insert(id);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_union_subset() {
        let mut a = PermSet::with_capacity(130);
        a.insert(PermissionId(0));
        a.insert(PermissionId(129));
        assert!(a.contains(PermissionId(129)));
        assert!(!a.contains(PermissionId(128)));
        assert!(!a.contains(PermissionId(5000)));
        let b: PermSet = [PermissionId(3), PermissionId(700)].into_iter().collect();
        assert!(b.contains(PermissionId(700)));
        let mut c = a.clone();
        c.union_with(&b);
        assert_eq!(c.len(), 4);
        assert!(a.is_subset(&c) && b.is_subset(&c) && !c.is_subset(&a));
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [0, 3, 129, 700].map(PermissionId).to_vec()
        );
    }
}
