//! The device-backend trait: every operation the cudart shim forwards to the lower half.
//!
//! Semantics follow the CUDA runtime so the shim's exports stay thin:
//!
//! - One device per backend for now (ordinal 0); `device_count` says how many exist.
//! - Work given a [`Stream`] is ordered on that stream and asynchronous with respect to the
//!   caller, unless the method says it waits. [`Stream::NULL`]/[`Stream::LEGACY`] is the legacy
//!   default stream: work on it waits for all earlier work on every *blocking* stream, and work
//!   on a blocking stream waits for earlier work on it. Streams created with
//!   [`StreamFlags::NON_BLOCKING`](crate::StreamFlags::NON_BLOCKING) do not synchronise with it.
//!   [`Stream::PER_THREAD`] is the calling OS thread's own default stream: a blocking stream
//!   (it does synchronise with the legacy stream, as CUDA documents), but independent of other
//!   threads' per-thread streams. The shim's `_ptsz`/`_ptds` entry points (code built with
//!   `--default-stream per-thread`) pass [`Stream::PER_THREAD`] where the app passes a null
//!   stream. A backend tells threads apart by the calling OS thread's identity in the lower
//!   half, which is per upper thread because each upper thread runs lower-half code on its own
//!   lower-half TCB.
//! - Errors from asynchronous work surface at a later call, as in CUDA: a kernel fault is
//!   *sticky* ([`GpuError::is_sticky`]): from then on every call returns it, except the
//!   checkpoint hooks, which keep working so a failed program can still be inspected.
//! - Handles are plain integers (see [`crate::handles`]); nothing Rust-owned crosses the C ABI.

use crate::{
    Allocation, DeviceProps, DevicePtr, Event, EventFlags, FuncAttributes, FunctionId, GpuError,
    LaunchConfig, ModuleId, ParamLayout, Stream, StreamFlags, VariablePlacement, VariableRecord,
};

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, GpuError>;

/// A host function queued in a stream (`cudaLaunchHostFunc`, `cudaStreamAddCallback`). The
/// backend calls it once, in stream order, on a thread of its own; later work on the stream
/// waits until it returns. It gets `Ok(())`, or the device's sticky error when the stream's
/// earlier work failed (it is still called, as CUDA calls callbacks with an error status).
pub type HostFn = Box<dyn FnOnce(Result<()>) + Send + 'static>;

/// A CUDA device as the shim sees it. Implemented by the `sim` CPU model and the real CUDA
/// backend. All methods take `&self`: the shim calls from many application threads at once.
pub trait DeviceBackend: Send + Sync {
    /// The backend's name as `--gpu` spells it (`"sim"`, `"cuda"`): recorded in a checkpoint's
    /// device fingerprint, and named by errors when an image cannot be resumed on it.
    fn name(&self) -> &'static str;

    // ---- devices ----

    /// Number of devices (`cudaGetDeviceCount`).
    fn device_count(&self) -> Result<u32>;

    /// Properties of device `ordinal` (`cudaGetDeviceProperties`).
    fn device_props(&self, ordinal: u32) -> Result<DeviceProps>;

    /// Free and total bytes of device memory (`cudaMemGetInfo`).
    fn mem_get_info(&self) -> Result<(u64, u64)>;

    /// Waits for all work on every stream (`cudaDeviceSynchronize`), and reports any error that
    /// asynchronous work raised since the last report.
    fn device_synchronize(&self) -> Result<()>;

    /// Waits for all work on every stream, as [`Self::device_synchronize`] does, but leaves an
    /// error of asynchronous work pending, so the program still sees it at its next
    /// synchronising call (a checkpoint drains the device behind the program's back). Fails
    /// only with the sticky error. The default takes the pending error, for backends that
    /// cannot tell them apart.
    fn drain(&self) -> Result<()> {
        self.device_synchronize()
    }

    /// `cudaDeviceReset`: waits for outstanding work, then frees every allocation, destroys
    /// every created stream and event, clears any sticky error, and puts every module variable
    /// back to its initial value (modules stay registered, at the same addresses, as cudart
    /// reloads them after a reset).
    fn device_reset(&self) -> Result<()>;

    // ---- memory ----

    /// Allocates `size` bytes, 256-byte aligned, inside the device window (`cudaMalloc`).
    /// A zero size returns a null pointer, as CUDA does.
    fn malloc(&self, size: u64) -> Result<DevicePtr>;

    /// Allocates `size` bytes exactly at `ptr` (restart, and callers that choose addresses).
    /// Fails with [`GpuError::MemoryAllocation`] if any byte there is taken or outside the
    /// window, and [`GpuError::InvalidValue`] if `ptr` is not 256-byte aligned.
    fn malloc_at(&self, ptr: DevicePtr, size: u64) -> Result<()>;

    /// The allocation or module variable holding `ptr`, if any (`cudaPointerGetAttributes`,
    /// and the direction of `cudaMemcpyDefault` copies).
    fn find_allocation(&self, ptr: DevicePtr) -> Result<Option<Allocation>>;

    /// Frees an allocation by its start address (`cudaFree`); null is a no-op. Waits for
    /// outstanding work first, as `cudaFree` does. Any other pointer (unknown, inside an
    /// allocation, already freed) is [`GpuError::InvalidValue`], as current CUDA returns.
    fn free(&self, ptr: DevicePtr) -> Result<()>;

    /// Copies host bytes to the device on `stream`; the copy happens in stream order. `src` is
    /// staged before return, except memory registered with [`Self::host_register`]
    /// (page-locked), which a real GPU reads later, in stream order, as CUDA does: the caller
    /// keeps such bytes unchanged until the stream reaches the copy.
    fn memcpy_htod(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()>;

    /// Copies device bytes to the host in `stream` order; returns when `dst` is filled.
    fn memcpy_dtoh(&self, dst: &mut [u8], src: DevicePtr, stream: Stream) -> Result<()>;

    /// Copies `len` bytes device to device on `stream` (regions may overlap: memmove).
    fn memcpy_dtod(&self, dst: DevicePtr, src: DevicePtr, len: u64, stream: Stream) -> Result<()>;

    /// Sets `len` bytes at `dst` to `value` on `stream` (`cudaMemsetAsync`).
    fn memset(&self, dst: DevicePtr, value: u8, len: u64, stream: Stream) -> Result<()>;

    /// `cudaMemcpy` host to device: [`Self::memcpy_htod`] then wait for `stream`.
    fn memcpy_htod_sync(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()> {
        self.memcpy_htod(dst, src, stream)?;
        self.stream_synchronize(stream)
    }

    /// `cudaMemcpy` device to device: [`Self::memcpy_dtod`] then wait for `stream`.
    fn memcpy_dtod_sync(
        &self,
        dst: DevicePtr,
        src: DevicePtr,
        len: u64,
        stream: Stream,
    ) -> Result<()> {
        self.memcpy_dtod(dst, src, len, stream)?;
        self.stream_synchronize(stream)
    }

    /// `cudaMemset`: [`Self::memset`] then wait for `stream`.
    fn memset_sync(&self, dst: DevicePtr, value: u8, len: u64, stream: Stream) -> Result<()> {
        self.memset(dst, value, len, stream)?;
        self.stream_synchronize(stream)
    }

    // ---- streams ----

    /// Creates a stream (`cudaStreamCreateWithPriority`). `priority` is clamped into
    /// [`DeviceProps::stream_priority_range`], as CUDA does.
    fn stream_create(&self, flags: StreamFlags, priority: i32) -> Result<Stream>;

    /// Destroys a created stream; work already on it still completes (`cudaStreamDestroy`).
    fn stream_destroy(&self, stream: Stream) -> Result<()>;

    /// Whether all work on `stream` is done (`cudaStreamQuery`: `false` is
    /// `cudaErrorNotReady`).
    fn stream_query(&self, stream: Stream) -> Result<bool>;

    /// Waits for all work on `stream` (`cudaStreamSynchronize`); for the legacy stream that
    /// includes the blocking streams' earlier work it waits on.
    fn stream_synchronize(&self, stream: Stream) -> Result<()>;

    /// Flags and (clamped) priority `stream` was created with (`cudaStreamGetFlags`/`Priority`).
    fn stream_info(&self, stream: Stream) -> Result<(StreamFlags, i32)>;

    /// Makes later work on `stream` wait until `event`'s last recorded point has completed
    /// (`cudaStreamWaitEvent`). An event never recorded makes no wait.
    fn stream_wait_event(&self, stream: Stream, event: Event) -> Result<()>;

    /// Queues `f` on `stream` (`cudaLaunchHostFunc`): it runs once the stream's earlier work
    /// is done, and the stream's later work waits for it to return.
    fn launch_host_func(&self, stream: Stream, f: HostFn) -> Result<()>;

    // ---- events ----

    /// Creates an event (`cudaEventCreateWithFlags`).
    fn event_create(&self, flags: EventFlags) -> Result<Event>;

    /// Destroys an event (`cudaEventDestroy`).
    fn event_destroy(&self, event: Event) -> Result<()>;

    /// Records `event` at the current end of `stream` (`cudaEventRecord`).
    fn event_record(&self, event: Event, stream: Stream) -> Result<()>;

    /// Whether the event's recorded point has been reached (`cudaEventQuery`: `false` is
    /// `cudaErrorNotReady`); an event never recorded counts as reached.
    fn event_query(&self, event: Event) -> Result<bool>;

    /// Waits for the event's recorded point (`cudaEventSynchronize`).
    fn event_synchronize(&self, event: Event) -> Result<()>;

    /// Milliseconds between two completed events (`cudaEventElapsedTime`). Not yet reached is
    /// [`GpuError::NotReady`]; never recorded or timing disabled is
    /// [`GpuError::InvalidResourceHandle`].
    fn event_elapsed_ms(&self, start: Event, end: Event) -> Result<f32>;

    // ---- host memory and versions ----

    /// Page-locks `[addr, addr + len)` of host memory for fast copies (`cudaHostRegister`;
    /// the shim allocates pinned memory in the program's own memory and registers it here).
    /// Backends whose copies do not care (the CPU model) accept and ignore it.
    fn host_register(&self, addr: u64, len: u64) -> Result<()> {
        let _ = (addr, len);
        Ok(())
    }

    /// Undoes [`Self::host_register`] for the range starting at `addr` (`cudaHostUnregister`).
    fn host_unregister(&self, addr: u64) -> Result<()> {
        let _ = addr;
        Ok(())
    }

    /// The driver's CUDA version as `1000 * major + 10 * minor` (`cudaDriverGetVersion`).
    fn driver_version(&self) -> Result<u32> {
        Ok(13000)
    }

    // ---- modules and launches ----

    /// Loads the fat binary whose data (from the header magic `0xBA55ED50` on) is `image`
    /// (`__cudaRegisterFatBinary`), and places its module variables in the device window.
    fn register_fatbin(&self, image: &[u8]) -> Result<ModuleId>;

    /// Like [`Self::register_fatbin`], but puts each named variable exactly at its old address
    /// (restart); a variable not named is placed anywhere. Taken addresses are an error. At
    /// restart, recreate allocations with [`Self::malloc_at`] first, so that unnamed variables
    /// cannot land on an address an allocation must get back.
    fn register_fatbin_at(&self, image: &[u8], vars: &[VariablePlacement]) -> Result<ModuleId>;

    /// Unloads a module and frees its variables (`__cudaUnregisterFatBinary`); its functions
    /// become invalid. Waits for outstanding work first.
    fn unregister_module(&self, module: ModuleId) -> Result<()>;

    /// Looks up a kernel by its mangled name (`__cudaRegisterFunction`).
    fn register_function(&self, module: ModuleId, name: &str) -> Result<FunctionId>;

    /// Device address and size of a module variable by mangled name (`__cudaRegisterVar`,
    /// `cudaGetSymbolAddress`).
    fn register_variable(&self, module: ModuleId, name: &str) -> Result<(DevicePtr, u64)>;

    /// What `cudaFuncGetAttributes` reports about a kernel.
    fn function_attributes(&self, function: FunctionId) -> Result<FuncAttributes>;

    /// Lets launches of `function` ask for up to `bytes` of dynamic shared memory
    /// (`cudaFuncSetAttribute(…, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes)`); without
    /// it static plus dynamic shared memory is limited to
    /// [`DeviceProps::shared_mem_per_block`].
    fn function_set_max_dynamic_shared(&self, function: FunctionId, bytes: u64) -> Result<()>;

    /// Launches a kernel (`cudaLaunchKernel`). `params` is the packed parameter buffer: each
    /// argument at its natural alignment, in declaration order, as the CUDA ABI lays it out
    /// (the shim packs it from `void **args` with the kernel's parameter layout). A bad shape
    /// is [`GpuError::InvalidConfiguration`] at once; faults surface at the next synchronising
    /// call as sticky errors.
    fn launch(&self, function: FunctionId, config: &LaunchConfig, params: &[u8]) -> Result<()>;

    /// Offset and size of each parameter of a kernel in the packed buffer, in declaration order
    /// (for packing `void **args`).
    fn function_params(&self, function: FunctionId) -> Result<Vec<ParamLayout>>;

    // ---- checkpoint hooks (call with the device synchronised) ----

    /// Every live allocation made by [`Self::malloc`]/[`Self::malloc_at`], by address.
    fn allocations(&self) -> Result<Vec<Allocation>>;

    /// Every variable of every loaded module, with its address.
    fn module_variables(&self) -> Result<Vec<VariableRecord>>;

    /// Reads device bytes directly, outside stream order (checkpoint copy-out). Works after a
    /// sticky error too.
    fn read_device(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()>;

    /// Writes device bytes directly, outside stream order (restart copy-in).
    fn write_device(&self, dst: DevicePtr, src: &[u8]) -> Result<()>;
}
