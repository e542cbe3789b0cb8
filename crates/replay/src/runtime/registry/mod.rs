//! Registrations: fat binaries (virtual handles), kernels by host stub, variables by host
//! shadow address. This is the part of the runtime's state a restart replays: each entry keeps
//! what is needed to register it again (the wrapper address in program memory, names).
//!
//! Modules load lazily, as CUDA's do by default: `__cudaRegisterFatBinary` copies the image,
//! and the backend loads it when one of its kernels or variables is first used (a launch, a
//! symbol copy, an attribute query) or `__cudaInitModule` asks. A program with many
//! translation units pays only for the modules it uses, and a module that cannot load is
//! reported by the first use, not before `main`.

mod records;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crac_gpu::{DeviceBackend, DevicePtr, FunctionId, GpuError, ModuleId, ParamLayout};

use super::{Runtime, lock};
use crate::handles::{Kind, VirtualTable};
use crate::host::HostMemory;

/// One registered fat binary.
#[derive(Debug)]
pub(crate) struct FatBinary {
    /// The program's `__fatBinC_Wrapper_t` (kept for re-registration after restart).
    wrapper: u64,
    /// The image until it is loaded.
    image: Mutex<Option<Vec<u8>>>,
    /// The loaded module, or why it could not be loaded.
    module: OnceLock<Result<ModuleId, GpuError>>,
    /// Position in load order, once loaded (a restart loads modules again in this order).
    order: AtomicU64,
}

impl FatBinary {
    /// Whether its module is loaded (and loaded without error).
    fn is_loaded(&self) -> bool {
        self.module.get().is_some_and(Result::is_ok)
    }

    /// The module, loading it on first use; `loads` counts the modules loaded so far.
    fn load(&self, backend: &dyn DeviceBackend, loads: &AtomicU64) -> Result<ModuleId, GpuError> {
        self.module
            .get_or_init(|| {
                let image = lock(&self.image).take().unwrap_or_default();
                self.order
                    .store(loads.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
                let module = backend.register_fatbin(&image);
                if let Err(e) = &module {
                    tracing::warn!(
                        "a fat binary of the program cannot be loaded; its kernels fail to \
                         launch: {e}"
                    );
                }
                module
            })
            .clone()
    }
}

/// A kernel as the backend knows it: its function and parameter layout (shared, so a launch
/// copies no list).
pub(crate) type Resolved = (FunctionId, Arc<[ParamLayout]>);

/// One registered kernel.
#[derive(Debug)]
pub(crate) struct Kernel {
    fatbin: Arc<FatBinary>,
    handle: u64,
    /// Mangled name.
    name: String,
    /// The backend's function, or why there is none; resolved on first use.
    resolved: OnceLock<Result<Resolved, GpuError>>,
    /// `cudaFuncAttributeMaxDynamicSharedMemorySize`, once set (set again at restart).
    max_dynamic_shared: Mutex<Option<u64>>,
}

/// One registered `__device__`/`__constant__` variable.
#[derive(Debug)]
pub(crate) struct Variable {
    fatbin: Arc<FatBinary>,
    handle: u64,
    /// Mangled name.
    name: String,
    /// Device address and size, or why there is none; resolved on first use.
    place: OnceLock<Result<(DevicePtr, u64), GpuError>>,
}

#[derive(Debug)]
struct Tables {
    fatbins: VirtualTable<Arc<FatBinary>>,
    kernels: HashMap<u64, Arc<Kernel>>,
    variables: HashMap<u64, Arc<Variable>>,
}

/// Every registration, read-mostly (launches only read).
#[derive(Debug)]
pub(crate) struct Registry {
    tables: RwLock<Tables>,
    /// Modules loaded so far (the next load's order).
    loads: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            tables: RwLock::new(Tables {
                fatbins: VirtualTable::new(Kind::FatBinary),
                kernels: HashMap::new(),
                variables: HashMap::new(),
            }),
            loads: AtomicU64::new(0),
        }
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `cudaFuncSetAttribute(MaxDynamicSharedMemorySize)` on the kernel `stub`.
    pub(crate) fn note_max_dynamic_shared(&self, stub: u64, bytes: u64) {
        if let Some(k) = self.read().kernels.get(&stub) {
            *lock(&k.max_dynamic_shared) = Some(bytes);
        }
    }

    /// Live registrations: fat binaries, kernels, variables.
    pub(crate) fn len(&self) -> usize {
        let t = self.read();
        t.fatbins.len() + t.kernels.len() + t.variables.len()
    }

    fn fatbin(&self, handle: u64) -> Result<Arc<FatBinary>, GpuError> {
        self.read().fatbins.get(handle).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("{handle:#x} is not a fat binary handle"))
        })
    }
}

fn not_a_kernel(stub: u64) -> GpuError {
    GpuError::InvalidDeviceFunction(format!(
        "{stub:#x} is not a registered kernel (its module failed to load, or it is not a \
         __global__ function)"
    ))
}

/// The most bytes read from a `__cudaRegister*` name.
const MAX_NAME: usize = 64 << 10;

/// Copies the fat binary the program's wrapper at `wrapper` points to out of program memory.
pub(crate) fn read_image(mem: &dyn HostMemory, wrapper: u64) -> Result<Vec<u8>, GpuError> {
    let mut w = [0u8; crac_gpu::fatbin::WRAPPER_LEN];
    mem.read(wrapper, &mut w)?;
    let bad = |e: crac_gpu::fatbin::FatbinHeaderError| GpuError::InvalidKernelImage(e.to_string());
    let data = crac_gpu::fatbin::wrapper_data_pointer(&w).map_err(bad)?;
    let mut header = [0u8; crac_gpu::fatbin::HEADER_LEN];
    mem.read(data, &mut header)?;
    let len = crac_gpu::fatbin::image_len(&header).map_err(bad)?;
    let mut image = vec![0u8; len];
    mem.read(data, &mut image)?;
    Ok(image)
}

impl Runtime {
    /// The backend function and parameter layout of the kernel whose host stub is `stub`,
    /// loading its module on first use (the launch path: nothing is copied).
    pub(crate) fn function(&self, stub: u64) -> Result<Resolved, GpuError> {
        let k = self
            .registry
            .read()
            .kernels
            .get(&stub)
            .cloned()
            .ok_or_else(|| not_a_kernel(stub))?;
        let backend = self.backend.as_ref();
        k.resolved
            .get_or_init(|| {
                let module = k.fatbin.load(backend, &self.registry.loads)?;
                let f = backend.register_function(module, &k.name)?;
                Ok((f, backend.function_params(f)?.into()))
            })
            .clone()
    }

    /// Device address and size of the variable whose host shadow is `symbol`, loading its
    /// module on first use.
    pub(crate) fn variable(&self, symbol: u64) -> Result<(DevicePtr, u64), GpuError> {
        let v = self
            .registry
            .read()
            .variables
            .get(&symbol)
            .cloned()
            .ok_or_else(|| {
                GpuError::InvalidSymbol(format!("{symbol:#x} is not a registered variable"))
            })?;
        let backend = self.backend.as_ref();
        v.place
            .get_or_init(|| {
                let module = v.fatbin.load(backend, &self.registry.loads)?;
                backend.register_variable(module, &v.name)
            })
            .clone()
    }

    /// Places every registered variable of every loaded module that the program has not looked
    /// up yet. A backend may know only the variables it was asked about (the real driver has no
    /// call that lists a module's globals), and a `__device__` counter that only kernels touch
    /// must still be saved and put back. A variable that cannot be found stays unplaced (its
    /// module then restores without it, as it loaded).
    pub(crate) fn place_loaded_variables(&self) {
        let pending: Vec<u64> = self
            .registry
            .read()
            .variables
            .iter()
            .filter(|(_, v)| v.place.get().is_none() && v.fatbin.is_loaded())
            .map(|(symbol, _)| *symbol)
            .collect();
        for symbol in pending {
            if let Err(e) = self.variable(symbol) {
                tracing::debug!("variable {symbol:#x} of a loaded module has no place: {e}");
            }
        }
    }

    /// `__cudaRegisterFatBinary`: reads the wrapper and copies the fat binary from program
    /// memory; the module loads on first use. Only an unreadable wrapper fails the call.
    pub(crate) fn register_fatbin(
        &self,
        mem: &dyn HostMemory,
        wrapper: u64,
    ) -> Result<u64, GpuError> {
        let image = read_image(mem, wrapper)?;
        let fatbin = FatBinary {
            wrapper,
            image: Mutex::new(Some(image)),
            module: OnceLock::new(),
            order: AtomicU64::new(0),
        };
        Ok(self.registry.write().fatbins.insert(Arc::new(fatbin)))
    }

    /// `__cudaRegisterFatBinaryEnd`: checks the handle (a module that cannot load is reported
    /// by its first use, as with CUDA's lazy loading).
    pub(crate) fn fatbin_end(&self, handle: u64) -> Result<(), GpuError> {
        self.registry.fatbin(handle).map(drop)
    }

    /// `__cudaInitModule`: loads the module now; its load result.
    pub(crate) fn init_module(&self, handle: u64) -> Result<(), GpuError> {
        self.registry
            .fatbin(handle)?
            .load(self.backend.as_ref(), &self.registry.loads)
            .map(drop)
    }

    /// `__cudaUnregisterFatBinary`: unloads the module (if it was loaded) and forgets its
    /// kernels and variables.
    pub(crate) fn unregister_fatbin(&self, handle: u64) -> Result<(), GpuError> {
        let mut t = self.registry.write();
        let fat = t.fatbins.remove(handle).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("{handle:#x} is not a fat binary handle"))
        })?;
        t.kernels.retain(|_, k| k.handle != handle);
        t.variables.retain(|_, v| v.handle != handle);
        drop(t);
        match fat.module.get() {
            Some(Ok(m)) => self.backend.unregister_module(*m),
            _ => Ok(()),
        }
    }

    /// `__cudaRegisterFunction`: binds the host stub `stub` to the kernel `name`.
    pub(crate) fn register_function(
        &self,
        mem: &dyn HostMemory,
        handle: u64,
        stub: u64,
        name: u64,
    ) -> Result<(), GpuError> {
        let name = String::from_utf8_lossy(&mem.read_cstr(name, MAX_NAME)?).into_owned();
        let fatbin = self.registry.fatbin(handle)?;
        let kernel = Kernel {
            fatbin,
            handle,
            name,
            resolved: OnceLock::new(),
            max_dynamic_shared: Mutex::new(None),
        };
        self.registry.write().kernels.insert(stub, Arc::new(kernel));
        Ok(())
    }

    /// `__cudaRegisterVar`: binds the host shadow `symbol` to the module variable `name`.
    pub(crate) fn register_variable(
        &self,
        mem: &dyn HostMemory,
        handle: u64,
        symbol: u64,
        name: u64,
    ) -> Result<(), GpuError> {
        let name = String::from_utf8_lossy(&mem.read_cstr(name, MAX_NAME)?).into_owned();
        let fatbin = self.registry.fatbin(handle)?;
        let variable = Variable {
            fatbin,
            handle,
            name,
            place: OnceLock::new(),
        };
        self.registry
            .write()
            .variables
            .insert(symbol, Arc::new(variable));
        Ok(())
    }

    /// Names of the registered kernels, by host stub (for logs and the checkpoint record).
    pub fn kernel_names(&self) -> Vec<(u64, String)> {
        let t = self.registry.read();
        let mut v: Vec<_> = t
            .kernels
            .iter()
            .map(|(s, k)| (*s, k.name.clone()))
            .collect();
        v.sort();
        v
    }

    /// Names of the registered variables, by host shadow address.
    pub fn variable_names(&self) -> Vec<(u64, String)> {
        let t = self.registry.read();
        let mut v: Vec<_> = t
            .variables
            .iter()
            .map(|(s, k)| (*s, k.name.clone()))
            .collect();
        v.sort();
        v
    }

    /// The program's fat-binary wrappers, by virtual handle, and whether each module is loaded
    /// (what a restart registers again, loading the same ones).
    pub fn fat_binaries(&self) -> Vec<(u64, u64, bool)> {
        let t = self.registry.read();
        let mut v: Vec<_> = t
            .fatbins
            .entries()
            .map(|(h, f)| (h, f.wrapper, f.module.get().is_some_and(Result::is_ok)))
            .collect();
        v.sort();
        v
    }
}
