//! The checkpoint side: [`Runtime::synchronize_all`], [`Runtime::snapshot`] (the log and the
//! device memory to save), [`Runtime::log_len`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crac_gpu::{GpuError, ModuleId};

use crate::ReplayError;
use crate::handles::VirtualTable;
use crate::log::{self, Counters, Entry, Loaded, LogFile, PlacedVariable, Settings};
use crate::runtime::{Runtime, lock};

/// What a checkpoint saves of the device: the encoded log and the device memory to copy out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The compacted, versioned log ([`Runtime::restore`] reads it).
    pub log: Vec<u8>,
    /// Every live allocation and every module variable, by address.
    pub buffers: Vec<DeviceRegion>,
}

/// A range of device memory whose bytes a checkpoint saves and a restart writes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRegion {
    /// First byte.
    pub addr: u64,
    /// Bytes.
    pub len: u64,
    /// What it is: `malloc`, `malloc pitch`, or `variable NAME`.
    pub label: String,
}

impl Runtime {
    /// Waits until every stream's work is done, host callbacks included (they run on the
    /// shim's callback thread, which must still be let through). An error of asynchronous work
    /// stays pending for the program; a sticky one (the device is unusable) is returned.
    pub fn synchronize_all(&self) -> Result<(), GpuError> {
        self.backend().drain()
    }

    /// Live entries of the log: registrations, allocations, streams, events and registered
    /// host ranges. It follows the number of live objects, never the number of calls.
    pub fn log_len(&self) -> usize {
        self.registry().len()
            + self.allocation_table().len()
            + lock(self.stream_table()).len()
            + lock(self.event_table()).len()
            + self.host_table().len()
    }

    /// The compacted log (encoded, versioned) and the device memory to save. Call it with the
    /// gate closed and the device drained ([`Self::synchronize_all`]), so no object is
    /// created or destroyed meanwhile.
    pub fn snapshot(&self) -> Result<Snapshot, ReplayError> {
        self.place_loaded_variables();
        let backend = self.backend();
        let query = |what| move |source| ReplayError::Query { what, source };
        let module_vars = backend
            .module_variables()
            .map_err(query("list the module variables"))?;
        let mut entries = Vec::with_capacity(self.log_len());
        let mut buffers = Vec::new();

        let tracked = self.allocation_table().entries();
        check_allocations(
            &tracked,
            &backend
                .allocations()
                .map_err(query("list the device allocations"))?,
        )?;
        for (addr, size, pitch) in tracked {
            entries.push(Entry::Allocation { addr, size, pitch });
            let label = if pitch.is_some() {
                "malloc pitch"
            } else {
                "malloc"
            };
            buffers.push(DeviceRegion {
                addr,
                len: size,
                label: label.into(),
            });
        }

        let mut by_module: HashMap<ModuleId, Vec<PlacedVariable>> = HashMap::new();
        for v in &module_vars {
            by_module.entry(v.module).or_default().push(PlacedVariable {
                name: v.name.clone(),
                addr: v.ptr.0,
                size: v.size,
                constant: v.constant,
            });
        }
        let records = self.registry().records();
        for (handle, wrapper, module) in records.fatbins {
            let loaded = module.map(|(m, order)| {
                let variables = by_module.remove(&m).unwrap_or_default();
                for v in &variables {
                    buffers.push(DeviceRegion {
                        addr: v.addr,
                        len: v.size,
                        label: format!("variable {}", v.name),
                    });
                }
                Loaded { order, variables }
            });
            entries.push(Entry::FatBinary {
                handle,
                wrapper,
                loaded,
            });
        }
        for (stub, fatbin, name, max_dynamic_shared) in records.kernels {
            entries.push(Entry::Kernel {
                stub,
                fatbin,
                name,
                max_dynamic_shared,
            });
        }
        for (shadow, fatbin, name, place) in records.variables {
            entries.push(Entry::Variable {
                shadow,
                fatbin,
                name,
                place,
            });
        }

        let (stream_next, streams) = sorted(self.stream_table());
        for (handle, s) in streams {
            entries.push(Entry::Stream {
                handle,
                flags: s.flags,
                priority: s.priority,
            });
        }
        let (event_next, events) = sorted(self.event_table());
        for (handle, e) in events {
            entries.push(Entry::Event {
                handle,
                flags: e.flags,
                recorded: e.recorded,
            });
        }
        for (start, len, flags, allocated) in self.host_table().entries() {
            entries.push(Entry::HostMemory {
                start,
                len,
                flags,
                allocated,
            });
        }

        let (flags, limits, cache_config) = self.settings().get();
        let file = LogFile {
            backend: backend.name().to_string(),
            settings: Settings {
                flags,
                limits,
                cache_config,
            },
            next: Counters {
                stream: stream_next,
                event: event_next,
                fatbin: records.next_fatbin,
            },
            entries,
        };
        buffers.sort_by_key(|b| b.addr);
        Ok(Snapshot {
            log: log::encode(&file)?,
            buffers,
        })
    }
}

/// The runtime's allocations against the backend's: the same addresses and sizes.
fn check_allocations(
    tracked: &[(u64, u64, Option<u64>)],
    backend: &[crac_gpu::Allocation],
) -> Result<(), ReplayError> {
    let ours: BTreeSet<(u64, u64)> = tracked.iter().map(|(a, s, _)| (*a, *s)).collect();
    let theirs: BTreeSet<(u64, u64)> = backend.iter().map(|a| (a.ptr.0, a.size)).collect();
    match ours.symmetric_difference(&theirs).next() {
        None => Ok(()),
        Some((first, _)) => Err(ReplayError::AllocationsDiffer {
            backend: theirs.len(),
            tracked: ours.len(),
            first: *first,
        }),
    }
}

/// A virtual-handle table's next value and its entries by handle (the log lists them in order).
fn sorted<T: Clone>(table: &Mutex<VirtualTable<T>>) -> (u64, Vec<(u64, T)>) {
    let t = lock(table);
    let mut entries: Vec<(u64, T)> = t.entries().map(|(v, x)| (v, x.clone())).collect();
    entries.sort_by_key(|e| e.0);
    (t.next(), entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_gpu::{Allocation, DevicePtr};

    #[test]
    fn allocations_the_backend_and_the_runtime_disagree_on_are_named() {
        let backend = [
            Allocation {
                ptr: DevicePtr(0x1000),
                size: 16,
            },
            Allocation {
                ptr: DevicePtr(0x2000),
                size: 32,
            },
        ];
        let same = [(0x1000, 16, None), (0x2000, 32, Some(32))];
        assert!(check_allocations(&same, &backend).is_ok());
        let missing = [(0x2000, 32, None)];
        let e = check_allocations(&missing, &backend).unwrap_err();
        assert!(
            matches!(
                e,
                ReplayError::AllocationsDiffer {
                    backend: 2,
                    tracked: 1,
                    first: 0x1000
                }
            ),
            "{e:?}"
        );
        let resized = [(0x1000, 16, None), (0x2000, 64, None)];
        assert!(check_allocations(&resized, &backend).is_err());
    }
}
