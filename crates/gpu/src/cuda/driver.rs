//! The CUDA driver API, loaded at run time from `libcuda.so.1` with our own declarations
//! (nothing CUDA is needed to build crac). Every entry point is resolved once by name when the
//! library is opened; a missing one fails the open, so no call can reach a null pointer.
//!
//! This is the one module of the crate with unsafe code: each call passes pointers to live
//! locals or buffers whose sizes the signature documents.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void};

use crate::GpuError;

/// `CUresult`.
pub(crate) type CuResult = c_int;
/// `CUdevice`.
pub(crate) type CuDevice = c_int;
/// `CUdeviceptr`.
pub(crate) type CuPtr = u64;
/// Opaque driver handles (`CUcontext`, `CUstream`, `CUevent`, `CUmodule`, `CUfunction`).
pub(crate) type Handle = *mut c_void;
/// `CUmemGenericAllocationHandle`.
pub(crate) type MemHandle = u64;
/// `CUhostFn`.
pub(crate) type HostFnPtr = unsafe extern "C" fn(*mut c_void);

/// `CUmemLocation`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct MemLocation {
    pub(crate) kind: c_int,
    pub(crate) id: c_int,
}

/// `CUmemAllocationProp`.
#[repr(C)]
pub(crate) struct AllocationProp {
    pub(crate) kind: c_int,
    pub(crate) handle_types: c_int,
    pub(crate) location: MemLocation,
    pub(crate) win32: *mut c_void,
    pub(crate) flags: [u8; 8],
}

/// `CUmemAccessDesc`.
#[repr(C)]
pub(crate) struct AccessDesc {
    pub(crate) location: MemLocation,
    pub(crate) flags: c_int,
}

/// `CU_MEM_ALLOCATION_TYPE_PINNED`.
pub(crate) const ALLOCATION_PINNED: c_int = 1;
/// `CU_MEM_LOCATION_TYPE_DEVICE`.
pub(crate) const LOCATION_DEVICE: c_int = 1;
/// `CU_MEM_ACCESS_FLAGS_PROT_READWRITE`.
pub(crate) const ACCESS_READWRITE: c_int = 3;
/// `CU_LAUNCH_PARAM_BUFFER_POINTER`, `…_SIZE`, `…_END`.
pub(crate) const PARAM_BUFFER_POINTER: usize = 1;
/// See [`PARAM_BUFFER_POINTER`].
pub(crate) const PARAM_BUFFER_SIZE: usize = 2;
/// See [`PARAM_BUFFER_POINTER`].
pub(crate) const PARAM_END: usize = 0;

macro_rules! driver_api {
    ($($field:ident = $($sym:literal)|+ : fn($($arg:ty),*);)*) => {
        /// The driver entry points crac uses.
        pub(crate) struct Api {
            $(pub(crate) $field: unsafe extern "C" fn($($arg),*) -> CuResult,)*
        }

        impl Api {
            /// Resolves every entry point in `lib`; the first missing one is an error.
            fn resolve(lib: &libloading::Library) -> Result<Api, String> {
                Ok(Api {
                    $($field: {
                        let mut found = None;
                        for name in [$($sym),+] {
                            let name = format!("{name}\0");
                            // SAFETY: the symbol is the driver's C function of this name, whose
                            // signature the declaration above spells out (cuda.h).
                            if let Ok(s) = unsafe {
                                lib.get::<unsafe extern "C" fn($($arg),*) -> CuResult>(
                                    name.as_bytes(),
                                )
                            } {
                                found = Some(*s);
                                break;
                            }
                        }
                        found.ok_or_else(|| format!("libcuda.so.1 lacks {}", [$($sym),+][0]))?
                    },)*
                })
            }
        }
    };
}

driver_api! {
    init = "cuInit": fn(c_uint);
    driver_get_version = "cuDriverGetVersion": fn(*mut c_int);
    device_get = "cuDeviceGet": fn(*mut CuDevice, c_int);
    device_get_count = "cuDeviceGetCount": fn(*mut c_int);
    device_get_name = "cuDeviceGetName": fn(*mut c_char, c_int, CuDevice);
    device_get_uuid = "cuDeviceGetUuid_v2" | "cuDeviceGetUuid": fn(*mut u8, CuDevice);
    device_total_mem = "cuDeviceTotalMem_v2": fn(*mut usize, CuDevice);
    device_get_attribute = "cuDeviceGetAttribute": fn(*mut c_int, c_int, CuDevice);
    primary_ctx_retain = "cuDevicePrimaryCtxRetain": fn(*mut Handle, CuDevice);
    ctx_set_current = "cuCtxSetCurrent": fn(Handle);
    ctx_synchronize = "cuCtxSynchronize": fn();
    ctx_stream_priority_range = "cuCtxGetStreamPriorityRange": fn(*mut c_int, *mut c_int);
    mem_get_info = "cuMemGetInfo_v2": fn(*mut usize, *mut usize);
    mem_address_reserve = "cuMemAddressReserve": fn(*mut CuPtr, usize, usize, CuPtr, u64);
    mem_create = "cuMemCreate": fn(*mut MemHandle, usize, *const AllocationProp, u64);
    mem_map = "cuMemMap": fn(CuPtr, usize, usize, MemHandle, u64);
    mem_set_access = "cuMemSetAccess": fn(CuPtr, usize, *const AccessDesc, usize);
    mem_unmap = "cuMemUnmap": fn(CuPtr, usize);
    mem_release = "cuMemRelease": fn(MemHandle);
    mem_granularity = "cuMemGetAllocationGranularity": fn(*mut usize, *const AllocationProp, c_int);
    memcpy_htod_async = "cuMemcpyHtoDAsync_v2": fn(CuPtr, *const c_void, usize, Handle);
    memcpy_dtoh_async = "cuMemcpyDtoHAsync_v2": fn(*mut c_void, CuPtr, usize, Handle);
    memcpy_dtod_async = "cuMemcpyDtoDAsync_v2": fn(CuPtr, CuPtr, usize, Handle);
    memcpy_htod = "cuMemcpyHtoD_v2": fn(CuPtr, *const c_void, usize);
    memcpy_dtoh = "cuMemcpyDtoH_v2": fn(*mut c_void, CuPtr, usize);
    memset_d8_async = "cuMemsetD8Async": fn(CuPtr, u8, usize, Handle);
    mem_host_register = "cuMemHostRegister_v2": fn(*mut c_void, usize, c_uint);
    mem_host_unregister = "cuMemHostUnregister": fn(*mut c_void);
    stream_create = "cuStreamCreateWithPriority": fn(*mut Handle, c_uint, c_int);
    stream_destroy = "cuStreamDestroy_v2": fn(Handle);
    stream_query = "cuStreamQuery": fn(Handle);
    stream_synchronize = "cuStreamSynchronize": fn(Handle);
    stream_get_flags = "cuStreamGetFlags": fn(Handle, *mut c_uint);
    stream_get_priority = "cuStreamGetPriority": fn(Handle, *mut c_int);
    stream_wait_event = "cuStreamWaitEvent": fn(Handle, Handle, c_uint);
    launch_host_func = "cuLaunchHostFunc": fn(Handle, HostFnPtr, *mut c_void);
    event_create = "cuEventCreate": fn(*mut Handle, c_uint);
    event_destroy = "cuEventDestroy_v2": fn(Handle);
    event_record = "cuEventRecord": fn(Handle, Handle);
    event_query = "cuEventQuery": fn(Handle);
    event_synchronize = "cuEventSynchronize": fn(Handle);
    event_elapsed = "cuEventElapsedTime_v2" | "cuEventElapsedTime": fn(*mut f32, Handle, Handle);
    module_load_data = "cuModuleLoadData": fn(*mut Handle, *const c_void);
    module_unload = "cuModuleUnload": fn(Handle);
    module_get_function = "cuModuleGetFunction": fn(*mut Handle, Handle, *const c_char);
    module_get_global = "cuModuleGetGlobal_v2": fn(*mut CuPtr, *mut usize, Handle, *const c_char);
    func_get_attribute = "cuFuncGetAttribute": fn(*mut c_int, c_int, Handle);
    func_set_attribute = "cuFuncSetAttribute": fn(Handle, c_int, c_int);
    func_get_param_info = "cuFuncGetParamInfo": fn(Handle, usize, *mut usize, *mut usize);
    launch_kernel = "cuLaunchKernel": fn(Handle, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, Handle, *mut *mut c_void, *mut *mut c_void);
}

/// The loaded driver: the library (kept open) and its entry points.
pub(crate) struct Driver {
    pub(crate) api: Api,
    _lib: libloading::Library,
}

// SAFETY: the driver API is thread-safe (CUDA documents every entry point as callable from
// any thread); the struct holds only function pointers and the library handle.
unsafe impl Send for Driver {}
// SAFETY: as above; nothing in it is mutated after `open`.
unsafe impl Sync for Driver {}

impl Driver {
    /// Opens `libcuda.so.1` (or `name`) and resolves every entry point.
    pub(crate) fn open(name: &str) -> Result<Driver, super::CudaError> {
        // SAFETY: loading the CUDA driver runs its initialisers, which have no preconditions
        // on the loading process.
        let lib = unsafe { libloading::Library::new(name) }
            .map_err(|e| super::CudaError::NoDriver(e.to_string()))?;
        let api = Api::resolve(&lib).map_err(super::CudaError::OldDriver)?;
        Ok(Driver { api, _lib: lib })
    }
}

/// A `CUresult` as a [`GpuError`] (`what` names the failed operation).
pub(crate) fn check(rc: CuResult, what: &str) -> Result<(), GpuError> {
    let m = || format!("{what} (CUresult {rc})");
    Err(match rc {
        0 => return Ok(()),
        1 => GpuError::InvalidValue(m()),
        2 => GpuError::MemoryAllocation {
            size: 0,
            reason: m(),
        },
        3 | 4 => GpuError::InitializationError(m()),
        100 => GpuError::NoDevice,
        101 => GpuError::InvalidDevice(0),
        200 | 218 | 300 | 301 => GpuError::InvalidKernelImage(m()),
        209 => GpuError::NoKernelImageForDevice(m()),
        400 | 201 => GpuError::InvalidResourceHandle(m()),
        500 => GpuError::InvalidSymbol(m()),
        600 => GpuError::NotReady,
        700 => GpuError::IllegalAddress(m()),
        701 => GpuError::LaunchOutOfResources(m()),
        710 => GpuError::Assert(m()),
        702 | 719 | 715 | 716 | 717 | 718 => GpuError::LaunchFailure(m()),
        712 => GpuError::HostMemoryAlreadyRegistered(0),
        713 => GpuError::HostMemoryNotRegistered(0),
        800 => GpuError::NotPermitted(m()),
        801 => GpuError::NotSupported(m()),
        _ => GpuError::Unknown(m()),
    })
}
