//! The quiesce signal: its handler, which parks a program thread, and the calls the agent uses to
//! install it, send it, wait for the threads and release them.
//!
//! The handler is lower-half code running on a *program* thread, with the program's fs base and
//! the program's stack. It must not: allocate, panic, touch thread-locals (`errno` included, so
//! no libc wrappers: raw `syscall` instructions only), take a lock, or call into anything that
//! might. It uses atomics and futexes on statics, nothing else. It records into its own slot
//! (claimed with one atomic add) the thread id, the address of the `ucontext_t` the kernel
//! pushed, the fs base and the sigaltstack, counts itself in, wakes the agent, and sleeps until
//! the round word moves on. Then it returns normally and the kernel's `rt_sigreturn` resumes
//! the program.
//!
//! One word, `ROUND`, says both whether threads are being stopped (odd) and which round it
//! is: a handler reads it once, so it cannot see "stopping" from one round and a generation
//! from another. A handler that read a round which has ended since (a late delivery racing
//! the release and the next install) tags its slot with the old round, which the agent
//! ignores, and finds the word already moved on, so it returns at once instead of being
//! counted as parked while it runs. Slot numbers are never reset (a round uses the numbers
//! claimed since it began, modulo the table), so such a late handler never writes into a slot
//! a thread of the new round claimed; the round is the last word a handler writes (release),
//! the first the agent reads (acquire), so a slot is read only once it is complete.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::errno;
pub use super::process::tgkill;
use crac_loader::arch::x86_64 as arch;

/// At most this many program threads can be stopped at once.
pub const MAX_THREADS: usize = 8192;

const SYS_GETTID: i64 = 186;
const SYS_FUTEX: i64 = 202;
const SYS_SIGALTSTACK: i64 = 131;
const SYS_ARCH_PRCTL: i64 = 158;
const SYS_RT_SIGACTION: i64 = 13;
const ARCH_GET_FS: u64 = 0x1003;
const FUTEX_WAIT_PRIVATE: u64 = 128;
const FUTEX_WAKE_PRIVATE: u64 = 129;
const SA_SIGINFO: u64 = 4;
const SA_RESTART: u64 = 0x1000_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SS_ONSTACK: u64 = 1;

/// What one parked thread recorded.
struct Slot {
    /// The round the slot was filled in.
    round: AtomicU32,
    tid: AtomicI32,
    ucontext: AtomicU64,
    fs_base: AtomicU64,
    ss_sp: AtomicU64,
    ss_flags: AtomicU64,
    ss_size: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    round: AtomicU32::new(0),
    tid: AtomicI32::new(0),
    ucontext: AtomicU64::new(0),
    fs_base: AtomicU64::new(0),
    ss_sp: AtomicU64::new(0),
    ss_flags: AtomicU64::new(0),
    ss_size: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_THREADS] = [EMPTY; MAX_THREADS];
/// Slot numbers claimed so far, all rounds together (slot `n` lives at `n % MAX_THREADS`).
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// The first slot number of the current round.
static BASE: AtomicUsize = AtomicUsize::new(0);
/// Threads parked so far (a futex word the agent waits on).
static ARRIVED: AtomicU32 = AtomicU32::new(0);
/// The round: odd while a checkpoint is stopping threads, even otherwise (a late delivery of
/// the signal after a failed attempt, from a thread that had it blocked, finds it even and
/// returns at once). A futex word parked threads wait on until it changes.
static ROUND: AtomicU32 = AtomicU32::new(0);
/// Whether `rdfsbase` may be used (HWCAP2_FSGSBASE), read once when the handler is installed.
static FSGSBASE: AtomicBool = AtomicBool::new(false);

/// A thread as its handler recorded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parked {
    /// Kernel thread id.
    pub tid: i32,
    /// Address of the `ucontext_t` on the thread's stack.
    pub ucontext: u64,
    /// fs base.
    pub fs_base: u64,
    /// `stack_t`: sp, flags (without `SS_ONSTACK`), size.
    pub altstack: (u64, i32, u64),
}

/// The kernel's `struct sigaction` (x86-64 layout, 8-byte signal set).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSigaction {
    /// Handler address, or 0 (`SIG_DFL`) / 1 (`SIG_IGN`).
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// Blocked while the handler runs.
    pub mask: u64,
}

#[inline(always)]
fn futex(word: &AtomicU32, op: u64, val: u32, timeout: u64) -> i64 {
    // SAFETY: the futex word is a live static; `timeout` is null or points at a live timespec
    // (the callers pass a local); FUTEX_WAIT/WAKE touch no other memory.
    unsafe {
        arch::syscall4(
            SYS_FUTEX,
            word as *const AtomicU32 as u64,
            op,
            u64::from(val),
            timeout,
        )
    }
}

/// The quiesce handler (see the module doc for what it must not do).
extern "C" fn handler(_sig: i32, _info: *mut libc::c_void, uc: *mut libc::c_void) {
    // One load: whether threads are being stopped and which round (module doc).
    let round = ROUND.load(Ordering::SeqCst);
    if round & 1 == 0 {
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::AcqRel);
    if let Some(slot) = SLOTS.get(n % MAX_THREADS) {
        // SAFETY: gettid has no arguments and no effects.
        let tid = unsafe { arch::syscall4(SYS_GETTID, 0, 0, 0, 0) };
        let fs = if FSGSBASE.load(Ordering::Relaxed) {
            // SAFETY: HWCAP2_FSGSBASE was checked when the handler was installed.
            unsafe { arch::rdfsbase() }
        } else {
            let mut out = 0u64;
            // SAFETY: ARCH_GET_FS writes one u64 to a valid local.
            unsafe { arch::syscall4(SYS_ARCH_PRCTL, ARCH_GET_FS, &raw mut out as u64, 0, 0) };
            out
        };
        let mut ss = [0u64; 3];
        // SAFETY: a null new stack only queries; the kernel writes one stack_t (24 bytes)
        // into `ss`.
        unsafe { arch::syscall4(SYS_SIGALTSTACK, 0, ss.as_mut_ptr() as u64, 0, 0) };
        slot.ucontext.store(uc as u64, Ordering::Relaxed);
        slot.fs_base.store(fs, Ordering::Relaxed);
        slot.ss_sp.store(ss[0], Ordering::Relaxed);
        slot.ss_flags
            .store(ss[1] & 0xffff_ffff & !SS_ONSTACK, Ordering::Relaxed);
        slot.ss_size.store(ss[2], Ordering::Relaxed);
        slot.tid
            .store(i32::try_from(tid).unwrap_or(0), Ordering::Relaxed);
        // Last: the round says the slot is complete (module doc).
        slot.round.store(round, Ordering::Release);
    }
    ARRIVED.fetch_add(1, Ordering::AcqRel);
    futex(&ARRIVED, FUTEX_WAKE_PRIVATE, 1, 0);
    // FUTEX_WAIT returns at once when the word is no longer `round` (no lost wake-up), and
    // the loop sleeps again after a spurious wake-up.
    while ROUND.load(Ordering::Acquire) == round {
        futex(&ROUND, FUTEX_WAIT_PRIVATE, round, 0);
    }
}

/// Reads the action for `signo` (`rt_sigaction` with no new action).
pub fn get_action(signo: i32) -> io::Result<KernelSigaction> {
    let mut old = KernelSigaction::default();
    // SAFETY: a null new action only queries; the kernel writes one sigaction into `old`.
    let rc = unsafe {
        arch::syscall4(
            SYS_RT_SIGACTION,
            u64::try_from(signo).unwrap_or(0),
            0,
            &raw mut old as u64,
            8,
        )
    };
    errno(rc).map(|_| old)
}

/// Sets the action for `signo` exactly as given (raw `rt_sigaction`).
///
/// # Safety
/// A handler address must be code that may run on any thread that can receive the signal.
pub unsafe fn set_action(signo: i32, act: &KernelSigaction) -> io::Result<()> {
    // SAFETY: the kernel reads one sigaction from `act`; the caller vouches for the handler.
    let rc = unsafe {
        arch::syscall4(
            SYS_RT_SIGACTION,
            u64::try_from(signo).unwrap_or(0),
            act as *const KernelSigaction as u64,
            0,
            8,
        )
    };
    errno(rc).map(drop)
}

/// Installs the quiesce handler for `signo` (all signals blocked while it runs, `SA_RESTART`,
/// crac's own restorer) and starts a new round.
pub fn install(signo: i32) -> io::Result<()> {
    // SAFETY: getauxval has no preconditions.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    FSGSBASE.store(hwcap2 & 2 != 0, Ordering::Relaxed);
    BASE.store(NEXT.load(Ordering::SeqCst), Ordering::SeqCst);
    ARRIVED.store(0, Ordering::Release);
    // To the next odd round; one still running (an install without a release) ends, and its
    // parked threads go.
    let now = ROUND.load(Ordering::SeqCst);
    ROUND.store(
        now.wrapping_add(if now & 1 == 0 { 1 } else { 2 }),
        Ordering::SeqCst,
    );
    futex(&ROUND, FUTEX_WAKE_PRIVATE, i32::MAX as u32, 0);
    let act = KernelSigaction {
        handler: handler as *const () as usize as u64,
        flags: SA_SIGINFO | SA_RESTART | SA_RESTORER,
        restorer: arch::sigrestorer(),
        mask: u64::MAX,
    };
    // SAFETY: the handler is written to run on any thread (module doc).
    unsafe { set_action(signo, &act) }
}

/// Waits until `count` threads have parked or `deadline` passes; returns how many parked.
pub fn wait_arrived(count: u32, deadline: Instant) -> u32 {
    loop {
        let now = ARRIVED.load(Ordering::Acquire);
        let left = deadline.saturating_duration_since(Instant::now());
        if now >= count || left == Duration::ZERO {
            return now;
        }
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(1),
            tv_nsec: libc::c_long::from(left.subsec_nanos().min(999_999_999) as i32),
        };
        futex(&ARRIVED, FUTEX_WAIT_PRIVATE, now, &raw const ts as u64);
    }
}

/// The threads parked in this round so far (slots beyond [`MAX_THREADS`] are lost: see
/// [`overflowed`]).
pub fn parked() -> Vec<Parked> {
    let base = BASE.load(Ordering::SeqCst);
    let claimed = NEXT
        .load(Ordering::Acquire)
        .wrapping_sub(base)
        .min(MAX_THREADS);
    let round = ROUND.load(Ordering::SeqCst);
    (0..claimed)
        .filter_map(|k| SLOTS.get(base.wrapping_add(k) % MAX_THREADS))
        .filter(|s| s.round.load(Ordering::Acquire) == round)
        .filter(|s| s.tid.load(Ordering::Relaxed) != 0)
        .map(|s| Parked {
            tid: s.tid.load(Ordering::Relaxed),
            ucontext: s.ucontext.load(Ordering::Relaxed),
            fs_base: s.fs_base.load(Ordering::Relaxed),
            altstack: (
                s.ss_sp.load(Ordering::Relaxed),
                i32::try_from(s.ss_flags.load(Ordering::Relaxed)).unwrap_or(0),
                s.ss_size.load(Ordering::Relaxed),
            ),
        })
        .collect()
}

/// How many threads have arrived in this round.
pub fn arrived() -> u32 {
    ARRIVED.load(Ordering::Acquire)
}

/// Whether more threads arrived than there are slots.
pub fn overflowed() -> bool {
    NEXT.load(Ordering::Acquire)
        .wrapping_sub(BASE.load(Ordering::SeqCst))
        > MAX_THREADS
}

/// Proof that every program thread is parked in the handler (made by [`all_parked`], given up
/// by [`release`]).
#[derive(Debug)]
pub struct AllParked(());

/// The proof that the threads are parked: every tid in `signalled_and_alive` has a filled
/// slot.
pub fn all_parked(signalled_and_alive: &[i32]) -> Option<AllParked> {
    let parked: Vec<i32> = parked().iter().map(|p| p.tid).collect();
    signalled_and_alive
        .iter()
        .all(|t| parked.contains(t))
        .then_some(AllParked(()))
}

/// Whether `act` is crac's quiesce handler.
pub fn is_ours(act: &KernelSigaction) -> bool {
    act.handler == handler as *const () as usize as u64
}

/// Lets every parked thread go; a later delivery of the signal returns at once.
pub fn release() {
    let now = ROUND.load(Ordering::SeqCst);
    if now & 1 == 1 {
        ROUND.store(now.wrapping_add(1), Ordering::SeqCst);
    }
    futex(&ROUND, FUTEX_WAKE_PRIVATE, i32::MAX as u32, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests share the statics of the one handler: one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[test]
    fn slots_of_an_earlier_round_are_not_counted_as_parked() {
        let _one = serial();
        let signo = libc::SIGRTMAX() - 1;
        let old = get_action(signo).unwrap();
        install(signo).unwrap();
        let round = ROUND.load(Ordering::SeqCst);
        assert_eq!(round & 1, 1, "a round is odd while threads are stopped");
        // What a late handler that read the previous round leaves behind.
        let slot = &SLOTS[NEXT.fetch_add(1, Ordering::AcqRel) % MAX_THREADS];
        slot.tid.store(4242, Ordering::Relaxed);
        slot.round.store(round.wrapping_sub(2), Ordering::Release);
        assert!(parked().is_empty());
        assert!(all_parked(&[4242]).is_none());
        slot.round.store(round, Ordering::Release);
        assert_eq!(parked().len(), 1, "the same slot, filled in this round");
        release();
        assert_eq!(ROUND.load(Ordering::SeqCst), round.wrapping_add(1));
        assert!(parked().is_empty(), "nothing is parked between rounds");
        // SAFETY: puts back the action the test found.
        unsafe { set_action(signo, &old).unwrap() };
    }

    #[test]
    fn a_late_handler_never_writes_into_a_slot_of_the_next_round() {
        let _one = serial();
        let signo = libc::SIGRTMAX() - 1;
        let old = get_action(signo).unwrap();
        install(signo).unwrap();
        let stale_round = ROUND.load(Ordering::SeqCst);
        // A handler of this round claims its slot, then stalls past the release and the next
        // install before it writes.
        let stale = NEXT.fetch_add(1, Ordering::AcqRel) % MAX_THREADS;
        release();
        install(signo).unwrap();
        let round = ROUND.load(Ordering::SeqCst);
        let fresh = NEXT.fetch_add(1, Ordering::AcqRel) % MAX_THREADS;
        assert_ne!(
            stale, fresh,
            "slot numbers are not reused by the next round"
        );
        SLOTS[fresh].tid.store(77, Ordering::Relaxed);
        SLOTS[fresh].round.store(round, Ordering::Release);
        SLOTS[stale].tid.store(4242, Ordering::Relaxed);
        SLOTS[stale].round.store(stale_round, Ordering::Release);
        let p = parked();
        assert_eq!(p.iter().map(|p| p.tid).collect::<Vec<_>>(), vec![77]);
        release();
        // SAFETY: puts back the action the test found.
        unsafe { set_action(signo, &old).unwrap() };
    }

    #[test]
    fn a_delivery_after_the_release_returns_at_once() {
        let _one = serial();
        let signo = libc::SIGRTMAX() - 1;
        let old = get_action(signo).unwrap();
        install(signo).unwrap();
        release();
        let t = std::thread::spawn(move || {
            let old = crate::sys::process::set_sigmask(0).unwrap();
            // Delivered on this thread before tgkill returns; parking here would hang the test.
            tgkill(crate::sys::thread_id(), signo).unwrap();
            crate::sys::process::set_sigmask(old).unwrap();
        });
        t.join().unwrap();
        assert_eq!(arrived(), 0);
        // SAFETY: puts back the action the test found.
        unsafe { set_action(signo, &old).unwrap() };
    }

    #[test]
    fn a_thread_parks_in_the_handler_until_released() {
        let _one = serial();
        // Runs on a signal nobody else in the test binary uses.
        let signo = libc::SIGRTMAX() - 1;
        let old = get_action(signo).unwrap();
        install(signo).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            // Lower threads (every thread of this binary) start with all signals blocked.
            let old = crate::sys::process::set_sigmask(0).unwrap();
            assert_ne!(old, 0);
            tx.send(crate::sys::thread_id()).unwrap();
            let mut n = 0u64;
            for i in 0..200_000_000u64 {
                n = n.wrapping_add(i);
                if i % 1_000_000 == 0 && ROUND.load(Ordering::Relaxed) & 1 == 0 {
                    break;
                }
            }
            n
        });
        let tid = rx.recv().unwrap();
        tgkill(tid, signo).unwrap();
        let got = wait_arrived(1, Instant::now() + Duration::from_secs(5));
        assert_eq!(got, 1);
        let p = parked();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].tid, tid);
        assert_ne!(p[0].ucontext, 0);
        assert_ne!(p[0].fs_base, 0);
        release();
        t.join().unwrap();
        // SAFETY: puts back the action the test found.
        unsafe { set_action(signo, &old).unwrap() };
    }
}
