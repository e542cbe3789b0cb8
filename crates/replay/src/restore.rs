//! The restart side: [`Runtime::restore`] replays a log into a fresh backend.
//!
//! Order: device settings; allocations at their saved addresses (`malloc_at`) before any
//! module, so no module variable can land where an allocation must go back; the modules that
//! were loaded, in their load order, each with every variable at its saved address
//! (`register_fatbin_at`, the image read again from program memory); the ones never loaded stay
//! lazy, as before; kernels and variables under their host addresses; streams and events
//! created again and bound to their saved virtual values, the tables' counters restored; events
//! that had been recorded are recorded again on the legacy stream, so they read as complete
//! (the elapsed time between two of them is then about zero: timing across a restart is not
//! kept); registered host ranges registered again. Then every address is checked against the
//! backend: any difference is an error naming the object and both addresses, and nothing is
//! resumed. Device memory contents are written back by the caller afterwards.
//!
//! Not carried across a restart: an error of asynchronous work the program had not yet been
//! told of (the checkpoint drained the device without taking it), and event timestamps.

use std::sync::Arc;

use crac_gpu::{
    DeviceBackend, DevicePtr, EventFlags, GpuError, ModuleId, Stream, StreamFlags,
    VariablePlacement,
};

use crate::ReplayError;
use crate::host::HostMemory;
use crate::log::{self, Entry, LogFile, PlacedVariable};
use crate::runtime::memory::Pinned;
use crate::runtime::registry::read_image;
use crate::runtime::{DevicePrintf, EventEntry, Runtime, StreamEntry, lock};

impl Runtime {
    /// Restart: a runtime over a fresh `backend` rebuilt from `log` (see the module doc),
    /// reading fat binaries again from the restored program memory through `mem`. Every device
    /// address is checked against the saved one: a mismatch is an error naming both addresses.
    pub fn restore(
        backend: Box<dyn DeviceBackend>,
        printf: Arc<DevicePrintf>,
        log: &[u8],
        mem: &dyn HostMemory,
    ) -> Result<Runtime, ReplayError> {
        let file = log::decode(log)?;
        let rt = Runtime::new(backend).with_device_printf(printf);
        let s = &file.settings;
        rt.settings().set(s.flags, &s.limits, s.cache_config);
        rt.restore_allocations(&file)?;
        rt.restore_modules(&file, mem)?;
        rt.restore_streams_and_events(&file)?;
        for e in &file.entries {
            if let Entry::HostMemory {
                start,
                len,
                flags,
                allocated,
            } = e
            {
                let how = if *allocated {
                    Pinned::Allocated
                } else {
                    Pinned::Registered
                };
                rt.host_register(*start, *len, *flags, how)
                    .map_err(rt.recreate(format!("host memory {start:#x} of {len} bytes")))?;
            }
        }
        rt.verify(&file)?;
        Ok(rt)
    }

    fn recreate(&self, object: String) -> impl FnOnce(GpuError) -> ReplayError {
        let backend = self.backend().name();
        move |source| ReplayError::Recreate {
            object,
            backend,
            source,
        }
    }

    fn restore_allocations(&self, file: &LogFile) -> Result<(), ReplayError> {
        for e in &file.entries {
            if let Entry::Allocation { addr, size, pitch } = e {
                self.backend().malloc_at(DevicePtr(*addr), *size).map_err(
                    self.recreate(format!("the allocation at {addr:#x} of {size} bytes")),
                )?;
                self.allocation_table().insert(*addr, *size, *pitch);
            }
        }
        Ok(())
    }

    fn restore_modules(&self, file: &LogFile, mem: &dyn HostMemory) -> Result<(), ReplayError> {
        let backend = self.backend();
        // Loaded modules in load order, then the lazy ones.
        let mut fatbins: Vec<_> = file
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::FatBinary {
                    handle,
                    wrapper,
                    loaded,
                } => Some((*handle, *wrapper, loaded.as_ref())),
                _ => None,
            })
            .collect();
        fatbins.sort_by_key(|(h, _, l)| (l.map_or(u64::MAX, |l| l.order), *h));
        for (handle, wrapper, loaded) in fatbins {
            let object = format!("fat binary {handle:#x} (wrapper {wrapper:#x})");
            let image = read_image(mem, wrapper).map_err(|source| ReplayError::Recreate {
                object: format!("{object}: its image in program memory cannot be read"),
                backend: backend.name(),
                source,
            })?;
            let module = match loaded {
                None => None,
                Some(l) => {
                    let places: Vec<_> = l
                        .variables
                        .iter()
                        .map(|v| VariablePlacement {
                            name: v.name.clone(),
                            ptr: DevicePtr(v.addr),
                        })
                        .collect();
                    let m = backend
                        .register_fatbin_at(&image, &places)
                        .map_err(|source| load_error(object.clone(), backend.name(), source))?;
                    Some((m, l.order))
                }
            };
            if !self
                .registry()
                .restore_fatbin(handle, wrapper, image, module)
            {
                return Err(ReplayError::Rebind {
                    object,
                    reason: "its handle is taken".into(),
                });
            }
        }
        self.registry().set_next(file.next.fatbin);
        for e in &file.entries {
            match e {
                Entry::Kernel {
                    stub,
                    fatbin,
                    name,
                    max_dynamic_shared,
                } => {
                    self.registry()
                        .restore_kernel(*stub, *fatbin, name.clone(), *max_dynamic_shared)
                        .map_err(self.recreate(format!("kernel {name}")))?;
                    if let Some(bytes) = max_dynamic_shared {
                        let (f, _) = self
                            .function(*stub)
                            .map_err(self.recreate(format!("kernel {name}")))?;
                        backend.function_set_max_dynamic_shared(f, *bytes).map_err(
                            self.recreate(format!(
                                "kernel {name}'s {bytes} bytes of dynamic shared memory"
                            )),
                        )?;
                    }
                }
                Entry::Variable {
                    shadow,
                    fatbin,
                    name,
                    ..
                } => self
                    .registry()
                    .restore_variable(*shadow, *fatbin, name.clone())
                    .map_err(self.recreate(format!("variable {name}")))?,
                _ => {}
            }
        }
        Ok(())
    }

    fn restore_streams_and_events(&self, file: &LogFile) -> Result<(), ReplayError> {
        let backend = self.backend();
        for e in &file.entries {
            match e {
                Entry::Stream {
                    handle,
                    flags,
                    priority,
                } => {
                    let object = format!("stream {handle:#x}");
                    let real = backend
                        .stream_create(StreamFlags(*flags), *priority)
                        .map_err(self.recreate(object.clone()))?;
                    let entry = StreamEntry {
                        real,
                        flags: *flags,
                        priority: *priority,
                    };
                    if !lock(self.stream_table()).insert_at(*handle, entry) {
                        return Err(taken(object));
                    }
                }
                Entry::Event {
                    handle,
                    flags,
                    recorded,
                } => {
                    let object = format!("event {handle:#x}");
                    let real = backend
                        .event_create(EventFlags(*flags))
                        .map_err(self.recreate(object.clone()))?;
                    if *recorded {
                        backend
                            .event_record(real, Stream::LEGACY)
                            .map_err(self.recreate(object.clone()))?;
                    }
                    let entry = EventEntry {
                        real,
                        flags: *flags,
                        recorded: *recorded,
                    };
                    if !lock(self.event_table()).insert_at(*handle, entry) {
                        return Err(taken(object));
                    }
                }
                _ => {}
            }
        }
        lock(self.stream_table()).set_next(file.next.stream);
        lock(self.event_table()).set_next(file.next.event);
        Ok(())
    }

    /// Every allocation and module variable where the log says, asked of the backend.
    fn verify(&self, file: &LogFile) -> Result<(), ReplayError> {
        let backend = self.backend();
        let query = |what| move |source| ReplayError::Query { what, source };
        for e in &file.entries {
            if let Entry::Allocation { addr, size, .. } = e {
                let found = backend
                    .find_allocation(DevicePtr(*addr))
                    .map_err(query("look up an allocation"))?;
                match found {
                    Some(a) if a.ptr.0 == *addr && a.size == *size => {}
                    other => {
                        return Err(mismatch(
                            format!("the allocation of {size} bytes"),
                            *addr,
                            other.map(|a| a.ptr.0),
                        ));
                    }
                }
            }
        }
        let now = backend
            .module_variables()
            .map_err(query("list the module variables"))?;
        let modules = self.registry().records().fatbins;
        for e in &file.entries {
            let Entry::FatBinary {
                handle,
                loaded: Some(l),
                ..
            } = e
            else {
                continue;
            };
            let module = modules
                .iter()
                .find(|f| f.0 == *handle)
                .and_then(|f| f.2)
                .map(|m| m.0);
            for v in &l.variables {
                check_variable(v, module, &now)?;
            }
        }
        for e in &file.entries {
            if let Entry::Variable {
                shadow,
                name,
                place: Some((addr, size)),
                ..
            } = e
            {
                let found = self.variable(*shadow).ok();
                if found != Some((DevicePtr(*addr), *size)) {
                    return Err(mismatch(
                        format!("variable {name}"),
                        *addr,
                        found.map(|f| f.0.0),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_variable(
    v: &PlacedVariable,
    module: Option<ModuleId>,
    now: &[crac_gpu::VariableRecord],
) -> Result<(), ReplayError> {
    let found = now
        .iter()
        .find(|r| Some(r.module) == module && r.name == v.name);
    match found {
        Some(r) if r.ptr.0 == v.addr && r.size == v.size => Ok(()),
        _ => Err(mismatch(
            format!("module variable {} ({} bytes)", v.name, v.size),
            v.addr,
            found.map(|r| r.ptr.0),
        )),
    }
}

fn mismatch(object: String, saved: u64, found: Option<u64>) -> ReplayError {
    ReplayError::AddressMismatch {
        object,
        saved,
        found: found.map_or_else(|| "nowhere".to_string(), |f| format!("{f:#x}")),
    }
}

fn taken(object: String) -> ReplayError {
    ReplayError::Rebind {
        object,
        reason: "its virtual handle is taken".into(),
    }
}

/// A module that loaded before does not load here: on `sim`, most often a fat binary without
/// PTX (a `--gpu cuda` run that used the cubin).
fn load_error(object: String, backend: &'static str, source: GpuError) -> ReplayError {
    let hint = match (&source, backend) {
        (GpuError::NoKernelImageForDevice(_), "sim") => {
            "; this image cannot be resumed on --gpu sim, which runs only PTX: restart it with \
             --gpu cuda"
                .to_string()
        }
        (GpuError::NoKernelImageForDevice(_), b) => {
            format!("; this image cannot be resumed on --gpu {b}")
        }
        _ => String::new(),
    };
    ReplayError::LoadModule {
        object,
        backend,
        source,
        hint,
    }
}
