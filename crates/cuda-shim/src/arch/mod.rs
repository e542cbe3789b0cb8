//! The fs-base primitives the crossing and the signal trampoline use (x86-64 only), and the
//! raw futex the API gate waits on.
//!
//! Two ways to move the fs base: `wrfsbase`/`rdfsbase` when the kernel enables them
//! (`HWCAP2_FSGSBASE`, bit 1 of `AT_HWCAP2`), else the `arch_prctl(ARCH_SET_FS)` system call,
//! issued directly (never through libc's `syscall`, which writes errno in whichever TCB fs
//! points at). Reading the current base without `rdfsbase` uses the TCB's self pointer at
//! `fs:0`, which glibc (and musl) keep equal to the fs base.

mod x86_64;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether `rdfsbase`/`wrfsbase` may be used; set once by [`detect`] before any crossing.
static FSGSBASE: AtomicBool = AtomicBool::new(false);

/// Bit of `AT_HWCAP2` that says the kernel lets user code run `rd/wrfsbase`.
pub const HWCAP2_FSGSBASE: u64 = 1 << 1;

/// Records whether the kernel advertises FSGSBASE (`hwcap2`: the `AT_HWCAP2` value).
pub fn detect(hwcap2: u64) {
    FSGSBASE.store(hwcap2 & HWCAP2_FSGSBASE != 0, Ordering::Relaxed);
}

/// Whether the fast instructions are in use.
pub fn uses_fsgsbase() -> bool {
    FSGSBASE.load(Ordering::Relaxed)
}

/// The calling thread's fs base. Touches no thread-local and no memory but `fs:0`.
#[inline(always)]
pub fn get_fs() -> u64 {
    if uses_fsgsbase() {
        // SAFETY: FSGSBASE is set only when the kernel advertises HWCAP2_FSGSBASE, which means
        // CR4.FSGSBASE is on and the instruction cannot fault.
        unsafe { x86_64::rdfsbase() }
    } else {
        // SAFETY: every thread that runs this code has a glibc (or musl) TCB at its fs base,
        // whose first word points at itself.
        unsafe { x86_64::fs_self() }
    }
}

/// Sets the calling thread's fs base.
///
/// # Safety
/// `fs` must be the base of a live TCB that this thread may use (its own, or a lower-half TCB
/// lent to it), and until the base is set back the code run must not depend on the previous
/// thread-locals.
#[inline(always)]
pub unsafe fn set_fs(fs: u64) {
    if uses_fsgsbase() {
        // SAFETY: as in `get_fs`, the instruction is enabled; the caller vouches for `fs`.
        unsafe { x86_64::wrfsbase(fs) }
    } else {
        // SAFETY: the caller vouches for `fs`; the system call touches no memory of ours.
        unsafe { x86_64::arch_prctl_set_fs(fs) }
    }
}

/// Sleeps while the 32-bit word at `addr` holds `expected`, at most `timeout` (none: no
/// limit). Returns early on a wake-up, a signal (`EINTR`) or a changed word: callers loop. A
/// raw system call: it writes no errno, so it may run in upper mode around the program's code.
pub fn futex_wait(addr: usize, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos()),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
    // FUTEX_WAIT | FUTEX_PRIVATE_FLAG: the word is the lower half's, in this process only.
    let op = u32::try_from(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG).unwrap_or(0);
    // SAFETY: FUTEX_WAIT reads only the word (a bad address is EFAULT) and the timespec,
    // a live local or null.
    unsafe { x86_64::futex(addr, op, expected, ts_ptr) };
}

/// Wakes every thread sleeping on the 32-bit word at `addr` (a raw system call, no errno).
pub fn futex_wake_all(addr: usize) {
    let op = u32::try_from(libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG).unwrap_or(0);
    let all = u32::try_from(i32::MAX).unwrap_or(1);
    // SAFETY: FUTEX_WAKE uses the address only as a key and reads no other argument's memory.
    unsafe { x86_64::futex(addr, op, all, std::ptr::null()) };
}
