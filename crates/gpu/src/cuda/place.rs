//! Where device allocations go in the window: pure bookkeeping, no driver calls.
//!
//! The driver maps physical memory in units of its granularity (usually 2 MiB), so one mapping
//! per `cudaMalloc` would spend 2 MiB on every small buffer. Allocations of at least half a
//! granule get mappings of their own; smaller ones share one-granule *chunks*, placed inside
//! at 256-byte alignment. A chunk is unmapped when its last allocation is freed. The class of
//! an allocation depends only on its size, so a restart that asks for the same (address, size)
//! pairs rebuilds the same mappings ([`Placement::alloc_at`]).

use std::collections::BTreeMap;

use crate::{ALLOC_ALIGN, Window};

/// A mapping the caller must create (`cuMemCreate` + `cuMemMap` + `cuMemSetAccess`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NewMap {
    /// First byte.
    pub(crate) start: u64,
    /// Bytes (a multiple of the granularity).
    pub(crate) len: u64,
}

/// One mapping: its length, its physical handle, and for a chunk the ranges in use.
#[derive(Debug)]
struct Map {
    len: u64,
    handle: u64,
    /// `Some` for a shared chunk: used `(offset → len)`.
    used: Option<BTreeMap<u64, u64>>,
}

/// Why a placement is impossible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlaceError {
    /// No room left in the window.
    Full,
    /// The address asked for is taken, misaligned or outside the window.
    Taken,
    /// Not the start of a live allocation.
    Unknown,
}

/// The placement of every live allocation.
#[derive(Debug)]
pub(crate) struct Placement {
    window: Window,
    gran: u64,
    maps: BTreeMap<u64, Map>,
    /// Live allocations: start → (size asked for, start of its mapping).
    allocs: BTreeMap<u64, (u64, u64)>,
}

impl Placement {
    /// Nothing placed yet in `window`, mapping in units of `granularity`.
    pub(crate) fn new(window: Window, granularity: u64) -> Placement {
        Placement {
            window,
            gran: granularity.max(ALLOC_ALIGN),
            maps: BTreeMap::new(),
            allocs: BTreeMap::new(),
        }
    }

    fn small(&self, size: u64) -> bool {
        size < self.gran / 2
    }

    fn map_len(&self, size: u64) -> u64 {
        size.max(1).next_multiple_of(self.gran)
    }

    /// The lowest free mapping-aligned range of `len` bytes.
    fn first_fit(&self, len: u64) -> Option<u64> {
        let mut at = self.window.base.next_multiple_of(self.gran);
        for (start, m) in &self.maps {
            if start.checked_sub(at)? >= len {
                return Some(at);
            }
            at = at.max((start + m.len).next_multiple_of(self.gran));
        }
        (at.checked_add(len)? <= self.window.end()).then_some(at)
    }

    /// The lowest free 256-aligned offset for `size` bytes in a chunk's `used` ranges.
    fn chunk_fit(used: &BTreeMap<u64, u64>, chunk: u64, size: u64) -> Option<u64> {
        let mut at = 0;
        for (off, len) in used {
            if *off >= at + size {
                break;
            }
            at = (off + len).next_multiple_of(ALLOC_ALIGN);
        }
        (at + size <= chunk).then_some(at)
    }

    /// Places `size` bytes; returns the address and the mapping to create first, if any.
    pub(crate) fn alloc(&mut self, size: u64) -> Result<(u64, Option<NewMap>), PlaceError> {
        // Larger than the window can never fit; refusing it here also keeps the rounding below
        // from overflowing on a size near 2^64 (`cudaMalloc(SIZE_MAX)`).
        if size > self.window.size {
            return Err(PlaceError::Full);
        }
        if self.small(size) {
            let found = self.maps.iter().find_map(|(start, m)| {
                let used = m.used.as_ref()?;
                Self::chunk_fit(used, m.len, size).map(|off| (*start, off))
            });
            if let Some((start, off)) = found {
                self.insert(start, start + off, size);
                return Ok((start + off, None));
            }
        }
        let len = self.map_len(size);
        let start = self.first_fit(len).ok_or(PlaceError::Full)?;
        self.new_map(start, len, size);
        self.insert(start, start, size);
        Ok((start, Some(NewMap { start, len })))
    }

    /// Places `size` bytes exactly at `ptr` (restart); returns the mapping to create, if any.
    pub(crate) fn alloc_at(&mut self, ptr: u64, size: u64) -> Result<Option<NewMap>, PlaceError> {
        if size > self.window.size {
            return Err(PlaceError::Taken);
        }
        let len = self.map_len(size);
        let start = if self.small(size) {
            ptr - ptr % self.gran
        } else {
            ptr
        };
        if ptr % ALLOC_ALIGN != 0 || start % self.gran != 0 || !self.window.contains(start, len) {
            return Err(PlaceError::Taken);
        }
        if let Some(m) = self.maps.get(&start) {
            let used = m.used.as_ref().ok_or(PlaceError::Taken)?;
            let off = ptr - start;
            let clash = used
                .range(..off + size)
                .next_back()
                .is_some_and(|(o, l)| o + l > off);
            if clash || off + size > m.len {
                return Err(PlaceError::Taken);
            }
            self.insert(start, ptr, size);
            return Ok(None);
        }
        let overlaps = self
            .maps
            .range(..start + len)
            .next_back()
            .is_some_and(|(s, m)| s + m.len > start);
        if overlaps {
            return Err(PlaceError::Taken);
        }
        self.new_map(start, len, size);
        self.insert(start, ptr, size);
        Ok(Some(NewMap { start, len }))
    }

    fn new_map(&mut self, start: u64, len: u64, size: u64) {
        let used = self.small(size).then(BTreeMap::new);
        self.maps.insert(
            start,
            Map {
                len,
                handle: 0,
                used,
            },
        );
    }

    fn insert(&mut self, map: u64, ptr: u64, size: u64) {
        if let Some(used) = self.maps.get_mut(&map).and_then(|m| m.used.as_mut()) {
            used.insert(ptr - map, size.max(1));
        }
        self.allocs.insert(ptr, (size, map));
    }

    /// Records the physical handle of a mapping the caller created.
    pub(crate) fn set_handle(&mut self, start: u64, handle: u64) {
        if let Some(m) = self.maps.get_mut(&start) {
            m.handle = handle;
        }
    }

    /// Undoes a placement whose mapping could not be created.
    pub(crate) fn forget_map(&mut self, start: u64) {
        self.maps.remove(&start);
        self.allocs.retain(|_, (_, map)| *map != start);
    }

    /// Frees the allocation at `ptr`; returns the mapping to destroy (start, len, handle) if
    /// it was the last user of it.
    pub(crate) fn free(&mut self, ptr: u64) -> Result<Option<(u64, u64, u64)>, PlaceError> {
        let (_, map) = self.allocs.remove(&ptr).ok_or(PlaceError::Unknown)?;
        let m = self.maps.get_mut(&map).ok_or(PlaceError::Unknown)?;
        if let Some(used) = m.used.as_mut() {
            used.remove(&(ptr - map));
            if !used.is_empty() {
                return Ok(None);
            }
        }
        let m = self.maps.remove(&map).ok_or(PlaceError::Unknown)?;
        Ok(Some((map, m.len, m.handle)))
    }

    /// The live allocation holding `ptr`, as (start, size).
    pub(crate) fn find(&self, ptr: u64) -> Option<(u64, u64)> {
        let (start, (size, _)) = self.allocs.range(..=ptr).next_back()?;
        (ptr < start + (*size).max(1)).then_some((*start, *size))
    }

    /// Every live allocation, as (start, size).
    pub(crate) fn allocations(&self) -> Vec<(u64, u64)> {
        self.allocs.iter().map(|(p, (s, _))| (*p, *s)).collect()
    }

    /// Forgets everything; returns every mapping to destroy (start, len, handle).
    pub(crate) fn clear(&mut self) -> Vec<(u64, u64, u64)> {
        self.allocs.clear();
        std::mem::take(&mut self.maps)
            .into_iter()
            .map(|(s, m)| (s, m.len, m.handle))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 0x20_0000;
    const W: Window = Window {
        base: 0x1000_0000,
        size: 8 * G,
    };

    #[test]
    fn small_allocations_share_a_chunk_and_big_ones_get_their_own() {
        let mut p = Placement::new(W, G);
        let (a, m) = p.alloc(100).expect("a");
        assert_eq!(
            (a, m),
            (
                W.base,
                Some(NewMap {
                    start: W.base,
                    len: G
                })
            )
        );
        let (b, m) = p.alloc(1000).expect("b");
        assert_eq!((b, m), (W.base + 256, None), "same chunk, 256-aligned");
        let (c, m) = p.alloc(G).expect("c");
        assert_eq!(
            (c, m),
            (
                W.base + G,
                Some(NewMap {
                    start: W.base + G,
                    len: G
                })
            )
        );
        let (d, m) = p.alloc(G + 1).expect("d");
        assert_eq!((d, m.map(|m| m.len)), (W.base + 2 * G, Some(2 * G)));
        assert_eq!(p.find(b + 999), Some((b, 1000)));
        assert_eq!(p.find(b + 1000), None);
        assert_eq!(p.free(a), Ok(None), "the chunk still holds b");
        assert_eq!(
            p.alloc(10).expect("reuse").0,
            W.base,
            "the freed hole is reused"
        );
        assert_eq!(p.free(W.base), Ok(None));
        assert_eq!(
            p.free(b),
            Ok(Some((W.base, G, 0))),
            "last user unmaps the chunk"
        );
        assert_eq!(p.free(b), Err(PlaceError::Unknown));
        assert_eq!(p.alloc(5 * G), Err(PlaceError::Full));
        assert_eq!(p.alloc(u64::MAX), Err(PlaceError::Full), "no overflow");
        assert_eq!(p.alloc(u64::MAX - G), Err(PlaceError::Full));
        assert_eq!(p.alloc_at(W.base, u64::MAX), Err(PlaceError::Taken));
    }

    #[test]
    fn a_restart_rebuilds_the_same_mappings_from_address_and_size() {
        let mut before = Placement::new(W, G);
        let mut wanted = Vec::new();
        for size in [100, 3 * G, 7000, 40, G / 2] {
            let (ptr, _) = before.alloc(size).expect("alloc");
            wanted.push((ptr, size));
        }
        let mut after = Placement::new(W, G);
        let mut maps = Vec::new();
        for (ptr, size) in wanted.iter().rev() {
            maps.extend(after.alloc_at(*ptr, *size).expect("same place"));
        }
        assert_eq!(after.allocations(), before.allocations());
        let mut lens: Vec<u64> = maps.iter().map(|m| m.len).collect();
        lens.sort_unstable();
        assert_eq!(lens, [G, G, 3 * G], "one chunk, two own mappings");
        assert_eq!(after.alloc_at(wanted[0].0, 16), Err(PlaceError::Taken));
        assert_eq!(
            after.alloc_at(W.base + 1, 16),
            Err(PlaceError::Taken),
            "misaligned"
        );
        assert_eq!(
            after.alloc_at(W.end(), 16),
            Err(PlaceError::Taken),
            "outside"
        );
        assert_eq!(after.clear().len(), 3);
    }
}
