//! The lower-half heap: one big `PROT_NONE` `MAP_NORESERVE` reservation, committed in chunks,
//! with dlmalloc on top. Every allocation of the lower half (Rust's global allocator and, through
//! the exported C malloc family, the lower libc's own) comes from here, so the lower heap is one
//! known interval instead of scattered mappings.
//!
//! This code runs before `main` (ld.so calls `malloc` while it relocates libc) and inside
//! `malloc`, so it must not: allocate, panic, use thread-locals, or call the exported `mmap`
//! (only raw system calls). The lock is a spin lock on an atomic, usable before any runtime
//! exists; `init_lower_half` registers `pthread_atfork` handlers so a fork never copies it held.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dlmalloc::{Allocator, Dlmalloc};

use super::PAGE;

/// Virtual sizes tried for the reservation, largest first (address space only; memory is
/// committed as used). Smaller ones serve a process under a tight `RLIMIT_AS`.
const ARENA_SIZES: [usize; 5] = [64 << 30, 16 << 30, 4 << 30, 1 << 30, 256 << 20];
/// Smallest chunk committed at once.
const COMMIT_GRAIN: usize = 1 << 20;
/// Released extents remembered for reuse; beyond that a released extent is left unused.
const FREE_SLOTS: usize = 256;

/// Start of the reservation, 0 until the first allocation.
static ARENA_BASE: AtomicUsize = AtomicUsize::new(0);
/// Length of the reservation (set before ARENA_BASE is published).
static ARENA_LEN: AtomicUsize = AtomicUsize::new(0);

/// The reservation `[start, end)`, if made.
pub(crate) fn reservation() -> Option<(usize, usize)> {
    let base = ARENA_BASE.load(Ordering::Acquire);
    (base != 0).then(|| (base, base + ARENA_LEN.load(Ordering::Acquire)))
}

/// Hands dlmalloc committed chunks of the reservation: first fit over released extents, else
/// the next untouched part.
pub(crate) struct ArenaSys {
    /// Offset of the first never-used byte.
    bump: Cell<usize>,
    /// Released extents `(offset, len)`, `len == 0` for an empty slot.
    free: UnsafeCell<[(usize, usize); FREE_SLOTS]>,
}

// SAFETY: the only ArenaSys lives inside HEAP and is touched only with HEAP's lock held, so
// its Cell/UnsafeCell state is never accessed from two threads at once.
unsafe impl Send for ArenaSys {}

impl ArenaSys {
    const fn new() -> Self {
        Self {
            bump: Cell::new(0),
            free: UnsafeCell::new([(0, 0); FREE_SLOTS]),
        }
    }

    fn base(&self) -> usize {
        let base = ARENA_BASE.load(Ordering::Acquire);
        if base != 0 {
            return base;
        }
        for len in ARENA_SIZES {
            if let Ok(addr) = super::mmap_anon(len, libc::PROT_NONE, libc::MAP_NORESERVE) {
                ARENA_LEN.store(len, Ordering::Release);
                ARENA_BASE.store(addr, Ordering::Release);
                return addr;
            }
        }
        0
    }

    fn take(&self, len: usize) -> Option<usize> {
        // SAFETY: called only with HEAP's lock held (see the Send impl), and no other reference
        // to the array is alive in this function.
        let slots = unsafe { &mut *self.free.get() };
        if let Some(slot) = slots.iter_mut().find(|s| s.1 >= len) {
            let off = slot.0;
            *slot = (slot.0 + len, slot.1 - len);
            return Some(off);
        }
        let off = self.bump.get();
        if ARENA_LEN.load(Ordering::Acquire).saturating_sub(off) < len {
            return None;
        }
        self.bump.set(off + len);
        Some(off)
    }

    fn release(&self, off: usize, len: usize) {
        let base = ARENA_BASE.load(Ordering::Acquire);
        // SAFETY: dlmalloc gives back only extents it got from `alloc` and no longer uses.
        let ok = unsafe {
            super::discard(base + off, len).is_ok()
                && super::mprotect(base + off, len, libc::PROT_NONE).is_ok()
        };
        if !ok {
            return;
        }
        // SAFETY: as in `take`: HEAP's lock is held and this is the only reference.
        let slots = unsafe { &mut *self.free.get() };
        if let Some(s) = slots.iter_mut().find(|s| s.0 + s.1 == off && s.1 != 0) {
            s.1 += len;
        } else if let Some(s) = slots.iter_mut().find(|s| s.1 == 0) {
            *s = (off, len);
        }
    }
}

// SAFETY: alloc hands out committed, zeroed, page-aligned extents of the reservation that no
// other caller holds; free/free_part only take back extents dlmalloc got from alloc.
unsafe impl Allocator for ArenaSys {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let base = self.base();
        if base == 0 {
            return (std::ptr::null_mut(), 0, 0);
        }
        let len = size.div_ceil(COMMIT_GRAIN).saturating_mul(COMMIT_GRAIN);
        let Some(off) = self.take(len) else {
            return (std::ptr::null_mut(), 0, 0);
        };
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: the extent is inside our reservation and handed to nobody else.
        if unsafe { super::mprotect(base + off, len, prot) }.is_err() {
            return (std::ptr::null_mut(), 0, 0);
        }
        ((base + off) as *mut u8, len, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        std::ptr::null_mut()
    }

    fn free_part(&self, ptr: *mut u8, oldsize: usize, newsize: usize) -> bool {
        let base = ARENA_BASE.load(Ordering::Acquire);
        let keep = newsize.div_ceil(PAGE) * PAGE;
        if keep >= oldsize {
            return false;
        }
        self.release(ptr as usize - base + keep, oldsize - keep);
        true
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        let base = ARENA_BASE.load(Ordering::Acquire);
        self.release(ptr as usize - base, size);
        true
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// dlmalloc over the arena, behind a spin lock.
pub(crate) struct Heap {
    locked: AtomicBool,
    inner: UnsafeCell<Dlmalloc<ArenaSys>>,
}

// SAFETY: `inner` is only reached through `with`, which holds `locked`.
unsafe impl Sync for Heap {}

/// The one lower-half heap.
pub(crate) static HEAP: Heap = Heap {
    locked: AtomicBool::new(false),
    inner: UnsafeCell::new(Dlmalloc::new_with_allocator(ArenaSys::new())),
};

impl Heap {
    /// Takes the lock (spinning, then yielding the CPU).
    pub(crate) fn lock(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    /// Releases the lock.
    pub(crate) fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Runs `f` on the allocator with the lock held.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Dlmalloc<ArenaSys>) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held, so this is the only live reference to the allocator.
        let r = f(unsafe { &mut *self.inner.get() });
        self.unlock();
        r
    }
}

/// `pthread_atfork` handlers: hold the heap lock across `fork` so the child never inherits it
/// held by a thread that does not exist there.
pub(crate) extern "C" fn atfork_prepare() {
    HEAP.lock();
}

/// Releases the lock taken by [`atfork_prepare`] (parent and child).
pub(crate) extern "C" fn atfork_release() {
    HEAP.unlock();
}

/// Usable bytes of a live block (`malloc_usable_size`): its chunk size less dlmalloc's
/// overhead (two words for directly-mapped chunks, one otherwise).
///
/// # Safety
/// `ptr` must be a live block from [`HEAP`].
pub(crate) unsafe fn usable_size(ptr: *mut u8) -> usize {
    const INUSE: usize = 3;
    // SAFETY: dlmalloc keeps the chunk head one word below every block it hands out.
    let head = unsafe { ptr.cast::<usize>().sub(1).read() };
    let size = head & !7;
    let overhead = if head & INUSE == 0 { 16 } else { 8 };
    size.saturating_sub(overhead)
}

/// Rust's global allocator, the same arena as the C exports.
pub struct LowerAlloc;

// SAFETY: every method forwards to dlmalloc under the heap lock with the layout it was given,
// which is what dlmalloc's layout-carrying API requires.
unsafe impl std::alloc::GlobalAlloc for LowerAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarding the caller's valid layout.
        HEAP.with(|h| unsafe { h.malloc(layout.size(), layout.align()) })
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarding the caller's valid layout.
        HEAP.with(|h| unsafe { h.calloc(layout.size(), layout.align()) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller frees a block it got from this allocator with its layout.
        HEAP.with(|h| unsafe { h.free(ptr, layout.size(), layout.align()) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: the caller resizes a live block with its original layout.
        HEAP.with(|h| unsafe { h.realloc(ptr, layout.size(), layout.align(), new) })
    }
}
