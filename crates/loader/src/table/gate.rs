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
    /// (`HostCallbackNext` answers "nothing yet" at once while paused) and wait at the gate
    /// too. A thread already waiting inside for a callback comes out within the lower half's
    /// poll interval (a second). On timeout the callbacks are let go again and the gate stays
    /// closed.
    pub fn pause_callbacks(&self, timeout: Duration) -> Result<(), GateError> {
        protocol::shut(self.table, GATE_PAUSED, 0);
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
