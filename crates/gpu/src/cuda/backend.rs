//! [`CudaBackend`]'s [`DeviceBackend`] implementation: each method forwards to the inherent
//! method of the same name (inherent methods win name lookup), grouped by noun in `device.rs`,
//! `memory.rs`, `streams.rs` and `modules.rs`; the helpers they share are in `context.rs`.

use super::CudaBackend;
use crate::{
    Allocation, DeviceBackend, DeviceProps, DevicePtr, Event, EventFlags, FuncAttributes,
    FunctionId, HostFn, LaunchConfig, ModuleId, ParamLayout, Result, Stream, StreamFlags,
    VariablePlacement, VariableRecord,
};

impl DeviceBackend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn device_count(&self) -> Result<u32> {
        CudaBackend::device_count(self)
    }

    fn device_props(&self, ordinal: u32) -> Result<DeviceProps> {
        CudaBackend::device_props(self, ordinal)
    }

    fn mem_get_info(&self) -> Result<(u64, u64)> {
        CudaBackend::mem_get_info(self)
    }

    fn device_synchronize(&self) -> Result<()> {
        CudaBackend::device_synchronize(self)
    }

    fn device_reset(&self) -> Result<()> {
        CudaBackend::device_reset(self)
    }

    fn malloc(&self, size: u64) -> Result<DevicePtr> {
        CudaBackend::malloc(self, size)
    }

    fn malloc_at(&self, ptr: DevicePtr, size: u64) -> Result<()> {
        CudaBackend::malloc_at(self, ptr, size)
    }

    fn find_allocation(&self, ptr: DevicePtr) -> Result<Option<Allocation>> {
        CudaBackend::find_allocation(self, ptr)
    }

    fn free(&self, ptr: DevicePtr) -> Result<()> {
        CudaBackend::free(self, ptr)
    }

    fn memcpy_htod(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()> {
        CudaBackend::memcpy_htod(self, dst, src, stream)
    }

    fn memcpy_dtoh(&self, dst: &mut [u8], src: DevicePtr, stream: Stream) -> Result<()> {
        CudaBackend::memcpy_dtoh(self, dst, src, stream)
    }

    fn memcpy_dtod(&self, dst: DevicePtr, src: DevicePtr, len: u64, stream: Stream) -> Result<()> {
        CudaBackend::memcpy_dtod(self, dst, src, len, stream)
    }

    fn memset(&self, dst: DevicePtr, value: u8, len: u64, stream: Stream) -> Result<()> {
        CudaBackend::memset(self, dst, value, len, stream)
    }

    fn stream_create(&self, flags: StreamFlags, priority: i32) -> Result<Stream> {
        CudaBackend::stream_create(self, flags, priority)
    }

    fn stream_destroy(&self, s: Stream) -> Result<()> {
        CudaBackend::stream_destroy(self, s)
    }

    fn stream_query(&self, s: Stream) -> Result<bool> {
        CudaBackend::stream_query(self, s)
    }

    fn stream_synchronize(&self, s: Stream) -> Result<()> {
        CudaBackend::stream_synchronize(self, s)
    }

    fn stream_info(&self, s: Stream) -> Result<(StreamFlags, i32)> {
        CudaBackend::stream_info(self, s)
    }

    fn stream_wait_event(&self, s: Stream, e: Event) -> Result<()> {
        CudaBackend::stream_wait_event(self, s, e)
    }

    fn launch_host_func(&self, s: Stream, f: HostFn) -> Result<()> {
        CudaBackend::launch_host_func(self, s, f)
    }

    fn event_create(&self, flags: EventFlags) -> Result<Event> {
        CudaBackend::event_create(self, flags)
    }

    fn event_destroy(&self, e: Event) -> Result<()> {
        CudaBackend::event_destroy(self, e)
    }

    fn event_record(&self, e: Event, s: Stream) -> Result<()> {
        CudaBackend::event_record(self, e, s)
    }

    fn event_query(&self, e: Event) -> Result<bool> {
        CudaBackend::event_query(self, e)
    }

    fn event_synchronize(&self, e: Event) -> Result<()> {
        CudaBackend::event_synchronize(self, e)
    }

    fn event_elapsed_ms(&self, start: Event, end: Event) -> Result<f32> {
        CudaBackend::event_elapsed_ms(self, start, end)
    }

    fn register_fatbin(&self, image: &[u8]) -> Result<ModuleId> {
        CudaBackend::register_fatbin(self, image)
    }

    fn register_fatbin_at(&self, image: &[u8], vars: &[VariablePlacement]) -> Result<ModuleId> {
        CudaBackend::register_fatbin_at(self, image, vars)
    }

    fn unregister_module(&self, module: ModuleId) -> Result<()> {
        CudaBackend::unregister_module(self, module)
    }

    fn register_function(&self, module: ModuleId, name: &str) -> Result<FunctionId> {
        CudaBackend::register_function(self, module, name)
    }

    fn register_variable(&self, module: ModuleId, name: &str) -> Result<(DevicePtr, u64)> {
        CudaBackend::register_variable(self, module, name)
    }

    fn function_attributes(&self, function: FunctionId) -> Result<FuncAttributes> {
        CudaBackend::function_attributes(self, function)
    }

    fn function_set_max_dynamic_shared(&self, function: FunctionId, bytes: u64) -> Result<()> {
        CudaBackend::function_set_max_dynamic_shared(self, function, bytes)
    }

    fn launch(&self, function: FunctionId, config: &LaunchConfig, params: &[u8]) -> Result<()> {
        CudaBackend::launch(self, function, config, params)
    }

    fn function_params(&self, function: FunctionId) -> Result<Vec<ParamLayout>> {
        CudaBackend::function_params(self, function)
    }

    fn host_register(&self, addr: u64, len: u64) -> Result<()> {
        CudaBackend::host_register(self, addr, len)
    }

    fn host_unregister(&self, addr: u64) -> Result<()> {
        CudaBackend::host_unregister(self, addr)
    }

    fn driver_version(&self) -> Result<u32> {
        CudaBackend::driver_version(self)
    }

    fn allocations(&self) -> Result<Vec<Allocation>> {
        CudaBackend::allocations(self)
    }

    fn module_variables(&self) -> Result<Vec<VariableRecord>> {
        CudaBackend::module_variables(self)
    }

    fn read_device(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()> {
        CudaBackend::read_device(self, src, dst)
    }

    fn write_device(&self, dst: DevicePtr, src: &[u8]) -> Result<()> {
        CudaBackend::write_device(self, dst, src)
    }
}
