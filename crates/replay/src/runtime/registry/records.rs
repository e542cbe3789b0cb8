//! The registrations as a checkpoint records them, and the way back at restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crac_gpu::{GpuError, ModuleId};

use super::{FatBinary, Kernel, Registry, Variable};
use crate::runtime::lock;

/// A fat binary as a checkpoint records it: (handle, wrapper, loaded module and load order).
pub(crate) type FatBinaryRecord = (u64, u64, Option<(ModuleId, u64)>);
/// A kernel: (stub, fat binary handle, name, max dynamic shared memory set).
pub(crate) type KernelRecord = (u64, u64, String, Option<u64>);
/// A variable: (shadow, fat binary handle, name, device address and size once placed).
pub(crate) type VariableRecord = (u64, u64, String, Option<(u64, u64)>);

/// Every registration as a checkpoint records it, each list by handle, stub or shadow.
pub(crate) struct Records {
    pub(crate) fatbins: Vec<FatBinaryRecord>,
    pub(crate) kernels: Vec<KernelRecord>,
    pub(crate) variables: Vec<VariableRecord>,
    /// The fat-binary table's next value.
    pub(crate) next_fatbin: u64,
}

/// Checkpoint and restart: the registrations as records, and the way back.
impl Registry {
    /// Every registration.
    pub(crate) fn records(&self) -> Records {
        let t = self.read();
        let mut fatbins: Vec<_> = t
            .fatbins
            .entries()
            .map(|(h, f)| {
                let module = match f.module.get() {
                    Some(Ok(m)) => Some((*m, f.order.load(Ordering::Relaxed))),
                    _ => None,
                };
                (h, f.wrapper, module)
            })
            .collect();
        fatbins.sort_by_key(|f| f.0);
        let mut kernels: Vec<_> = t
            .kernels
            .iter()
            .map(|(s, k)| (*s, k.handle, k.name.clone(), *lock(&k.max_dynamic_shared)))
            .collect();
        kernels.sort_by_key(|k| k.0);
        let mut variables: Vec<_> = t
            .variables
            .iter()
            .map(|(s, v)| {
                let place = match v.place.get() {
                    Some(Ok((p, size))) => Some((p.0, *size)),
                    _ => None,
                };
                (*s, v.handle, v.name.clone(), place)
            })
            .collect();
        variables.sort_by_key(|v| v.0);
        Records {
            fatbins,
            kernels,
            variables,
            next_fatbin: t.fatbins.next(),
        }
    }

    /// Puts a fat binary back under its handle: loaded as `module` (in load position
    /// `order`), or lazy with its `image`. False if the handle is taken or not one.
    pub(crate) fn restore_fatbin(
        &self,
        handle: u64,
        wrapper: u64,
        image: Vec<u8>,
        module: Option<(ModuleId, u64)>,
    ) -> bool {
        let fatbin = FatBinary {
            wrapper,
            image: Mutex::new(module.is_none().then_some(image)),
            module: OnceLock::new(),
            order: AtomicU64::new(module.map_or(0, |m| m.1)),
        };
        if let Some((m, order)) = module {
            let _ = fatbin.module.set(Ok(m));
            self.loads.fetch_max(order + 1, Ordering::Relaxed);
        }
        self.write().fatbins.insert_at(handle, Arc::new(fatbin))
    }

    /// Puts a kernel back; its function is resolved on first use, as before.
    pub(crate) fn restore_kernel(
        &self,
        stub: u64,
        handle: u64,
        name: String,
        max_dynamic_shared: Option<u64>,
    ) -> Result<(), GpuError> {
        let fatbin = self.fatbin(handle)?;
        let kernel = Kernel {
            fatbin,
            handle,
            name,
            resolved: OnceLock::new(),
            max_dynamic_shared: Mutex::new(max_dynamic_shared),
        };
        self.write().kernels.insert(stub, Arc::new(kernel));
        Ok(())
    }

    /// Puts a variable back; its place is resolved on first use, as before.
    pub(crate) fn restore_variable(
        &self,
        shadow: u64,
        handle: u64,
        name: String,
    ) -> Result<(), GpuError> {
        let fatbin = self.fatbin(handle)?;
        let variable = Variable {
            fatbin,
            handle,
            name,
            place: OnceLock::new(),
        };
        self.write().variables.insert(shadow, Arc::new(variable));
        Ok(())
    }

    /// Continues fat-binary numbering at `next`.
    pub(crate) fn set_next(&self, next: u64) {
        self.write().fatbins.set_next(next);
    }
}
