//! [`CudaBackend`]: modules (the program's fat binaries), their kernels and variables, and
//! launches.
#![allow(unsafe_code)]

use std::ffi::{CString, c_int, c_void};

use super::context::{handle, stream};
use super::driver::{CuPtr, Handle, PARAM_BUFFER_POINTER, PARAM_BUFFER_SIZE, PARAM_END};
use super::{CudaBackend, globals, lock};
use crate::{
    DevicePtr, FuncAttributes, FunctionId, GpuError, LaunchConfig, ModuleId, ParamLayout, Result,
    VariablePlacement, VariableRecord,
};

/// `CUDA_ERROR_INVALID_VALUE`: what `cuFuncGetParamInfo` answers past the last parameter.
const INVALID_VALUE: super::driver::CuResult = 1;
/// Most parameters a kernel may have (CUDA's 32764-byte parameter limit, at least 1 byte each).
const MAX_PARAMS: usize = 32764;

impl CudaBackend {
    pub(super) fn register_fatbin(&self, image: &[u8]) -> Result<ModuleId> {
        self.register_fatbin_at(image, &[])
    }

    /// Loads the module and checks that the driver put every variable of `vars` at its saved
    /// address (`globals.rs` says why it may not): on any difference the module is unloaded
    /// again and the error names the variable and both addresses.
    pub(super) fn register_fatbin_at(
        &self,
        image: &[u8],
        vars: &[VariablePlacement],
    ) -> Result<ModuleId> {
        let api = self.current()?;
        let mut m: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: `image` is a whole fat binary (the caller read its full length), alive for
            // the call; the driver copies what it keeps.
            unsafe { (api.module_load_data)(&mut m, image.as_ptr().cast()) },
            "cuModuleLoadData",
        )?;
        // SAFETY: `m` was just loaded and is unloaded only below, after the last lookup.
        let placed = globals::verify(vars, |name| unsafe { self.global(m, name) });
        match placed {
            Ok(placed) => {
                lock(&self.live).modules.insert(m as u64, placed);
                Ok(ModuleId(m as u64))
            }
            Err(e) => {
                // SAFETY: the module just loaded, never handed out nor entered in the live set,
                // and with no work launched from it.
                let _ = unsafe { (api.module_unload)(m) };
                Err(e)
            }
        }
    }

    /// `cuModuleGetGlobal`: the address and size of variable `name` of a loaded module.
    ///
    /// # Safety
    /// `module` is a module this backend loaded and has not unloaded.
    unsafe fn global(&self, module: Handle, name: &str) -> Result<(u64, u64)> {
        let api = self.current()?;
        let cname = CString::new(name).map_err(|_| GpuError::InvalidSymbol(name.into()))?;
        let (mut ptr, mut size): (CuPtr, usize) = (0, 0);
        Self::check(
            // SAFETY: out-pointers to live locals, a NUL-terminated name, and a loaded module
            // (this function's precondition).
            unsafe { (api.module_get_global)(&mut ptr, &mut size, module, cname.as_ptr()) },
            "cuModuleGetGlobal",
        )?;
        Ok((ptr, size as u64))
    }

    pub(super) fn unregister_module(&self, module: ModuleId) -> Result<()> {
        if lock(&self.live).modules.remove(&module.0).is_none() {
            return Err(GpuError::InvalidResourceHandle(format!(
                "module {:#x}",
                module.0
            )));
        }
        self.device_synchronize()?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a module this backend loaded, removed from the live set above.
            unsafe { (api.module_unload)(handle(module.0)) },
            "cuModuleUnload",
        )
    }

    pub(super) fn register_function(&self, module: ModuleId, name: &str) -> Result<FunctionId> {
        self.module_known(module)?;
        let api = self.current()?;
        let cname = CString::new(name).map_err(|_| GpuError::InvalidDeviceFunction(name.into()))?;
        let mut f: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: a loaded module, a NUL-terminated name, out-pointer to a live local.
            unsafe { (api.module_get_function)(&mut f, handle(module.0), cname.as_ptr()) },
            "cuModuleGetFunction",
        )
        .map_err(|_| GpuError::InvalidDeviceFunction(name.into()))?;
        lock(&self.live).functions.insert(f as u64);
        Ok(FunctionId(f as u64))
    }

    pub(super) fn register_variable(
        &self,
        module: ModuleId,
        name: &str,
    ) -> Result<(DevicePtr, u64)> {
        self.module_known(module)?;
        // SAFETY: a module this backend loaded, checked against the live set above.
        let (ptr, size) = unsafe { self.global(handle(module.0), name) }
            .map_err(|_| GpuError::InvalidSymbol(name.into()))?;
        if let Some(vars) = lock(&self.live).modules.get_mut(&module.0) {
            if !vars.iter().any(|(n, ..)| n == name) {
                vars.push((name.to_string(), ptr, size, false));
            }
        }
        Ok((DevicePtr(ptr), size))
    }

    pub(super) fn function_attributes(&self, function: FunctionId) -> Result<FuncAttributes> {
        self.function_known(function)?;
        let api = self.current()?;
        let get = |a: c_int| -> Result<i32> {
            let mut v: c_int = 0;
            Self::check(
                // SAFETY: a known function, out-pointer to a live local.
                unsafe { (api.func_get_attribute)(&mut v, a, handle(function.0)) },
                "cuFuncGetAttribute",
            )?;
            Ok(v)
        };
        let u = |a| -> Result<u32> { Ok(u32::try_from(get(a)?).unwrap_or(0)) };
        Ok(FuncAttributes {
            max_threads_per_block: u(0)?,
            shared_size_bytes: u64::from(u(1)?),
            const_size_bytes: u64::from(u(2)?),
            local_size_bytes: u64::from(u(3)?),
            num_regs: u(4)?,
            ptx_version: u(5)?,
            binary_version: u(6)?,
            max_dynamic_shared_size_bytes: u64::from(u(8)?),
        })
    }

    pub(super) fn function_set_max_dynamic_shared(
        &self,
        function: FunctionId,
        bytes: u64,
    ) -> Result<()> {
        self.function_known(function)?;
        let api = self.current()?;
        let v = c_int::try_from(bytes).map_err(|_| GpuError::InvalidValue(format!("{bytes}")))?;
        Self::check(
            // SAFETY: a known function; attribute 8 is CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
            unsafe { (api.func_set_attribute)(handle(function.0), 8, v) },
            "cuFuncSetAttribute",
        )
    }

    pub(super) fn launch(
        &self,
        function: FunctionId,
        config: &LaunchConfig,
        params: &[u8],
    ) -> Result<()> {
        self.function_known(function)?;
        self.stream_known(config.stream)?;
        let api = self.current()?;
        let mut size = params.len();
        // The driver only reads the buffer (CU_LAUNCH_PARAM_BUFFER_POINTER is `void *` for C's
        // sake): no copy is made.
        let mut extra: [*mut c_void; 5] = [
            PARAM_BUFFER_POINTER as *mut c_void,
            params.as_ptr().cast_mut().cast(),
            PARAM_BUFFER_SIZE as *mut c_void,
            (&mut size as *mut usize).cast(),
            PARAM_END as *mut c_void,
        ];
        let [gx, gy, gz] = config.grid;
        let [bx, by, bz] = config.block;
        // SAFETY: a known function and stream; `extra` points at the packed parameters (read
        // only, though the pointer is `*mut`) and their size, both alive for the call (the
        // driver copies them before returning).
        let rc = unsafe {
            (api.launch_kernel)(
                handle(function.0),
                gx,
                gy,
                gz,
                bx,
                by,
                bz,
                config.dynamic_shared,
                stream(config.stream),
                std::ptr::null_mut(),
                extra.as_mut_ptr(),
            )
        };
        match Self::check(rc, "cuLaunchKernel") {
            Err(GpuError::InvalidValue(m)) => Err(GpuError::InvalidConfiguration(m)),
            other => other,
        }
    }

    pub(super) fn function_params(&self, function: FunctionId) -> Result<Vec<ParamLayout>> {
        self.function_known(function)?;
        let api = self.current()?;
        let mut out = Vec::new();
        for i in 0..MAX_PARAMS {
            let (mut offset, mut size) = (0usize, 0usize);
            let rc =
                // SAFETY: a known function, out-pointers to live locals; an index past the last
                // parameter is CUDA_ERROR_INVALID_VALUE, which ends the list.
                unsafe { (api.func_get_param_info)(handle(function.0), i, &mut offset, &mut size) };
            match rc {
                0 => out.push(ParamLayout {
                    offset: offset as u64,
                    size: size as u64,
                }),
                // Past the last parameter.
                INVALID_VALUE => return Ok(out),
                // Any other failure must not pass for "no more parameters": a launch would
                // then hand the kernel a short parameter buffer.
                rc => return Self::check(rc, "cuFuncGetParamInfo").map(|()| out),
            }
        }
        Err(GpuError::InvalidDeviceFunction(format!(
            "the driver lists more than {MAX_PARAMS} parameters for function {:#x}",
            function.0
        )))
    }

    pub(super) fn module_variables(&self) -> Result<Vec<VariableRecord>> {
        Ok(lock(&self.live)
            .modules
            .iter()
            .flat_map(|(m, vars)| {
                vars.iter()
                    .map(|(name, ptr, size, constant)| VariableRecord {
                        module: ModuleId(*m),
                        name: name.clone(),
                        ptr: DevicePtr(*ptr),
                        size: *size,
                        constant: *constant,
                    })
            })
            .collect())
    }
}
