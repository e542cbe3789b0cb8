//! The signal state crac was started with, captured before Rust's runtime changes it, and put
//! back for the program.
//!
//! Rust's std (in `lang_start`, after every `.init_array` constructor) sets SIGPIPE to SIG_IGN
//! and installs SIGSEGV/SIGBUS handlers with a sigaltstack on the main thread. The constructor
//! here runs before that and records every disposition and the signal mask; `restore_for_program`
//! puts back the dispositions of those three signals (exec gives a fresh program SIG_DFL for any
//! signal that had a handler, and keeps SIG_IGN) and the mask, and turns the sigaltstack off.
//! Other signals keep what they have now: handlers crac's agent installed on purpose stay.
//!
//! The constructor runs before `main` with no runtime: it must not allocate or panic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Signals whose disposition std changes at start-up.
const STD_TOUCHED: [i32; 3] = [libc::SIGPIPE, libc::SIGSEGV, libc::SIGBUS];

/// Bit `n` set: signal `n` was SIG_IGN at start-up.
static IGNORED: AtomicU64 = AtomicU64::new(0);
/// The start-up signal mask (as the kernel's 64-bit set).
static MASK: AtomicU64 = AtomicU64::new(0);
static CAPTURED: AtomicBool = AtomicBool::new(false);

extern "C" fn capture(_argc: i32, _argv: *const *const u8, _envp: *const *const u8) {
    // Before std's init reopens closed standard fds on /dev/null.
    super::stdfds::capture();
    let mut ignored = 0u64;
    for sig in 1..=64i32 {
        let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a null new action only queries; `old` is a valid out-pointer.
        let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
        // SAFETY: sigaction filled `old` when it returned 0; zeroed memory is valid otherwise.
        if rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN {
            ignored |= 1 << (sig - 1);
        }
    }
    let mut mask = 0u64;
    // SAFETY: rt_sigprocmask with a null new set only reads the mask into `mask` (8 bytes, the
    // kernel's sigset size on x86-64).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut mask as *mut u64,
            8usize,
        )
    };
    if rc == 0 {
        MASK.store(mask, Ordering::Relaxed);
    }
    IGNORED.store(ignored, Ordering::Relaxed);
    CAPTURED.store(true, Ordering::Release);
}

/// Runs [`capture`] from `.init_array`, before std's runtime init (it also records which
/// standard fds were closed, `stdfds.rs`).
#[used]
#[unsafe(link_section = ".init_array")]
static CAPTURE_CTOR: extern "C" fn(i32, *const *const u8, *const *const u8) = capture;

/// Whether the constructor ran (read by `init_lower_half`, which also keeps it linked).
pub(crate) fn captured() -> bool {
    std::hint::black_box(&CAPTURE_CTOR);
    CAPTURED.load(Ordering::Acquire)
}

/// Puts back the start-up dispositions of the signals std changed, the start-up mask on the
/// calling thread, and turns off its sigaltstack.
pub(crate) fn restore_for_program() -> std::io::Result<()> {
    let ignored = IGNORED.load(Ordering::Relaxed);
    for sig in STD_TOUCHED {
        let was_ignored = ignored & (1 << (sig - 1)) != 0;
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags).
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = if was_ignored {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: installing SIG_DFL/SIG_IGN from a valid sigaction struct.
        if unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: an all-zero stack_t with SS_DISABLE is how sigaltstack(2) is turned off.
    let mut ss: libc::stack_t = unsafe { std::mem::zeroed() };
    ss.ss_flags = libc::SS_DISABLE;
    // SAFETY: valid stack_t; we are not running on the alternate stack here.
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mask = MASK.load(Ordering::Relaxed);
    // SAFETY: sets the calling thread's mask from a valid 8-byte kernel sigset.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
