//! `--gpu cuda`: the real CUDA driver behind [`DeviceBackend`](crate::DeviceBackend), loaded at
//! run time in the lower half (`libcuda.so.1`, our own declarations in `driver.rs`; nothing
//! CUDA is needed to build crac).
//!
//! - Device memory is placed by crac, not by the driver: [`CudaBackend::open`] reserves the
//!   whole device window with `cuMemAddressReserve` at its fixed base, and each allocation is
//!   `cuMemCreate` + `cuMemMap` + `cuMemSetAccess` at an address crac chooses inside it, so a
//!   restart can put every allocation back at the same device address by construction.
//!   Allocations are rounded up to the driver's granularity (usually 2 MiB).
//! - Modules are the program's fat binaries loaded whole with `cuModuleLoadData` (the driver
//!   picks the cubin or JITs the PTX); kernels launch with `cuLaunchKernel` from the packed
//!   parameter buffer; streams, events and host functions are the driver's.
//! - The driver's current context is per thread: every entry point first makes the primary
//!   context current on the calling thread (once per thread).
//!
//! Limits (honest list): one device (ordinal 0); module variables get the driver's addresses,
//! so [`register_fatbin_at`](crate::DeviceBackend::register_fatbin_at) with placements is not
//! supported; `device_reset` frees crac's allocations and handles but keeps the context.
//! This backend has been compiled everywhere but run only where a GPU was available.

mod backend;
mod driver;

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// One live allocation.
#[derive(Clone, Copy, Debug)]
struct Block {
    /// Bytes the program asked for.
    size: u64,
    /// Bytes mapped (rounded to the granularity).
    mapped: u64,
    /// The physical allocation.
    handle: driver::MemHandle,
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
    granularity: u64,
    blocks: Mutex<BTreeMap<u64, Block>>,
    live: Mutex<Live>,
}

thread_local! {
    /// Whether the primary context is current on this thread.
    static CURRENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lowest `granularity`-aligned start of `len` free bytes in `window` between `blocks`.
fn first_fit(
    blocks: &BTreeMap<u64, Block>,
    window: Window,
    granularity: u64,
    len: u64,
) -> Option<u64> {
    let mut at = window.base.next_multiple_of(granularity);
    for (start, b) in blocks.range(window.base..) {
        if start.checked_sub(at)? >= len {
            return Some(at);
        }
        at = at.max((start + b.mapped).next_multiple_of(granularity));
    }
    (at.checked_add(len)? <= window.end()).then_some(at)
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
        let (ctx, device, granularity) = backend::start(&drv).map_err(CudaError::Device)?;
        let cuda = CudaBackend {
            drv,
            ctx,
            device,
            window,
            granularity,
            blocks: Mutex::new(BTreeMap::new()),
            live: Mutex::new(Live::default()),
        };
        cuda.reserve_window()?;
        Ok(cuda)
    }

    /// A first-fit free range of `len` bytes in the window, granularity aligned.
    fn find_free(&self, blocks: &BTreeMap<u64, Block>, len: u64) -> Option<u64> {
        first_fit(blocks, self.window, self.granularity, len)
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

    #[test]
    fn first_fit_skips_taken_ranges_and_stays_in_the_window() {
        let g = 0x20_0000;
        let w = Window {
            base: 0x1000_0000,
            size: 0x100_0000,
        };
        let block = |mapped| Block {
            size: 10,
            mapped,
            handle: 0,
        };
        let mut blocks = BTreeMap::new();
        assert_eq!(first_fit(&blocks, w, g, g), Some(0x1000_0000));
        blocks.insert(0x1000_0000, block(g));
        blocks.insert(0x1060_0000, block(2 * g));
        assert_eq!(first_fit(&blocks, w, g, g), Some(0x1020_0000));
        assert_eq!(first_fit(&blocks, w, g, 2 * g), Some(0x1020_0000));
        assert_eq!(first_fit(&blocks, w, g, 3 * g), Some(0x10a0_0000));
        assert_eq!(
            first_fit(&blocks, w, g, 6 * g),
            None,
            "past the window's end"
        );
    }
}
