//! What nvcc-generated code calls (fat-binary, kernel and variable registration, launch
//! configuration, launches) and the per-kernel queries.

use std::ffi::{c_char, c_int, c_void};

use crac_abi::{Dim3, FuncAttributes, Op};

use super::{call, handle, int, layouts, out, per_thread, ptr, size, write_struct};
use crate::state::{self, LaunchConfig};
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

/// `__cudaRegisterVar`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn __cudaRegisterVar(
    handle: *mut *mut c_void,
    host_var: *mut c_char,
    device_address: *mut c_char,
    device_name: *const c_char,
    ext: c_int,
    bytes: usize,
    constant: c_int,
    global: c_int,
) {
    let _ = call(
        Op::RegisterVar,
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

/// `__cudaRegisterManagedVar`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn __cudaRegisterManagedVar(
    handle: *mut *mut c_void,
    host_var_ptr_address: *mut *mut c_void,
    device_address: *mut c_char,
    device_name: *const c_char,
    ext: c_int,
    bytes: usize,
    constant: c_int,
    global: c_int,
) {
    let _ = call(
        Op::RegisterManagedVar,
        &[
            ptr(handle),
            ptr(host_var_ptr_address),
            ptr(device_address),
            ptr(device_name),
            int(ext),
            size(bytes),
            int(constant),
            int(global),
        ],
    );
}

/// `__cudaInitModule`: 1 when the module is loaded.
#[unsafe(no_mangle)]
pub extern "C" fn __cudaInitModule(handle: *mut *mut c_void) -> c_char {
    c_char::from(call(Op::InitModule, &[ptr(handle)]) == codes::SUCCESS)
}

/// `__cudaPushCallConfiguration` (the `<<<…>>>` of a launch).
#[unsafe(no_mangle)]
pub extern "C" fn __cudaPushCallConfiguration(
    grid: Dim3,
    block: Dim3,
    shared: usize,
    stream: *mut c_void,
) -> u32 {
    state::push_config(LaunchConfig {
        grid,
        block,
        shared,
        stream: ptr(stream),
    });
    codes::SUCCESS
}

/// `__cudaPopCallConfiguration` (the kernel stub takes back what `<<<…>>>` pushed).
///
/// # Safety
/// Each pointer must be null or valid for one write of its type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __cudaPopCallConfiguration(
    grid: *mut Dim3,
    block: *mut Dim3,
    shared: *mut usize,
    stream: *mut *mut c_void,
) -> u32 {
    let Some(c) = state::pop_config() else {
        return state::record(codes::MISSING_CONFIGURATION);
    };
    // SAFETY: nvcc's stub passes its four locals; each is written only when non-null.
    unsafe {
        if !grid.is_null() {
            grid.write(c.grid);
        }
        if !block.is_null() {
            block.write(c.block);
        }
        if !shared.is_null() {
            shared.write(c.shared);
        }
        if !stream.is_null() {
            stream.write(handle(c.stream));
        }
    }
    codes::SUCCESS
}

/// The argument words of a launch.
fn launch(func: u64, grid: Dim3, block: Dim3, args: u64, shared: usize, stream: u64) -> u32 {
    let [gxy, gz] = grid.words();
    let [bxy, bz] = block.words();
    call(
        Op::LaunchKernel,
        &[func, gxy, gz, bxy, bz, args, size(shared), stream],
    )
}

/// `cudaLaunchKernel`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaLaunchKernel(
    func: *const c_void,
    grid: Dim3,
    block: Dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: *mut c_void,
) -> u32 {
    launch(ptr(func), grid, block, ptr(args), shared, ptr(stream))
}

/// `cudaLaunchKernel_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaLaunchKernel_ptsz(
    func: *const c_void,
    grid: Dim3,
    block: Dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: *mut c_void,
) -> u32 {
    launch(
        ptr(func),
        grid,
        block,
        ptr(args),
        shared,
        per_thread(ptr(stream)),
    )
}

/// `__cudaGetKernel` (CUDA ≥ 12.4 stubs): crac's kernel handle is the stub's own address.
///
/// # Safety
/// `kernel` must be null or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __cudaGetKernel(kernel: *mut *const c_void, entry: *const c_void) -> u32 {
    if kernel.is_null() || entry.is_null() {
        return state::record(codes::INVALID_VALUE);
    }
    // SAFETY: non-null, and the caller guarantees it is writable.
    unsafe { kernel.write(entry) };
    codes::SUCCESS
}

/// `__cudaLaunchKernel` (CUDA ≥ 12.4 stubs): `kernel` is what `__cudaGetKernel` gave.
#[unsafe(no_mangle)]
pub extern "C" fn __cudaLaunchKernel(
    kernel: *const c_void,
    grid: Dim3,
    block: Dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: *mut c_void,
) -> u32 {
    launch(ptr(kernel), grid, block, ptr(args), shared, ptr(stream))
}

/// `__cudaLaunchKernel_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn __cudaLaunchKernel_ptsz(
    kernel: *const c_void,
    grid: Dim3,
    block: Dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: *mut c_void,
) -> u32 {
    launch(
        ptr(kernel),
        grid,
        block,
        ptr(args),
        shared,
        per_thread(ptr(stream)),
    )
}

/// CUDA's `cudaLaunchConfig_t` (the same in CUDA 12 and 13).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LaunchConfigC {
    /// Grid shape.
    pub grid: Dim3,
    /// Block shape.
    pub block: Dim3,
    /// Dynamic shared memory bytes.
    pub dynamic_smem: usize,
    /// Stream.
    pub stream: *mut c_void,
    /// Launch attributes (`cudaLaunchAttribute *`).
    pub attrs: *mut c_void,
    /// How many attributes.
    pub num_attrs: u32,
}

/// `cudaLaunchKernelEx`'s launch, with `stream_of` mapping the stream.
///
/// # Safety
/// `config` must be null or point at a `cudaLaunchConfig_t`.
unsafe fn launch_ex(
    config: *const LaunchConfigC,
    func: *const c_void,
    args: *mut *mut c_void,
    stream_of: fn(u64) -> u64,
) -> u32 {
    // SAFETY: null or the program's cudaLaunchConfig_t (caller's guarantee), read once.
    let Some(c) = (unsafe { config.as_ref() }).copied() else {
        return state::record(codes::INVALID_VALUE);
    };
    if c.num_attrs != 0 {
        // Cluster shapes, cooperative launches, priorities… need the backend's support.
        return state::record(codes::NOT_SUPPORTED);
    }
    launch(
        ptr(func),
        c.grid,
        c.block,
        ptr(args),
        c.dynamic_smem,
        stream_of(ptr(c.stream)),
    )
}

/// `cudaLaunchKernelExC` (what the `cudaLaunchKernelEx` template calls): launches without
/// launch attributes; any attribute is `cudaErrorNotSupported`.
///
/// # Safety
/// `config` must be null or point at a `cudaLaunchConfig_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaLaunchKernelExC(
    config: *const LaunchConfigC,
    func: *const c_void,
    args: *mut *mut c_void,
) -> u32 {
    // SAFETY: same contract.
    unsafe { launch_ex(config, func, args, |s| s) }
}

/// `cudaLaunchKernelExC_ptsz`.
///
/// # Safety
/// As [`cudaLaunchKernelExC`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaLaunchKernelExC_ptsz(
    config: *const LaunchConfigC,
    func: *const c_void,
    args: *mut *mut c_void,
) -> u32 {
    // SAFETY: same contract.
    unsafe { launch_ex(config, func, args, per_thread) }
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
