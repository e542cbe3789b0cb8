//! Loaded modules of the `sim` device: fat binary → PTX → parsed module with its variables
//! placed in device memory (address initialisers patched); kernel handles and attributes.

use std::collections::HashMap;
use std::sync::Arc;

use crac_gpu::{
    DeviceProps, DevicePtr, FuncAttributes, FunctionId, GpuError, ModuleId, ParamLayout, Result,
    VariablePlacement, VariableRecord,
};
use crac_ptx::{DeviceMemory, VarSpace};

use crate::fatbin::{self, FatbinError};
use crate::layout::Memory;
use crate::memory::{BlockKind, DeviceMem};

/// A module variable placed in device memory.
#[derive(Clone, Debug)]
pub(crate) struct Var {
    pub(crate) name: String,
    pub(crate) ptr: u64,
    size: u64,
    constant: bool,
    init: Vec<u8>,
}

/// One registered fat binary.
pub(crate) struct LoadedModule {
    pub(crate) ptx: crac_ptx::Module,
    /// PTX ISA version × 10.
    ptx_version: u32,
    pub(crate) vars: Vec<Var>,
    pub(crate) has_extern: bool,
}

impl LoadedModule {
    pub(crate) fn symbol(&self, name: &str) -> Option<u64> {
        self.vars.iter().find(|v| v.name == name).map(|v| v.ptr)
    }
}

pub(crate) struct Function {
    module: ModuleId,
    pub(crate) loaded: Arc<LoadedModule>,
    pub(crate) kernel: usize,
    /// `cudaFuncAttributeMaxDynamicSharedMemorySize`, if set.
    max_dynamic_shared: Option<u64>,
}

/// Every loaded module and kernel handle.
#[derive(Default)]
pub(crate) struct Modules {
    pub(crate) modules: HashMap<ModuleId, Arc<LoadedModule>>,
    functions: HashMap<FunctionId, Function>,
    by_name: HashMap<(ModuleId, String), FunctionId>,
    next_module: u64,
    next_function: u64,
}

fn image_error(e: FatbinError) -> GpuError {
    match e {
        FatbinError::NoPtx { .. } => GpuError::NoKernelImageForDevice(e.to_string()),
        _ => GpuError::InvalidKernelImage(e.to_string()),
    }
}

impl Modules {
    /// Loads a fat binary: picks its PTX for `props`, parses it, and places its variables
    /// (at `placements` where named).
    pub(crate) fn load(
        &mut self,
        image: &[u8],
        props: &DeviceProps,
        mem: &Memory,
        placements: &[VariablePlacement],
    ) -> Result<ModuleId> {
        let entries = fatbin::parse(image).map_err(image_error)?;
        let entry = fatbin::select_ptx(&entries, props.sm()).map_err(image_error)?;
        let text = entry.ptx_text().map_err(image_error)?;
        let ptx =
            crac_ptx::Module::parse(&text).map_err(|e| GpuError::InvalidPtx(e.to_string()))?;
        let id = ModuleId(self.next_module + 1);
        let kind = BlockKind::Variable(id);
        let vars = {
            let mut layout = mem.layout();
            let modules = &self.modules;
            let elsewhere = |name: &str| {
                modules
                    .values()
                    .find_map(|m| m.vars.iter().find(|v| v.name == name).map(|v| v.ptr))
            };
            place_variables(&ptx, id, &mut layout, placements, &elsewhere).inspect_err(|_| {
                layout.free_all(kind);
            })?
        };
        for v in &vars {
            mem.queue_add(DevicePtr(v.ptr), v.size, kind, &v.init);
        }
        self.next_module += 1;
        let (major, minor) = entry.ptx_version;
        let has_extern = ptx.variables().iter().any(|v| v.is_extern);
        let loaded = LoadedModule {
            ptx,
            ptx_version: u32::from(major) * 10 + u32::from(minor),
            vars,
            has_extern,
        };
        self.modules.insert(id, Arc::new(loaded));
        Ok(id)
    }

    /// Unloads a module and frees its variables (the caller has waited for its work).
    pub(crate) fn unload(&mut self, id: ModuleId, mem: &Memory) -> Result<()> {
        self.modules.remove(&id).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("module {} is not loaded", id.0))
        })?;
        self.functions.retain(|_, f| f.module != id);
        self.by_name.retain(|(m, _), _| *m != id);
        mem.free_all(BlockKind::Variable(id));
        Ok(())
    }

    /// Puts every variable of every module back to its initial value (`cudaDeviceReset`).
    pub(crate) fn reinitialise(&self, mem: &mut DeviceMem) -> Result<()> {
        for var in self.modules.values().flat_map(|m| &m.vars) {
            let zeros = usize::try_from(var.size)
                .unwrap_or(0)
                .saturating_sub(var.init.len());
            let lost = |f| GpuError::Unknown(format!("variable {} lost its memory: {f}", var.name));
            mem.write(var.ptr, &var.init).map_err(lost)?;
            if zeros > 0 {
                let tail = var.ptr + var.init.len() as u64;
                mem.fill(tail, 0, zeros as u64).map_err(lost)?;
            }
        }
        Ok(())
    }

    fn module(&self, id: ModuleId) -> Result<&Arc<LoadedModule>> {
        self.modules.get(&id).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("module {} is not loaded", id.0))
        })
    }

    pub(crate) fn function(&self, f: FunctionId) -> Result<&Function> {
        self.functions.get(&f).ok_or_else(|| {
            GpuError::InvalidDeviceFunction(format!("function handle {} is not registered", f.0))
        })
    }

    /// `__cudaRegisterFunction`: the handle of kernel `name` in `module`.
    pub(crate) fn register_function(&mut self, module: ModuleId, name: &str) -> Result<FunctionId> {
        if let Some(f) = self.by_name.get(&(module, name.to_string())) {
            return Ok(*f);
        }
        let loaded = self.module(module)?.clone();
        let kernel = loaded
            .ptx
            .kernels()
            .iter()
            .position(|k| k.name == name)
            .ok_or_else(|| GpuError::InvalidDeviceFunction(format!("no kernel named {name}")))?;
        self.next_function += 1;
        let id = FunctionId(self.next_function);
        let function = Function {
            module,
            loaded,
            kernel,
            max_dynamic_shared: None,
        };
        self.functions.insert(id, function);
        self.by_name.insert((module, name.to_string()), id);
        Ok(id)
    }

    /// `__cudaRegisterVar`: address and size of variable `name` of `module`.
    pub(crate) fn variable(&self, module: ModuleId, name: &str) -> Result<(DevicePtr, u64)> {
        self.module(module)?
            .vars
            .iter()
            .find(|v| v.name == name)
            .map(|v| (DevicePtr(v.ptr), v.size))
            .ok_or_else(|| GpuError::InvalidSymbol(name.to_string()))
    }

    /// Every variable of every module.
    pub(crate) fn variables(&self) -> Vec<VariableRecord> {
        let mut out: Vec<VariableRecord> = self
            .modules
            .iter()
            .flat_map(|(id, m)| {
                m.vars.iter().map(|v| VariableRecord {
                    module: *id,
                    name: v.name.clone(),
                    ptr: DevicePtr(v.ptr),
                    size: v.size,
                    constant: v.constant,
                })
            })
            .collect();
        out.sort_by_key(|v| v.ptr);
        out
    }

    /// Parameter layout of a kernel.
    pub(crate) fn params(&self, f: FunctionId) -> Result<Vec<ParamLayout>> {
        let func = self.function(f)?;
        let kernel = &func.loaded.ptx.kernels()[func.kernel];
        Ok(kernel
            .params
            .iter()
            .map(|p| ParamLayout {
                offset: p.offset,
                size: p.size,
            })
            .collect())
    }

    /// `cudaFuncSetAttribute(MaxDynamicSharedMemorySize)`.
    pub(crate) fn set_max_dynamic_shared(
        &mut self,
        f: FunctionId,
        bytes: u64,
        props: &DeviceProps,
    ) -> Result<()> {
        let static_shared = {
            let func = self.function(f)?;
            func.loaded.ptx.kernels()[func.kernel].static_shared
        };
        if static_shared.saturating_add(bytes) > props.shared_mem_per_block_optin {
            return Err(GpuError::InvalidValue(format!(
                "{bytes} bytes of dynamic shared memory plus {static_shared} static exceed the \
                 device's {} bytes per block",
                props.shared_mem_per_block_optin
            )));
        }
        if let Some(func) = self.functions.get_mut(&f) {
            func.max_dynamic_shared = Some(bytes);
        }
        Ok(())
    }

    pub(crate) fn dynamic_limit(func: &Function, static_shared: u64, props: &DeviceProps) -> u64 {
        func.max_dynamic_shared
            .unwrap_or_else(|| props.shared_mem_per_block.saturating_sub(static_shared))
    }

    /// `cudaFuncGetAttributes`.
    pub(crate) fn attributes(&self, f: FunctionId, props: &DeviceProps) -> Result<FuncAttributes> {
        let func = self.function(f)?;
        let k = &func.loaded.ptx.kernels()[func.kernel];
        Ok(FuncAttributes {
            shared_size_bytes: k.static_shared,
            const_size_bytes: func
                .loaded
                .vars
                .iter()
                .filter(|v| v.constant)
                .map(|v| v.size)
                .sum(),
            local_size_bytes: k.local_per_thread,
            max_threads_per_block: k.max_threads.map_or(props.max_threads_per_block, |m| {
                m.min(props.max_threads_per_block)
            }),
            num_regs: k.num_regs,
            ptx_version: func.loaded.ptx_version,
            binary_version: props.sm(),
            max_dynamic_shared_size_bytes: Self::dynamic_limit(func, k.static_shared, props),
        })
    }
}

fn place_variables(
    ptx: &crac_ptx::Module,
    id: ModuleId,
    layout: &mut DeviceMem,
    placements: &[VariablePlacement],
    elsewhere: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<Var>> {
    let mut vars = Vec::new();
    let defined: Vec<_> = ptx.variables().iter().filter(|v| !v.is_extern).collect();
    for v in &defined {
        let kind = BlockKind::Variable(id);
        let ptr = match placements.iter().find(|p| p.name == v.name) {
            Some(p) => {
                layout.alloc_at(p.ptr, v.size, kind)?;
                p.ptr
            }
            None => layout.alloc(v.size, v.align.max(1), kind)?,
        };
        let len = v
            .init
            .len()
            .min(usize::try_from(v.size).unwrap_or(usize::MAX));
        vars.push(Var {
            name: v.name.clone(),
            ptr: ptr.0,
            size: v.size,
            constant: v.space == VarSpace::Const,
            init: v.init[..len].to_vec(),
        });
    }
    // Addresses in initialisers (`.u64 p = generic(x)+4`), now that every variable has one.
    let address = |name: &str| {
        vars.iter()
            .find(|v| v.name == name)
            .map(|v| v.ptr)
            .or_else(|| elsewhere(name))
    };
    let mut patched = Vec::with_capacity(vars.len());
    for (v, info) in vars.iter().zip(&defined) {
        let mut init = v.init.clone();
        for r in &info.relocs {
            let target = address(&r.symbol).ok_or_else(|| {
                GpuError::NotSupported(format!(
                    "the initialiser of {} holds the address of {}, which is no variable of a \
                     loaded module",
                    v.name, r.symbol
                ))
            })?;
            let value = target.wrapping_add_signed(r.addend).to_le_bytes();
            // The slot is as wide as the element type the PTX declares (4 or 8 bytes).
            let at = usize::try_from(r.offset).unwrap_or(usize::MAX);
            let width = if r.width == 4 { 4 } else { 8 };
            let slot = init.get_mut(at..at.saturating_add(width)).ok_or_else(|| {
                GpuError::InvalidPtx(format!("address slot past the end of {}", v.name))
            })?;
            slot.copy_from_slice(&value[..width]);
        }
        patched.push(init);
    }
    for (v, init) in vars.iter_mut().zip(patched) {
        v.init = init;
    }
    Ok(vars)
}
