//! Errors: the thread's last error and the name/description of a code, answered in the shim.

use std::ffi::{c_char, c_int};

use crate::{errors as codes, state};

/// `cudaGetLastError`: the thread's last error, reset to success.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetLastError() -> u32 {
    state::take_last_error()
}

/// `cudaPeekAtLastError`: the thread's last error, kept.
#[unsafe(no_mangle)]
pub extern "C" fn cudaPeekAtLastError() -> u32 {
    state::peek_last_error()
}

/// `cudaGetErrorName`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetErrorName(error: c_int) -> *const c_char {
    let code = u32::try_from(error).unwrap_or(u32::MAX);
    codes::name(code).map_or(c"unrecognized error code".as_ptr(), |n| n.as_ptr())
}

/// `cudaGetErrorString`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetErrorString(error: c_int) -> *const c_char {
    let code = u32::try_from(error).unwrap_or(u32::MAX);
    codes::description(code).as_ptr()
}
