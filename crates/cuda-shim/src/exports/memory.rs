//! Memory: device allocations, pinned host memory (the program's own, saved with it), copies,
//! memsets, module variables and pointer attributes.

use std::ffi::{c_int, c_uint, c_void};

use crac_abi::{Op, PointerAttributes};

use super::{call, handle, int, layouts, out, per_thread, ptr, size, write_struct};
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

/// `cudaMallocAsync`: the allocation is made at once (usable in stream order, and earlier).
#[unsafe(no_mangle)]
pub extern "C" fn cudaMallocAsync(
    dev_ptr: *mut *mut c_void,
    bytes: usize,
    stream: *mut c_void,
) -> u32 {
    malloc_async(dev_ptr, bytes, ptr(stream))
}

/// `cudaMallocAsync_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMallocAsync_ptsz(
    dev_ptr: *mut *mut c_void,
    bytes: usize,
    stream: *mut c_void,
) -> u32 {
    malloc_async(dev_ptr, bytes, per_thread(ptr(stream)))
}

/// The stream must exist; the memory is then allocated synchronously.
fn malloc_async(dev_ptr: *mut *mut c_void, bytes: usize, stream: u64) -> u32 {
    let r = call(Op::StreamQuery, &[stream]);
    if r != codes::SUCCESS && r != 600 {
        return r;
    }
    call(Op::Malloc, &[ptr(dev_ptr), size(bytes)])
}

/// `cudaFreeAsync`: waits for the stream's work, then frees (as late as stream order allows,
/// or later).
#[unsafe(no_mangle)]
pub extern "C" fn cudaFreeAsync(dev_ptr: *mut c_void, stream: *mut c_void) -> u32 {
    free_async(dev_ptr, ptr(stream))
}

/// `cudaFreeAsync_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaFreeAsync_ptsz(dev_ptr: *mut c_void, stream: *mut c_void) -> u32 {
    free_async(dev_ptr, per_thread(ptr(stream)))
}

fn free_async(dev_ptr: *mut c_void, stream: u64) -> u32 {
    let r = call(Op::StreamSynchronize, &[stream]);
    if r != codes::SUCCESS {
        return r;
    }
    call(Op::Free, &[ptr(dev_ptr)])
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

/// `cudaMemcpy`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpy(
    dst: *mut c_void,
    src: *const c_void,
    count: usize,
    kind: c_int,
) -> u32 {
    call(Op::Memcpy, &[ptr(dst), ptr(src), size(count), int(kind)])
}

/// `cudaMemcpy_ptds`: `cudaMemcpy` on the per-thread default stream.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpy_ptds(
    dst: *mut c_void,
    src: *const c_void,
    count: usize,
    kind: c_int,
) -> u32 {
    let r = call(
        Op::MemcpyAsync,
        &[ptr(dst), ptr(src), size(count), int(kind), 2],
    );
    if r != codes::SUCCESS {
        return r;
    }
    call(Op::StreamSynchronize, &[2])
}

/// `cudaMemcpyAsync`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyAsync(
    dst: *mut c_void,
    src: *const c_void,
    count: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::MemcpyAsync,
        &[ptr(dst), ptr(src), size(count), int(kind), ptr(stream)],
    )
}

/// `cudaMemcpyAsync_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyAsync_ptsz(
    dst: *mut c_void,
    src: *const c_void,
    count: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::MemcpyAsync,
        &[
            ptr(dst),
            ptr(src),
            size(count),
            int(kind),
            per_thread(ptr(stream)),
        ],
    )
}

/// `cudaMemcpy2D`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpy2D(
    dst: *mut c_void,
    dpitch: usize,
    src: *const c_void,
    spitch: usize,
    width: usize,
    height: usize,
    kind: c_int,
) -> u32 {
    call(
        Op::Memcpy2D,
        &[
            ptr(dst),
            size(dpitch),
            ptr(src),
            size(spitch),
            size(width),
            size(height),
            int(kind),
        ],
    )
}

/// `cudaMemcpy2D_ptds`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpy2D_ptds(
    dst: *mut c_void,
    dpitch: usize,
    src: *const c_void,
    spitch: usize,
    width: usize,
    height: usize,
    kind: c_int,
) -> u32 {
    let r = cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, handle(2));
    if r != codes::SUCCESS {
        return r;
    }
    call(Op::StreamSynchronize, &[2])
}

/// `cudaMemcpy2DAsync`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn cudaMemcpy2DAsync(
    dst: *mut c_void,
    dpitch: usize,
    src: *const c_void,
    spitch: usize,
    width: usize,
    height: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::Memcpy2DAsync,
        &[
            ptr(dst),
            size(dpitch),
            ptr(src),
            size(spitch),
            size(width),
            size(height),
            int(kind),
            ptr(stream),
        ],
    )
}

/// `cudaMemcpy2DAsync_ptsz`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn cudaMemcpy2DAsync_ptsz(
    dst: *mut c_void,
    dpitch: usize,
    src: *const c_void,
    spitch: usize,
    width: usize,
    height: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    let s = handle(per_thread(ptr(stream)));
    cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, s)
}

/// `cudaMemset`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemset(dev_ptr: *mut c_void, value: c_int, count: usize) -> u32 {
    call(Op::Memset, &[ptr(dev_ptr), int(value), size(count)])
}

/// `cudaMemset_ptds`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemset_ptds(dev_ptr: *mut c_void, value: c_int, count: usize) -> u32 {
    let r = call(Op::MemsetAsync, &[ptr(dev_ptr), int(value), size(count), 2]);
    if r != codes::SUCCESS {
        return r;
    }
    call(Op::StreamSynchronize, &[2])
}

/// `cudaMemsetAsync`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemsetAsync(
    dev_ptr: *mut c_void,
    value: c_int,
    count: usize,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::MemsetAsync,
        &[ptr(dev_ptr), int(value), size(count), ptr(stream)],
    )
}

/// `cudaMemsetAsync_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemsetAsync_ptsz(
    dev_ptr: *mut c_void,
    value: c_int,
    count: usize,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::MemsetAsync,
        &[
            ptr(dev_ptr),
            int(value),
            size(count),
            per_thread(ptr(stream)),
        ],
    )
}

/// `cudaMemcpyToSymbol`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyToSymbol(
    symbol: *const c_void,
    src: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
) -> u32 {
    call(
        Op::MemcpyToSymbol,
        &[ptr(symbol), ptr(src), size(count), size(offset), int(kind)],
    )
}

/// `cudaMemcpyToSymbol_ptds`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyToSymbol_ptds(
    symbol: *const c_void,
    src: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
) -> u32 {
    let r = cudaMemcpyToSymbolAsync(symbol, src, count, offset, kind, handle(2));
    if r != codes::SUCCESS {
        return r;
    }
    call(Op::StreamSynchronize, &[2])
}

/// `cudaMemcpyFromSymbol`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyFromSymbol(
    dst: *mut c_void,
    symbol: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
) -> u32 {
    call(
        Op::MemcpyFromSymbol,
        &[ptr(dst), ptr(symbol), size(count), size(offset), int(kind)],
    )
}

/// `cudaMemcpyFromSymbol_ptds`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyFromSymbol_ptds(
    dst: *mut c_void,
    symbol: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
) -> u32 {
    let r = cudaMemcpyFromSymbolAsync(dst, symbol, count, offset, kind, handle(2));
    if r != codes::SUCCESS {
        return r;
    }
    call(Op::StreamSynchronize, &[2])
}

/// `cudaMemcpyToSymbolAsync`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyToSymbolAsync(
    symbol: *const c_void,
    src: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::MemcpyToSymbolAsync,
        &[
            ptr(symbol),
            ptr(src),
            size(count),
            size(offset),
            int(kind),
            ptr(stream),
        ],
    )
}

/// `cudaMemcpyToSymbolAsync_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyToSymbolAsync_ptsz(
    symbol: *const c_void,
    src: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    let s = handle(per_thread(ptr(stream)));
    cudaMemcpyToSymbolAsync(symbol, src, count, offset, kind, s)
}

/// `cudaMemcpyFromSymbolAsync`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyFromSymbolAsync(
    dst: *mut c_void,
    symbol: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    call(
        Op::MemcpyFromSymbolAsync,
        &[
            ptr(dst),
            ptr(symbol),
            size(count),
            size(offset),
            int(kind),
            ptr(stream),
        ],
    )
}

/// `cudaMemcpyFromSymbolAsync_ptsz`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpyFromSymbolAsync_ptsz(
    dst: *mut c_void,
    symbol: *const c_void,
    count: usize,
    offset: usize,
    kind: c_int,
    stream: *mut c_void,
) -> u32 {
    let s = handle(per_thread(ptr(stream)));
    cudaMemcpyFromSymbolAsync(dst, symbol, count, offset, kind, s)
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
