//! Registrations: fat binaries (virtual handles), kernels by host stub, variables by host
//! shadow address. This is the part of the runtime's state a restart replays: each entry keeps
//! what is needed to register it again (the wrapper address in program memory, names).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crac_gpu::{DevicePtr, FunctionId, GpuError, ModuleId, ParamLayout};

use super::Runtime;
use crate::handles::{Kind, VirtualTable};
use crate::host::HostMemory;

/// One registered fat binary.
#[derive(Clone, Debug)]
pub(crate) struct FatBinary {
    /// The program's `__fatBinC_Wrapper_t` (kept for re-registration after restart).
    pub(crate) wrapper: u64,
    /// The loaded module, or why it could not be loaded (returned by its kernels' launches).
    pub(crate) module: Result<ModuleId, GpuError>,
}

/// One registered kernel.
#[derive(Clone, Debug)]
pub(crate) struct Kernel {
    /// Fat binary handle it belongs to.
    pub(crate) fatbin: u64,
    /// Mangled name.
    pub(crate) name: String,
    /// The backend's function, or why there is none.
    pub(crate) function: Result<FunctionId, GpuError>,
    /// Parameter layout, read once (shared, so a launch copies no list).
    pub(crate) params: Arc<[ParamLayout]>,
}

/// One registered `__device__`/`__constant__` variable.
#[derive(Clone, Debug)]
pub(crate) struct Variable {
    /// Fat binary handle it belongs to.
    pub(crate) fatbin: u64,
    /// Mangled name.
    pub(crate) name: String,
    /// Device address and size, or why there is none.
    pub(crate) place: Result<(DevicePtr, u64), GpuError>,
}

#[derive(Debug)]
struct Tables {
    fatbins: VirtualTable<FatBinary>,
    kernels: HashMap<u64, Kernel>,
    variables: HashMap<u64, Variable>,
}

/// Every registration, read-mostly (launches only read).
#[derive(Debug)]
pub(crate) struct Registry(RwLock<Tables>);

impl Default for Registry {
    fn default() -> Self {
        Registry(RwLock::new(Tables {
            fatbins: VirtualTable::new(Kind::FatBinary),
            kernels: HashMap::new(),
            variables: HashMap::new(),
        }))
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The backend function of the kernel whose host stub is `stub` (the launch path: no
    /// name or list is copied).
    pub(crate) fn function(&self, stub: u64) -> Result<(FunctionId, Arc<[ParamLayout]>), GpuError> {
        let t = self.read();
        let k = t.kernels.get(&stub).ok_or_else(|| not_a_kernel(stub))?;
        match &k.function {
            Ok(f) => Ok((*f, Arc::clone(&k.params))),
            Err(e) => Err(e.clone()),
        }
    }

    /// Device address and size of the variable whose host shadow is `symbol`.
    pub(crate) fn variable(&self, symbol: u64) -> Result<(DevicePtr, u64), GpuError> {
        self.read()
            .variables
            .get(&symbol)
            .ok_or_else(|| {
                GpuError::InvalidSymbol(format!("{symbol:#x} is not a registered variable"))
            })?
            .place
            .clone()
    }

    fn module(&self, handle: u64) -> Result<Result<ModuleId, GpuError>, GpuError> {
        self.read()
            .fatbins
            .get(handle)
            .map(|f| f.module)
            .ok_or_else(|| {
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

impl Runtime {
    /// `__cudaRegisterFatBinary`: reads the wrapper and the fat binary from program memory and
    /// loads it. A load failure is kept for the kernels' launches (and logged); only an
    /// unreadable wrapper fails the call.
    pub(crate) fn register_fatbin(
        &self,
        mem: &dyn HostMemory,
        wrapper: u64,
    ) -> Result<u64, GpuError> {
        let mut w = [0u8; crac_gpu::fatbin::WRAPPER_LEN];
        mem.read(wrapper, &mut w)?;
        let bad =
            |e: crac_gpu::fatbin::FatbinHeaderError| GpuError::InvalidKernelImage(e.to_string());
        let data = crac_gpu::fatbin::wrapper_data_pointer(&w).map_err(bad)?;
        let mut header = [0u8; crac_gpu::fatbin::HEADER_LEN];
        mem.read(data, &mut header)?;
        let len = crac_gpu::fatbin::image_len(&header).map_err(bad)?;
        let mut image = vec![0u8; len];
        mem.read(data, &mut image)?;
        let module = self.backend.register_fatbin(&image);
        if let Err(e) = &module {
            tracing::warn!(
                "a fat binary of the program cannot be loaded; its kernels will fail to launch: {e}"
            );
        }
        Ok(self
            .registry
            .write()
            .fatbins
            .insert(FatBinary { wrapper, module }))
    }

    /// `__cudaRegisterFatBinaryEnd` and `__cudaInitModule`: the module's load result.
    pub(crate) fn fatbin_status(&self, handle: u64) -> Result<(), GpuError> {
        self.registry.module(handle)?.map(drop)
    }

    /// `__cudaUnregisterFatBinary`: unloads the module and forgets its kernels and variables.
    pub(crate) fn unregister_fatbin(&self, handle: u64) -> Result<(), GpuError> {
        let mut t = self.registry.write();
        let fat = t.fatbins.remove(handle).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("{handle:#x} is not a fat binary handle"))
        })?;
        t.kernels.retain(|_, k| k.fatbin != handle);
        t.variables.retain(|_, v| v.fatbin != handle);
        drop(t);
        match fat.module {
            Ok(m) => self.backend.unregister_module(m),
            Err(_) => Ok(()),
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
        let module = self.registry.module(handle)?;
        let function = module.and_then(|m| self.backend.register_function(m, &name));
        let params: Arc<[ParamLayout]> = match &function {
            Ok(f) => self.backend.function_params(*f)?.into(),
            Err(_) => Arc::from([]),
        };
        self.registry.write().kernels.insert(
            stub,
            Kernel {
                fatbin: handle,
                name,
                function,
                params,
            },
        );
        // As CUDA loads modules lazily, a kernel that cannot be found fails at its launch.
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
        let module = self.registry.module(handle)?;
        let place = module.and_then(|m| self.backend.register_variable(m, &name));
        self.registry.write().variables.insert(
            symbol,
            Variable {
                fatbin: handle,
                name,
                place,
            },
        );
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

    /// The program's fat-binary wrappers, by virtual handle (what a restart registers again).
    pub fn fat_binaries(&self) -> Vec<(u64, u64)> {
        let t = self.registry.read();
        let mut v: Vec<_> = t.fatbins.entries().map(|(h, f)| (h, f.wrapper)).collect();
        v.sort();
        v
    }
}
