//! Launches: the launch configuration nvcc's `<<<…>>>` pushes and its kernel stub pops, and
//! every launch entry point (`cudaLaunchKernel`, the CUDA ≥ 12.4 stubs' `__cudaLaunchKernel`,
//! `cudaLaunchKernelExC`, with their per-thread-default-stream `_ptsz` forms).

use std::ffi::c_void;

use crac_abi::{Dim3, Op};

use super::{call, handle, per_thread, ptr, size};
use crate::errors as codes;
use crate::state::{self, LaunchConfig};

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

with_ptsz! {
    /// `cudaLaunchKernel`, and `__cudaLaunchKernel` (CUDA ≥ 12.4 stubs), whose `func` is the
    /// kernel handle `__cudaGetKernel` gave: the stub's own address, as `cudaLaunchKernel`'s.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaLaunchKernel / cudaLaunchKernel_ptsz, __cudaLaunchKernel / __cudaLaunchKernel_ptsz(
        func: *const c_void,
        grid: Dim3,
        block: Dim3,
        args: *mut *mut c_void,
        shared: usize,
        stream: *mut c_void,
    ) -> u32
    [s = stream] {
        launch(ptr(func), grid, block, ptr(args), shared, s)
    }
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
