//! The C ABI between the upper half (the `libcudart` shim, loaded in the program) and the lower
//! half (the `crac` executable). Nothing Rust-owned crosses it: the table is `#[repr(C)]`, every
//! argument is a `u64` word, every result a `cudaError_t`.
//!
//! How the shim finds the table: `crac_launch --gpu …` puts its address in the program's
//! auxiliary vector under [`AT_CRAC_TABLE`]; the shim reads it with `getauxval`. A program not
//! started by crac has no such entry, and the shim says so.
//!
//! How a call crosses (DESIGN.md, "The process layout" point 3): each upper thread owns one
//! lower thread control block (TCB), borrowed from a parked lower thread. The shim switches the
//! fs base to it, calls [`Table::cuda`] with the operation and its argument words, and switches
//! back. A thread's first call runs [`Table::new_lower_thread`] on the shared bootstrap TCB,
//! under [`Table::bootstrap_lock`], to get its own.
//!
//! The gate (checkpoints): [`Table::gate`] stops new calls while a checkpoint drains the device
//! and saves the process. An ordinary call increments [`Table::in_flight`], then reads the gate;
//! if [`GATE_CLOSED`] is set it takes its increment back (waking the closer if it was the
//! last), waits on the gate word (futex, in the upper half, with the program's fs, so the
//! checkpoint can stop it there), and tries again; after crossing back it decrements, and wakes
//! the closer if it was the last while the gate is closed. The closer sets the bit, then waits
//! for the count to reach 0. The host-callback thread's operations count in
//! [`Table::callbacks_in_lower`] and wait only on [`GATE_PAUSED`], since callbacks must run
//! while the device drains. Both counters carry the table generation in their high half (see
//! [`tagged`]).
//!
//! CONTRACT: [`ops`] lists every CUDA runtime operation that crosses, in order, with the C
//! signature the lower half decodes: `args[i]` is the `i`-th parameter (pointers as addresses,
//! integers zero- or sign-extended, `float` as its bits in the low 32; a by-value [`Dim3`]
//! takes two words). The module doc of [`ops`] lists where an operation departs from the C
//! function of the same name. [`structs`] holds the plain C data they pass by pointer.

#![forbid(unsafe_code)]

pub mod gate;
pub mod ops;
pub mod structs;

use std::sync::atomic::{AtomicU32, AtomicU64};

pub use ops::Op;
pub use structs::{
    CALLBACK_HOST_FUNC, CALLBACK_STREAM, DeviceProps, Dim3, EventHandle, FuncAttributes,
    HostCallback, PointerAttributes, StreamHandle,
};

/// The auxiliary-vector type under which the table's address is passed ("crac" in ASCII).
pub const AT_CRAC_TABLE: u64 = 0x6372_6163;

/// `Table::magic`.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"CRACTBL1");

/// `Table::version`: bumped when a field changes meaning; new fields go at the end and grow
/// `Table::size`.
pub const TABLE_VERSION: u32 = 1;

/// The most argument words any operation takes.
pub const MAX_ARGS: usize = 16;

/// The call table, living in lower-half memory for the life of the process.
///
/// Aligned to a cache line so that the gate words (written by every call) start a line of
/// their own, apart from the read-only header every call reads.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Table {
    /// [`TABLE_MAGIC`].
    pub magic: u64,
    /// [`TABLE_VERSION`].
    pub version: u32,
    /// `size_of::<Table>()` as the lower half built it.
    pub size: u32,
    /// fs base of a parked lower thread, used under `bootstrap_lock` for a thread's first call.
    pub bootstrap_fs: u64,
    /// 0 free, 1 held; spin with `compare_exchange` (held for one `pthread_create`).
    pub bootstrap_lock: AtomicU32,
    /// Creates a parked lower thread for the calling upper thread and returns its fs base
    /// (0 on failure). Must be called with fs = `bootstrap_fs`.
    pub new_lower_thread: unsafe extern "C" fn() -> u64,
    /// Runs one CUDA runtime operation: `op` is an [`Op`] as `u32`, `args` points at
    /// [`MAX_ARGS`] words. Returns a `cudaError_t`. Must be called with fs = the calling
    /// thread's own lower fs base.
    pub cuda: unsafe extern "C" fn(op: u32, args: *const u64) -> u32,
    /// How many operations the lower half knows; an `op` at or above it is answered
    /// `cudaErrorNotSupported`.
    pub op_count: u32,
    /// Lower-half generation: 0 at launch, bumped by each restart once the new lower half is
    /// up. The shim caches each thread's lower TCB with the generation it came from and gets
    /// a new one (through `new_lower_thread`) when they differ, since a restart starts new
    /// lower threads. For that the table must be at the same address after a restart (the
    /// shim keeps the address it read from the auxiliary vector). Shims read it only when
    /// `size` covers it.
    pub generation: AtomicU64,
    /// The API gate (see "The gate" above): [`GATE_CLOSED`] and [`GATE_PAUSED`] bits. Shims
    /// use the gate fields only when `size` reaches [`GATE_END`].
    pub gate: AtomicU32,
    /// Ordinary calls inside the gate: the low 32 bits count them, the high 32 bits are the
    /// low 32 bits of `generation` (see [`tagged`]). The lower half waits (futex, on the low
    /// half) for the count to reach 0 after closing the gate.
    pub in_flight: AtomicU64,
    /// Host-callback operations ([`Op::HostCallbackNext`], [`Op::HostCallbackDone`]) inside
    /// the gate, tagged like `in_flight`. They pass a closed gate and wait only while
    /// [`GATE_PAUSED`] is set.
    pub callbacks_in_lower: AtomicU64,
    /// Address of a byte that reads non-zero in the process that installed the table and 0
    /// in a child it forked (`MADV_WIPEONFORK`); 0 when the kernel cannot tell. A shim waiting
    /// at a closed gate checks it, so a forked child fails its calls instead of waiting for a
    /// checkpoint of its parent to end.
    pub fork_byte: AtomicU64,
}

/// Byte offset of [`Table::generation`]: a table whose `size` is not past its end predates it.
pub const GENERATION_END: usize = std::mem::offset_of!(Table, generation) + 8;

/// Byte offset past the gate fields ([`Table::gate`] to [`Table::fork_byte`]).
pub const GATE_END: usize = std::mem::offset_of!(Table, fork_byte) + 8;

/// [`Table::gate`] bit: ordinary calls wait in the upper half before crossing.
pub const GATE_CLOSED: u32 = 1;
/// [`Table::gate`] bit: the host-callback thread waits too.
pub const GATE_PAUSED: u32 = 2;

/// A gate counter's starting value for `generation`: the generation's low 32 bits above a
/// count of 0. A thread's increment returns the tagged value it replaced, so the thread knows
/// which table generation holds its count; a restart between its increment and its decrement
/// (the thread stopped by the checkpoint in between) must not decrement the new table's count.
pub const fn tagged(generation: u64) -> u64 {
    (generation & 0xffff_ffff) << 32
}

/// The count in a tagged gate counter value.
pub const fn count_of(counter: u64) -> u32 {
    (counter & 0xffff_ffff) as u32
}

/// The generation tag (low 32 bits of the generation) in a tagged gate counter value.
pub const fn tag_of(counter: u64) -> u32 {
    (counter >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_appended_in_order() {
        assert!(std::mem::offset_of!(Table, op_count) < std::mem::offset_of!(Table, generation));
        assert!(GENERATION_END <= std::mem::offset_of!(Table, gate));
        assert!(GATE_END <= std::mem::size_of::<Table>());
        // The header every call reads stays where the first version had it.
        assert_eq!(std::mem::offset_of!(Table, generation), 56);
        assert_eq!(
            std::mem::offset_of!(Table, gate),
            64,
            "the gate starts a cache line"
        );
        assert_eq!(std::mem::align_of::<Table>(), 64);
    }

    #[test]
    fn tagged_counters_keep_count_and_generation_apart() {
        let t = tagged(0x1_0000_0007);
        assert_eq!((tag_of(t), count_of(t)), (7, 0));
        assert_eq!((tag_of(t + 3), count_of(t + 3)), (7, 3));
        assert_eq!(tag_of(tagged(0)), 0);
    }
}
