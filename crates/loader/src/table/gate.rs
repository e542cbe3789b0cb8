//! The API gate, lower side: what a checkpoint closes so that no CUDA call is inside the lower
//! half while the device drains and the process is saved (the protocol is `crac_abi::gate`).
//!
//! [`close_gate`] sets the gate's closed bit: from then on the shim holds every new ordinary
//! call in the upper half, on a futex, with the program's fs (so the checkpoint's quiesce can
//! stop the thread there); it returns once the calls already inside have come back out. The
//! host-callback thread still passes (the device's drain may need it to run callbacks) until
//! [`Gate::pause_callbacks`], which the checkpoint calls once the device is synchronized.
//! Dropping the [`Gate`] reopens it and wakes every waiter; [`Gate::keep_closed`] leaves it
//! shut for a process that exits after its checkpoint. A restarted process gets a fresh, open
//! gate from `reinstall`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crac_abi::gate::{self as protocol, Lane};
use crac_abi::{GATE_CLOSED, GATE_PAUSED, Table};
use thiserror::Error;

use crate::sys::table::LowerFutex;

/// Why the gate could not be closed or the callbacks paused.
#[derive(Debug, Error)]
pub enum GateError {
    /// No call table is installed (the program was not started with `--gpu`).
    #[error(
        "no CUDA call table is installed in this process (the program was not started with --gpu)"
    )]
    NotInstalled,
    /// Another checkpoint holds the gate.
    #[error("the CUDA API gate is already closed by another checkpoint; wait for it to finish")]
    AlreadyClosed,
    /// Calls stayed inside the lower half past the timeout; the gate was reopened.
    #[error(
        "{in_flight} CUDA call(s) still running in crac's lower half after {waited:?} (the \
         program may be waiting on the device for a long time); the gate was reopened and \
         the program goes on: try the checkpoint again later or with a longer timeout"
    )]
    Drain {
        /// Calls still inside.
        in_flight: u32,
        /// How long the close waited.
        waited: Duration,
    },
    /// The host-callback thread stayed inside the lower half past the timeout; the callbacks
    /// were let go again (the gate stays closed).
    #[error(
        "the CUDA host-callback thread did not leave crac's lower half within {waited:?} (a \
         callback may still be running); try the checkpoint again later"
    )]
    CallbacksDrain {
        /// How long the pause waited.
        waited: Duration,
    },
}

/// The closed gate; reopens when dropped.
#[derive(Debug)]
#[must_use = "dropping the gate reopens it at once"]
pub struct Gate {
    table: &'static Table,
    reopen: bool,
}

/// Closes the gate: new CUDA calls wait in the upper half; returns once no ordinary call is
/// inside the lower half, or fails after `timeout` naming how many are still in (the gate is
/// then reopened).
pub fn close_gate(timeout: Duration) -> Result<Gate, GateError> {
    let table = super::TABLE.get().ok_or(GateError::NotInstalled)?;
    Gate::close(table, timeout)
}

/// Whether the installed table's callbacks are paused (the lower entry then sends the
/// host-callback thread back at once).
pub(crate) fn callbacks_paused() -> bool {
    super::TABLE
        .get()
        .is_some_and(|t| t.gate.load(Ordering::SeqCst) & GATE_PAUSED != 0)
}

impl Gate {
    /// [`close_gate`] on `table`.
    fn close(table: &'static Table, timeout: Duration) -> Result<Gate, GateError> {
        if !protocol::shut(table, GATE_CLOSED, GATE_CLOSED | GATE_PAUSED) {
            return Err(GateError::AlreadyClosed);
        }
        // Built first, so that every early return below reopens.
        let gate = Gate {
            table,
            reopen: true,
        };
        let start = Instant::now();
        protocol::drain(table, Lane::Ordinary, timeout, &LowerFutex).map_err(|in_flight| {
            GateError::Drain {
                in_flight,
                waited: start.elapsed(),
            }
        })?;
        Ok(gate)
    }

    /// After the device is synchronized: makes the host-callback thread leave the lower half
    /// (`HostCallbackNext` answers "nothing yet" at once while paused, and one already waiting
    /// inside for a callback is interrupted) and wait at the gate too. On timeout the
    /// callbacks are let go again and the gate stays closed.
    pub fn pause_callbacks(&self, timeout: Duration) -> Result<(), GateError> {
        protocol::shut(self.table, GATE_PAUSED, 0);
        // A callback thread waiting inside for the next callback comes out now.
        if super::TABLE
            .get()
            .is_some_and(|t| std::ptr::eq(t, self.table))
        {
            if let Some(rt) = super::RUNTIME.get() {
                rt.callbacks().interrupt();
            }
        }
        let start = Instant::now();
        protocol::drain(self.table, Lane::Callbacks, timeout, &LowerFutex).map_err(|_| {
            protocol::open(self.table, GATE_PAUSED, &LowerFutex);
            GateError::CallbacksDrain {
                waited: start.elapsed(),
            }
        })
    }

    /// For checkpoint-and-exit: never reopen (the process ends with its calls held).
    pub fn keep_closed(mut self) {
        self.reopen = false;
    }
}

impl Drop for Gate {
    /// Reopens (clears both bits) and wakes every waiter.
    fn drop(&mut self) {
        if self.reopen {
            protocol::open(self.table, GATE_CLOSED | GATE_PAUSED, &LowerFutex);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

    use std::thread::JoinHandle;

    /// What the test table's `cuda` entry counts.
    #[derive(Default)]
    struct Calls {
        /// Calls inside the entry now.
        inside: AtomicU32,
        /// Calls that returned.
        done: AtomicU64,
        /// While set, an [`OP_HOLD`] call stays inside.
        hold: AtomicBool,
    }

    /// A call that takes 100 µs.
    const OP_SHORT: u32 = 0;
    /// A call that stays inside while `Calls::hold` is set.
    const OP_HOLD: u32 = 1;

    /// The test table's `cuda` entry.
    ///
    /// # Safety
    /// `args[0]` must be the address of a live [`Calls`].
    unsafe extern "C" fn counted(op: u32, args: *const u64) -> u32 {
        // SAFETY: the callers below pass a leaked `Calls` as the first word.
        let calls = unsafe { &*(*args as *const Calls) };
        calls.inside.fetch_add(1, Ordering::SeqCst);
        if op == OP_HOLD {
            while calls.hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
        calls.done.fetch_add(1, Ordering::SeqCst);
        calls.inside.fetch_sub(1, Ordering::SeqCst);
        0
    }

    /// A table of its own for one test (the process's installed one is another test's).
    fn test_table(generation: u64) -> &'static Table {
        Box::leak(Box::new(Table {
            cuda: counted,
            ..crate::sys::table::table(0, generation)
        }))
    }

    fn leak<T: Default>() -> &'static T {
        Box::leak(Box::default())
    }

    /// A thread playing the shim: passes the gate on `lane`, calls through the table, leaves;
    /// again until `stop` (once it is past the gate).
    fn caller(
        table: &'static Table,
        lane: Lane,
        op: u32,
        calls: &'static Calls,
        stop: &'static AtomicBool,
    ) -> JoinHandle<()> {
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                one_call(table, lane, op, calls);
            }
        })
    }

    /// One call through the gate on the calling thread.
    fn one_call(table: &'static Table, lane: Lane, op: u32, calls: &'static Calls) {
        protocol::enter(table, lane, &LowerFutex).expect("not a fork");
        let mut args = [0u64; crac_abi::MAX_ARGS];
        args[0] = std::ptr::from_ref(calls) as u64;
        // SAFETY: the table's entry is `counted`, and args[0] names a live Calls.
        unsafe { (table.cuda)(op, args.as_ptr()) };
        protocol::leave(table, lane, &LowerFutex);
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn closing_drains_the_calls_inside_and_holds_new_ones_until_reopened() {
        let (table, calls, stop) = (test_table(0), leak::<Calls>(), leak::<AtomicBool>());
        let threads: Vec<_> = (0..6)
            .map(|_| caller(table, Lane::Ordinary, OP_SHORT, calls, stop))
            .collect();
        for round in 0..5 {
            wait_for("calls", || {
                calls.done.load(Ordering::SeqCst) > 50 * (round + 1)
            });
            let gate = close_gate_on(table);
            assert_eq!(calls.inside.load(Ordering::SeqCst), 0, "round {round}");
            let done = calls.done.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(calls.inside.load(Ordering::SeqCst), 0, "a call got past");
            assert_eq!(calls.done.load(Ordering::SeqCst), done, "a call got past");
            drop(gate);
            wait_for("calls after reopening", || {
                calls.done.load(Ordering::SeqCst) > done + 20
            });
        }
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("caller");
        }
        assert_eq!(
            crac_abi::count_of(table.in_flight.load(Ordering::SeqCst)),
            0
        );
    }

    fn close_gate_on(table: &'static Table) -> Gate {
        Gate::close(table, Duration::from_secs(5)).expect("close")
    }

    #[test]
    fn a_call_that_stays_inside_fails_the_close_and_the_gate_reopens() {
        let (table, calls, stop) = (test_table(0), leak::<Calls>(), leak::<AtomicBool>());
        calls.hold.store(true, Ordering::SeqCst);
        let stuck = caller(table, Lane::Ordinary, OP_HOLD, calls, stop);
        wait_for("the held call", || calls.inside.load(Ordering::SeqCst) == 1);
        let start = Instant::now();
        let err = Gate::close(table, Duration::from_millis(100)).expect_err("a call is held");
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(
            matches!(err, GateError::Drain { in_flight: 1, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("1 CUDA call(s) still running"),
            "{err}"
        );
        assert_eq!(table.gate.load(Ordering::SeqCst), 0, "reopened");
        // Another call passes the reopened gate at once.
        let other = leak::<Calls>();
        one_call(table, Lane::Ordinary, OP_SHORT, other);
        assert_eq!(other.done.load(Ordering::SeqCst), 1);
        stop.store(true, Ordering::SeqCst);
        calls.hold.store(false, Ordering::SeqCst);
        stuck.join().expect("caller");
        assert_eq!(
            crac_abi::count_of(table.in_flight.load(Ordering::SeqCst)),
            0
        );
    }

    #[test]
    fn a_second_close_is_refused_while_the_first_holds_the_gate() {
        let table = test_table(0);
        let gate = close_gate_on(table);
        assert!(matches!(
            Gate::close(table, Duration::ZERO),
            Err(GateError::AlreadyClosed)
        ));
        drop(gate);
        drop(close_gate_on(table));
        assert_eq!(table.gate.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn callbacks_run_while_the_gate_is_closed_and_stop_when_paused() {
        let (table, stop) = (test_table(0), leak::<AtomicBool>());
        let (ordinary, callbacks) = (leak::<Calls>(), leak::<Calls>());
        let threads = [
            caller(table, Lane::Ordinary, OP_SHORT, ordinary, stop),
            caller(table, Lane::Callbacks, OP_SHORT, callbacks, stop),
        ];
        wait_for("calls", || ordinary.done.load(Ordering::SeqCst) > 10);
        let gate = close_gate_on(table);
        let held = ordinary.done.load(Ordering::SeqCst);
        let before = callbacks.done.load(Ordering::SeqCst);
        wait_for("callbacks through a closed gate", || {
            callbacks.done.load(Ordering::SeqCst) > before + 20
        });
        gate.pause_callbacks(Duration::from_secs(5)).expect("pause");
        assert_eq!(callbacks.inside.load(Ordering::SeqCst), 0);
        let paused = callbacks.done.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(callbacks.done.load(Ordering::SeqCst), paused, "paused");
        assert_eq!(ordinary.done.load(Ordering::SeqCst), held, "closed");
        drop(gate);
        wait_for("both lanes after reopening", || {
            callbacks.done.load(Ordering::SeqCst) > paused + 10
                && ordinary.done.load(Ordering::SeqCst) > held + 10
        });
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("caller");
        }
    }

    #[test]
    fn a_callback_that_stays_inside_fails_the_pause_and_callbacks_go_on() {
        let (table, calls) = (test_table(0), leak::<Calls>());
        calls.hold.store(true, Ordering::SeqCst);
        let stop = leak::<AtomicBool>();
        let stuck = caller(table, Lane::Callbacks, OP_HOLD, calls, stop);
        wait_for("the held callback", || {
            calls.inside.load(Ordering::SeqCst) == 1
        });
        let gate = close_gate_on(table);
        let err = gate
            .pause_callbacks(Duration::from_millis(50))
            .expect_err("a callback is held");
        assert!(matches!(err, GateError::CallbacksDrain { .. }), "{err:?}");
        assert_eq!(
            table.gate.load(Ordering::SeqCst),
            GATE_CLOSED,
            "still closed"
        );
        stop.store(true, Ordering::SeqCst);
        calls.hold.store(false, Ordering::SeqCst);
        stuck.join().expect("caller");
        gate.keep_closed();
        assert_eq!(
            table.gate.load(Ordering::SeqCst),
            GATE_CLOSED,
            "kept closed"
        );
    }

    #[test]
    fn a_forked_child_at_a_closed_gate_is_refused_instead_of_waiting() {
        crate::sys::table::arm_fork_check().expect("arm");
        let table = test_table(0);
        assert_ne!(table.fork_byte.load(Ordering::SeqCst), 0);
        let gate = close_gate_on(table);
        // SAFETY: the child only runs atomics, a read of the fork byte and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let refused = protocol::enter(table, Lane::Ordinary, &LowerFutex)
                == Err(protocol::Refused::Forked);
            // SAFETY: ends the child without running the parent's destructors or atexit.
            unsafe { libc::_exit(if refused { 0 } else { 1 }) };
        }
        // A child that waits at the gate instead is killed after a while, failing the test.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        loop {
            // SAFETY: polls the child just forked, into a valid local.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            assert_eq!(r, 0, "waitpid");
            if Instant::now() > deadline {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the forked child waited at the closed gate");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x}"
        );
        drop(gate);
        assert_eq!(
            crac_abi::count_of(table.in_flight.load(Ordering::SeqCst)),
            0
        );
    }

    #[test]
    fn a_fresh_table_has_an_open_gate_counters_tagged_with_its_generation_and_a_fork_byte() {
        crate::sys::table::arm_fork_check().expect("arm");
        let t = crate::sys::table::table(0, 0x1_0000_0005);
        assert_eq!(t.gate.load(Ordering::SeqCst), 0);
        assert_eq!(t.generation.load(Ordering::SeqCst), 0x1_0000_0005);
        for counter in [&t.in_flight, &t.callbacks_in_lower] {
            let v = counter.load(Ordering::SeqCst);
            assert_eq!((crac_abi::tag_of(v), crac_abi::count_of(v)), (5, 0));
        }
        let fork_byte = t.fork_byte.load(Ordering::SeqCst);
        assert_ne!(fork_byte, 0);
        assert!(!crac_abi::gate::Futex::forked(&LowerFutex, fork_byte));
        assert_eq!(t.size as usize, std::mem::size_of::<Table>());
        assert!(t.size as usize >= crac_abi::GATE_END);
    }
}
