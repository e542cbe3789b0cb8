//! Which memory and threads belong to the lower half (crac itself).
//!
//! Fail safe: an address is lower half only when it is provably so: (a) every mapping that
//! existed when `init_lower_half` ran (the brk guard included); (b) the lower heap arena, one
//! reservation; (c) what lower code mapped through the exported `mmap` family since; (d) the
//! objects the lower ld.so has loaded (`dl_iterate_phdr`, asked on each call, so libraries
//! dlopened later count); (e) the stacks of threads registered with [`register_current_thread`].
//! Everything else is upper half and is saved. Mappings the loader makes for the program (its
//! segments, its interpreter, its stack) use raw system calls and are never recorded.

use std::cell::Cell;
use std::sync::Mutex;

use crac_core::interval::{Interval, IntervalSet};

/// Mappings recorded at start-up, set once by `init_lower_half`.
static STARTUP: Mutex<Option<IntervalSet>> = Mutex::new(None);
/// Mappings made through the exported mmap family (minus those unmapped).
static MAPPED: Mutex<Option<IntervalSet>> = Mutex::new(None);
/// Registered lower threads: (tid, stack interval).
static THREADS: Mutex<Vec<(i32, Interval)>> = Mutex::new(Vec::new());

fn with<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    let mut guard = match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    f(&mut guard)
}

/// Records `[start, end)` (rounded out to pages) as mapped by lower code.
pub(crate) fn record_mapped(start: u64, end: u64) {
    let iv = Interval::new(crate::sys::page_down(start), crate::sys::page_up(end));
    with(&MAPPED, |m| {
        m.get_or_insert_with(IntervalSet::new).insert(iv)
    });
}

/// Forgets `[start, end)` (rounded out to pages) from the mmap-tracked set.
pub(crate) fn forget_mapped(start: u64, end: u64) {
    let iv = Interval::new(crate::sys::page_down(start), crate::sys::page_up(end));
    with(&MAPPED, |m| {
        if let Some(set) = m {
            set.remove(iv);
        }
    });
}

/// Forgets `[start, end)` (rounded out to pages) from the start-up set and the mmap-tracked set:
/// called by the exported `munmap` and `mremap` once lower code gave the range back to the
/// kernel. A start-up mapping unmapped later must not stay lower, or whatever the program maps
/// there next would be left out of a checkpoint.
pub(crate) fn unmapped(start: u64, end: u64) {
    let iv = Interval::new(crate::sys::page_down(start), crate::sys::page_up(end));
    with(&STARTUP, |s| {
        if let Some(set) = s {
            set.remove(iv);
        }
    });
    forget_mapped(start, end);
}

/// Stops counting `iv` as lower half: for memory lower code mapped *for the upper half* through
/// the exported `mmap` (the restart path mapping saved regions back, for instance). Start-up
/// mappings, the arena and loaded objects cannot be forgotten.
pub fn forget(iv: Interval) {
    forget_mapped(iv.start, iv.end);
}

/// Test helpers reading the mmap-tracked set alone.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// Whether the mmap-tracked set covers `iv`.
    pub(crate) fn mapped_covers(iv: &Interval) -> bool {
        with(&MAPPED, |m| m.as_ref().is_some_and(|s| s.covers(iv)))
    }
}

/// Sets the start-up set (called once by `init_lower_half`).
pub(crate) fn set_startup(set: IntervalSet) {
    with(&STARTUP, |s| {
        if s.is_none() {
            *s = Some(set);
        }
    });
}

/// Whether the start-up set was recorded.
pub(crate) fn has_startup() -> bool {
    with(&STARTUP, |s| s.is_some())
}

/// Every address interval provably owned by the lower half right now.
pub fn intervals() -> IntervalSet {
    let mut out = with(&STARTUP, |s| s.clone()).unwrap_or_default();
    let mapped = with(&MAPPED, |m| m.clone()).unwrap_or_default();
    for iv in mapped.intervals() {
        out.insert(*iv);
    }
    if let Some((start, end)) = crate::sys::arena::reservation() {
        out.insert(Interval::new(start as u64, end as u64));
    }
    for iv in crate::sys::objects::loaded_segments() {
        out.insert(iv);
    }
    for (_, iv) in live_threads() {
        out.insert(iv);
    }
    out
}

/// Registered threads that still exist (a dead thread's stack may be unmapped and reused).
fn live_threads() -> Vec<(i32, Interval)> {
    with(&THREADS, |t| {
        t.retain(|(tid, _)| std::path::Path::new(&format!("/proc/self/task/{tid}")).exists());
        t.clone()
    })
}

/// A registered thread's entry, removed by the thread itself when it exits (thread-local
/// destructors run on return from the start routine and on `pthread_exit`). Checking
/// `/proc/self/task/<tid>` alone is not enough: once the tid is reused by one of the program's
/// threads, its old stack range (which the program may have mapped again) would count as lower
/// and be left out of a checkpoint.
struct Registration(Cell<i32>);

impl Drop for Registration {
    fn drop(&mut self) {
        let tid = self.0.get();
        if tid != 0 {
            with(&THREADS, |t| t.retain(|(old, _)| *old != tid));
        }
    }
}

thread_local! {
    static REGISTRATION: Registration = const { Registration(Cell::new(0)) };
}

/// Called first thing on every lower-half thread crac starts (the agent): records its stack
/// (`pthread_getattr_np`, guard included) and its tid as lower half, until the thread exits.
pub fn register_current_thread() {
    let tid = crate::sys::gettid();
    let stack = crate::sys::current_stack()
        .map(|(lo, hi)| Interval::new(lo as u64, hi as u64))
        .unwrap_or(Interval::new(0, 0));
    with(&THREADS, |t| {
        t.retain(|(old, _)| *old != tid);
        t.push((tid, stack));
    });
    // Fails only while this thread's thread-locals are being destroyed; the entry is then
    // dropped by the `/proc` check in `live_threads` once the thread is gone.
    let _ = REGISTRATION.try_with(|r| r.0.set(tid));
}

/// Tids of lower-half threads (so the agent can list/skip them).
pub fn lower_tids() -> Vec<i32> {
    live_threads().into_iter().map(|(tid, _)| tid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_and_forgotten_ranges_show_in_intervals() {
        record_mapped(0x7000_0000_1000, 0x7000_0000_2800);
        let set = intervals();
        assert!(set.covers(&Interval::new(0x7000_0000_1000, 0x7000_0000_3000)));
        forget(Interval::new(0x7000_0000_2000, 0x7000_0000_3000));
        let set = intervals();
        assert!(set.contains(0x7000_0000_1000));
        assert!(!set.contains(0x7000_0000_2000));
        forget(Interval::new(0x7000_0000_1000, 0x7000_0000_2000));
    }

    #[test]
    fn a_registered_thread_owns_its_stack() {
        let tid = std::thread::spawn(|| {
            register_current_thread();
            let local = 0u8;
            let tid = crate::sys::gettid();
            assert!(lower_tids().contains(&tid));
            assert!(intervals().contains(&local as *const u8 as u64));
            tid
        })
        .join()
        .expect("thread ran");
        // Read the list itself first: `lower_tids` also prunes tids gone from /proc.
        assert!(
            with(&THREADS, |t| t.iter().all(|(old, _)| *old != tid)),
            "an exited thread removes its own entry (its tid may be reused by the program)"
        );
        assert!(!lower_tids().contains(&tid), "an exited thread is dropped");
    }

    #[test]
    fn the_arena_and_loaded_objects_are_lower() {
        let boxed = Box::new(7u64);
        let set = intervals();
        assert!(
            set.contains(&*boxed as *const u64 as u64),
            "heap block is in the arena"
        );
        let code = intervals as *const () as usize as u64;
        assert!(set.contains(code), "our own text is a loaded object");
    }
}
