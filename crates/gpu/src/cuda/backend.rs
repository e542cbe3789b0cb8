//! [`CudaBackend`]'s start-up and its [`DeviceBackend`] implementation: thin calls into the
//! driver with pointers to locals and to the caller's buffers.
#![allow(unsafe_code)]

use std::ffi::{CString, c_int, c_uint, c_void};

use super::driver::{
    ACCESS_READWRITE, ALLOCATION_PINNED, AccessDesc, AllocationProp, CuPtr, Driver, Handle,
    LOCATION_DEVICE, MemLocation, PARAM_BUFFER_POINTER, PARAM_BUFFER_SIZE, PARAM_END,
};
use super::place::{NewMap, Placement};
use super::{CURRENT, CudaBackend, CudaError, lock};
use crate::{
    Allocation, DeviceBackend, DeviceProps, DevicePtr, Event, EventFlags, FuncAttributes,
    FunctionId, GpuError, HostFn, LaunchConfig, ModuleId, ParamLayout, Result, Stream, StreamFlags,
    VariablePlacement, VariableRecord,
};

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

fn allocation_prop(dev: c_int) -> AllocationProp {
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

fn handle(v: u64) -> Handle {
    // x86-64 only (the loader refuses other targets): pointers are 64 bits.
    usize::try_from(v).unwrap_or(0) as Handle
}

/// The driver stream for a crac stream: `0`/`1` legacy and `2` per-thread are the driver's own
/// values (`CU_STREAM_LEGACY`, `CU_STREAM_PER_THREAD`).
fn stream(s: Stream) -> Handle {
    match s.0 {
        0 | 1 => 1usize as Handle,
        v => handle(v),
    }
}

fn usize_of(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| GpuError::InvalidValue(format!("{v} bytes")))
}

/// Runs a boxed host function handed to `cuLaunchHostFunc`.
unsafe extern "C" fn run_host_fn(data: *mut c_void) {
    // SAFETY: `data` is the Box<HostFn> leaked by `launch_host_func`, given to the driver once
    // and called once.
    let f = unsafe { Box::from_raw(data.cast::<HostFn>()) };
    // Never unwind into the driver.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(Ok(()))));
}

impl CudaBackend {
    /// Makes the primary context current on the calling thread (once per thread).
    fn current(&self) -> Result<&super::driver::Api> {
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
    fn map_at(&self, at: u64, len: u64) -> Result<u64> {
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
    fn unmap(&self, at: u64, len: u64, h: u64) -> Result<()> {
        let api = self.current()?;
        let len = usize_of(len)?;
        // SAFETY: `[at, at + len)` is a mapping made by `map_at`; the caller synchronised.
        Self::check(unsafe { (api.mem_unmap)(at, len) }, "cuMemUnmap")?;
        // SAFETY: the handle of that mapping, now unmapped.
        Self::check(unsafe { (api.mem_release)(h) }, "cuMemRelease")
    }

    /// Creates the mapping a placement asked for, or undoes the placement.
    fn realise(&self, place: &mut Placement, new: Option<NewMap>) -> Result<()> {
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

    fn attr(&self, attr: c_int) -> Result<i32> {
        let api = self.current()?;
        let mut v: c_int = 0;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.device_get_attribute)(&mut v, attr, self.device) },
            "cuDeviceGetAttribute",
        )?;
        Ok(v)
    }

    fn stream_known(&self, s: Stream) -> Result<()> {
        if s.0 <= 2 || lock(&self.live).streams.contains(&s.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidResourceHandle(format!(
                "stream {:#x}",
                s.0
            )))
        }
    }

    fn event_known(&self, e: Event) -> Result<()> {
        if lock(&self.live).events.contains(&e.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidResourceHandle(format!("event {:#x}", e.0)))
        }
    }

    fn function_known(&self, f: FunctionId) -> Result<()> {
        if lock(&self.live).functions.contains(&f.0) {
            Ok(())
        } else {
            Err(GpuError::InvalidDeviceFunction(format!("{:#x}", f.0)))
        }
    }
}

impl DeviceBackend for CudaBackend {
    fn device_count(&self) -> Result<u32> {
        let api = self.current()?;
        let mut n: c_int = 0;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.device_get_count)(&mut n) },
            "cuDeviceGetCount",
        )?;
        Ok(u32::try_from(n).unwrap_or(0))
    }

    fn device_props(&self, ordinal: u32) -> Result<DeviceProps> {
        if ordinal != 0 {
            return Err(GpuError::InvalidDevice(ordinal));
        }
        let api = self.current()?;
        let mut name = [0u8; 256];
        Self::check(
            // SAFETY: the buffer holds 256 bytes, as passed.
            unsafe { (api.device_get_name)(name.as_mut_ptr().cast(), 256, self.device) },
            "cuDeviceGetName",
        )?;
        let end = name.iter().position(|b| *b == 0).unwrap_or(255);
        let mut uuid = [0u8; 16];
        Self::check(
            // SAFETY: CUuuid is 16 bytes.
            unsafe { (api.device_get_uuid)(uuid.as_mut_ptr(), self.device) },
            "cuDeviceGetUuid",
        )?;
        let mut total = 0usize;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.device_total_mem)(&mut total, self.device) },
            "cuDeviceTotalMem",
        )?;
        let (mut least, mut greatest) = (0, 0);
        Self::check(
            // SAFETY: out-pointers to live locals.
            unsafe { (api.ctx_stream_priority_range)(&mut least, &mut greatest) },
            "cuCtxGetStreamPriorityRange",
        )?;
        // An attribute this driver does not know (some are retired between majors) reads as 0
        // rather than failing the whole query; a sticky error still fails it.
        let u = |a: c_int| -> Result<u32> {
            match self.attr(a) {
                Ok(v) => Ok(u32::try_from(v).unwrap_or(0)),
                Err(e) if e.is_sticky() => Err(e),
                Err(_) => Ok(0),
            }
        };
        let w = |a: c_int| -> Result<u64> { Ok(u64::from(u(a)?)) };
        Ok(DeviceProps {
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
            uuid,
            total_global_mem: total as u64,
            shared_mem_per_block: w(8)?,
            shared_mem_per_block_optin: w(97)?,
            shared_mem_per_multiprocessor: w(81)?,
            regs_per_block: u(12)?,
            regs_per_multiprocessor: u(82)?,
            warp_size: u(10)?,
            mem_pitch: w(11)?,
            max_threads_per_block: u(1)?,
            max_threads_dim: [u(2)?, u(3)?, u(4)?],
            max_grid_size: [u(5)?, u(6)?, u(7)?],
            max_threads_per_multiprocessor: u(39)?,
            max_blocks_per_multiprocessor: u(106)?,
            total_const_mem: w(9)?,
            major: u(75)?,
            minor: u(76)?,
            clock_rate_khz: u(13)?,
            memory_clock_rate_khz: u(36)?,
            memory_bus_width: u(37)?,
            l2_cache_size: u(38)?,
            texture_alignment: w(14)?,
            multiprocessor_count: u(16)?,
            concurrent_kernels: u(31)? != 0,
            async_engine_count: u(40)?,
            unified_addressing: u(41)? != 0,
            managed_memory: u(83)? != 0,
            can_map_host_memory: u(19)? != 0,
            integrated: u(18)? != 0,
            ecc_enabled: u(32)? != 0,
            pci_domain_bus_device: [u(50)?, u(33)?, u(34)?],
            stream_priority_range: (least, greatest),
        })
    }

    fn mem_get_info(&self) -> Result<(u64, u64)> {
        let api = self.current()?;
        let (mut free, mut total) = (0usize, 0usize);
        Self::check(
            // SAFETY: out-pointers to live locals.
            unsafe { (api.mem_get_info)(&mut free, &mut total) },
            "cuMemGetInfo",
        )?;
        Ok((free as u64, total as u64))
    }

    fn device_synchronize(&self) -> Result<()> {
        let api = self.current()?;
        // SAFETY: no arguments.
        Self::check(unsafe { (api.ctx_synchronize)() }, "cuCtxSynchronize")
    }

    fn device_reset(&self) -> Result<()> {
        self.device_synchronize()?;
        let maps = lock(&self.place).clear();
        for (at, len, h) in maps {
            self.unmap(at, len, h)?;
        }
        let (streams, events) = {
            let mut live = lock(&self.live);
            (
                std::mem::take(&mut live.streams),
                std::mem::take(&mut live.events),
            )
        };
        let api = self.current()?;
        for s in streams {
            // SAFETY: a stream this backend created and has not destroyed.
            unsafe { (api.stream_destroy)(handle(s)) };
        }
        for e in events {
            // SAFETY: an event this backend created and has not destroyed.
            unsafe { (api.event_destroy)(handle(e)) };
        }
        Ok(())
    }

    fn malloc(&self, size: u64) -> Result<DevicePtr> {
        if size == 0 {
            return Ok(DevicePtr(0));
        }
        let mut place = lock(&self.place);
        let (ptr, new) = place.alloc(size).map_err(|_| GpuError::MemoryAllocation {
            size,
            reason: "the device window is full".into(),
        })?;
        self.realise(&mut place, new)?;
        Ok(DevicePtr(ptr))
    }

    fn malloc_at(&self, ptr: DevicePtr, size: u64) -> Result<()> {
        let mut place = lock(&self.place);
        let new = place
            .alloc_at(ptr.0, size)
            .map_err(|_| GpuError::MemoryAllocation {
                size,
                reason: format!("{ptr:#x} is taken, misaligned or outside the device window"),
            })?;
        self.realise(&mut place, new)
    }

    fn find_allocation(&self, ptr: DevicePtr) -> Result<Option<Allocation>> {
        if let Some((start, size)) = lock(&self.place).find(ptr.0) {
            return Ok(Some(Allocation {
                ptr: DevicePtr(start),
                size,
            }));
        }
        let live = lock(&self.live);
        Ok(live
            .modules
            .values()
            .flatten()
            .find_map(|(_, at, size, _)| {
                (ptr.0 >= *at && ptr.0 < at + size).then_some(Allocation {
                    ptr: DevicePtr(*at),
                    size: *size,
                })
            }))
    }

    fn free(&self, ptr: DevicePtr) -> Result<()> {
        if ptr.0 == 0 {
            return Ok(());
        }
        self.device_synchronize()?;
        let unmap = lock(&self.place)
            .free(ptr.0)
            .map_err(|_| GpuError::InvalidValue(format!("{ptr:#x} is not an allocation")))?;
        match unmap {
            Some((at, len, h)) => self.unmap(at, len, h),
            None => Ok(()),
        }
    }

    fn memcpy_htod(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: `src` is a live slice of that length; the driver stages pageable memory
            // before the call returns, so it may be dropped afterwards.
            unsafe {
                (api.memcpy_htod_async)(dst.0, src.as_ptr().cast(), src.len(), self::stream(stream))
            },
            "cuMemcpyHtoDAsync",
        )
    }

    fn memcpy_dtoh(&self, dst: &mut [u8], src: DevicePtr, stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        let s = self::stream(stream);
        Self::check(
            // SAFETY: `dst` is a live, exclusively borrowed buffer of that length; the stream is
            // synchronised below before the borrow ends.
            unsafe { (api.memcpy_dtoh_async)(dst.as_mut_ptr().cast(), src.0, dst.len(), s) },
            "cuMemcpyDtoHAsync",
        )?;
        Self::check(
            // SAFETY: a stream handle the backend knows.
            unsafe { (api.stream_synchronize)(s) },
            "cuStreamSynchronize",
        )
    }

    fn memcpy_dtod(&self, dst: DevicePtr, src: DevicePtr, len: u64, stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: device addresses only; the driver checks them.
            unsafe { (api.memcpy_dtod_async)(dst.0, src.0, usize_of(len)?, self::stream(stream)) },
            "cuMemcpyDtoDAsync",
        )
    }

    fn memset(&self, dst: DevicePtr, value: u8, len: u64, stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a device address; the driver checks it.
            unsafe { (api.memset_d8_async)(dst.0, value, usize_of(len)?, self::stream(stream)) },
            "cuMemsetD8Async",
        )
    }

    fn stream_create(&self, flags: StreamFlags, priority: i32) -> Result<Stream> {
        let api = self.current()?;
        let mut s: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.stream_create)(&mut s, flags.0, priority) },
            "cuStreamCreateWithPriority",
        )?;
        lock(&self.live).streams.insert(s as u64);
        Ok(Stream(s as u64))
    }

    fn stream_destroy(&self, s: Stream) -> Result<()> {
        if !lock(&self.live).streams.remove(&s.0) {
            return Err(GpuError::InvalidResourceHandle(format!(
                "stream {:#x}",
                s.0
            )));
        }
        let api = self.current()?;
        Self::check(
            // SAFETY: a stream this backend created, removed from the live set above.
            unsafe { (api.stream_destroy)(handle(s.0)) },
            "cuStreamDestroy",
        )
    }

    fn stream_query(&self, s: Stream) -> Result<bool> {
        self.stream_known(s)?;
        let api = self.current()?;
        // SAFETY: a known stream.
        match Self::check(unsafe { (api.stream_query)(stream(s)) }, "cuStreamQuery") {
            Ok(()) => Ok(true),
            Err(GpuError::NotReady) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn stream_synchronize(&self, s: Stream) -> Result<()> {
        self.stream_known(s)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known stream.
            unsafe { (api.stream_synchronize)(stream(s)) },
            "cuStreamSynchronize",
        )
    }

    fn stream_info(&self, s: Stream) -> Result<(StreamFlags, i32)> {
        self.stream_known(s)?;
        let api = self.current()?;
        let (mut flags, mut prio): (c_uint, c_int) = (0, 0);
        // SAFETY: a known stream, out-pointers to live locals.
        unsafe {
            Self::check(
                (api.stream_get_flags)(stream(s), &mut flags),
                "cuStreamGetFlags",
            )?;
            Self::check(
                (api.stream_get_priority)(stream(s), &mut prio),
                "cuStreamGetPriority",
            )?;
        }
        Ok((StreamFlags(flags), prio))
    }

    fn stream_wait_event(&self, s: Stream, e: Event) -> Result<()> {
        self.stream_known(s)?;
        self.event_known(e)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known stream and event.
            unsafe { (api.stream_wait_event)(stream(s), handle(e.0), 0) },
            "cuStreamWaitEvent",
        )
    }

    fn launch_host_func(&self, s: Stream, f: HostFn) -> Result<()> {
        self.stream_known(s)?;
        let api = self.current()?;
        let data = Box::into_raw(Box::new(f));
        // SAFETY: `run_host_fn` takes back the box exactly once when the driver calls it.
        let rc = unsafe { (api.launch_host_func)(stream(s), run_host_fn, data.cast()) };
        if rc != 0 {
            // SAFETY: the driver refused it, so the box is still ours.
            drop(unsafe { Box::from_raw(data) });
        }
        Self::check(rc, "cuLaunchHostFunc")
    }

    fn event_create(&self, flags: EventFlags) -> Result<Event> {
        if flags.0 & !EventFlags::ALL != 0 {
            return Err(GpuError::InvalidValue(format!(
                "event flags {:#x}",
                flags.0
            )));
        }
        let api = self.current()?;
        let mut e: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: out-pointer to a live local; the flag bits are the driver's CU_EVENT_*.
            unsafe { (api.event_create)(&mut e, flags.0) },
            "cuEventCreate",
        )?;
        lock(&self.live).events.insert(e as u64);
        Ok(Event(e as u64))
    }

    fn event_destroy(&self, e: Event) -> Result<()> {
        if !lock(&self.live).events.remove(&e.0) {
            return Err(GpuError::InvalidResourceHandle(format!("event {:#x}", e.0)));
        }
        let api = self.current()?;
        Self::check(
            // SAFETY: an event this backend created.
            unsafe { (api.event_destroy)(handle(e.0)) },
            "cuEventDestroy",
        )
    }

    fn event_record(&self, e: Event, s: Stream) -> Result<()> {
        self.stream_known(s)?;
        self.event_known(e)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known event and stream.
            unsafe { (api.event_record)(handle(e.0), stream(s)) },
            "cuEventRecord",
        )
    }

    fn event_query(&self, e: Event) -> Result<bool> {
        self.event_known(e)?;
        let api = self.current()?;
        // SAFETY: a known event.
        match Self::check(unsafe { (api.event_query)(handle(e.0)) }, "cuEventQuery") {
            Ok(()) => Ok(true),
            Err(GpuError::NotReady) => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn event_synchronize(&self, e: Event) -> Result<()> {
        self.event_known(e)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known event.
            unsafe { (api.event_synchronize)(handle(e.0)) },
            "cuEventSynchronize",
        )
    }

    fn event_elapsed_ms(&self, start: Event, end: Event) -> Result<f32> {
        self.event_known(start)?;
        self.event_known(end)?;
        let api = self.current()?;
        let mut ms = 0f32;
        Self::check(
            // SAFETY: known events, out-pointer to a live local.
            unsafe { (api.event_elapsed)(&mut ms, handle(start.0), handle(end.0)) },
            "cuEventElapsedTime",
        )?;
        Ok(ms)
    }

    fn register_fatbin(&self, image: &[u8]) -> Result<ModuleId> {
        let api = self.current()?;
        let mut m: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: `image` is a whole fat binary (the caller read its full length), alive for
            // the call; the driver copies what it keeps.
            unsafe { (api.module_load_data)(&mut m, image.as_ptr().cast()) },
            "cuModuleLoadData",
        )?;
        lock(&self.live).modules.insert(m as u64, Vec::new());
        Ok(ModuleId(m as u64))
    }

    fn register_fatbin_at(&self, image: &[u8], vars: &[VariablePlacement]) -> Result<ModuleId> {
        if !vars.is_empty() {
            return Err(GpuError::NotSupported(
                "placing module variables at given addresses with the CUDA driver".into(),
            ));
        }
        self.register_fatbin(image)
    }

    fn unregister_module(&self, module: ModuleId) -> Result<()> {
        if lock(&self.live).modules.remove(&module.0).is_none() {
            return Err(GpuError::InvalidResourceHandle(format!(
                "module {:#x}",
                module.0
            )));
        }
        self.device_synchronize()?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a module this backend loaded, removed from the live set above.
            unsafe { (api.module_unload)(handle(module.0)) },
            "cuModuleUnload",
        )
    }

    fn register_function(&self, module: ModuleId, name: &str) -> Result<FunctionId> {
        if !lock(&self.live).modules.contains_key(&module.0) {
            return Err(GpuError::InvalidResourceHandle(format!(
                "module {:#x}",
                module.0
            )));
        }
        let api = self.current()?;
        let cname = CString::new(name).map_err(|_| GpuError::InvalidDeviceFunction(name.into()))?;
        let mut f: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: a loaded module, a NUL-terminated name, out-pointer to a live local.
            unsafe { (api.module_get_function)(&mut f, handle(module.0), cname.as_ptr()) },
            "cuModuleGetFunction",
        )
        .map_err(|_| GpuError::InvalidDeviceFunction(name.into()))?;
        lock(&self.live).functions.insert(f as u64);
        Ok(FunctionId(f as u64))
    }

    fn register_variable(&self, module: ModuleId, name: &str) -> Result<(DevicePtr, u64)> {
        let api = self.current()?;
        let cname = CString::new(name).map_err(|_| GpuError::InvalidSymbol(name.into()))?;
        let (mut ptr, mut size): (CuPtr, usize) = (0, 0);
        if !lock(&self.live).modules.contains_key(&module.0) {
            return Err(GpuError::InvalidResourceHandle(format!(
                "module {:#x}",
                module.0
            )));
        }
        Self::check(
            // SAFETY: out-pointers to live locals, a NUL-terminated name, a loaded module
            // (checked against the live set above).
            unsafe {
                (api.module_get_global)(&mut ptr, &mut size, handle(module.0), cname.as_ptr())
            },
            "cuModuleGetGlobal",
        )
        .map_err(|_| GpuError::InvalidSymbol(name.into()))?;
        if let Some(vars) = lock(&self.live).modules.get_mut(&module.0) {
            if !vars.iter().any(|(n, ..)| n == name) {
                vars.push((name.to_string(), ptr, size as u64, false));
            }
        }
        Ok((DevicePtr(ptr), size as u64))
    }

    fn function_attributes(&self, function: FunctionId) -> Result<FuncAttributes> {
        self.function_known(function)?;
        let api = self.current()?;
        let get = |a: c_int| -> Result<i32> {
            let mut v: c_int = 0;
            Self::check(
                // SAFETY: a known function, out-pointer to a live local.
                unsafe { (api.func_get_attribute)(&mut v, a, handle(function.0)) },
                "cuFuncGetAttribute",
            )?;
            Ok(v)
        };
        let u = |a| -> Result<u32> { Ok(u32::try_from(get(a)?).unwrap_or(0)) };
        Ok(FuncAttributes {
            max_threads_per_block: u(0)?,
            shared_size_bytes: u64::from(u(1)?),
            const_size_bytes: u64::from(u(2)?),
            local_size_bytes: u64::from(u(3)?),
            num_regs: u(4)?,
            ptx_version: u(5)?,
            binary_version: u(6)?,
            max_dynamic_shared_size_bytes: u64::from(u(8)?),
        })
    }

    fn function_set_max_dynamic_shared(&self, function: FunctionId, bytes: u64) -> Result<()> {
        self.function_known(function)?;
        let api = self.current()?;
        let v = c_int::try_from(bytes).map_err(|_| GpuError::InvalidValue(format!("{bytes}")))?;
        Self::check(
            // SAFETY: a known function; attribute 8 is CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
            unsafe { (api.func_set_attribute)(handle(function.0), 8, v) },
            "cuFuncSetAttribute",
        )
    }

    fn launch(&self, function: FunctionId, config: &LaunchConfig, params: &[u8]) -> Result<()> {
        self.function_known(function)?;
        self.stream_known(config.stream)?;
        let api = self.current()?;
        let mut size = params.len();
        let mut buf = params.to_vec();
        let mut extra: [*mut c_void; 5] = [
            PARAM_BUFFER_POINTER as *mut c_void,
            buf.as_mut_ptr().cast(),
            PARAM_BUFFER_SIZE as *mut c_void,
            (&mut size as *mut usize).cast(),
            PARAM_END as *mut c_void,
        ];
        let [gx, gy, gz] = config.grid;
        let [bx, by, bz] = config.block;
        // SAFETY: a known function and stream; `extra` points at the packed parameters and
        // their size, both alive for the call (the driver copies them before returning).
        let rc = unsafe {
            (api.launch_kernel)(
                handle(function.0),
                gx,
                gy,
                gz,
                bx,
                by,
                bz,
                config.dynamic_shared,
                stream(config.stream),
                std::ptr::null_mut(),
                extra.as_mut_ptr(),
            )
        };
        match Self::check(rc, "cuLaunchKernel") {
            Err(GpuError::InvalidValue(m)) => Err(GpuError::InvalidConfiguration(m)),
            other => other,
        }
    }

    fn function_params(&self, function: FunctionId) -> Result<Vec<ParamLayout>> {
        self.function_known(function)?;
        let api = self.current()?;
        let mut out = Vec::new();
        for i in 0.. {
            let (mut offset, mut size) = (0usize, 0usize);
            let rc =
                // SAFETY: a known function, out-pointers to live locals; an index past the last
                // parameter is CUDA_ERROR_INVALID_VALUE, which ends the list.
                unsafe { (api.func_get_param_info)(handle(function.0), i, &mut offset, &mut size) };
            if rc != 0 {
                break;
            }
            out.push(ParamLayout {
                offset: offset as u64,
                size: size as u64,
            });
        }
        Ok(out)
    }

    fn host_register(&self, addr: u64, len: u64) -> Result<()> {
        let api = self.current()?;
        Self::check(
            // SAFETY: the caller names program memory it owns for the registration's lifetime;
            // flags 0 is CU_MEMHOSTREGISTER_DEFAULT (portable mapping is always on with UVA).
            unsafe { (api.mem_host_register)(handle(addr), usize_of(len)?, 0) },
            "cuMemHostRegister",
        )?;
        lock(&self.live).host.insert(addr);
        Ok(())
    }

    fn host_unregister(&self, addr: u64) -> Result<()> {
        if !lock(&self.live).host.remove(&addr) {
            return Err(GpuError::HostMemoryNotRegistered(addr));
        }
        let api = self.current()?;
        Self::check(
            // SAFETY: a range registered by `host_register`.
            unsafe { (api.mem_host_unregister)(handle(addr)) },
            "cuMemHostUnregister",
        )
    }

    fn driver_version(&self) -> Result<u32> {
        let api = self.current()?;
        let mut v: c_int = 0;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.driver_get_version)(&mut v) },
            "cuDriverGetVersion",
        )?;
        Ok(u32::try_from(v).unwrap_or(0))
    }

    fn allocations(&self) -> Result<Vec<Allocation>> {
        Ok(lock(&self.place)
            .allocations()
            .into_iter()
            .map(|(at, size)| Allocation {
                ptr: DevicePtr(at),
                size,
            })
            .collect())
    }

    fn module_variables(&self) -> Result<Vec<VariableRecord>> {
        Ok(lock(&self.live)
            .modules
            .iter()
            .flat_map(|(m, vars)| {
                vars.iter()
                    .map(|(name, ptr, size, constant)| VariableRecord {
                        module: ModuleId(*m),
                        name: name.clone(),
                        ptr: DevicePtr(*ptr),
                        size: *size,
                        constant: *constant,
                    })
            })
            .collect())
    }

    fn read_device(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()> {
        let api = self.current()?;
        Self::check(
            // SAFETY: `dst` is a live, exclusively borrowed buffer of that length.
            unsafe { (api.memcpy_dtoh)(dst.as_mut_ptr().cast(), src.0, dst.len()) },
            "cuMemcpyDtoH",
        )
    }

    fn write_device(&self, dst: DevicePtr, src: &[u8]) -> Result<()> {
        let api = self.current()?;
        Self::check(
            // SAFETY: `src` is a live slice of that length.
            unsafe { (api.memcpy_htod)(dst.0, src.as_ptr().cast(), src.len()) },
            "cuMemcpyHtoD",
        )
    }
}
