//! Checkpoints nobody asks for over the control socket: the `--ckpt-signal` signal and the
//! `--interval` period.
//!
//! [`arm`] takes the launch's [`CheckpointPolicy`] (from `crac_launch`'s options, or from the
//! image in a restarted process) and keeps it for the agent: it installs a lower-half handler for
//! the checkpoint signal and starts the period. The handler ([`sys`]) only sets a flag and writes
//! one byte to the *wake pipe*, whose read end the agent's loop polls beside its socket; the
//! agent thread then runs the checkpoint ([`take_due`]) exactly as for a `crac_ckpt` request, so
//! one checkpoint runs at a time whatever asked for it. The period is the agent's poll timeout
//! ([`timeout_ms`]), counted from the end of the previous checkpoint, so a checkpoint slower than
//! the period never starts the next one at once.
//!
//! The wake pipe is one of crac's fds (in its protected range). A program that closes it (or
//! reuses its number) only loses the prompt wake-up until the agent notices and makes a new one
//! ([`ensure_wake`], called on every pass of the loop); the handler never writes to a number
//! that no longer refers to the pipe.

mod sys;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crac_core::image::CheckpointPolicy;

use crate::guard::Guarded;

/// Why the triggers could not be armed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The checkpoint signal is one crac cannot catch or uses itself.
    #[error(
        "signal {signo} cannot trigger checkpoints (SIGKILL and SIGSTOP cannot be caught, \
         signal 33 stops threads for checkpoints, others are outside 1..=64); choose \
         another, such as USR1"
    )]
    BadSignal {
        /// The signal asked for.
        signo: i32,
    },
    /// `sigaction` refused the handler.
    #[error("cannot install the checkpoint handler for signal {signo}: {source}")]
    InstallHandler {
        /// The signal.
        signo: i32,
        /// Why.
        source: io::Error,
    },
    /// The wake pipe could not be made or moved out of the program's fds.
    #[error("cannot create the checkpoint trigger's wake-up pipe: {0}")]
    WakePipe(#[source] io::Error),
    /// `--interval 0`.
    #[error("the checkpoint interval must be at least one second")]
    ZeroInterval,
}

/// What made a checkpoint due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The `--ckpt-signal` signal arrived.
    Signal,
    /// The `--interval` period passed.
    Periodic,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Signal => "signal-triggered",
            Self::Periodic => "periodic",
        })
    }
}

/// The armed policy and when the next periodic checkpoint is due.
#[derive(Debug)]
struct Armed {
    policy: CheckpointPolicy,
    next_periodic: Option<Instant>,
}

/// The wake pipe: the agent polls `read`; the handler writes to `write`.
#[derive(Debug)]
struct Wake {
    read: Guarded<OwnedFd>,
    write: Guarded<OwnedFd>,
}

static ARMED: Mutex<Option<Armed>> = Mutex::new(None);
static WAKE: Mutex<Option<Wake>> = Mutex::new(None);

/// Arms the triggers of `policy` for this process: the checkpoint signal's handler, the period,
/// and the directory and rotation every checkpoint of this process uses. Replaces an earlier
/// policy. Used by `crac_launch` before the program starts and by the restorer after the agent
/// started again.
pub fn arm(policy: &CheckpointPolicy) -> Result<(), TriggerError> {
    if policy.interval_secs == Some(0) {
        return Err(TriggerError::ZeroInterval);
    }
    if let Some(signo) = policy.signal {
        check_signal(signo)?;
    }
    ensure_wake().map_err(TriggerError::WakePipe)?;
    if let Some(signo) = policy.signal {
        sys::install_handler(signo)
            .map_err(|source| TriggerError::InstallHandler { signo, source })?;
    }
    let next_periodic = policy
        .interval_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    *lock(&ARMED) = Some(Armed {
        policy: policy.clone(),
        next_periodic,
    });
    poke();
    tracing::debug!("checkpoint triggers armed: {policy:?}");
    Ok(())
}

/// Whether `signo` may be the checkpoint signal.
pub fn check_signal(signo: i32) -> Result<(), TriggerError> {
    if !(1..=64).contains(&signo)
        || signo == libc::SIGKILL
        || signo == libc::SIGSTOP
        || signo == crate::checkpoint::quiesce::QUIESCE_SIGNAL
    {
        return Err(TriggerError::BadSignal { signo });
    }
    Ok(())
}

/// The armed policy, if [`arm`] was called.
pub fn policy() -> Option<CheckpointPolicy> {
    lock(&ARMED).as_ref().map(|a| a.policy.clone())
}

/// The checkpoint that is due now, if any: the signal first, then the period.
pub fn take_due(now: Instant) -> Option<Trigger> {
    let armed = lock(&ARMED);
    let armed = armed.as_ref()?;
    if armed.policy.signal.is_some() && sys::take_pending() {
        return Some(Trigger::Signal);
    }
    armed
        .next_periodic
        .filter(|&due| due <= now)
        .map(|_| Trigger::Periodic)
}

/// Starts the next period from `now` (called when a periodic checkpoint ends, good or not).
pub fn restart_period(now: Instant) {
    if let Some(armed) = lock(&ARMED).as_mut() {
        armed.next_periodic = armed
            .policy
            .interval_secs
            .map(|s| now + Duration::from_secs(s));
    }
}

/// How long the agent may sleep before the next periodic checkpoint is due, capped at `cap`.
pub fn timeout_ms(now: Instant, cap: i32) -> i32 {
    let due = lock(&ARMED).as_ref().and_then(|a| a.next_periodic);
    match due {
        None => cap,
        Some(due) => {
            let left = due.saturating_duration_since(now);
            // Round up, so the agent does not wake a fraction of a millisecond early and spin.
            let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
            i32::try_from(ms).unwrap_or(i32::MAX).min(cap)
        }
    }
}

/// The wake pipe's read end for the agent's `poll` (-1 when there is none), making a new pipe
/// first if the program closed or reused the old one's numbers.
pub fn ensure_wake() -> io::Result<RawFd> {
    let mut wake = lock(&WAKE);
    if let Some(w) = wake.as_ref() {
        if w.read.is_ours() && w.write.is_ours() {
            return Ok(w.read.raw());
        }
    }
    if let Some(old) = wake.take() {
        // The numbers may be the program's files now: forget them without closing.
        old.read.forget();
        old.write.forget();
        tracing::debug!("the program closed crac's trigger pipe; making a new one");
    }
    let (r, w) = sys::pipe()?;
    let r = Guarded::new(crac_loader::fds::move_high(r)?)?;
    let w = Guarded::new(crac_loader::fds::move_high(w)?)?;
    let (dev, ino) = sys::identity(w.raw())?;
    sys::publish_wake_fd(w.raw(), dev, ino);
    let fd = r.raw();
    *wake = Some(Wake { read: r, write: w });
    Ok(fd)
}

/// Empties the wake pipe after the agent woke up for it.
pub fn drain_wake() {
    if let Some(w) = lock(&WAKE).as_ref() {
        if w.read.is_ours() {
            sys::drain(w.read.raw());
        }
    }
}

/// The fd numbers of the wake pipe (crac's own; a checkpoint must not save them).
pub fn crac_fds() -> Vec<RawFd> {
    lock(&WAKE)
        .as_ref()
        .map(|w| vec![w.read.as_raw_fd(), w.write.as_raw_fd()])
        .unwrap_or_default()
}

/// Wakes the agent's loop (a new policy changes its timeout).
fn poke() {
    if let Some(w) = lock(&WAKE).as_ref() {
        if w.write.is_ours() {
            sys::poke(&w.write);
        }
    }
}

/// Locks `m`, going on with the data if a thread panicked while holding it (the data is plain
/// settings, always consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use sys::{Ready, exit_process, wait_two};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_signals_and_a_zero_interval_are_refused() {
        for s in [0, -1, 65, 33, libc::SIGKILL, libc::SIGSTOP] {
            assert!(matches!(
                check_signal(s),
                Err(TriggerError::BadSignal { .. })
            ));
        }
        check_signal(libc::SIGUSR1).unwrap();
        check_signal(64).unwrap();
        let p = CheckpointPolicy {
            interval_secs: Some(0),
            ..CheckpointPolicy::default()
        };
        assert!(matches!(arm(&p), Err(TriggerError::ZeroInterval)));
    }

    #[test]
    fn the_period_is_the_poll_timeout_and_a_signal_is_due_at_once() {
        let p = CheckpointPolicy {
            dir: "/x".into(),
            interval_secs: Some(2),
            signal: Some(libc::SIGUSR2),
            ..CheckpointPolicy::default()
        };
        arm(&p).unwrap();
        assert_eq!(policy().unwrap().dir, "/x");
        let now = Instant::now();
        let t = timeout_ms(now, 1000);
        assert_eq!(t, 1000);
        let t = timeout_ms(now, i32::MAX);
        assert!((1900..=2000).contains(&t), "{t}");
        assert_eq!(take_due(now), None);
        assert_eq!(
            take_due(now + Duration::from_secs(3)),
            Some(Trigger::Periodic)
        );
        restart_period(now + Duration::from_secs(3));
        assert_eq!(take_due(now + Duration::from_secs(4)), None);
        sys::set_pending();
        assert_eq!(take_due(now), Some(Trigger::Signal));
        assert_eq!(take_due(now), None);
        let fd = ensure_wake().unwrap();
        assert_eq!(ensure_wake().unwrap(), fd);
        assert_eq!(crac_fds().len(), 2);
    }
}
