//! Virtual handles: the stable values the program holds for streams, events, kernels and
//! registered fat binaries.
//!
//! The program keeps these values in its own memory (variables, structs, pools), which a
//! checkpoint saves as they are. After a restart the backend's objects are created again and
//! get new real handles; only this table changes (issue 6 re-binds each entry), never the
//! program's variables. Values carry a kind tag in bits 40..48 so a handle of one kind passed
//! as another is refused, and never collide with CUDA's predefined stream values (0, 1, 2).

use std::collections::HashMap;

/// Which kind of object a handle names (its tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `cudaStream_t`.
    Stream = 0x5a,
    /// `cudaEvent_t`.
    Event = 0x5b,
    /// `cudaKernel_t` / `cudaFunction_t`.
    Kernel = 0x5c,
    /// The `void **` handle `__cudaRegisterFatBinary` returns.
    FatBinary = 0x5d,
}

/// The `n`-th value of `kind` (what [`VirtualTable::insert`] hands out).
pub fn value(kind: Kind, n: u64) -> u64 {
    ((kind as u64) << 40) | (n << 4)
}

/// Which value of `kind` `v` is (the inverse of [`value`]), if `v` is one.
pub fn sequence(kind: Kind, v: u64) -> Option<u64> {
    let n = (v & ((1 << 40) - 1)) >> 4;
    (value(kind, n) == v).then_some(n)
}

/// Virtual value → real value of one kind.
#[derive(Debug)]
pub struct VirtualTable<T> {
    kind: Kind,
    next: u64,
    map: HashMap<u64, T>,
}

impl<T: Clone> VirtualTable<T> {
    /// An empty table for `kind`.
    pub fn new(kind: Kind) -> VirtualTable<T> {
        VirtualTable {
            kind,
            next: 1,
            map: HashMap::new(),
        }
    }

    /// Adds `real` and returns its new virtual value (16-byte aligned, like a pointer).
    pub fn insert(&mut self, real: T) -> u64 {
        let v = value(self.kind, self.next);
        self.next += 1;
        self.map.insert(v, real);
        v
    }

    /// Puts `real` back under the value `v` it had before a restart; false (and nothing
    /// changed) if `v` is not a value of this kind or is taken.
    pub fn insert_at(&mut self, v: u64, real: T) -> bool {
        if sequence(self.kind, v).is_none() || self.map.contains_key(&v) {
            return false;
        }
        self.map.insert(v, real);
        true
    }

    /// The sequence number the next [`Self::insert`] uses.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Continues numbering at `next` (after a restart, so no value is handed out twice).
    pub fn set_next(&mut self, next: u64) {
        self.next = next.max(1);
    }

    /// The real value behind `v`, to change in place.
    pub fn get_mut(&mut self, v: u64) -> Option<&mut T> {
        self.map.get_mut(&v)
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The real value behind `v`.
    pub fn get(&self, v: u64) -> Option<T> {
        self.map.get(&v).cloned()
    }

    /// Removes `v`, returning its real value.
    pub fn remove(&mut self, v: u64) -> Option<T> {
        self.map.remove(&v)
    }

    /// Points `v` at a new real value (re-binding after restart); false if `v` is unknown.
    pub fn rebind(&mut self, v: u64, real: T) -> bool {
        match self.map.get_mut(&v) {
            Some(slot) => {
                *slot = real;
                true
            }
            None => false,
        }
    }

    /// Every (virtual, real) pair.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &T)> {
        self.map.iter().map(|(v, r)| (*v, r))
    }

    /// Forgets every entry (values are never reused).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Whether `v` carries this table's kind tag (whether or not it is live).
    pub fn is_kind(&self, v: u64) -> bool {
        v >> 40 == self.kind as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_tagged_unique_and_rebindable() {
        let mut t = VirtualTable::new(Kind::Stream);
        let a = t.insert(10u64);
        let b = t.insert(11u64);
        assert_ne!(a, b);
        assert!(a > 2 && a % 16 == 0);
        assert!(t.is_kind(a));
        assert_eq!(t.get(a), Some(10));
        assert!(t.rebind(a, 20));
        assert_eq!(t.get(a), Some(20));
        assert_eq!(t.remove(b), Some(11));
        assert_eq!(t.get(b), None);
        let c = t.insert(12);
        assert_ne!(c, b, "values are never reused");
        assert_eq!(sequence(Kind::Stream, c), Some(3));
        assert_eq!(sequence(Kind::Event, c), None);
        assert_eq!(sequence(Kind::Stream, c + 1), None);
        let mut r = VirtualTable::new(Kind::Stream);
        r.set_next(t.next());
        assert!(r.insert_at(a, 30));
        assert!(!r.insert_at(a, 31), "taken");
        assert!(!r.insert_at(a + 8, 31), "not a value");
        assert_ne!(r.insert(32), c, "numbering goes on");
        let mut e = VirtualTable::<u64>::new(Kind::Event);
        let ev = e.insert(1);
        assert!(!t.is_kind(ev));
        assert_eq!(t.get(ev), None);
    }
}
