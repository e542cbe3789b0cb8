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
//! CONTRACT: [`ops`] lists every CUDA runtime operation that crosses, in order, with the C
//! signature the lower half decodes: `args[i]` is the `i`-th parameter (pointers as addresses,
//! integers zero- or sign-extended, `float` as its bits in the low 32; a by-value [`Dim3`]
//! takes two words). The module doc of [`ops`] lists where an operation departs from the C
//! function of the same name. [`structs`] holds the plain C data they pass by pointer.

#![forbid(unsafe_code)]

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
#[repr(C)]
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
}

/// Byte offset of [`Table::generation`]: a table whose `size` is not past its end predates it.
pub const GENERATION_END: usize = std::mem::offset_of!(Table, generation) + 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_is_the_last_field() {
        assert_eq!(GENERATION_END, std::mem::size_of::<Table>());
        assert!(std::mem::offset_of!(Table, op_count) < std::mem::offset_of!(Table, generation));
    }
}
