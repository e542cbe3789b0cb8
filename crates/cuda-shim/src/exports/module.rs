//! What nvcc-generated code calls to register fat binaries, kernels and variables, and the
//! per-kernel queries (launches are in `launch.rs`).

use std::ffi::{c_char, c_int, c_void};

use crac_abi::{Dim3, FuncAttributes, Op};

use super::{call, handle, int, layouts, out, ptr, size, write_struct};
use crate::state;
use crate::{errors as codes, layout};

/// `__cudaRegisterFatBinary`: returns the module handle (null when the lower half refused
/// the fat binary; the error is the thread's last error and later launches fail).
#[unsafe(no_mangle)]
pub extern "C" fn __cudaRegisterFatBinary(fat_cubin: *mut c_void) -> *mut *mut c_void {
    let mut h: u64 = 0;
    let r = call(Op::RegisterFatBinary, &[out(&mut h), ptr(fat_cubin)]);
    if r != codes::SUCCESS {
        return std::ptr::null_mut();
    }
    handle(h).cast::<*mut c_void>()
}

/// `__cudaRegisterFatBinaryEnd`.
#[unsafe(no_mangle)]
pub extern "C" fn __cudaRegisterFatBinaryEnd(handle: *mut *mut c_void) {
    let _ = call(Op::RegisterFatBinaryEnd, &[ptr(handle)]);
}

/// `__cudaUnregisterFatBinary`.
#[unsafe(no_mangle)]
pub extern "C" fn __cudaUnregisterFatBinary(handle: *mut *mut c_void) {
    let _ = call(Op::UnregisterFatBinary, &[ptr(handle)]);
}

/// `__cudaRegisterFunction`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn __cudaRegisterFunction(
    handle: *mut *mut c_void,
    host_fun: *const c_char,
    device_fun: *mut c_char,
    device_name: *const c_char,
    thread_limit: c_int,
    tid: *mut c_void,
    bid: *mut c_void,
    block_dim: *mut Dim3,
    grid_dim: *mut Dim3,
    warp_size: *mut c_int,
) {
    let _ = call(
        Op::RegisterFunction,
        &[
            ptr(handle),
            ptr(host_fun),
            ptr(device_fun),
            ptr(device_name),
            int(thread_limit),
            ptr(tid),
            ptr(bid),
            ptr(block_dim),
            ptr(grid_dim),
            ptr(warp_size),
        ],
    );
}

/// Defines `__cudaRegisterVar` and `__cudaRegisterManagedVar`: nvcc's registration code passes
/// both the same arguments (for a managed variable, `host_var` is the address of the host's
/// pointer to it) and each crosses with its own operation.
macro_rules! register_var_exports {
    ($(
        $(#[doc = $doc:literal])*
        #[unsafe(no_mangle)]
        pub extern "C" fn $name:ident => $op:path;
    )+) => {$(
        $(#[doc = $doc])*
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub extern "C" fn $name(
            handle: *mut *mut c_void,
            host_var: *mut c_void,
            device_address: *mut c_char,
            device_name: *const c_char,
            ext: c_int,
            bytes: usize,
            constant: c_int,
            global: c_int,
        ) {
            let _ = call(
                $op,
                &[
                    ptr(handle),
                    ptr(host_var),
                    ptr(device_address),
                    ptr(device_name),
                    int(ext),
                    size(bytes),
                    int(constant),
                    int(global),
                ],
            );
        }
    )+};
}

register_var_exports! {
    /// `__cudaRegisterVar`.
    #[unsafe(no_mangle)]
    pub extern "C" fn __cudaRegisterVar => Op::RegisterVar;

    /// `__cudaRegisterManagedVar`.
    #[unsafe(no_mangle)]
    pub extern "C" fn __cudaRegisterManagedVar => Op::RegisterManagedVar;
}

/// `__cudaInitModule`: 1 when the module is loaded.
#[unsafe(no_mangle)]
pub extern "C" fn __cudaInitModule(handle: *mut *mut c_void) -> c_char {
    c_char::from(call(Op::InitModule, &[ptr(handle)]) == codes::SUCCESS)
}

/// `cudaFuncGetAttributes`.
///
/// # Safety
/// `attr` must be null or point at a `cudaFuncAttributes` of this library's CUDA version.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaFuncGetAttributes(attr: *mut c_void, func: *const c_void) -> u32 {
    if attr.is_null() {
        return state::record(codes::INVALID_VALUE);
    }
    let mut neutral = FuncAttributes::default();
    let r = call(Op::FuncGetAttributes, &[out(&mut neutral), ptr(func)]);
    if r == codes::SUCCESS {
        let bytes = layout::func_attributes(layouts().func_attributes, &neutral);
        // SAFETY: the caller guarantees a struct of our major's layout, whose size `bytes` has.
        unsafe { write_struct(attr, &bytes) };
    }
    r
}

/// `cudaFuncSetAttribute`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaFuncSetAttribute(func: *const c_void, attr: c_int, value: c_int) -> u32 {
    call(Op::FuncSetAttribute, &[ptr(func), int(attr), int(value)])
}

/// `cudaFuncSetCacheConfig`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaFuncSetCacheConfig(func: *const c_void, config: c_int) -> u32 {
    call(Op::FuncSetCacheConfig, &[ptr(func), int(config)])
}

/// `cudaOccupancyMaxActiveBlocksPerMultiprocessor`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaOccupancyMaxActiveBlocksPerMultiprocessor(
    num_blocks: *mut c_int,
    func: *const c_void,
    block_size: c_int,
    dynamic_smem: usize,
) -> u32 {
    call(
        Op::OccupancyMaxActiveBlocksPerMultiprocessor,
        &[
            ptr(num_blocks),
            ptr(func),
            int(block_size),
            size(dynamic_smem),
        ],
    )
}

/// `cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    num_blocks: *mut c_int,
    func: *const c_void,
    block_size: c_int,
    dynamic_smem: usize,
    flags: u32,
) -> u32 {
    call(
        Op::OccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
        &[
            ptr(num_blocks),
            ptr(func),
            int(block_size),
            size(dynamic_smem),
            u64::from(flags),
        ],
    )
}

/// `cudaOccupancyAvailableDynamicSMemPerBlock`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaOccupancyAvailableDynamicSMemPerBlock(
    dynamic_smem: *mut usize,
    func: *const c_void,
    num_blocks: c_int,
    block_size: c_int,
) -> u32 {
    call(
        Op::OccupancyAvailableDynamicSMemPerBlock,
        &[
            ptr(dynamic_smem),
            ptr(func),
            int(num_blocks),
            int(block_size),
        ],
    )
}

/// CUDA's `cudaChannelFormatDesc`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ChannelFormatDesc {
    /// Bits of x.
    pub x: c_int,
    /// Bits of y.
    pub y: c_int,
    /// Bits of z.
    pub z: c_int,
    /// Bits of w.
    pub w: c_int,
    /// `cudaChannelFormatKind`.
    pub f: c_int,
}

/// `cudaCreateChannelDesc`: builds the struct, without crossing.
#[unsafe(no_mangle)]
pub extern "C" fn cudaCreateChannelDesc(
    x: c_int,
    y: c_int,
    z: c_int,
    w: c_int,
    f: c_int,
) -> ChannelFormatDesc {
    ChannelFormatDesc { x, y, z, w, f }
}
