//! Memory: device allocations (plain, pitched, stream-ordered), pinned host memory (the
//! program's own, saved with it), host registration, module-variable addresses and sizes,
//! pointer attributes. Copies and memsets are in `copy.rs`.

use std::ffi::{c_uint, c_void};

use crac_abi::{Op, PointerAttributes};

use super::{call, layouts, out, ptr, size, write_struct};
use crate::{errors as codes, layout, state, sys};

/// `cudaMalloc`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMalloc(dev_ptr: *mut *mut c_void, bytes: usize) -> u32 {
    call(Op::Malloc, &[ptr(dev_ptr), size(bytes)])
}

/// `cudaFree`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaFree(dev_ptr: *mut c_void) -> u32 {
    call(Op::Free, &[ptr(dev_ptr)])
}

with_ptsz! {
    /// `cudaMallocAsync`: the allocation is made at once (usable in stream order, and
    /// earlier).
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaMallocAsync / cudaMallocAsync_ptsz(
        dev_ptr: *mut *mut c_void,
        bytes: usize,
        stream: *mut c_void,
    ) -> u32
    [s = stream] {
        // The stream must exist; the memory is then allocated synchronously.
        let r = call(Op::StreamQuery, &[s]);
        if r != codes::SUCCESS && r != 600 {
            return r;
        }
        call(Op::Malloc, &[ptr(dev_ptr), size(bytes)])
    }
}

with_ptsz! {
    /// `cudaFreeAsync`: waits for the stream's work, then frees (as late as stream order
    /// allows, or later).
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaFreeAsync / cudaFreeAsync_ptsz(
        dev_ptr: *mut c_void,
        stream: *mut c_void,
    ) -> u32
    [s = stream] {
        let r = call(Op::StreamSynchronize, &[s]);
        if r != codes::SUCCESS {
            return r;
        }
        call(Op::Free, &[ptr(dev_ptr)])
    }
}

/// `cudaMallocPitch`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMallocPitch(
    dev_ptr: *mut *mut c_void,
    pitch: *mut usize,
    width: usize,
    height: usize,
) -> u32 {
    call(
        Op::MallocPitch,
        &[ptr(dev_ptr), ptr(pitch), size(width), size(height)],
    )
}

/// `bytes` rounded up to whole pages (at least one).
fn page_round(bytes: usize) -> Option<usize> {
    let page = sys::page_size();
    bytes.max(1).checked_next_multiple_of(page)
}

/// Maps pinned host memory in the program's half and reports it to the lower half.
///
/// # Safety
/// `host` must be null or valid for one pointer write.
unsafe fn host_alloc(host: *mut *mut c_void, bytes: usize, flags: u32) -> u32 {
    if host.is_null() {
        return state::record(codes::INVALID_VALUE);
    }
    let Some(len) = page_round(bytes) else {
        return state::record(codes::MEMORY_ALLOCATION);
    };
    let Ok(p) = sys::map_anonymous(len) else {
        return state::record(codes::MEMORY_ALLOCATION);
    };
    let r = call(Op::PinnedAlloc, &[ptr(p), size(bytes), u64::from(flags)]);
    if r != codes::SUCCESS {
        // SAFETY: `p` is the mapping just made, of `len` bytes, that nothing else has seen.
        let _ = unsafe { sys::unmap(p, len) };
        return r;
    }
    // SAFETY: non-null, and the caller guarantees it is writable.
    unsafe { host.write(p) };
    codes::SUCCESS
}

/// `cudaMallocHost`.
///
/// # Safety
/// `host` must be null or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaMallocHost(host: *mut *mut c_void, bytes: usize) -> u32 {
    // SAFETY: same contract.
    unsafe { host_alloc(host, bytes, 0) }
}

/// `cudaHostAlloc`.
///
/// # Safety
/// `host` must be null or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaHostAlloc(host: *mut *mut c_void, bytes: usize, flags: c_uint) -> u32 {
    // SAFETY: same contract.
    unsafe { host_alloc(host, bytes, flags) }
}

/// `cudaFreeHost`.
///
/// # Safety
/// `host` must be null or memory from `cudaMallocHost`/`cudaHostAlloc` that the program no
/// longer uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaFreeHost(host: *mut c_void) -> u32 {
    if host.is_null() {
        return codes::SUCCESS;
    }
    let mut bytes: usize = 0;
    let r = call(Op::PinnedFree, &[ptr(host), out(&mut bytes)]);
    if r != codes::SUCCESS {
        return r;
    }
    if let Some(len) = page_round(bytes) {
        // SAFETY: the lower half knew `host` as pinned memory of `bytes` bytes, which only
        // `host_alloc` maps (whole pages), and the program gives it up (caller's guarantee).
        let _ = unsafe { sys::unmap(host, len) };
    }
    codes::SUCCESS
}

/// `cudaHostRegister`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaHostRegister(host: *mut c_void, bytes: usize, flags: c_uint) -> u32 {
    call(
        Op::HostRegister,
        &[ptr(host), size(bytes), u64::from(flags)],
    )
}

/// `cudaHostUnregister`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaHostUnregister(host: *mut c_void) -> u32 {
    call(Op::HostUnregister, &[ptr(host)])
}

/// `cudaGetSymbolAddress`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetSymbolAddress(dev_ptr: *mut *mut c_void, symbol: *const c_void) -> u32 {
    call(Op::GetSymbolAddress, &[ptr(dev_ptr), ptr(symbol)])
}

/// `cudaGetSymbolSize`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaGetSymbolSize(bytes: *mut usize, symbol: *const c_void) -> u32 {
    call(Op::GetSymbolSize, &[ptr(bytes), ptr(symbol)])
}

/// `cudaPointerGetAttributes`.
///
/// # Safety
/// `attributes` must be null or point at a `cudaPointerAttributes` of this library's CUDA
/// version.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaPointerGetAttributes(
    attributes: *mut c_void,
    p: *const c_void,
) -> u32 {
    if attributes.is_null() {
        return state::record(codes::INVALID_VALUE);
    }
    let mut neutral = PointerAttributes::default();
    let r = call(Op::PointerGetAttributes, &[out(&mut neutral), ptr(p)]);
    if r == codes::SUCCESS {
        let bytes = layout::pointer_attributes(layouts().pointer_attributes, &neutral);
        // SAFETY: the caller guarantees a struct of our major's layout, whose size `bytes` has.
        unsafe { write_struct(attributes, &bytes) };
    }
    r
}
