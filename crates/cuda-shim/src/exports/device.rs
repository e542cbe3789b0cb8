//! Device management and properties.

use std::ffi::{c_int, c_uint, c_void};

use crac_abi::{DeviceProps, Op};

use super::{call, int, layouts, major, out, ptr, size, write_struct};
use crate::{errors as codes, layout, state};

/// `cudaGetDeviceCount`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetDeviceCount(count: *mut c_int) -> u32 {
    call(Op::GetDeviceCount, &[ptr(count)])
}

/// `cudaGetDevice`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetDevice(device: *mut c_int) -> u32 {
    call(Op::GetDevice, &[ptr(device)])
}

/// `cudaSetDevice`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaSetDevice(device: c_int) -> u32 {
    call(Op::SetDevice, &[int(device)])
}

/// `cudaGetDeviceProperties` (CUDA 13's, and CUDA 12's unversioned name).
///
/// # Safety
/// `prop` must be null or point at a `cudaDeviceProp` of this library's CUDA version.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaGetDeviceProperties(prop: *mut c_void, device: c_int) -> u32 {
    if prop.is_null() {
        return state::record(codes::INVALID_VALUE);
    }
    let mut neutral = DeviceProps::zeroed();
    let r = call(Op::GetDeviceProperties, &[out(&mut neutral), int(device)]);
    if r == codes::SUCCESS {
        let bytes = layout::device_prop(layouts().device_prop, &neutral);
        // SAFETY: `prop` is the program's cudaDeviceProp of our major (caller's guarantee),
        // and `bytes` has exactly that struct's size.
        unsafe { write_struct(prop, &bytes) };
    }
    r
}

/// `cudaGetDeviceProperties_v2` (CUDA 12's name for the same call).
///
/// # Safety
/// As [`cudaGetDeviceProperties`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaGetDeviceProperties_v2(prop: *mut c_void, device: c_int) -> u32 {
    // SAFETY: same contract.
    unsafe { cudaGetDeviceProperties(prop, device) }
}

/// `cudaDeviceGetAttribute`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceGetAttribute(value: *mut c_int, attr: c_int, device: c_int) -> u32 {
    call(
        Op::DeviceGetAttribute,
        &[ptr(value), int(attr), int(device)],
    )
}

/// `cudaDeviceSynchronize`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceSynchronize() -> u32 {
    super::printf::after_sync(call(Op::DeviceSynchronize, &[]))
}

/// `cudaThreadSynchronize` (CUDA 12's deprecated name for `cudaDeviceSynchronize`).
#[unsafe(no_mangle)]
pub extern "C" fn cudaThreadSynchronize() -> u32 {
    super::printf::after_sync(call(Op::DeviceSynchronize, &[]))
}

/// `cudaDeviceReset`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceReset() -> u32 {
    super::printf::after_sync(call(Op::DeviceReset, &[]))
}

/// `cudaThreadExit` (CUDA 12's deprecated name for `cudaDeviceReset`).
#[unsafe(no_mangle)]
pub extern "C" fn cudaThreadExit() -> u32 {
    super::printf::after_sync(call(Op::DeviceReset, &[]))
}

/// `cudaDriverGetVersion`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDriverGetVersion(version: *mut c_int) -> u32 {
    call(Op::DriverGetVersion, &[ptr(version)])
}

/// `cudaRuntimeGetVersion`: this library's own version (12.9 or 13.0), without crossing.
///
/// # Safety
/// `version` must be null or valid for one `int` write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaRuntimeGetVersion(version: *mut c_int) -> u32 {
    if version.is_null() {
        return state::record(codes::INVALID_VALUE);
    }
    let v = if major() == 12 { 12090 } else { 13000 };
    // SAFETY: non-null, and the caller guarantees it is writable.
    unsafe { version.write(v) };
    codes::SUCCESS
}

/// `cudaMemGetInfo`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemGetInfo(free: *mut usize, total: *mut usize) -> u32 {
    call(Op::MemGetInfo, &[ptr(free), ptr(total)])
}

/// `cudaDeviceGetStreamPriorityRange`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceGetStreamPriorityRange(least: *mut c_int, greatest: *mut c_int) -> u32 {
    call(
        Op::DeviceGetStreamPriorityRange,
        &[ptr(least), ptr(greatest)],
    )
}

/// `cudaSetDeviceFlags`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaSetDeviceFlags(flags: c_uint) -> u32 {
    call(Op::SetDeviceFlags, &[u64::from(flags)])
}

/// `cudaGetDeviceFlags`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetDeviceFlags(flags: *mut c_uint) -> u32 {
    call(Op::GetDeviceFlags, &[ptr(flags)])
}

/// `cudaDeviceSetCacheConfig`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceSetCacheConfig(config: c_int) -> u32 {
    call(Op::DeviceSetCacheConfig, &[int(config)])
}

/// `cudaDeviceGetLimit`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceGetLimit(value: *mut usize, limit: c_int) -> u32 {
    call(Op::DeviceGetLimit, &[ptr(value), int(limit)])
}

/// `cudaDeviceSetLimit`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaDeviceSetLimit(limit: c_int, value: usize) -> u32 {
    call(Op::DeviceSetLimit, &[int(limit), size(value)])
}
