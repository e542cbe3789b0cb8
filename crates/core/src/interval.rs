//! Half-open address intervals and sets of them.
//!
//! Memory ownership is decided by address intervals, never by `/proc/self/maps` lines: adjacent
//! regions of the two halves can merge into one line, so a line is split against the lower
//! half's interval set before anything is classified.

use serde::{Deserialize, Serialize};

/// A half-open address interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    /// First address inside the interval.
    pub start: u64,
    /// First address past the interval.
    pub end: u64,
}

impl Interval {
    /// An interval from `start` up to (not including) `end`; `end < start` gives an empty one.
    pub fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the interval holds no byte.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether `other` lies wholly inside `self` (an empty `other` always does).
    pub fn covers(&self, other: &Interval) -> bool {
        other.is_empty() || (self.start <= other.start && other.end <= self.end)
    }

    /// The common part of two intervals, if any byte is shared.
    pub fn intersection(&self, other: &Interval) -> Option<Interval> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
    }
}

/// A set of addresses kept as sorted, disjoint, non-adjacent intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalSet {
    items: Vec<Interval>,
}

impl IntervalSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The intervals, sorted and merged.
    pub fn intervals(&self) -> &[Interval] {
        &self.items
    }

    /// Total bytes in the set.
    pub fn total(&self) -> u64 {
        self.items.iter().map(Interval::len).sum()
    }

    /// Adds every address of `iv`, merging with neighbours.
    pub fn insert(&mut self, iv: Interval) {
        if iv.is_empty() {
            return;
        }
        // First interval whose end reaches iv.start (touching counts, so neighbours merge).
        let lo = self.items.partition_point(|x| x.end < iv.start);
        // First interval that starts past iv.end.
        let hi = self.items.partition_point(|x| x.start <= iv.end);
        if lo == hi {
            self.items.insert(lo, iv);
            return;
        }
        let start = iv.start.min(self.items[lo].start);
        let end = iv.end.max(self.items[hi - 1].end);
        self.items.drain(lo..hi);
        self.items.insert(lo, Interval { start, end });
    }

    /// Removes every address of `iv`.
    pub fn remove(&mut self, iv: Interval) {
        if iv.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.items.len() + 1);
        for x in &self.items {
            match x.intersection(&iv) {
                None => out.push(*x),
                Some(_) => {
                    if x.start < iv.start {
                        out.push(Interval::new(x.start, iv.start));
                    }
                    if iv.end < x.end {
                        out.push(Interval::new(iv.end, x.end));
                    }
                }
            }
        }
        self.items = out;
    }

    /// Whether `addr` is in the set.
    pub fn contains(&self, addr: u64) -> bool {
        let i = self.items.partition_point(|x| x.end <= addr);
        self.items.get(i).is_some_and(|x| x.contains(addr))
    }

    /// Whether every address of `iv` is in the set.
    pub fn covers(&self, iv: &Interval) -> bool {
        if iv.is_empty() {
            return true;
        }
        let i = self.items.partition_point(|x| x.end <= iv.start);
        self.items.get(i).is_some_and(|x| x.covers(iv))
    }

    /// The parts of `iv` inside the set, in address order.
    pub fn intersect(&self, iv: &Interval) -> Vec<Interval> {
        let i = self.items.partition_point(|x| x.end <= iv.start);
        self.items[i..]
            .iter()
            .take_while(|x| x.start < iv.end)
            .filter_map(|x| x.intersection(iv))
            .collect()
    }

    /// The parts of `iv` outside the set, in address order.
    pub fn subtract_from(&self, iv: &Interval) -> Vec<Interval> {
        let mut out = Vec::new();
        let mut cursor = iv.start;
        for x in self.intersect(iv) {
            if cursor < x.start {
                out.push(Interval::new(cursor, x.start));
            }
            cursor = x.end;
        }
        if cursor < iv.end {
            out.push(Interval::new(cursor, iv.end));
        }
        out
    }
}

impl FromIterator<Interval> for IntervalSet {
    fn from_iter<T: IntoIterator<Item = Interval>>(iter: T) -> Self {
        let mut set = IntervalSet::new();
        for iv in iter {
            set.insert(iv);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iv(a: u64, b: u64) -> Interval {
        Interval::new(a, b)
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent() {
        let mut s = IntervalSet::new();
        s.insert(iv(10, 20));
        s.insert(iv(30, 40));
        s.insert(iv(20, 30));
        assert_eq!(s.intervals(), &[iv(10, 40)]);
        s.insert(iv(50, 60));
        s.insert(iv(5, 12));
        assert_eq!(s.intervals(), &[iv(5, 40), iv(50, 60)]);
    }

    #[test]
    fn remove_splits() {
        let mut s: IntervalSet = [iv(0, 100)].into_iter().collect();
        s.remove(iv(10, 20));
        assert_eq!(s.intervals(), &[iv(0, 10), iv(20, 100)]);
        assert!(!s.contains(15));
        assert!(s.contains(20));
    }

    #[test]
    fn subtract_from_gives_the_gaps() {
        let s: IntervalSet = [iv(10, 20), iv(30, 40)].into_iter().collect();
        assert_eq!(
            s.subtract_from(&iv(0, 50)),
            vec![iv(0, 10), iv(20, 30), iv(40, 50)]
        );
        assert_eq!(s.intersect(&iv(15, 35)), vec![iv(15, 20), iv(30, 35)]);
        assert!(s.covers(&iv(12, 18)));
        assert!(!s.covers(&iv(12, 25)));
    }

    proptest! {
        #[test]
        fn set_matches_a_bitmap(ops in prop::collection::vec((any::<bool>(), 0usize..64, 0usize..64), 0..40)) {
            let mut s = IntervalSet::new();
            let mut bits = [false; 64];
            for (add, a, b) in ops {
                let (a, b) = (a.min(b), a.max(b));
                if add { s.insert(iv(a as u64, b as u64)) } else { s.remove(iv(a as u64, b as u64)) }
                for bit in &mut bits[a..b] {
                    *bit = add;
                }
            }
            for (i, bit) in bits.iter().enumerate() {
                prop_assert_eq!(s.contains(i as u64), *bit);
            }
            let items = s.intervals();
            for w in items.windows(2) {
                prop_assert!(w[0].end < w[1].start);
            }
            let inside = s.intersect(&iv(0, 64)).iter().map(Interval::len).sum::<u64>();
            let outside = s.subtract_from(&iv(0, 64)).iter().map(Interval::len).sum::<u64>();
            prop_assert_eq!(inside + outside, 64);
        }
    }
}
