//! Stopping every program thread in crac's quiesce handler, and letting them go again.
//!
//! The program's own action for the quiesce signal is read first: it is what the image records
//! and what is put back when the threads go on. Threads the program starts while others are
//! being stopped are caught by listing `/proc/self/task` again until no new one appears.

use std::collections::HashSet;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::CheckpointError;
use super::procmem::ProcMem;
use crate::lower::LowerHalf;
use crate::sys::quiesce::{self, AllParked, KernelSigaction, Parked};

/// The signal that stops program threads: 33, glibc's internal `SIGSETXID`. glibc's
/// `pthread_sigmask`, `sigprocmask` and `sigfillset` never block it (nor musl's), so threads
/// that block "every signal" — libzmq's, and many thread pools' — still stop; only a raw
/// `rt_sigprocmask` system call can block it. glibc uses it only while `setuid` and friends
/// broadcast a credential change to every thread; its handler is the program's action, put
/// back after each checkpoint like any other.
pub const QUIESCE_SIGNAL: i32 = 33;
/// How long a thread may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// Rounds of re-listing threads before giving up on a program that keeps starting new ones.
const MAX_ROUNDS: usize = 64;

/// The program's action for the quiesce signal while crac's handler stays installed after a
/// failed attempt (a thread that blocked the signal still has it pending: with the program's
/// default action its late delivery would kill the process; crac's handler returns at once).
static KEPT: Mutex<Option<KernelSigaction>> = Mutex::new(None);

fn kept() -> std::sync::MutexGuard<'static, Option<KernelSigaction>> {
    match KEPT.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A stopped thread.
#[derive(Clone, Copy, Debug)]
pub struct StoppedThread {
    /// What its handler recorded.
    pub parked: Parked,
    /// The system call it was blocked in before the signal (`/proc/.../syscall`) and still
    /// in when the signal came (its frame returns from that call).
    pub blocked: Option<i64>,
}

/// The program, stopped. [`Stopped::resume`] (or dropping it) lets it go on.
#[derive(Debug)]
pub struct Stopped {
    /// Every program thread.
    pub threads: Vec<StoppedThread>,
    /// The program's own action for [`QUIESCE_SIGNAL`].
    pub program_action: KernelSigaction,
    proof: Option<AllParked>,
    resumed: bool,
    /// Threads were signalled that never stopped: leave crac's handler in place.
    keep_handler: bool,
}

impl Stopped {
    /// The proof that every program thread is parked.
    pub fn proof(&self) -> Option<&AllParked> {
        self.proof.as_ref()
    }

    /// Puts the program's action back and releases the threads.
    pub fn resume(mut self) {
        self.resume_now();
    }

    fn resume_now(&mut self) {
        if self.resumed {
            return;
        }
        self.resumed = true;
        self.proof = None;
        // A second instance of the signal still queued (a thread that blocked it during an
        // earlier, failed attempt and got it again in this one) would meet the program's
        // action once the threads go: keep crac's handler, which returns at once, for it.
        if self.keep_handler || self.threads.iter().any(|t| quiesce_pending(t.parked.tid)) {
            *kept() = Some(self.program_action);
        } else {
            *kept() = None;
            put_back(&self.program_action);
        }
        quiesce::release();
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.resume_now();
    }
}

/// Whether [`QUIESCE_SIGNAL`] is pending for thread `tid` or for the whole process.
fn quiesce_pending(tid: i32) -> bool {
    let bit = 1u64 << (QUIESCE_SIGNAL - 1);
    let pending = |path: String, field: &str| {
        std::fs::read_to_string(path)
            .is_ok_and(|s| super::threads::status_mask(&s, field) & bit != 0)
    };
    pending(format!("/proc/self/task/{tid}/status"), "SigPnd:")
        || pending("/proc/self/status".into(), "ShdPnd:")
}

fn put_back(action: &KernelSigaction) {
    // SAFETY: the program's own action, read before crac replaced it.
    if let Err(e) = unsafe { quiesce::set_action(QUIESCE_SIGNAL, action) } {
        tracing::warn!("cannot restore the program's action for signal {QUIESCE_SIGNAL}: {e}");
    }
}

/// The program's threads now: every task of this process that is not crac's.
pub fn program_tids(lower: &dyn LowerHalf) -> io::Result<Vec<i32>> {
    let lower_tids: HashSet<i32> = lower.tids().into_iter().collect();
    let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|t| !lower_tids.contains(t))
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// A system call a thread was seen blocked in before the signal: its number and the address
/// after its `syscall` instruction.
pub type Blocked = (i64, u64);

/// The system call thread `tid` is blocked in, from `/proc/self/task/TID/syscall`.
pub fn blocked_syscall(tid: i32) -> Option<Blocked> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    parse_blocked(&text)
}

/// The first and last fields of a `syscall` file: the call number and the program counter,
/// or `None` for `running` / `-1`.
pub fn parse_blocked(text: &str) -> Option<Blocked> {
    let mut fields = text.split_whitespace();
    let nr = fields.next()?.parse::<i64>().ok().filter(|n| *n >= 0)?;
    let pc = fields.next_back()?.strip_prefix("0x")?;
    Some((nr, u64::from_str_radix(pc, 16).ok()?))
}

/// The call `p` was blocked in when the signal came, if the call seen before the signal is
/// still the one its frame returns from: the frame's `rip` is that call's return address (it
/// returned `EINTR`) or the `syscall` instruction itself (the kernel set it up to restart).
/// A thread that left that call and was signalled in another one (or in user code) must not
/// have its frame rewritten to issue the first call with the second one's arguments.
fn confirmed(p: &Parked, seen: Option<Blocked>, mem: &ProcMem) -> Option<i64> {
    let (nr, pc) = seen?;
    let rip = super::frame::read(mem, p.ucontext).ok()?.rip;
    (rip == pc || rip.checked_add(2) == Some(pc)).then_some(nr)
}

/// Why `tid` did not stop, in words, from its status.
fn why_not_stopped(tid: i32) -> String {
    let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) else {
        return "it could not be inspected".into();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let blocked = u64::from_str_radix(&field("SigBlk:"), 16).unwrap_or(0);
    let state = field("State:");
    if blocked & (1 << (QUIESCE_SIGNAL - 1)) != 0 {
        format!(
            "it blocks signal {QUIESCE_SIGNAL}, which crac uses to stop threads (C libraries \
             never block it; the program's own rt_sigprocmask system call did); let the \
             program leave it unblocked"
        )
    } else if state.starts_with('T') || state.starts_with('t') {
        "it is stopped (SIGSTOP or a debugger); continue it and try again".into()
    } else {
        format!(
            "it did not answer signal {QUIESCE_SIGNAL} within {} s (state {state})",
            STOP_TIMEOUT.as_secs()
        )
    }
}

/// Stops every program thread. On failure the threads that stopped go on and the program's
/// action is back.
pub fn stop(lower: &dyn LowerHalf, mem: &ProcMem) -> Result<Stopped, CheckpointError> {
    let now = quiesce::get_action(QUIESCE_SIGNAL).map_err(CheckpointError::SignalAction)?;
    // crac's handler still installed after a failed attempt: the program's is the kept one.
    let program_action = if quiesce::is_ours(&now) {
        kept().unwrap_or_default()
    } else {
        now
    };
    quiesce::install(QUIESCE_SIGNAL).map_err(CheckpointError::SignalAction)?;
    // From here on, dropping `stopped` restores the action and releases whoever parked.
    let mut stopped = Stopped {
        threads: Vec::new(),
        program_action,
        proof: None,
        resumed: false,
        keep_handler: false,
    };
    let mut signalled: Vec<(i32, Option<Blocked>)> = Vec::new();
    let mut gone: HashSet<i32> = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let tids = program_tids(lower).map_err(CheckpointError::ListThreads)?;
        let new: Vec<i32> = tids
            .into_iter()
            .filter(|t| !signalled.iter().any(|(s, _)| s == t))
            .collect();
        if new.is_empty() {
            let parked = quiesce::parked();
            if quiesce::overflowed() {
                return Err(CheckpointError::TooManyThreads {
                    max: quiesce::MAX_THREADS,
                });
            }
            stopped.threads = parked
                .into_iter()
                .map(|p| StoppedThread {
                    parked: p,
                    blocked: blocked_of(&signalled, &p, mem),
                })
                .collect();
            let alive: Vec<i32> = signalled
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| !gone.contains(t))
                .collect();
            stopped.proof = quiesce::all_parked(&alive);
            if stopped.proof.is_none() {
                return Err(CheckpointError::ThreadsKeepStarting);
            }
            return Ok(stopped);
        }
        for tid in new {
            let blocked = blocked_syscall(tid);
            match quiesce::tgkill(tid, QUIESCE_SIGNAL) {
                Ok(()) => signalled.push((tid, blocked)),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                // Threads signalled before this one may not have parked yet (a signal queue
                // full with EAGAIN): their signal must still find crac's handler.
                Err(e) => {
                    let e = CheckpointError::Signal { tid, source: e };
                    return Err(give_up(&mut stopped, &signalled, mem, e));
                }
            }
        }
        if let Err(e) = wait_for(&signalled, &mut gone) {
            return Err(give_up(&mut stopped, &signalled, mem, e));
        }
    }
    Err(CheckpointError::ThreadsKeepStarting)
}

/// Leaves crac's handler in place for signals still on their way, and lets the threads that
/// did stop go on as if nothing happened: their interrupted sleeps and waits are issued again.
fn give_up(
    stopped: &mut Stopped,
    signalled: &[(i32, Option<Blocked>)],
    mem: &ProcMem,
    e: CheckpointError,
) -> CheckpointError {
    stopped.keep_handler = true;
    let parked: Vec<StoppedThread> = quiesce::parked()
        .into_iter()
        .map(|p| StoppedThread {
            parked: p,
            blocked: blocked_of(signalled, &p, mem),
        })
        .collect();
    super::threads::reissue_interrupted(mem, &parked);
    e
}

fn blocked_of(signalled: &[(i32, Option<Blocked>)], p: &Parked, mem: &ProcMem) -> Option<i64> {
    let seen = signalled
        .iter()
        .find(|(t, _)| *t == p.tid)
        .and_then(|(_, b)| *b);
    confirmed(p, seen, mem)
}

/// Waits until every signalled thread that still exists has parked.
fn wait_for(
    signalled: &[(i32, Option<Blocked>)],
    gone: &mut HashSet<i32>,
) -> Result<(), CheckpointError> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let parked: HashSet<i32> = quiesce::parked().iter().map(|p| p.tid).collect();
        let missing: Vec<i32> = signalled
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !parked.contains(t) && !gone.contains(t))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // A thread that exited after the signal never parks.
        for tid in &missing {
            if !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
                gone.insert(*tid);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            if let Some(tid) = missing.iter().find(|t| !gone.contains(t)) {
                return Err(CheckpointError::ThreadDidNotStop {
                    tid: *tid,
                    why: why_not_stopped(*tid),
                });
            }
            continue;
        }
        let step = deadline.min(now + Duration::from_millis(50));
        quiesce::wait_arrived(quiesce::arrived() + 1, step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_call_numbers_are_read_from_the_syscall_file() {
        assert_eq!(
            parse_blocked("230 0x0 0x0 0x7ffc 0x7ffc 0x0 0x0 0x7ffd 0x7f12\n"),
            Some((230, 0x7f12))
        );
        assert_eq!(parse_blocked("running\n"), None);
        assert_eq!(parse_blocked("-1 0x7ffc 0x7f12\n"), None);
        assert_eq!(parse_blocked(""), None);
    }

    #[test]
    fn a_call_is_confirmed_only_when_the_frame_returns_from_it() {
        // A fake ucontext: 40 bytes, then the general registers (rip is the 17th).
        let mut uc = vec![0u64; 64];
        uc[5 + 16] = 0x7f12;
        let p = Parked {
            tid: 1,
            ucontext: uc.as_ptr() as u64,
            ..Parked::default()
        };
        let mem = ProcMem::open_plain().unwrap();
        assert_eq!(confirmed(&p, Some((230, 0x7f12)), &mem), Some(230), "EINTR");
        assert_eq!(
            confirmed(&p, Some((230, 0x7f14)), &mem),
            Some(230),
            "restarted"
        );
        assert_eq!(
            confirmed(&p, Some((230, 0x9000)), &mem),
            None,
            "the thread moved on to another call"
        );
        assert_eq!(confirmed(&p, None, &mem), None);
    }
}
