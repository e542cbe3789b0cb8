//! Copies and memsets: plain, 2-D, to and from module variables, on a stream or not, and the
//! per-thread-default-stream (`_ptds`/`_ptsz`) forms.

use std::ffi::{c_int, c_void};

use crac_abi::Op;

use super::{PER_THREAD_STREAM, call, int, per_thread, ptr, size};
use crate::errors as codes;

/// Defines one copy or memset's four entry points from its parameters (all but the stream)
/// and its argument words:
/// - `sync` crosses with its operation, then, where `after` is given, drains device printf
///   output (`super::printf::after_sync`);
/// - `sync_ptds` runs the stream operation on the per-thread default stream, synchronizes
///   that stream and drains device printf output;
/// - `async` crosses with the stream operation, the `stream` argument's word last;
/// - `async_ptsz` the same, a null stream meaning the per-thread default stream.
///
/// All four names stand on the `fn` line, where `build.rs` reads the implemented exports.
macro_rules! copy_exports {
    (
        #[unsafe(no_mangle)]
        pub extern "C" fn $sync:ident / $ptds:ident, $async_:ident / $ptsz:ident(
            $($arg:ident: $ty:ty),* $(,)?
        ) -> u32 {
            ($op:path, $async_op:path), [$($word:expr),* $(,)?] $(, $after:path)?
        }
    ) => {
        #[doc = concat!("`", stringify!($sync), "`.")]
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub extern "C" fn $sync($($arg: $ty),*) -> u32 {
            let r = call($op, &[$($word),*]);
            $(let r = $after(r);)?
            r
        }

        #[doc = concat!("`", stringify!($ptds), "`: [`", stringify!($sync), "`] on the per-thread default stream.")]
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub extern "C" fn $ptds($($arg: $ty),*) -> u32 {
            let r = call($async_op, &[$($word,)* PER_THREAD_STREAM]);
            if r != codes::SUCCESS {
                return r;
            }
            super::printf::after_sync(call(Op::StreamSynchronize, &[PER_THREAD_STREAM]))
        }

        #[doc = concat!("`", stringify!($async_), "`.")]
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub extern "C" fn $async_($($arg: $ty,)* stream: *mut c_void) -> u32 {
            call($async_op, &[$($word,)* ptr(stream)])
        }

        #[doc = concat!("`", stringify!($ptsz), "`: [`", stringify!($async_), "`] with a null stream meaning the per-thread default stream.")]
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub extern "C" fn $ptsz($($arg: $ty,)* stream: *mut c_void) -> u32 {
            call($async_op, &[$($word,)* per_thread(ptr(stream))])
        }
    };
}

copy_exports! {
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaMemcpy / cudaMemcpy_ptds, cudaMemcpyAsync / cudaMemcpyAsync_ptsz(
        dst: *mut c_void,
        src: *const c_void,
        count: usize,
        kind: c_int,
    ) -> u32 {
        (Op::Memcpy, Op::MemcpyAsync),
        [ptr(dst), ptr(src), size(count), int(kind)],
        super::printf::after_sync
    }
}

copy_exports! {
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaMemcpy2D / cudaMemcpy2D_ptds, cudaMemcpy2DAsync / cudaMemcpy2DAsync_ptsz(
        dst: *mut c_void,
        dpitch: usize,
        src: *const c_void,
        spitch: usize,
        width: usize,
        height: usize,
        kind: c_int,
    ) -> u32 {
        (Op::Memcpy2D, Op::Memcpy2DAsync),
        [
            ptr(dst),
            size(dpitch),
            ptr(src),
            size(spitch),
            size(width),
            size(height),
            int(kind),
        ],
        super::printf::after_sync
    }
}

copy_exports! {
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaMemset / cudaMemset_ptds, cudaMemsetAsync / cudaMemsetAsync_ptsz(
        dev_ptr: *mut c_void,
        value: c_int,
        count: usize,
    ) -> u32 {
        (Op::Memset, Op::MemsetAsync),
        [ptr(dev_ptr), int(value), size(count)]
    }
}

copy_exports! {
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaMemcpyToSymbol / cudaMemcpyToSymbol_ptds, cudaMemcpyToSymbolAsync / cudaMemcpyToSymbolAsync_ptsz(
        symbol: *const c_void,
        src: *const c_void,
        count: usize,
        offset: usize,
        kind: c_int,
    ) -> u32 {
        (Op::MemcpyToSymbol, Op::MemcpyToSymbolAsync),
        [ptr(symbol), ptr(src), size(count), size(offset), int(kind)],
        super::printf::after_sync
    }
}

copy_exports! {
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaMemcpyFromSymbol / cudaMemcpyFromSymbol_ptds, cudaMemcpyFromSymbolAsync / cudaMemcpyFromSymbolAsync_ptsz(
        dst: *mut c_void,
        symbol: *const c_void,
        count: usize,
        offset: usize,
        kind: c_int,
    ) -> u32 {
        (Op::MemcpyFromSymbol, Op::MemcpyFromSymbolAsync),
        [ptr(dst), ptr(symbol), size(count), size(offset), int(kind)],
        super::printf::after_sync
    }
}
