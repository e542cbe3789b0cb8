//! The x86-64 instructions behind [`super`]: `rdfsbase`, `wrfsbase`, the TCB self pointer, and
//! a raw `arch_prctl(ARCH_SET_FS)` system call.
//!
//! These run between the two fs switches of a crossing and inside the signal trampoline, with
//! the fs base possibly pointing at the other half's TCB: they must not allocate, panic, touch
//! thread-locals, take locks, or call libc (whose errno is a thread-local).

use std::arch::asm;

/// `arch_prctl` sub-function that sets the fs base.
const ARCH_SET_FS: u64 = 0x1002;
/// `arch_prctl`'s system call number.
const SYS_ARCH_PRCTL: u64 = 158;

/// Reads the fs base.
///
/// # Safety
/// The CPU and kernel must enable FSGSBASE (`HWCAP2_FSGSBASE`), else this raises SIGILL.
#[inline(always)]
pub unsafe fn rdfsbase() -> u64 {
    let v: u64;
    // SAFETY: the caller guarantees the instruction is enabled; it only writes `v`.
    unsafe { asm!("rdfsbase {}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Writes the fs base.
///
/// # Safety
/// As [`rdfsbase`]; and `v` must be a TCB the calling thread may use.
#[inline(always)]
pub unsafe fn wrfsbase(v: u64) {
    // SAFETY: the caller guarantees the instruction is enabled and `v` is a usable TCB. No
    // `nomem`: memory accesses must not move across the switch.
    unsafe { asm!("wrfsbase {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// Reads the TCB self pointer at `fs:0` (equal to the fs base under glibc and musl).
///
/// # Safety
/// The current fs base must point at a TCB whose first word is its own address.
#[inline(always)]
pub unsafe fn fs_self() -> u64 {
    let v: u64;
    // SAFETY: the caller guarantees fs:0 is mapped and holds the self pointer.
    unsafe {
        asm!("mov {}, qword ptr fs:[0]", out(reg) v, options(readonly, nostack, preserves_flags))
    };
    v
}

/// Sets the fs base with a raw `arch_prctl` system call (no libc, so no errno is written).
///
/// # Safety
/// `v` must be a TCB the calling thread may use.
#[inline(always)]
pub unsafe fn arch_prctl_set_fs(v: u64) {
    // SAFETY: the system call only sets the fs base; it clobbers rcx and r11 (declared) and
    // returns in rax, which is discarded: with a canonical user address it cannot fail.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => _,
            in("rdi") ARCH_SET_FS,
            in("rsi") v,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
}

/// `futex`'s system call number.
const SYS_FUTEX: u64 = 202;

/// A raw `futex(addr, op, val, timeout)` system call (no libc, so no errno is written);
/// returns the kernel's result (a negative errno on failure).
///
/// # Safety
/// `timeout` must be null or point at a readable `timespec`; `op` must be an operation that
/// uses no argument past the fourth and writes no user memory (`FUTEX_WAIT`, `FUTEX_WAKE`).
#[inline(always)]
pub unsafe fn futex(addr: usize, op: u32, val: u32, timeout: *const libc::timespec) -> i64 {
    let ret: i64;
    // SAFETY: the system call reads at most the futex word (a fault is EFAULT, not a signal)
    // and the timespec the caller vouches for; it clobbers rcx and r11 (declared).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_FUTEX as i64 => ret,
            in("rdi") addr,
            in("rsi") u64::from(op),
            in("rdx") u64::from(val),
            in("r10") timeout,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
