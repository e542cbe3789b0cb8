//! The API gate's protocol, shared by both halves so that the code the lower half's tests drive
//! is the code the shim runs (see "The gate" in the crate doc).
//!
//! Waiting and waking are the only things that need the OS; each side supplies them through
//! [`Futex`] (the shim with raw system calls that touch no errno, the lower half with libc).
//! Everything here is plain atomics on the [`Table`]'s gate words and must stay so: the shim
//! runs [`enter`] and [`leave`] around every CUDA call, on the program's thread, in upper mode.
//!
//! Orderings: the counter increment and the gate read of [`enter`], and the gate write and the
//! counter read of the closer, are all `SeqCst`, so one of the two sides always sees the
//! other: either the closer counts the call, or the call sees the closed gate and backs off.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use crate::{GATE_CLOSED, GATE_PAUSED, Table, count_of, tag_of};

/// The OS side of waiting: a futex on a 32-bit word, named by its address.
pub trait Futex {
    /// Sleeps while the 32-bit word at `addr` holds `expected`, at most `timeout` (none: no
    /// limit). May return early (a signal, a spurious wake-up): callers re-check and loop.
    fn wait(&self, addr: usize, expected: u32, timeout: Option<Duration>);
    /// Wakes every thread sleeping on the word at `addr`.
    fn wake_all(&self, addr: usize);
    /// Whether `fork_byte` (a [`Table::fork_byte`] value, non-zero) reads 0: this process is a
    /// child forked from the one that installed the table.
    fn forked(&self, fork_byte: u64) -> bool;
}

/// Which counter a call counts in and which gate bit stops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Every operation but the host-callback thread's: counts in [`Table::in_flight`], waits
    /// while [`GATE_CLOSED`] is set.
    Ordinary,
    /// The host-callback thread's two operations: count in [`Table::callbacks_in_lower`],
    /// wait only while [`GATE_PAUSED`] is set.
    Callbacks,
}

impl Lane {
    /// The lane's counter.
    #[inline(always)]
    pub fn counter(self, t: &Table) -> &AtomicU64 {
        match self {
            Lane::Ordinary => &t.in_flight,
            Lane::Callbacks => &t.callbacks_in_lower,
        }
    }

    /// The gate bit that stops the lane.
    #[inline(always)]
    pub fn stopped_by(self) -> u32 {
        match self {
            Lane::Ordinary => GATE_CLOSED,
            Lane::Callbacks => GATE_PAUSED,
        }
    }
}

/// The address of a counter's count (its low 32 bits: x86-64 is little-endian), for the futex.
#[inline(always)]
pub fn count_addr(counter: &AtomicU64) -> usize {
    counter.as_ptr() as usize
}

/// The address of the gate word, for the futex.
#[inline(always)]
pub fn gate_addr(gate: &AtomicU32) -> usize {
    gate.as_ptr() as usize
}

/// Why a call could not pass the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// This process is a fork of the one that installed the table (whose checkpoint closed
    /// the gate): the call must fail, as CUDA's do in a forked child.
    Forked,
}

/// Passes the gate on `lane`: returns the generation tag of the table generation that holds
/// this call's count (the shim checks its cached lower TCB against it). Waits (in the caller's half, through `futex`)
/// while the lane's gate bit is set.
///
/// The count is good only if the gate was open when read after it *and* it landed in this
/// table's generation. A checkpoint can stop a thread between its increment and the gate read
/// only while the gate is closed (an open gate read means the closer waits for this count); if
/// the process then restarts, the increment went to the old table, and the thread reads a new,
/// open gate: the generation check sends it round again, to count itself in the new table.
#[inline(always)]
pub fn enter(t: &Table, lane: Lane, futex: &impl Futex) -> Result<u32, Refused> {
    let tag = tag_of(lane.counter(t).fetch_add(1, SeqCst));
    if admitted(t, lane, tag) {
        return Ok(tag);
    }
    enter_slow(t, lane, tag, futex)
}

/// Whether a count just added with generation tag `tag` lets the call in: the lane is open
/// and the count is this table's.
#[inline(always)]
fn admitted(t: &Table, lane: Lane, tag: u32) -> bool {
    t.gate.load(SeqCst) & lane.stopped_by() == 0
        && tag == tag_of(crate::tagged(t.generation.load(Relaxed)))
}

/// [`enter`] when the gate was found shut (or the count landed in an earlier table): take the
/// count back, wait, try again.
#[cold]
#[inline(never)]
fn enter_slow(t: &Table, lane: Lane, mut tag: u32, futex: &impl Futex) -> Result<u32, Refused> {
    let counter = lane.counter(t);
    loop {
        back_off(t, lane, tag, futex);
        wait_open(t, lane, futex)?;
        tag = tag_of(counter.fetch_add(1, SeqCst));
        if admitted(t, lane, tag) {
            return Ok(tag);
        }
    }
}

/// Sleeps until the lane's gate bit is clear (or this process turns out to be a fork).
fn wait_open(t: &Table, lane: Lane, futex: &impl Futex) -> Result<(), Refused> {
    loop {
        let g = t.gate.load(SeqCst);
        if g & lane.stopped_by() == 0 {
            return Ok(());
        }
        let fork_byte = t.fork_byte.load(SeqCst);
        if fork_byte != 0 && futex.forked(fork_byte) {
            return Err(Refused::Forked);
        }
        // Bounded, so a fork check (and a gate reopened without a wake-up, which the lower
        // half never does) is seen within a second.
        futex.wait(gate_addr(&t.gate), g, Some(Duration::from_secs(1)));
    }
}

/// Ends a call [`enter`] let in: takes its count back, and wakes the closer when it was the
/// last one in while the lane is stopped.
///
/// A plain decrement is enough: a checkpoint cannot stop a thread between its admission and
/// this (the closer waits for its count), so no restart comes in between and the count is
/// still in this table.
#[inline(always)]
pub fn leave(t: &Table, lane: Lane, futex: &impl Futex) {
    let counter = lane.counter(t);
    let prev = counter.fetch_sub(1, SeqCst);
    if count_of(prev) == 1 && t.gate.load(SeqCst) & lane.stopped_by() != 0 {
        futex.wake_all(count_addr(counter));
    }
}

/// Takes back a count [`enter`] added but did not admit (`tag`: the generation it landed in),
/// and wakes the closer when it was the last one in while the lane is stopped. A count held in
/// an earlier generation's table (the thread was stopped by a checkpoint between its increment
/// and its gate read, and the process restarted) is not this table's to take back: nothing is
/// done.
fn back_off(t: &Table, lane: Lane, tag: u32, futex: &impl Futex) {
    let counter = lane.counter(t);
    let mut cur = counter.load(SeqCst);
    loop {
        if tag_of(cur) != tag || count_of(cur) == 0 {
            return;
        }
        match counter.compare_exchange_weak(cur, cur - 1, SeqCst, SeqCst) {
            Ok(_) => break,
            Err(seen) => cur = seen,
        }
    }
    if count_of(cur) == 1 && t.gate.load(SeqCst) & lane.stopped_by() != 0 {
        futex.wake_all(count_addr(counter));
    }
}

/// Sets `bit` on the gate if no bit in `unless` is set; returns whether it did.
pub fn shut(t: &Table, bit: u32, unless: u32) -> bool {
    let mut cur = t.gate.load(SeqCst);
    loop {
        if cur & unless != 0 {
            return false;
        }
        match t.gate.compare_exchange_weak(cur, cur | bit, SeqCst, SeqCst) {
            Ok(_) => return true,
            Err(seen) => cur = seen,
        }
    }
}

/// Clears `bits` on the gate and wakes every thread waiting at it.
pub fn open(t: &Table, bits: u32, futex: &impl Futex) {
    t.gate.fetch_and(!bits, SeqCst);
    futex.wake_all(gate_addr(&t.gate));
}

/// Waits until no call counts in `lane` (after its gate bit was set with [`shut`]), at most
/// `timeout`. Returns the count still in on timeout.
pub fn drain(t: &Table, lane: Lane, timeout: Duration, futex: &impl Futex) -> Result<(), u32> {
    let counter = lane.counter(t);
    let deadline = Instant::now() + timeout;
    loop {
        let n = count_of(counter.load(SeqCst));
        if n == 0 {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(n);
        }
        futex.wait(count_addr(counter), n, Some(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// A futex that never sleeps (the tests here are single-threaded) and counts wake-ups.
    #[derive(Default)]
    struct Spin {
        wakes: AtomicU32,
        forked: bool,
    }

    impl Futex for Spin {
        fn wait(&self, _addr: usize, _expected: u32, _timeout: Option<Duration>) {}
        fn wake_all(&self, _addr: usize) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
        fn forked(&self, _fork_byte: u64) -> bool {
            self.forked
        }
    }

    extern "C" fn no_thread() -> u64 {
        0
    }
    extern "C" fn no_call(_op: u32, _args: *const u64) -> u32 {
        0
    }

    fn table(generation: u64) -> Table {
        Table {
            magic: crate::TABLE_MAGIC,
            version: crate::TABLE_VERSION,
            size: 0,
            bootstrap_fs: 0,
            bootstrap_lock: AtomicU32::new(0),
            new_lower_thread: no_thread,
            cuda: no_call,
            op_count: 0,
            generation: AtomicU64::new(generation),
            gate: AtomicU32::new(0),
            in_flight: AtomicU64::new(crate::tagged(generation)),
            callbacks_in_lower: AtomicU64::new(crate::tagged(generation)),
            fork_byte: AtomicU64::new(0),
        }
    }

    #[test]
    fn an_open_gate_counts_the_call_in_and_out() {
        let (t, f) = (table(3), Spin::default());
        let tag = enter(&t, Lane::Ordinary, &f).expect("open");
        assert_eq!(tag, 3);
        assert_eq!(count_of(t.in_flight.load(SeqCst)), 1);
        leave(&t, Lane::Ordinary, &f);
        assert_eq!(t.in_flight.load(SeqCst), crate::tagged(3));
        assert_eq!(f.wakes.load(SeqCst), 0, "no closer to wake");
    }

    #[test]
    fn the_last_call_out_of_a_closed_gate_wakes_the_closer() {
        let (t, f) = (table(0), Spin::default());
        enter(&t, Lane::Ordinary, &f).expect("open");
        assert!(shut(&t, GATE_CLOSED, GATE_CLOSED));
        assert!(!shut(&t, GATE_CLOSED, GATE_CLOSED), "already closed");
        assert_eq!(drain(&t, Lane::Ordinary, Duration::ZERO, &f), Err(1));
        leave(&t, Lane::Ordinary, &f);
        assert_eq!(f.wakes.load(SeqCst), 1);
        assert_eq!(drain(&t, Lane::Ordinary, Duration::ZERO, &f), Ok(()));
    }

    #[test]
    fn a_count_from_an_earlier_generation_is_not_taken_back() {
        // A thread counted itself in generation 1, was stopped before its gate read, and the
        // process restarted with generation 2: backing off must not touch the new count.
        let (t, f) = (table(2), Spin::default());
        let other = enter(&t, Lane::Ordinary, &f).expect("open");
        assert_eq!(other, 2);
        back_off(&t, Lane::Ordinary, 1, &f);
        assert_eq!(count_of(t.in_flight.load(SeqCst)), 1);
        leave(&t, Lane::Ordinary, &f);
        assert_eq!(t.in_flight.load(SeqCst), crate::tagged(2));
        back_off(&t, Lane::Ordinary, 2, &f);
        assert_eq!(
            t.in_flight.load(SeqCst),
            crate::tagged(2),
            "never below zero"
        );
    }

    #[test]
    fn a_thread_stopped_between_its_increment_and_the_gate_read_counts_itself_again_after_a_restart()
     {
        // Generation 1, gate closed by a checkpoint: the thread's increment lands, and the
        // checkpoint stops it before it reads the gate.
        let (t, f) = (table(1), Spin::default());
        t.gate.store(GATE_CLOSED, SeqCst);
        let tag = tag_of(t.in_flight.fetch_add(1, SeqCst));
        // Restart: the same address holds a fresh table of generation 2, open.
        t.generation.store(2, SeqCst);
        t.in_flight.store(crate::tagged(2), SeqCst);
        t.gate.store(0, SeqCst);
        // The thread resumes: an open gate, but its count is in no table it can see.
        assert!(!admitted(&t, Lane::Ordinary, tag));
        let tag = enter_slow(&t, Lane::Ordinary, tag, &f).expect("open");
        assert_eq!(tag, 2);
        assert_eq!(
            t.in_flight.load(SeqCst),
            crate::tagged(2) + 1,
            "counted in the new table"
        );
        leave(&t, Lane::Ordinary, &f);
        assert_eq!(t.in_flight.load(SeqCst), crate::tagged(2));
    }

    #[test]
    fn callbacks_pass_a_closed_gate_but_not_a_paused_one() {
        let f = Spin {
            forked: true,
            ..Spin::default()
        };
        let t = table(0);
        t.gate.store(GATE_CLOSED, SeqCst);
        enter(&t, Lane::Callbacks, &f).expect("callbacks pass a closed gate");
        leave(&t, Lane::Callbacks, &f);
        t.gate.store(GATE_CLOSED | GATE_PAUSED, SeqCst);
        // Without a fork byte, a paused gate would wait for ever; a forked child is refused.
        t.fork_byte.store(0x1000, SeqCst);
        assert_eq!(enter(&t, Lane::Callbacks, &f), Err(Refused::Forked));
        assert_eq!(enter(&t, Lane::Ordinary, &f), Err(Refused::Forked));
        assert_eq!(count_of(t.callbacks_in_lower.load(SeqCst)), 0);
        assert_eq!(count_of(t.in_flight.load(SeqCst)), 0);
        open(&t, GATE_CLOSED | GATE_PAUSED, &f);
        assert_eq!(t.gate.load(SeqCst), 0);
    }
}
