//! Copies and memsets: plain, 2-D, to and from module variables, on a stream or not, and the
//! per-thread-default-stream (`_ptds`/`_ptsz`) forms.

use std::ffi::{c_int, c_void};

use crac_abi::Op;

use super::{call, handle, int, per_thread, ptr, size};
use crate::errors as codes;

/// `cudaMemcpy`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaMemcpy(
    dst: *mut c_void,
    src: *const c_void,
    count: usize,
    kind: c_int,
) -> u32 {
    super::printf::after_sync(call(
        Op::Memcpy,
        &[ptr(dst), ptr(src), size(count), int(kind)],
    ))
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
    super::printf::after_sync(call(Op::StreamSynchronize, &[2]))
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
    super::printf::after_sync(call(
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
    ))
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
    super::printf::after_sync(call(Op::StreamSynchronize, &[2]))
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
    super::printf::after_sync(call(Op::StreamSynchronize, &[2]))
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
    super::printf::after_sync(call(
        Op::MemcpyToSymbol,
        &[ptr(symbol), ptr(src), size(count), size(offset), int(kind)],
    ))
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
    super::printf::after_sync(call(Op::StreamSynchronize, &[2]))
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
    super::printf::after_sync(call(
        Op::MemcpyFromSymbol,
        &[ptr(dst), ptr(symbol), size(count), size(offset), int(kind)],
    ))
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
    super::printf::after_sync(call(Op::StreamSynchronize, &[2]))
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
