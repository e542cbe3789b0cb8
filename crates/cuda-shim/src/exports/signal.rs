//! `sigaction` and `signal`, interposed on the program's libc so that a signal arriving while
//! a thread is in the lower half runs the program's handler with the program's fs.
//!
//! Every handler the program installs is replaced by [`trampoline`] (with `SA_SIGINFO` added);
//! the program's handler and flags are kept in [`HANDLERS`]. The trampoline runs in a signal
//! handler, possibly with the fs base pointing at a lower-half TCB, so until it has switched
//! to the upper fs it must not touch thread-locals, allocate, panic, lock, or call libc. It
//! reads the fs base, looks it up in `fsmap` (lower → upper), switches to the upper fs if it
//! was lower, calls the program's handler, and switches back. `oldact` reports the program's
//! handler, never the trampoline.

// The unit-test binary does not export the interposers (it would interpose on its own libc),
// so their machinery is unused there.
#![cfg_attr(test, allow(dead_code))]

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::{arch, fsmap, sys};

/// Signal numbers 1..=64.
const NSIG: usize = 65;

/// The program's handler (`sa_sigaction`/`sa_handler` as an address) per signal, with
/// [`SIGINFO_BIT`] set when it takes three arguments: one word, so the trampoline never pairs
/// a new handler with the old one's calling convention.
static HANDLERS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
/// In a [`HANDLERS`] word: the handler was installed with `SA_SIGINFO` (user addresses never
/// reach bit 63).
const SIGINFO_BIT: usize = 1 << 63;
/// The program's `sa_flags` per signal (for `oldact`).
static FLAGS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
/// Serialises installs (not the trampoline, which only reads).
static INSTALL_LOCK: AtomicBool = AtomicBool::new(false);

type Handler = extern "C" fn(c_int);
type SigInfoHandler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// Runs the program's handler for `sig` with the program's fs.
extern "C" fn trampoline(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let current = arch::get_fs();
    let upper = fsmap::lookup(current);
    if let Some(upper) = upper {
        // SAFETY: `upper` is the TCB of the very thread this lower TCB was lent to (fsmap is
        // written only by that thread's bootstrap), so switching to it is returning to its own.
        unsafe { arch::set_fs(upper) };
    }
    let idx = usize::try_from(sig).unwrap_or(0);
    if idx > 0 && idx < NSIG {
        let word = HANDLERS[idx].load(Ordering::Acquire);
        let h = word & !SIGINFO_BIT;
        if h > 1 {
            if word & SIGINFO_BIT != 0 {
                // SAFETY: the program installed `h` with SA_SIGINFO, so it has this type.
                let f = unsafe { std::mem::transmute::<usize, SigInfoHandler>(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the program installed `h` without SA_SIGINFO: a plain handler.
                let f = unsafe { std::mem::transmute::<usize, Handler>(h) };
                f(sig);
            }
        }
    }
    if upper.is_some() {
        // SAFETY: `current` is the lower TCB this thread was running on when interrupted.
        unsafe { arch::set_fs(current) };
    }
}

/// Registers a lower TCB lent to an upper thread in this library's map. Exported (version
/// `CRAC_SHIM_1`) so that when both shim libraries are loaded, each registers its threads
/// with the first one in the program's symbol order, whose `sigaction` the program uses and
/// whose trampoline therefore reads this map.
#[unsafe(no_mangle)]
pub extern "C" fn crac_shim_fsmap_insert(lower: u64, upper: u64) -> bool {
    fsmap::insert(lower, upper)
}

fn lock() {
    while INSTALL_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn unlock() {
    INSTALL_LOCK.store(false, Ordering::Release);
}

/// `sigaction`, interposed.
///
/// # Safety
/// As libc's `sigaction`: `act` null or a valid `struct sigaction`, `oldact` null or writable.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    oldact: *mut libc::sigaction,
) -> c_int {
    // SAFETY: same contract.
    unsafe { interposed_sigaction(sig, act, oldact) }
}

/// The body of the interposed `sigaction`.
///
/// # Safety
/// As libc's `sigaction`.
unsafe fn interposed_sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    oldact: *mut libc::sigaction,
) -> c_int {
    let Some(next) = sys::next_sigaction() else {
        // SAFETY: errno slot of this thread.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        return -1;
    };
    let idx = usize::try_from(sig).ok().filter(|&i| i > 0 && i < NSIG);
    let Some(idx) = idx.filter(|_| sig != libc::SIGKILL && sig != libc::SIGSTOP) else {
        // SAFETY: forwarded unchanged; libc reports EINVAL itself.
        return unsafe { next(sig, act, oldact) };
    };
    lock();
    let prev_handler = HANDLERS[idx].load(Ordering::Acquire) & !SIGINFO_BIT;
    let prev_flags = FLAGS[idx].load(Ordering::Acquire);
    let mut tmp_old: libc::sigaction = unsafe_zeroed();
    let r = if act.is_null() {
        // SAFETY: a query: `tmp_old` is writable.
        unsafe { next(sig, std::ptr::null(), &mut tmp_old) }
    } else {
        // SAFETY: the caller guarantees `act` is valid.
        let mut new = unsafe { *act };
        let handler = new.sa_sigaction;
        let program_flags = usize::try_from(new.sa_flags).unwrap_or(0);
        if handler > 1 {
            new.sa_sigaction = trampoline as SigInfoHandler as usize;
            new.sa_flags |= libc::SA_SIGINFO;
        }
        let prev_word = HANDLERS[idx].load(Ordering::Acquire);
        let siginfo = if program_flags & (libc::SA_SIGINFO as usize) != 0 {
            SIGINFO_BIT
        } else {
            0
        };
        // A signal that comes while the action changes runs the old handler or the new one,
        // never nothing: a new handler is stored before the kernel's action points at the
        // trampoline, SIG_DFL/SIG_IGN only after it stops pointing there.
        let word = handler | siginfo;
        if handler > 1 {
            HANDLERS[idx].store(word, Ordering::Release);
        }
        FLAGS[idx].store(program_flags, Ordering::Release);
        // SAFETY: `new` is a valid action; `tmp_old` is writable.
        let r = unsafe { next(sig, &new, &mut tmp_old) };
        if r != 0 {
            HANDLERS[idx].store(prev_word, Ordering::Release);
            FLAGS[idx].store(prev_flags, Ordering::Release);
        } else {
            HANDLERS[idx].store(word, Ordering::Release);
        }
        r
    };
    unlock();
    if r == 0 && !oldact.is_null() {
        if tmp_old.sa_sigaction == trampoline as SigInfoHandler as usize {
            tmp_old.sa_sigaction = prev_handler;
            tmp_old.sa_flags = c_int::try_from(prev_flags).unwrap_or(tmp_old.sa_flags);
        }
        // SAFETY: the caller guarantees `oldact` is writable.
        unsafe { oldact.write(tmp_old) };
    }
    r
}

/// An all-zero `struct sigaction` (plain data).
fn unsafe_zeroed() -> libc::sigaction {
    // SAFETY: struct sigaction is plain data for which all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `signal`, interposed: BSD semantics as glibc's (`SA_RESTART`, the signal blocked in its own
/// handler), installed through the interposed `sigaction`.
///
/// # Safety
/// As libc's `signal`.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    let mut act = unsafe_zeroed();
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act.sa_mask` is a valid set; sigaddset rejects a bad number itself.
    if unsafe { libc::sigaddset(&mut act.sa_mask, sig) } != 0 {
        return libc::SIG_ERR;
    }
    let mut old = unsafe_zeroed();
    // SAFETY: both structs are valid.
    if unsafe { interposed_sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}
