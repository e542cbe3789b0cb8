//! [`Runtime`]: the CUDA runtime API of the lower half, over a device backend.
//!
//! The shim (upper half) keeps what is per thread in CUDA's runtime — the last error, the
//! launch-configuration stack of `<<<…>>>` — and answers those calls itself; everything that
//! touches device state crosses to [`Runtime::call`] with the operation number and its argument
//! words (`crac_abi::ops`), and returns a `cudaError_t`.
//!
//! Semantics follow NVIDIA's runtime where programs can observe them: one device (ordinal 0),
//! streams `0`/`1` legacy and `2` per-thread, created streams and events as virtual handles
//! ([`crate::handles`]), kernels named by their host stub address (what `<<<…>>>` passes and
//! what `__cudaGetKernel` returns), variables by their host shadow address (what
//! `cudaMemcpyToSymbol` passes). A fat binary that cannot be loaded still gets a handle, as with
//! CUDA's lazy loading: the failure is logged once and returned by every launch of its kernels.

mod device;
mod dispatch;
pub(crate) mod memory;
mod out;
mod printf;
pub(crate) mod registry;
mod streams;

use std::sync::Mutex;

use crac_gpu::{DeviceBackend, GpuError, Stream};

use crate::handles::{Kind, VirtualTable};

pub use printf::{DevicePrintf, PrintfWriter};
pub use streams::Callbacks;

/// `cudaErrorNotSupported`: the answer to an operation number this build does not know.
pub const NOT_SUPPORTED: u32 = 801;
/// `cudaErrorUnknown`: the answer when an operation panicked (a crac bug).
pub const UNKNOWN: u32 = 999;

/// The lower-half CUDA runtime of one process.
pub struct Runtime {
    backend: Box<dyn DeviceBackend>,
    registry: registry::Registry,
    streams: Mutex<VirtualTable<StreamEntry>>,
    events: Mutex<VirtualTable<EventEntry>>,
    allocations: memory::Allocations,
    host: memory::HostRegistrations,
    callbacks: std::sync::Arc<Callbacks>,
    device: device::DeviceSettings,
    printf: std::sync::Arc<DevicePrintf>,
}

impl Runtime {
    /// A runtime over `backend`.
    pub fn new(backend: Box<dyn DeviceBackend>) -> Runtime {
        Runtime {
            backend,
            registry: registry::Registry::default(),
            streams: Mutex::new(VirtualTable::new(Kind::Stream)),
            events: Mutex::new(VirtualTable::new(Kind::Event)),
            allocations: memory::Allocations::default(),
            host: memory::HostRegistrations::default(),
            callbacks: std::sync::Arc::new(Callbacks::default()),
            device: device::DeviceSettings::default(),
            printf: std::sync::Arc::default(),
        }
    }

    /// Device `printf` output goes through `printf` (whose [`DevicePrintf::writer`] the
    /// backend writes to) and reaches the program through `__crac_printf_take`.
    pub fn with_device_printf(mut self, printf: std::sync::Arc<DevicePrintf>) -> Runtime {
        self.printf = printf;
        self
    }

    /// The backend the runtime drives (checkpoint hooks go to it directly).
    pub fn backend(&self) -> &dyn DeviceBackend {
        self.backend.as_ref()
    }

    pub(crate) fn registry(&self) -> &registry::Registry {
        &self.registry
    }

    pub(crate) fn allocation_table(&self) -> &memory::Allocations {
        &self.allocations
    }

    pub(crate) fn stream_table(&self) -> &Mutex<VirtualTable<StreamEntry>> {
        &self.streams
    }

    pub(crate) fn event_table(&self) -> &Mutex<VirtualTable<EventEntry>> {
        &self.events
    }

    pub(crate) fn host_table(&self) -> &memory::HostRegistrations {
        &self.host
    }

    pub(crate) fn settings(&self) -> &device::DeviceSettings {
        &self.device
    }

    /// The backend stream a program stream handle names: `0`/`1` legacy, `2` per-thread, else
    /// a created stream's virtual handle.
    pub(crate) fn stream(&self, v: u64) -> Result<Stream, GpuError> {
        match v {
            0 => Ok(Stream::NULL),
            1 => Ok(Stream::LEGACY),
            2 => Ok(Stream::PER_THREAD),
            _ => lock(&self.streams).get(v).map(|s| s.real).ok_or_else(|| {
                GpuError::InvalidResourceHandle(format!("stream {v:#x} does not exist"))
            }),
        }
    }

    /// The backend event behind a program event handle.
    pub(crate) fn event(&self, v: u64) -> Result<crac_gpu::Event, GpuError> {
        lock(&self.events)
            .get(v)
            .map(|e| e.real)
            .ok_or_else(|| GpuError::InvalidResourceHandle(format!("event {v:#x} does not exist")))
    }
}

/// A created stream: the backend's, and what it was created with (replayed at restart).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamEntry {
    pub(crate) real: Stream,
    pub(crate) flags: u32,
    pub(crate) priority: i32,
}

/// A created event: the backend's, its flags, and whether it was ever recorded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventEntry {
    pub(crate) real: crac_gpu::Event,
    pub(crate) flags: u32,
    pub(crate) recorded: bool,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `cudaError_t` of a result.
pub(crate) fn code(r: Result<(), GpuError>) -> u32 {
    match r {
        Ok(()) => 0,
        Err(e) => u32::try_from(e.code()).unwrap_or(UNKNOWN),
    }
}
