//! `--gpu cuda`: the real CUDA driver behind [`DeviceBackend`](crate::DeviceBackend), loaded at
//! run time in the lower half (`libcuda.so.1`, our own declarations in `driver.rs`; nothing
//! CUDA is needed to build crac).
//!
//! - Device memory is placed by crac, not by the driver: [`CudaBackend::open`] reserves the
//!   whole device window with `cuMemAddressReserve` at its fixed base, and each allocation is
//!   `cuMemCreate` + `cuMemMap` + `cuMemSetAccess` at an address crac chooses inside it, so a
//!   restart can put every allocation back at the same device address by construction.
//!   Small allocations share one-granule chunks (`place.rs`), so a 4-byte buffer does not
//!   cost the driver's 2 MiB granularity.
//! - Modules are the program's fat binaries loaded whole with `cuModuleLoadData` (the driver
//!   picks the cubin or JITs the PTX); kernels launch with `cuLaunchKernel` from the packed
//!   parameter buffer; streams, events and host functions are the driver's.
//! - The driver's current context is per thread: every entry point first makes the primary
//!   context current on the calling thread (once per thread).
//! - Module variables (`__device__`, `__constant__`) are placed by the driver, not by crac: at
//!   restart [`register_fatbin_at`](crate::DeviceBackend::register_fatbin_at) loads the module
//!   again and checks that each variable came back at its saved address, and fails naming the
//!   variable and both addresses when it did not (`globals.rs`: what makes the driver's choice
//!   repeat, and why it is checked rather than assumed).
//!
//! Limits (honest list): one device (ordinal 0); an image whose modules have variables restarts
//! only where the driver places them as before (same driver version and GPU model);
//! `device_reset` frees crac's allocations and handles but keeps the context.
//! This backend has been compiled everywhere but run only where a GPU was available.

mod backend;
mod context;
mod device;
mod driver;
mod globals;
mod memory;
mod modules;
mod place;
mod streams;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use thiserror::Error;

use crate::Window;
use driver::{Driver, check};

/// Why the CUDA backend could not start.
#[derive(Debug, Error)]
pub enum CudaError {
    /// `libcuda.so.1` cannot be loaded (the payload says why, for logs).
    #[error("no CUDA driver found (libcuda.so.1); use --gpu sim")]
    NoDriver(String),
    /// The driver library lacks an entry point crac needs.
    #[error("{0}: the NVIDIA driver is too old for crac (CUDA 12.4 or newer is needed); update it")]
    OldDriver(String),
    /// The driver loaded but the device could not be set up.
    #[error("the CUDA driver could not start the device: {0}")]
    Device(crate::GpuError),
    /// The device window could not be reserved in the GPU's address space.
    #[error(
        "cannot reserve the device-address window {base:#x}+{size:#x} with the CUDA driver \
         ({reason}); another mapping holds part of it"
    )]
    Window {
        /// Base asked for.
        base: u64,
        /// Size asked for.
        size: u64,
        /// What the driver said or returned.
        reason: String,
    },
}

/// Driver handles crac has handed out, so a stale one is refused instead of passed on.
#[derive(Default)]
struct Live {
    streams: HashSet<u64>,
    events: HashSet<u64>,
    modules: HashMap<u64, Vec<(String, u64, u64, bool)>>,
    functions: HashSet<u64>,
    host: HashSet<u64>,
}

/// The real CUDA backend.
pub struct CudaBackend {
    drv: Driver,
    ctx: u64,
    device: driver::CuDevice,
    window: Window,
    place: Mutex<place::Placement>,
    live: Mutex<Live>,
}

thread_local! {
    /// Whether the primary context is current on this thread.
    static CURRENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CudaBackend {
    /// Opens the driver, retains device 0's primary context and reserves `window` in the GPU
    /// address space. Fails cleanly (no panic) when `libcuda.so.1` is absent.
    pub fn open(window: Window) -> Result<CudaBackend, CudaError> {
        Self::open_library("libcuda.so.1", window)
    }

    /// As [`CudaBackend::open`], from the driver library `name` (tests point it elsewhere).
    pub fn open_library(name: &str, window: Window) -> Result<CudaBackend, CudaError> {
        let drv = Driver::open(name)?;
        let (ctx, device, granularity) = context::start(&drv).map_err(CudaError::Device)?;
        let cuda = CudaBackend {
            drv,
            ctx,
            device,
            window,
            place: Mutex::new(place::Placement::new(window, granularity)),
            live: Mutex::new(Live::default()),
        };
        cuda.reserve_window()?;
        Ok(cuda)
    }

    fn check(rc: driver::CuResult, what: &str) -> crate::Result<()> {
        check(rc, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_is_a_clean_error_naming_the_remedy() {
        let e = CudaBackend::open_library("libcuda-crac-test-absent.so.1", Window::DEFAULT)
            .err()
            .expect("no such library");
        assert!(matches!(e, CudaError::NoDriver(_)));
        assert_eq!(
            e.to_string(),
            "no CUDA driver found (libcuda.so.1); use --gpu sim"
        );
    }

    #[test]
    fn a_library_that_is_not_the_driver_is_refused() {
        let e = CudaBackend::open_library("libc.so.6", Window::DEFAULT)
            .err()
            .expect("libc is not the driver");
        assert!(matches!(e, CudaError::OldDriver(_)));
        assert!(e.to_string().contains("lacks cuInit"), "{e}");
    }
}
