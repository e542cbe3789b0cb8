//! [`CudaBackend`]'s start-up and the helpers every group of driver calls shares: making the
//! context current, handle conversions, mapping device memory at crac's addresses, and the
//! checks that refuse handles the backend did not hand out.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};

use super::driver::{
    ACCESS_READWRITE, ALLOCATION_PINNED, AccessDesc, AllocationProp, CuPtr, Driver, Handle,
    LOCATION_DEVICE, MemLocation,
};
use super::place::{NewMap, Placement};
use super::{CURRENT, CudaBackend, CudaError, lock};
use crate::{Event, FunctionId, GpuError, HostFn, ModuleId, Result, Stream};

/// `cuInit`, device 0, its primary context, and the allocation granularity.
pub(super) fn start(drv: &Driver) -> Result<(u64, c_int, u64)> {
    let api = &drv.api;
    // SAFETY: cuInit takes a flags word (0).
    CudaBackend::check(unsafe { (api.init)(0) }, "cuInit")?;
    let mut dev: c_int = 0;
    // SAFETY: out-pointer to a live local.
    CudaBackend::check(unsafe { (api.device_get)(&mut dev, 0) }, "cuDeviceGet")?;
    let mut ctx: Handle = std::ptr::null_mut();
    CudaBackend::check(
        // SAFETY: out-pointer to a live local; `dev` came from cuDeviceGet.
        unsafe { (api.primary_ctx_retain)(&mut ctx, dev) },
        "cuDevicePrimaryCtxRetain",
    )?;
    // SAFETY: `ctx` is the context just retained.
    CudaBackend::check(unsafe { (api.ctx_set_current)(ctx) }, "cuCtxSetCurrent")?;
    let prop = allocation_prop(dev);
    let mut gran = 0usize;
    CudaBackend::check(
        // SAFETY: out-pointer to a live local, `prop` a valid CUmemAllocationProp; 0 is
        // CU_MEM_ALLOC_GRANULARITY_MINIMUM.
        unsafe { (api.mem_granularity)(&mut gran, &prop, 0) },
        "cuMemGetAllocationGranularity",
    )?;
    Ok((ctx as u64, dev, (gran as u64).max(4096)))
}

pub(super) fn allocation_prop(dev: c_int) -> AllocationProp {
    AllocationProp {
        kind: ALLOCATION_PINNED,
        handle_types: 0,
        location: MemLocation {
            kind: LOCATION_DEVICE,
            id: dev,
        },
        win32: std::ptr::null_mut(),
        flags: [0; 8],
    }
}

pub(super) fn handle(v: u64) -> Handle {
    // x86-64 only (the loader refuses other targets): pointers are 64 bits.
    usize::try_from(v).unwrap_or(0) as Handle
}

/// The driver stream for a crac stream: `0`/`1` legacy and `2` per-thread are the driver's own
/// values (`CU_STREAM_LEGACY`, `CU_STREAM_PER_THREAD`).
pub(super) fn stream(s: Stream) -> Handle {
    match s.0 {
        0 | 1 => 1usize as Handle,
        v => handle(v),
    }
}

pub(super) fn usize_of(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| GpuError::InvalidValue(format!("{v} bytes")))
}

/// Runs a boxed host function handed to `cuLaunchHostFunc`.
pub(super) unsafe extern "C" fn run_host_fn(data: *mut c_void) {
    // SAFETY: `data` is the Box<HostFn> leaked by `launch_host_func`, given to the driver once
    // and called once.
    let f = unsafe { Box::from_raw(data.cast::<HostFn>()) };
    // Never unwind into the driver.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(Ok(()))));
}

impl CudaBackend {
    /// Makes the primary context current on the calling thread (once per thread).
    pub(super) fn current(&self) -> Result<&super::driver::Api> {
        let api = &self.drv.api;
        if !CURRENT.with(std::cell::Cell::get) {
            Self::check(
                // SAFETY: `ctx` is the primary context retained at open.
                unsafe { (api.ctx_set_current)(handle(self.ctx)) },
                "cuCtxSetCurrent",
            )?;
            CURRENT.with(|c| c.set(true));
        }
        Ok(api)
    }

    /// Reserves the whole window in the GPU's address space at its base.
    pub(super) fn reserve_window(&self) -> std::result::Result<(), CudaError> {
        let api = self.current().map_err(CudaError::Device)?;
        let mut got: CuPtr = 0;
        let size = usize_of(self.window.size).map_err(CudaError::Device)?;
        // SAFETY: out-pointer to a live local; alignment 0 is the default.
        let rc = unsafe { (api.mem_address_reserve)(&mut got, size, 0, self.window.base, 0) };
        let fail = |reason: String| CudaError::Window {
            base: self.window.base,
            size: self.window.size,
            reason,
        };
        Self::check(rc, "cuMemAddressReserve").map_err(|e| fail(e.to_string()))?;
        if got != self.window.base {
            return Err(fail(format!("the driver placed it at {got:#x}")));
        }
        Ok(())
    }

    /// Maps `len` fresh bytes of device memory at `at` (inside the reserved window).
    pub(super) fn map_at(&self, at: u64, len: u64) -> Result<u64> {
        let api = self.current()?;
        let len = usize_of(len)?;
        let prop = allocation_prop(self.device);
        let mut h = 0u64;
        Self::check(
            // SAFETY: out-pointer to a live local, `prop` valid for the call.
            unsafe { (api.mem_create)(&mut h, len, &prop, 0) },
            "cuMemCreate",
        )?;
        // SAFETY: `[at, at + len)` lies in the window reserved at open and is free (the
        // placement says so), `h` the allocation just created.
        if let Err(e) = Self::check(unsafe { (api.mem_map)(at, len, 0, h, 0) }, "cuMemMap") {
            // SAFETY: `h` is unmapped and ours.
            unsafe { (api.mem_release)(h) };
            return Err(e);
        }
        let access = AccessDesc {
            location: prop.location,
            flags: ACCESS_READWRITE,
        };
        // SAFETY: the range was just mapped; one access descriptor.
        let rc = unsafe { (api.mem_set_access)(at, len, &access, 1) };
        if let Err(e) = Self::check(rc, "cuMemSetAccess") {
            // SAFETY: undoing the map and create above.
            unsafe {
                (api.mem_unmap)(at, len);
                (api.mem_release)(h);
            }
            return Err(e);
        }
        Ok(h)
    }

    /// Unmaps and releases a mapping made by `map_at`.
    pub(super) fn unmap(&self, at: u64, len: u64, h: u64) -> Result<()> {
        let api = self.current()?;
        let len = usize_of(len)?;
        // SAFETY: `[at, at + len)` is a mapping made by `map_at`; the caller synchronised.
        Self::check(unsafe { (api.mem_unmap)(at, len) }, "cuMemUnmap")?;
        // SAFETY: the handle of that mapping, now unmapped.
        Self::check(unsafe { (api.mem_release)(h) }, "cuMemRelease")
    }

    /// Creates the mapping a placement asked for, or undoes the placement.
    pub(super) fn realise(&self, place: &mut Placement, new: Option<NewMap>) -> Result<()> {
        if let Some(m) = new {
            match self.map_at(m.start, m.len) {
                Ok(h) => place.set_handle(m.start, h),
                Err(e) => {
                    place.forget_map(m.start);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub(super) fn attr(&self, attr: c_int) -> Result<i32> {
        let api = self.current()?;
        let mut v: c_int = 0;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.device_get_attribute)(&mut v, attr, self.device) },
            "cuDeviceGetAttribute",
        )?;
        Ok(v)
    }

    pub(super) fn stream_known(&self, s: Stream) -> Result<()> {
        if s.0 <= 2 || lock(&self.live).streams.contains(&s.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidResourceHandle(format!(
                "stream {:#x}",
                s.0
            )))
        }
    }

    pub(super) fn event_known(&self, e: Event) -> Result<()> {
        if lock(&self.live).events.contains(&e.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidResourceHandle(format!("event {:#x}", e.0)))
        }
    }

    pub(super) fn module_known(&self, m: ModuleId) -> Result<()> {
        if lock(&self.live).modules.contains_key(&m.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidResourceHandle(format!(
                "module {:#x}",
                m.0
            )))
        }
    }

    pub(super) fn function_known(&self, f: FunctionId) -> Result<()> {
        if lock(&self.live).functions.contains(&f.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidDeviceFunction(format!("{:#x}", f.0)))
        }
    }
}
