//! Lower fs base → upper fs base, for the signal trampoline: a lock-free open-addressing table
//! written when a thread gets its lower-half TCB and read from signal handlers.
//!
//! The reader runs in a signal handler, possibly with the fs base pointing at a lower-half
//! TCB: [`lookup`] must not allocate, panic, lock or touch thread-locals; it reads only static
//! atomics. Entries are never removed (a lower TCB handed to a new upper thread overwrites its
//! entry's upper value).

use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in the table: more than the threads any program has CUDA calling at once.
const SLOTS: usize = 8192;

/// One mapping; `lower == 0` is an empty slot.
struct Slot {
    lower: AtomicU64,
    upper: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    lower: AtomicU64::new(0),
    upper: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// First slot to probe for `fs` (TCBs are page-aligned-ish: mix the high bits in).
fn home(fs: u64) -> usize {
    let h = fs.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 51;
    usize::try_from(h).unwrap_or(0) % SLOTS
}

/// Records that `lower` is the lower-half TCB of the thread whose own TCB is `upper`. Returns
/// `false` when the table is full (the thread's signals would then run with the lower fs: the
/// caller reports it).
pub fn insert(lower: u64, upper: u64) -> bool {
    if lower == 0 {
        return false;
    }
    let start = home(lower);
    for i in 0..SLOTS {
        let slot = &TABLE[(start + i) % SLOTS];
        match slot
            .lower
            .compare_exchange(0, lower, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                slot.upper.store(upper, Ordering::Release);
                return true;
            }
            Err(seen) if seen == lower => {
                slot.upper.store(upper, Ordering::Release);
                return true;
            }
            Err(_) => {}
        }
    }
    false
}

/// The upper fs base registered for `lower`, or `None` if `lower` is not a lower-half TCB we
/// lent to an upper thread. Async-signal-safe.
#[inline]
pub fn lookup(lower: u64) -> Option<u64> {
    if lower == 0 {
        return None;
    }
    let start = home(lower);
    for i in 0..SLOTS {
        let slot = &TABLE[(start + i) % SLOTS];
        match slot.lower.load(Ordering::Acquire) {
            0 => return None,
            l if l == lower => {
                let u = slot.upper.load(Ordering::Acquire);
                return (u != 0).then_some(u);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_entries_are_found_and_others_are_not() {
        // Values no other test uses (the table is process-wide).
        let base = 0x7f00_dead_0000_u64;
        for i in 0..500 {
            assert!(insert(base + i * 0x1000, 0x1000 + i));
        }
        for i in 0..500 {
            assert_eq!(lookup(base + i * 0x1000), Some(0x1000 + i));
        }
        assert_eq!(lookup(base + 0x800), None);
        assert_eq!(lookup(0), None);
        assert!(!insert(0, 5));
    }

    #[test]
    fn a_reused_lower_tcb_maps_to_its_new_thread() {
        let lower = 0x7f00_beef_0000_u64;
        assert!(insert(lower, 1));
        assert!(insert(lower, 2));
        assert_eq!(lookup(lower), Some(2));
    }
}
