//! Events: create, record (on a stream, with flags), query, wait, time, destroy.

use std::ffi::{c_uint, c_void};

use crac_abi::Op;

use super::{call, per_thread, ptr};
use crate::errors as codes;

/// `cudaEventCreate`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventCreate(event: *mut *mut c_void) -> u32 {
    call(Op::EventCreate, &[ptr(event)])
}

/// `cudaEventCreateWithFlags`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventCreateWithFlags(event: *mut *mut c_void, flags: c_uint) -> u32 {
    call(Op::EventCreateWithFlags, &[ptr(event), u64::from(flags)])
}

/// `cudaEventRecord`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventRecord(event: *mut c_void, stream: *mut c_void) -> u32 {
    call(Op::EventRecord, &[ptr(event), ptr(stream)])
}

/// `cudaEventRecord_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventRecord_ptsz(event: *mut c_void, stream: *mut c_void) -> u32 {
    call(Op::EventRecord, &[ptr(event), per_thread(ptr(stream))])
}

/// `cudaEventRecordWithFlags`: `cudaEventRecordDefault` and `cudaEventRecordExternal` (which
/// differs only inside stream capture, which crac does not support) record as
/// `cudaEventRecord`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventRecordWithFlags(
    event: *mut c_void,
    stream: *mut c_void,
    flags: c_uint,
) -> u32 {
    record_with_flags(event, ptr(stream), flags)
}

/// `cudaEventRecordWithFlags_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventRecordWithFlags_ptsz(
    event: *mut c_void,
    stream: *mut c_void,
    flags: c_uint,
) -> u32 {
    record_with_flags(event, per_thread(ptr(stream)), flags)
}

fn record_with_flags(event: *mut c_void, stream: u64, flags: c_uint) -> u32 {
    if flags > 1 {
        return crate::state::record(codes::INVALID_VALUE);
    }
    call(Op::EventRecord, &[ptr(event), stream])
}

/// `cudaEventSynchronize`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventSynchronize(event: *mut c_void) -> u32 {
    super::printf::after_sync(call(Op::EventSynchronize, &[ptr(event)]))
}

/// `cudaEventQuery`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventQuery(event: *mut c_void) -> u32 {
    call(Op::EventQuery, &[ptr(event)])
}

/// `cudaEventElapsedTime`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventElapsedTime(ms: *mut f32, start: *mut c_void, end: *mut c_void) -> u32 {
    call(Op::EventElapsedTime, &[ptr(ms), ptr(start), ptr(end)])
}

/// `cudaEventElapsedTime_v2` (CUDA 12's name for the same call).
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventElapsedTime_v2(
    ms: *mut f32,
    start: *mut c_void,
    end: *mut c_void,
) -> u32 {
    cudaEventElapsedTime(ms, start, end)
}

/// `cudaEventDestroy`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaEventDestroy(event: *mut c_void) -> u32 {
    call(Op::EventDestroy, &[ptr(event)])
}
