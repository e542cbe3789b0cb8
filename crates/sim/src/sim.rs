//! [`Sim`]: the CPU model of a CUDA device, behind the [`DeviceBackend`] trait.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crac_gpu::{
    Allocation, DeviceBackend, DeviceProps, DevicePtr, Event, EventFlags, FuncAttributes,
    FunctionId, GpuError, HostFn, LaunchConfig, ModuleId, ParamLayout, Result, Stream, StreamFlags,
    VariablePlacement, VariableRecord, Window,
};
use crac_ptx::DeviceMemory;

use crate::engine::{Engine, Work, lock};
use crate::launch::{SimStats, Sinks};
use crate::layout::Memory;
use crate::memory::BlockKind;
use crate::module::Modules;

/// How to build a [`Sim`].
pub struct SimOptions {
    /// What the device reports; `total_global_mem` bounds its memory.
    pub props: DeviceProps,
    /// Where device addresses are placed.
    pub window: Window,
    /// Where kernels' `printf` output goes.
    pub printf: Box<dyn Write + Send>,
}

impl SimOptions {
    /// Defaults: [`DeviceProps::sim`] with `total_mem` bytes, the default window, stdout.
    pub fn new(total_mem: u64) -> SimOptions {
        SimOptions {
            props: DeviceProps::sim(total_mem),
            window: Window::DEFAULT,
            printf: Box::new(std::io::stdout()),
        }
    }
}

/// A `Write` that keeps what is written, shareable between the device and a reader.
#[derive(Clone, Default)]
pub struct CapturedOutput(Arc<Mutex<Vec<u8>>>);

impl CapturedOutput {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        lock(&self.0).clone()
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl Write for CapturedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `sim` device: device memory in lower-half Rust memory at addresses inside the device
/// window, streams and events run by one worker thread, kernels run by the PTX interpreter.
pub struct Sim {
    props: DeviceProps,
    window: Window,
    mem: Arc<Memory>,
    engine: Arc<Engine>,
    modules: Mutex<Modules>,
    sinks: Sinks,
    worker: Option<JoinHandle<()>>,
}

impl Sim {
    /// A sim device with `total_mem` bytes of memory and the default options.
    pub fn new(total_mem: u64) -> Sim {
        Sim::with_options(SimOptions::new(total_mem))
    }

    /// A sim device built from `options`. If its worker thread cannot start, every call fails
    /// with [`GpuError::InitializationError`].
    pub fn with_options(options: SimOptions) -> Sim {
        let mem = Arc::new(Memory::new(options.window, options.props.total_global_mem));
        let engine = Arc::new(Engine::new(mem.clone()));
        let runner = engine.clone();
        let worker = std::thread::Builder::new()
            .name("crac-sim-worker".into())
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run()));
                if ran.is_err() {
                    runner.state().sticky = Some(GpuError::LaunchFailure(
                        "the sim device's worker thread panicked; please report this bug".into(),
                    ));
                    runner.shutdown();
                }
            });
        let worker = match worker {
            Ok(handle) => Some(handle),
            Err(e) => {
                engine.state().sticky = Some(GpuError::InitializationError(format!(
                    "cannot start the sim device's worker thread: {e}"
                )));
                None
            }
        };
        Sim {
            props: options.props,
            window: options.window,
            mem,
            engine,
            modules: Mutex::new(Modules::default()),
            sinks: Sinks {
                printf: Arc::new(Mutex::new(options.printf)),
                stats: Arc::default(),
            },
            worker,
        }
    }

    /// Sends kernels' `printf` output to `out` from now on.
    pub fn set_printf(&self, out: Box<dyn Write + Send>) {
        *lock(&self.sinks.printf) = out;
    }

    /// What kernels have done so far.
    pub fn stats(&self) -> SimStats {
        *lock(&self.sinks.stats)
    }

    /// Captures kernels' `printf` output from now on; read it from the returned handle.
    pub fn capture_printf(&self) -> CapturedOutput {
        let captured = CapturedOutput::default();
        self.set_printf(Box::new(captured.clone()));
        captured
    }

    /// The device-address window allocations are placed in.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Fails with the sticky error if the device is poisoned.
    fn alive(&self) -> Result<()> {
        self.engine.state().check_sticky()
    }

    /// Checks that `[ptr, ptr + len)` is inside one block of device memory.
    fn check_range(&self, ptr: DevicePtr, len: u64) -> Result<()> {
        self.mem.layout().check(ptr.0, len)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.engine.shutdown();
        if let Some(worker) = self.worker.take() {
            // A worker that panicked already recorded it; nothing more to report on drop.
            let _ = worker.join();
        }
    }
}

fn fault(e: crac_ptx::Fault) -> GpuError {
    GpuError::InvalidValue(format!("{e} is not inside one allocation"))
}

impl DeviceBackend for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn device_count(&self) -> Result<u32> {
        Ok(1)
    }

    fn device_props(&self, ordinal: u32) -> Result<DeviceProps> {
        match ordinal {
            0 => Ok(self.props.clone()),
            n => Err(GpuError::InvalidDevice(n)),
        }
    }

    fn mem_get_info(&self) -> Result<(u64, u64)> {
        self.alive()?;
        Ok((self.mem.layout().free_bytes(), self.props.total_global_mem))
    }

    fn device_synchronize(&self) -> Result<()> {
        self.engine.wait_idle().take_error()
    }

    fn drain(&self) -> Result<()> {
        self.engine.wait_idle().check_sticky()
    }

    fn device_reset(&self) -> Result<()> {
        drop(self.engine.wait_idle());
        self.engine.reset();
        let modules = lock(&self.modules);
        self.mem.free_all(BlockKind::Alloc);
        modules.reinitialise(&mut self.mem.contents())
    }

    fn find_allocation(&self, ptr: DevicePtr) -> Result<Option<Allocation>> {
        Ok(self.mem.layout().block_at(ptr.0))
    }

    fn malloc(&self, size: u64) -> Result<DevicePtr> {
        self.alive()?;
        if size == 0 {
            return Ok(DevicePtr(0));
        }
        self.mem.alloc(size, 1, BlockKind::Alloc, &[])
    }

    fn malloc_at(&self, ptr: DevicePtr, size: u64) -> Result<()> {
        self.alive()?;
        self.mem.alloc_at(ptr, size, BlockKind::Alloc, &[])
    }

    fn free(&self, ptr: DevicePtr) -> Result<()> {
        self.alive()?;
        if ptr.0 == 0 {
            return Ok(());
        }
        self.engine.wait_idle().check_sticky()?;
        self.mem.free(ptr, BlockKind::Alloc)
    }

    fn memcpy_htod(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()> {
        self.alive()?;
        if src.is_empty() {
            return Ok(());
        }
        self.check_range(dst, src.len() as u64)?;
        let work = Work::Write {
            dst: dst.0,
            data: src.to_vec(),
        };
        self.engine.submit(stream, work, Vec::new()).map(|_| ())
    }

    fn memcpy_dtoh(&self, dst: &mut [u8], src: DevicePtr, stream: Stream) -> Result<()> {
        self.alive()?;
        if dst.is_empty() {
            return Ok(());
        }
        self.check_range(src, dst.len() as u64)?;
        self.engine.at_point(stream, || {
            self.mem.contents().read(src.0, dst).map_err(fault)
        })
    }

    fn memcpy_htod_sync(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()> {
        self.alive()?;
        if src.is_empty() {
            return Ok(());
        }
        self.check_range(dst, src.len() as u64)?;
        self.engine.at_point(stream, || {
            self.mem.contents().write(dst.0, src).map_err(fault)
        })
    }

    fn memcpy_dtod(&self, dst: DevicePtr, src: DevicePtr, len: u64, stream: Stream) -> Result<()> {
        self.alive()?;
        if len == 0 {
            return Ok(());
        }
        self.check_range(src, len)?;
        self.check_range(dst, len)?;
        let work = Work::Copy {
            dst: dst.0,
            src: src.0,
            len,
        };
        self.engine.submit(stream, work, Vec::new()).map(|_| ())
    }

    fn memset(&self, dst: DevicePtr, value: u8, len: u64, stream: Stream) -> Result<()> {
        self.alive()?;
        if len == 0 {
            return Ok(());
        }
        self.check_range(dst, len)?;
        let work = Work::Fill {
            dst: dst.0,
            value,
            len,
        };
        self.engine.submit(stream, work, Vec::new()).map(|_| ())
    }

    fn stream_create(&self, flags: StreamFlags, priority: i32) -> Result<Stream> {
        self.engine
            .stream_create(flags, priority, self.props.stream_priority_range)
    }

    fn stream_destroy(&self, stream: Stream) -> Result<()> {
        self.engine.stream_destroy(stream)
    }

    fn stream_query(&self, stream: Stream) -> Result<bool> {
        self.engine.stream_query(stream)
    }

    fn stream_synchronize(&self, stream: Stream) -> Result<()> {
        self.engine.stream_synchronize(stream)
    }

    fn stream_info(&self, stream: Stream) -> Result<(StreamFlags, i32)> {
        self.engine.stream_info(stream)
    }

    fn stream_wait_event(&self, stream: Stream, event: Event) -> Result<()> {
        self.engine.stream_wait_event(stream, event)
    }

    fn launch_host_func(&self, stream: Stream, f: HostFn) -> Result<()> {
        self.engine
            .submit(stream, Work::Callback(f), Vec::new())
            .map(drop)
    }

    fn event_create(&self, flags: EventFlags) -> Result<Event> {
        self.engine.event_create(flags)
    }

    fn event_destroy(&self, event: Event) -> Result<()> {
        self.engine.event_destroy(event)
    }

    fn event_record(&self, event: Event, stream: Stream) -> Result<()> {
        self.engine.event_record(event, stream)
    }

    fn event_query(&self, event: Event) -> Result<bool> {
        self.engine.event_query(event)
    }

    fn event_synchronize(&self, event: Event) -> Result<()> {
        self.engine.event_synchronize(event)
    }

    fn event_elapsed_ms(&self, start: Event, end: Event) -> Result<f32> {
        self.engine.event_elapsed_ms(start, end)
    }

    fn register_fatbin(&self, image: &[u8]) -> Result<ModuleId> {
        self.register_fatbin_at(image, &[])
    }

    fn register_fatbin_at(&self, image: &[u8], vars: &[VariablePlacement]) -> Result<ModuleId> {
        self.alive()?;
        lock(&self.modules).load(image, &self.props, &self.mem, vars)
    }

    fn unregister_module(&self, module: ModuleId) -> Result<()> {
        self.alive()?;
        drop(self.engine.wait_idle());
        lock(&self.modules).unload(module, &self.mem)
    }

    fn register_function(&self, module: ModuleId, name: &str) -> Result<FunctionId> {
        self.alive()?;
        lock(&self.modules).register_function(module, name)
    }

    fn register_variable(&self, module: ModuleId, name: &str) -> Result<(DevicePtr, u64)> {
        self.alive()?;
        lock(&self.modules).variable(module, name)
    }

    fn function_attributes(&self, function: FunctionId) -> Result<FuncAttributes> {
        self.alive()?;
        lock(&self.modules).attributes(function, &self.props)
    }

    fn function_set_max_dynamic_shared(&self, function: FunctionId, bytes: u64) -> Result<()> {
        self.alive()?;
        lock(&self.modules).set_max_dynamic_shared(function, bytes, &self.props)
    }

    fn launch(&self, function: FunctionId, config: &LaunchConfig, params: &[u8]) -> Result<()> {
        self.alive()?;
        let job = lock(&self.modules).prepare_launch(
            function,
            config,
            params,
            &self.props,
            &self.sinks,
        )?;
        self.engine
            .submit(config.stream, Work::Kernel(job), Vec::new())
            .map(|_| ())
    }

    fn function_params(&self, function: FunctionId) -> Result<Vec<ParamLayout>> {
        lock(&self.modules).params(function)
    }

    fn allocations(&self) -> Result<Vec<Allocation>> {
        Ok(self.mem.layout().allocations())
    }

    fn module_variables(&self) -> Result<Vec<VariableRecord>> {
        Ok(lock(&self.modules).variables())
    }

    fn read_device(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()> {
        self.mem.contents().read(src.0, dst).map_err(fault)
    }

    fn write_device(&self, dst: DevicePtr, src: &[u8]) -> Result<()> {
        self.mem.contents().write(dst.0, src).map_err(fault)
    }
}

#[cfg(test)]
// Test sizes and offsets are small: narrowing casts cannot lose bits here.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    use crate::fatbin::tests::fixture;

    #[test]
    fn copies_and_memsets_chain_in_stream_order() {
        let sim = Sim::new(1 << 20);
        let s = sim.stream_create(StreamFlags::NON_BLOCKING, 0).unwrap();
        let (a, b) = (sim.malloc(4096).unwrap(), sim.malloc(4096).unwrap());
        assert_eq!(a.0 % 256, 0);
        assert!(sim.window().contains(a.0, 4096));
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        sim.memcpy_htod(a, &data, s).unwrap();
        sim.memcpy_dtod(b, a, 4096, s).unwrap();
        sim.memset(a, 0xab, 100, s).unwrap();
        sim.memcpy_dtod(DevicePtr(b.0 + 1), b, 4095, s).unwrap();
        let mut got = vec![0; 4096];
        sim.memcpy_dtoh(&mut got, a, s).unwrap();
        assert!(got[..100].iter().all(|&x| x == 0xab));
        assert_eq!(got[100..], data[100..]);
        sim.memcpy_dtoh(&mut got, b, Stream::PER_THREAD).unwrap();
        assert_eq!(got[0], data[0]);
        assert_eq!(got[1..], data[..4095]);
        sim.memset_sync(b, 1, 4096, Stream::NULL).unwrap();
        sim.memcpy_dtod_sync(a, b, 8, Stream::LEGACY).unwrap();
        sim.memcpy_htod_sync(DevicePtr(a.0 + 8), &[9; 8], Stream::NULL)
            .unwrap();
        let mut head = [0; 16];
        sim.memcpy_dtoh(&mut head, a, Stream::NULL).unwrap();
        assert_eq!(head, [1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9]);
        sim.device_synchronize().unwrap();
    }

    #[test]
    fn bad_pointers_are_refused_at_the_call() {
        let sim = Sim::new(1 << 20);
        let a = sim.malloc(100).unwrap();
        let e = sim.memcpy_htod(DevicePtr(a.0 + 90), &[0; 11], Stream::NULL);
        assert_eq!(e.unwrap_err().code(), 1);
        assert_eq!(
            sim.memset(DevicePtr(8), 0, 1, Stream::NULL)
                .unwrap_err()
                .code(),
            1
        );
        let mut buf = [0; 4];
        let e = sim.memcpy_dtoh(&mut buf, DevicePtr(a.0 + 97), Stream::NULL);
        assert_eq!(e.unwrap_err().code(), 1);
        // cudaFree of anything but a live allocation's start is cudaErrorInvalidValue, not
        // sticky: inside a block, never allocated, or freed twice.
        assert_eq!(sim.free(DevicePtr(a.0 + 1)).unwrap_err().code(), 1);
        assert_eq!(sim.free(DevicePtr(8)).unwrap_err().code(), 1);
        sim.free(a).unwrap();
        assert_eq!(sim.free(a).unwrap_err().code(), 1);
        sim.device_synchronize().unwrap();
        sim.free(DevicePtr(0)).unwrap();
        assert_eq!(sim.malloc(0).unwrap(), DevicePtr(0));
        sim.memcpy_htod(DevicePtr(0), &[], Stream::NULL).unwrap();
        assert_eq!(sim.malloc(2 << 20).unwrap_err().code(), 2);
        sim.device_synchronize().unwrap();
    }

    #[test]
    fn memory_info_tracks_allocations() {
        let sim = Sim::new(1 << 20);
        assert_eq!(sim.mem_get_info().unwrap(), (1 << 20, 1 << 20));
        let a = sim.malloc(1000).unwrap();
        assert_eq!(sim.mem_get_info().unwrap().0, (1 << 20) - 1024);
        sim.free(a).unwrap();
        assert_eq!(sim.mem_get_info().unwrap().0, 1 << 20);
        assert_eq!(sim.device_count().unwrap(), 1);
        assert_eq!(sim.device_props(0).unwrap().total_global_mem, 1 << 20);
        assert_eq!(sim.device_props(1).unwrap_err().code(), 101);
    }

    #[test]
    fn checkpoint_hooks_recreate_allocations_at_their_addresses() {
        let sim = Sim::new(1 << 20);
        let a = sim.malloc(300).unwrap();
        let b = sim.malloc(5000).unwrap();
        sim.memcpy_htod_sync(a, &[7; 300], Stream::NULL).unwrap();
        sim.memcpy_htod_sync(b, &[3; 5000], Stream::NULL).unwrap();
        sim.device_synchronize().unwrap();
        let allocs = sim.allocations().unwrap();
        let saved: Vec<(Allocation, Vec<u8>)> = allocs
            .iter()
            .map(|al| {
                let mut bytes = vec![0; usize::try_from(al.size).unwrap()];
                sim.read_device(al.ptr, &mut bytes).unwrap();
                (*al, bytes)
            })
            .collect();
        assert_eq!(saved.len(), 2);
        drop(sim);

        let restarted = Sim::new(1 << 20);
        for (al, bytes) in &saved {
            restarted.malloc_at(al.ptr, al.size).unwrap();
            restarted.write_device(al.ptr, bytes).unwrap();
        }
        assert_eq!(restarted.allocations().unwrap(), allocs);
        assert_eq!(restarted.malloc_at(a, 1).unwrap_err().code(), 2);
        let mut back = vec![0; 5000];
        restarted.memcpy_dtoh(&mut back, b, Stream::NULL).unwrap();
        assert!(back.iter().all(|&x| x == 3));
        let c = restarted.malloc(10).unwrap();
        assert!(c != a && c != b);
        assert!(
            restarted
                .read_device(DevicePtr(c.0 + 8), &mut [0; 4])
                .is_err()
        );
    }

    #[test]
    fn fat_binaries_without_ptx_or_garbage_are_refused() {
        let sim = Sim::new(1 << 20);
        let e = sim.register_fatbin(&fixture("cubin_only")).unwrap_err();
        assert_eq!(e.code(), 209);
        assert!(e.to_string().contains("no PTX"), "{e}");
        let mut garbage = fixture("ptx_zstd");
        garbage[0] = 0;
        assert_eq!(sim.register_fatbin(&garbage).unwrap_err().code(), 200);
        assert_eq!(sim.register_fatbin(&[]).unwrap_err().code(), 200);
        assert_eq!(
            sim.register_function(ModuleId(77), "k").unwrap_err().code(),
            400
        );
        assert!(sim.module_variables().unwrap().is_empty());
        assert!(sim.allocations().unwrap().is_empty());
    }

    #[test]
    fn printf_capture_replaces_the_writer() {
        let sim = Sim::new(1 << 20);
        let out = sim.capture_printf();
        lock(&sim.sinks.printf).write_all(b"hello").unwrap();
        assert_eq!(out.text(), "hello");
        assert_eq!(out.contents(), b"hello");
    }

    #[test]
    fn module_variables_are_placed_initialised_and_restorable() {
        let sim = Sim::new(1 << 20);
        let m = sim.register_fatbin(&fixture("ptx_zstd")).unwrap();
        let (counter, size) = sim.register_variable(m, "counter").unwrap();
        assert_eq!(size, 4);
        let (coef, _) = sim.register_variable(m, "coef").unwrap();
        assert_eq!(sim.register_variable(m, "nope").unwrap_err().code(), 13);
        let mut four = [0; 4];
        sim.memcpy_dtoh(&mut four, counter, Stream::NULL).unwrap();
        assert_eq!(i32::from_le_bytes(four), 5);
        let mut floats = [0; 16];
        sim.read_device(coef, &mut floats).unwrap();
        assert_eq!(floats[12..], 4.0f32.to_le_bytes());
        let vars = sim.module_variables().unwrap();
        let names: Vec<_> = vars.iter().map(|v| (v.name.as_str(), v.constant)).collect();
        assert!(
            names.contains(&("counter", false)) && names.contains(&("coef", true)),
            "{names:?}"
        );
        assert!(
            sim.allocations().unwrap().is_empty(),
            "variables are not app allocations"
        );
        sim.write_device(counter, &9i32.to_le_bytes()).unwrap();

        let restarted = Sim::new(1 << 20);
        let blocker = restarted.malloc(256).unwrap();
        let places: Vec<_> = vars
            .iter()
            .map(|v| VariablePlacement {
                name: v.name.clone(),
                ptr: v.ptr,
            })
            .collect();
        let e = restarted.register_fatbin_at(&fixture("ptx_plain"), &places);
        assert_eq!(
            e.unwrap_err().code(),
            2,
            "the first variable's address is taken"
        );
        restarted.free(blocker).unwrap();
        let m2 = restarted
            .register_fatbin_at(&fixture("ptx_plain"), &places)
            .unwrap();
        assert_eq!(
            restarted.register_variable(m2, "counter").unwrap().0,
            counter
        );
        assert_eq!(restarted.register_variable(m2, "coef").unwrap().0, coef);
        let f = restarted.register_function(m2, "_Z3addPii").unwrap();
        assert_eq!(restarted.register_function(m2, "_Z3addPii").unwrap(), f);
        let layout = restarted.function_params(f).unwrap();
        assert_eq!(
            layout,
            [
                ParamLayout { offset: 0, size: 8 },
                ParamLayout { offset: 8, size: 4 }
            ]
        );
        restarted.unregister_module(m2).unwrap();
        assert!(restarted.module_variables().unwrap().is_empty());
        assert_eq!(restarted.function_params(f).unwrap_err().code(), 98);
        assert_eq!(restarted.mem_get_info().unwrap().0, 1 << 20);
    }

    fn ints(bytes: &[u8]) -> Vec<i32> {
        bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// Runs the fixture kernel `a[i] += counter + (int)coef[i % 4]` over `n` ints.
    fn run_add(sim: &Sim, m: ModuleId, a: DevicePtr, n: u32, stream: Stream) -> Result<()> {
        let f = sim.register_function(m, "_Z3addPii")?;
        let mut params = a.0.to_le_bytes().to_vec();
        params.extend_from_slice(&n.to_le_bytes());
        let cfg = LaunchConfig {
            grid: [n.div_ceil(64), 1, 1],
            block: [64, 1, 1],
            dynamic_shared: 0,
            stream,
        };
        sim.launch(f, &cfg, &params)
    }

    #[test]
    fn kernels_run_through_the_trait_and_see_module_variables() {
        let sim = Sim::new(1 << 20);
        let m = sim.register_fatbin(&fixture("ptx_lz4")).unwrap();
        let n = 100u32;
        let a = sim.malloc(u64::from(n) * 4).unwrap();
        let init: Vec<u8> = (0..n as i32).flat_map(i32::to_le_bytes).collect();
        let s = sim.stream_create(StreamFlags::NON_BLOCKING, 0).unwrap();
        sim.memcpy_htod(a, &init, s).unwrap();
        run_add(&sim, m, a, n, s).unwrap();
        let (counter, _) = sim.register_variable(m, "counter").unwrap();
        sim.memcpy_htod(counter, &100i32.to_le_bytes(), s).unwrap();
        run_add(&sim, m, a, n, s).unwrap();
        let mut out = vec![0; init.len()];
        sim.memcpy_dtoh(&mut out, a, s).unwrap();
        let want: Vec<i32> = (0..n as i32)
            .map(|i| i + 5 + 100 + 2 * (i % 4 + 1))
            .collect();
        assert_eq!(ints(&out), want);

        let stats = sim.stats();
        assert_eq!((stats.launches, stats.failed_launches), (2, 0));
        assert!(stats.thread_instructions >= 2 * u64::from(n), "{stats:?}");
        assert!(
            stats.warp_instructions * 32 >= stats.thread_instructions,
            "{stats:?}"
        );
        let attrs = sim.function_attributes(sim.register_function(m, "_Z3addPii").unwrap());
        let attrs = attrs.unwrap();
        assert_eq!((attrs.ptx_version, attrs.binary_version), (90, 80));
        assert_eq!(attrs.const_size_bytes, 16);
    }

    #[test]
    fn a_faulting_kernel_poisons_the_device_until_reset() {
        let sim = Sim::new(1 << 20);
        let m = sim.register_fatbin(&fixture("ptx_zstd")).unwrap();
        let (counter, _) = sim.register_variable(m, "counter").unwrap();
        sim.write_device(counter, &9i32.to_le_bytes()).unwrap();
        let a = sim.malloc(64).unwrap();
        assert_eq!(
            sim.find_allocation(DevicePtr(a.0 + 63)).unwrap(),
            Some(Allocation { ptr: a, size: 64 })
        );
        assert_eq!(sim.find_allocation(DevicePtr(a.0 + 64)).unwrap(), None);
        assert_eq!(
            sim.find_allocation(counter).unwrap().map(|v| v.size),
            Some(4)
        );
        let s = sim.stream_create(StreamFlags::DEFAULT, 0).unwrap();
        run_add(&sim, m, a, 1000, Stream::NULL).unwrap();
        let e = sim.device_synchronize().unwrap_err();
        assert_eq!(e.code(), 700, "{e}");
        assert!(e.is_sticky());
        assert_eq!(sim.stats().failed_launches, 1);
        assert_eq!(sim.malloc(4).unwrap_err().code(), 700);
        assert_eq!(
            run_add(&sim, m, a, 16, Stream::NULL).unwrap_err().code(),
            700
        );
        assert_eq!(sim.register_variable(m, "counter").unwrap_err().code(), 700);
        assert_eq!(sim.allocations().unwrap().len(), 1, "hooks still work");

        sim.device_reset().unwrap();
        assert!(sim.allocations().unwrap().is_empty());
        assert_eq!(sim.stream_query(s).unwrap_err().code(), 400);
        let mut four = [0; 4];
        sim.read_device(counter, &mut four).unwrap();
        assert_eq!(
            i32::from_le_bytes(four),
            5,
            "variables are back to their initial values"
        );
        let a = sim.malloc(64).unwrap();
        sim.memset_sync(a, 0, 64, Stream::NULL).unwrap();
        run_add(&sim, m, a, 16, Stream::NULL).unwrap();
        sim.device_synchronize().unwrap();
        let mut out = [0; 64];
        sim.memcpy_dtoh(&mut out, a, Stream::NULL).unwrap();
        assert_eq!(ints(&out)[..4], [6, 7, 8, 9]);
    }

    #[test]
    fn dynamic_shared_memory_is_limited_until_the_kernel_opts_in() {
        let sim = Sim::new(1 << 20);
        let m = sim.register_fatbin(&fixture("ptx_zstd")).unwrap();
        let f = sim.register_function(m, "_Z3addPii").unwrap();
        let a = sim.malloc(64).unwrap();
        let mut params = a.0.to_le_bytes().to_vec();
        params.extend_from_slice(&16u32.to_le_bytes());
        let cfg = |dynamic_shared| LaunchConfig {
            grid: [1, 1, 1],
            block: [16, 1, 1],
            dynamic_shared,
            stream: Stream::NULL,
        };
        sim.launch(f, &cfg(48 << 10), &params).unwrap();
        let e = sim.launch(f, &cfg((48 << 10) + 1), &params).unwrap_err();
        assert_eq!(e.code(), 9, "{e}");
        assert_eq!(
            sim.function_set_max_dynamic_shared(f, 200 << 10)
                .unwrap_err()
                .code(),
            1
        );
        sim.function_set_max_dynamic_shared(f, 100 << 10).unwrap();
        assert_eq!(
            sim.function_attributes(f)
                .unwrap()
                .max_dynamic_shared_size_bytes,
            100 << 10
        );
        sim.launch(f, &cfg(100 << 10), &params).unwrap();
        assert_eq!(
            sim.launch(f, &cfg((100 << 10) + 1), &params)
                .unwrap_err()
                .code(),
            9
        );
        assert_eq!(sim.launch(f, &cfg(0), &params[..8]).unwrap_err().code(), 1);
        assert_eq!(
            sim.launch(FunctionId(999), &cfg(0), &params)
                .unwrap_err()
                .code(),
            98
        );
        let bad_stream = LaunchConfig {
            stream: Stream(0x777),
            ..cfg(0)
        };
        assert_eq!(sim.launch(f, &bad_stream, &params).unwrap_err().code(), 400);
        sim.device_synchronize().unwrap();
    }

    /// `fatbin_reloc.bin` is nvcc 13.0 `-fatbin -gencode arch=compute_75,code=compute_75` of:
    ///
    /// ```cuda
    /// __device__ int target_var[4];
    /// __device__ int *ptr_to_target = &target_var[1];
    /// extern "C" __global__ void relocated(int v) { *ptr_to_target = v; }
    /// ```
    #[test]
    fn address_initialisers_point_at_the_placed_variables() {
        let sim = Sim::new(1 << 20);
        let m = sim.register_fatbin(&fixture("reloc")).unwrap();
        let (target, _) = sim.register_variable(m, "target_var").unwrap();
        let (ptr, size) = sim.register_variable(m, "ptr_to_target").unwrap();
        assert_eq!(size, 8);
        let mut word = [0; 8];
        sim.read_device(ptr, &mut word).unwrap();
        assert_eq!(u64::from_le_bytes(word), target.0 + 4);
        let f = sim.register_function(m, "relocated").unwrap();
        let cfg = LaunchConfig {
            grid: [1, 1, 1],
            block: [1, 1, 1],
            dynamic_shared: 0,
            stream: Stream::NULL,
        };
        sim.launch(f, &cfg, &42i32.to_le_bytes()).unwrap();
        let mut four = [0; 16];
        sim.memcpy_dtoh(&mut four, target, Stream::NULL).unwrap();
        assert_eq!(ints(&four), [0, 42, 0, 0]);
        sim.write_device(ptr, &0u64.to_le_bytes()).unwrap();
        sim.device_reset().unwrap();
        sim.read_device(ptr, &mut word).unwrap();
        assert_eq!(
            u64::from_le_bytes(word),
            target.0 + 4,
            "reset restores the address"
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write { at: u64, len: u64, seed: u8 },
        Fill { at: u64, len: u64, value: u8 },
        Copy { dst: u64, src: u64, len: u64 },
        Check { at: u64, len: u64 },
    }

    const SPAN: u64 = 512;

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let range = (0..SPAN).prop_flat_map(|at| (Just(at), 1..=SPAN - at));
        prop_oneof![
            (range.clone(), any::<u8>()).prop_map(|((at, len), seed)| Op::Write { at, len, seed }),
            (range.clone(), any::<u8>()).prop_map(|((at, len), value)| Op::Fill { at, len, value }),
            (range.clone(), 0..SPAN).prop_map(|((src, len), d)| Op::Copy {
                dst: d.min(SPAN - len),
                src,
                len
            }),
            range.prop_map(|(at, len)| Op::Check { at, len }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Work on streams of every kind, chained by events, gives the same bytes as running
        /// it in order on the host.
        #[test]
        fn event_chained_work_across_streams_matches_a_sequential_model(
            ops in proptest::collection::vec((op(), 0usize..5), 1..40),
        ) {
            let sim = Sim::new(1 << 20);
            let base = sim.malloc(SPAN).unwrap();
            sim.memset_sync(base, 0, SPAN, Stream::NULL).unwrap();
            let streams = [
                Stream::NULL,
                Stream::PER_THREAD,
                sim.stream_create(StreamFlags::NON_BLOCKING, -5).unwrap(),
                sim.stream_create(StreamFlags::NON_BLOCKING, 0).unwrap(),
                sim.stream_create(StreamFlags::DEFAULT, -2).unwrap(),
            ];
            let mut model = vec![0u8; SPAN as usize];
            let mut last: Option<Event> = None;
            let at = |o: u64| DevicePtr(base.0 + o);
            for (op, which) in ops {
                let s = streams[which];
                if let Some(e) = last {
                    sim.stream_wait_event(s, e).unwrap();
                }
                match op {
                    Op::Write { at: o, len, seed } => {
                        let data: Vec<u8> =
                            (0..len).map(|i| seed.wrapping_add((i * 7) as u8)).collect();
                        sim.memcpy_htod(at(o), &data, s).unwrap();
                        model[o as usize..(o + len) as usize].copy_from_slice(&data);
                    }
                    Op::Fill { at: o, len, value } => {
                        sim.memset(at(o), value, len, s).unwrap();
                        model[o as usize..(o + len) as usize].fill(value);
                    }
                    Op::Copy { dst, src, len } => {
                        sim.memcpy_dtod(at(dst), at(src), len, s).unwrap();
                        let (d, sr, l) = (dst as usize, src as usize, len as usize);
                        model.copy_within(sr..sr + l, d);
                    }
                    Op::Check { at: o, len } => {
                        let mut got = vec![0; len as usize];
                        sim.memcpy_dtoh(&mut got, at(o), s).unwrap();
                        proptest::prop_assert_eq!(&got[..], &model[o as usize..(o + len) as usize]);
                    }
                }
                let e = sim.event_create(EventFlags::DISABLE_TIMING).unwrap();
                sim.event_record(e, s).unwrap();
                last = Some(e);
            }
            sim.device_synchronize().unwrap();
            let mut all = vec![0; SPAN as usize];
            sim.read_device(base, &mut all).unwrap();
            proptest::prop_assert_eq!(all, model);
        }
    }
}
