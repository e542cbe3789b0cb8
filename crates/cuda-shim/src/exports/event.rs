//! Events: create, record (on a stream, with flags), query, wait, time, destroy.

use std::ffi::{c_uint, c_void};

use crac_abi::Op;

use super::{call, ptr};
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

with_ptsz! {
    /// `cudaEventRecord`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaEventRecord / cudaEventRecord_ptsz(
        event: *mut c_void,
        stream: *mut c_void,
    ) -> u32
    [s = stream] {
        call(Op::EventRecord, &[ptr(event), s])
    }
}

with_ptsz! {
    /// `cudaEventRecordWithFlags`: `cudaEventRecordDefault` and `cudaEventRecordExternal`
    /// (which differs only inside stream capture, which crac does not support) record as
    /// `cudaEventRecord`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaEventRecordWithFlags / cudaEventRecordWithFlags_ptsz(
        event: *mut c_void,
        stream: *mut c_void,
        flags: c_uint,
    ) -> u32
    [s = stream] {
        if flags > 1 {
            return crate::state::record(codes::INVALID_VALUE);
        }
        call(Op::EventRecord, &[ptr(event), s])
    }
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
