//! The lower side of the call table (`crac_abi::Table`): what the upper-half cudart shim finds
//! through the program's auxiliary vector and calls for every CUDA operation, and the API gate
//! a checkpoint closes on it ([`gate`]).
//!
//! [`install`] (called by `crac_launch --gpu` before the program starts) keeps the process's
//! [`Runtime`], starts the first parked lower thread (whose TCB the shim borrows for a thread's
//! first call), fills the table in lower-half static memory and returns its address, which the
//! launch puts in the program's auxv under `crac_abi::AT_CRAC_TABLE`. [`reinstall`] does the
//! same in a restarted process, with the next generation: the `crac` executable is loaded at
//! the same address (same build, no ASLR), so the table lands where the program's shim looks
//! for it, and the new generation tells the shim's threads to get new lower TCBs.
//!
//! A parked lower thread is a thread of the lower half (created through the exported
//! `pthread_create`, so it counts as lower) that sleeps for the life of the process. Its thread
//! control block is its fs base, so an upper thread running lower code with that fs base gets
//! lower thread-locals of its own: each upper thread borrows a different one
//! (`new_lower_thread`), never a shared one. The entry points themselves are in
//! `sys/table.rs`.

mod gate;

pub(crate) use gate::callbacks_paused;
pub use gate::{Gate, GateError, close_gate};

use std::sync::OnceLock;

use crac_abi::Table;
use crac_replay::{HostMemory, Runtime};
use thiserror::Error;

/// Why the table could not be installed.
#[derive(Debug, Error)]
pub enum TableError {
    /// A table is already installed in this process.
    #[error("the CUDA call table is already installed")]
    AlreadyInstalled,
    /// The device-address window could not be reserved.
    #[error(
        "cannot reserve {gib} GiB of address space at {base:#x} for device pointers (no memory \
         is used): {error}; if an address-space limit is set (ulimit -v), raise or remove it"
    )]
    ReserveWindow {
        /// First byte.
        base: u64,
        /// Size in GiB.
        gib: u64,
        /// The mmap error.
        error: std::io::Error,
    },
    /// The first parked lower thread could not start.
    #[error("cannot start a lower-half thread for CUDA calls: {0}")]
    Thread(std::io::Error),
}

/// The process's runtime, set once by [`install`].
pub(crate) static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The table, in the `crac` executable's data (lower half), filled once by [`install`].
pub(crate) static TABLE: OnceLock<Table> = OnceLock::new();

/// Installs `runtime` behind the call table and returns the table's address.
pub fn install(runtime: Runtime) -> Result<u64, TableError> {
    install_generation(runtime, 0)
}

/// Restart: installs `runtime` behind a fresh table with `generation` (the saved one plus 1),
/// with a new parked bootstrap thread, and returns the table's address. The shim compares the
/// generation with the one each of its threads cached and gets new lower TCBs. The caller
/// checks the address equals the program's `AT_CRAC_TABLE` (the shim keeps the address it
/// read at start).
pub fn reinstall(runtime: Runtime, generation: u64) -> Result<u64, TableError> {
    install_generation(runtime, generation)
}

fn install_generation(runtime: Runtime, generation: u64) -> Result<u64, TableError> {
    if RUNTIME.set(runtime).is_err() {
        return Err(TableError::AlreadyInstalled);
    }
    // Without MADV_WIPEONFORK (Linux < 4.14) a forked child's calls are not caught early.
    let _ = crate::sys::table::arm_fork_check();
    let bootstrap_fs = crate::sys::table::park_lower_thread().map_err(TableError::Thread)?;
    let table = TABLE.get_or_init(|| crate::sys::table::table(bootstrap_fs, generation));
    Ok(std::ptr::from_ref(table) as u64)
}

/// The installed table's address, if any (none without `--gpu`).
pub fn table_address() -> Option<u64> {
    TABLE.get().map(|t| std::ptr::from_ref(t) as u64)
}

/// The installed table's generation (0 at launch, and without a table).
pub fn generation() -> u64 {
    TABLE.get().map_or(0, |t| {
        t.generation.load(std::sync::atomic::Ordering::Acquire)
    })
}

/// The lower half's reader of program memory, at the addresses the program passes as CUDA
/// arguments (what replay uses to read fat binaries again at restart).
pub fn host_memory() -> &'static dyn HostMemory {
    &crate::sys::table::ProgramMemory
}

/// Reserves `window` as `PROT_NONE` address space (`MAP_NORESERVE`), counted as lower half, so
/// no program mapping can land where device pointers live (the `sim` backend's window; the
/// real backend has the driver reserve it instead).
pub fn reserve_device_window(window: crac_gpu::Window) -> Result<(), TableError> {
    crate::sys::table::reserve(window.base, window.size).map_err(|error| {
        TableError::ReserveWindow {
            base: window.base,
            gib: window.size >> 30,
            error,
        }
    })
}

/// The installed runtime (for the checkpoint engine), if any.
pub fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_table_answers_cuda_calls_and_lends_tcbs() {
        let rt = Runtime::new(Box::new(crac_sim::Sim::new(64 << 20)));
        let addr = install(rt).expect("install");
        assert_eq!(table_address(), Some(addr));
        assert_eq!(generation(), 0);
        assert!(matches!(
            install(Runtime::new(Box::new(crac_sim::Sim::new(1 << 20)))),
            Err(TableError::AlreadyInstalled)
        ));
        let table = TABLE.get().expect("table");
        assert_eq!(std::ptr::from_ref(table) as u64, addr);
        assert_eq!(table.magic, crac_abi::TABLE_MAGIC);
        assert_eq!(table.version, crac_abi::TABLE_VERSION);
        assert_eq!(table.size as usize, std::mem::size_of::<Table>());
        assert_eq!(table.op_count as usize, crac_abi::Op::ALL.len());
        assert_ne!(table.bootstrap_fs, 0);
        // In the test binary's data: a stack address can fall inside the device window, which
        // unit tests do not reserve, and be refused as device memory.
        static COUNT: std::sync::Mutex<i32> = std::sync::Mutex::new(-1);
        let mut count = COUNT.lock().expect("count");
        let mut args = [0u64; crac_abi::MAX_ARGS];
        args[0] = std::ptr::from_mut(&mut *count) as u64;
        // This test thread is a lower thread already, so no fs switch is needed here.
        // SAFETY: `args` holds MAX_ARGS words; its first names a live i32.
        let rc = unsafe { (table.cuda)(crac_abi::Op::GetDeviceCount as u32, args.as_ptr()) };
        assert_eq!((rc, *count), (0, 1));
        // SAFETY: as above; an unknown op reads nothing.
        assert_eq!(unsafe { (table.cuda)(u32::MAX, args.as_ptr()) }, 801);
        args[0] = 0;
        // SAFETY: as above; a null out-pointer is refused, not written.
        let rc = unsafe { (table.cuda)(crac_abi::Op::GetDeviceCount as u32, args.as_ptr()) };
        assert_eq!(rc, 1, "cudaErrorInvalidValue");
        // SAFETY: callable from any thread; it starts a parked thread and returns its TCB.
        assert_ne!(unsafe { (table.new_lower_thread)() }, 0);
    }
}
