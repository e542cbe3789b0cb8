//! The CUDA runtime operations that cross from the shim to the lower half, each with the C
//! signature the lower half decodes: the one list from which the shim's calls and the lower
//! half's decoder are both written.
//!
//! Argument words (`args[i]`, see the crate doc): the `i`-th parameter below as a `u64`, with
//! pointers as addresses, integers zero- or sign-extended and `f32` as its bits in the low 32.
//! A [`Dim3`](crate::Dim3) parameter takes **two** words, `x | (y << 32)` then `z`, so the words
//! after it shift by one (`LaunchKernel`: func, grid xy, grid z, block xy, block z, args,
//! shared, stream).
//!
//! Where the list departs from the C function of the same name, the shim converts:
//!
//! - Structs the program passes by pointer whose layout differs between CUDA 12 and 13 arrive
//!   as the neutral structs of this crate ([`DeviceProps`](crate::DeviceProps),
//!   [`FuncAttributes`](crate::FuncAttributes),
//!   [`PointerAttributes`](crate::PointerAttributes)); the shim fills the program's struct.
//! - `__cudaRegisterFatBinary` returns its handle through a first out-parameter
//!   (`handle: *mut u64`) instead of as the C return value; `__cudaRegisterFatBinaryEnd`,
//!   `__cudaUnregisterFatBinary`, `__cudaRegisterFunction`, `__cudaRegisterVar` and
//!   `__cudaRegisterManagedVar` return `void` in C: the shim drops their error (it is remembered
//!   as the thread's last error). `fat_cubin` is the program's `__fatBinC_Wrapper_t` (magic
//!   `0x466243b1`, version, pointer to the fat binary, …) exactly as nvcc emits it.
//! - Streams and events are `u64` handles ([`StreamHandle`](crate::StreamHandle),
//!   [`EventHandle`](crate::EventHandle)): `0`/`1` the legacy default stream, `2` the calling
//!   thread's per-thread default stream. The shim's `_ptds`/`_ptsz` exports pass `2` where the
//!   program passes `0`; calls that have no stream parameter in C but use the per-thread stream
//!   in their `_ptds` form are sent as their `…Async` operation on stream `2` followed by
//!   `StreamSynchronize(2)`.
//! - Answered in the shim without crossing (no operation here): `cudaGetLastError`,
//!   `cudaPeekAtLastError`, `cudaGetErrorString`, `cudaGetErrorName`, `cudaRuntimeGetVersion`,
//!   `__cudaPushCallConfiguration`, `__cudaPopCallConfiguration`, `cudaCreateChannelDesc`, and
//!   `__cudaGetKernel` (a kernel handle is the kernel's host stub address, so
//!   `__cudaLaunchKernel(kernel, …)` is sent as `LaunchKernel(kernel, …)` and handles need no
//!   translation after restart).
//! - `cudaMallocHost`/`cudaHostAlloc`/`cudaFreeHost`: pinned host memory is upper-half memory
//!   (saved with the program). The shim maps it with the program's libc and reports it with
//!   `__crac_pinned_alloc`; `cudaFreeHost` asks `__crac_pinned_free` for the size (which also
//!   drops the registration; an unknown pointer is `cudaErrorInvalidValue`) and unmaps it.
//!   `cudaMallocHost` is `__crac_pinned_alloc` with flags `0`.
//! - Host callbacks (`cudaLaunchHostFunc`, `cudaStreamAddCallback`) must run program code with
//!   the program's fs, on a program-side thread. The lower half queues them in stream order and
//!   never calls them itself: a shim thread loops on `__crac_host_callback_next`, which blocks
//!   in the lower half until one is due and fills a [`HostCallback`](crate::HostCallback); the
//!   shim runs it and reports `__crac_host_callback_done(token)`, after which the stream goes on.
//!   `__crac_host_callback_next` returns `cudaErrorNotReady` (600) with nothing filled when woken
//!   without a callback (the shim then calls it again).
//! - Device `printf` output (the `sim` device's kernels) belongs in the program's own `stdout`
//!   stream, in order with the program's host output, as CUDA writes it at synchronising calls.
//!   `__crac_printf_take` moves up to `cap` pending bytes into `buf` and their count into
//!   `*len` (0 when none); the shim writes them with the program's `fwrite(…, stdout)` after
//!   synchronising calls and at exit. Until the shim first calls it, the lower half writes
//!   device output straight to fd 1 instead (so a shim that never drains loses nothing).
//!
//! Operations are numbered by their position: new ones go at the end.

/// Declares the operation list: `Variant = c_name(param: CType, …);`.
#[macro_export]
macro_rules! cuda_ops {
    ($callback:ident) => {
        $callback! {
            // ---- devices ----
            GetDeviceCount = cudaGetDeviceCount(count: *mut i32);
            GetDevice = cudaGetDevice(device: *mut i32);
            SetDevice = cudaSetDevice(device: i32);
            GetDeviceProperties = cudaGetDeviceProperties(prop: *mut $crate::DeviceProps, device: i32);
            DeviceGetAttribute = cudaDeviceGetAttribute(value: *mut i32, attr: i32, device: i32);
            DeviceSynchronize = cudaDeviceSynchronize();
            DeviceReset = cudaDeviceReset();
            DriverGetVersion = cudaDriverGetVersion(version: *mut i32);
            MemGetInfo = cudaMemGetInfo(free: *mut usize, total: *mut usize);
            DeviceGetStreamPriorityRange = cudaDeviceGetStreamPriorityRange(least: *mut i32, greatest: *mut i32);
            SetDeviceFlags = cudaSetDeviceFlags(flags: u32);
            GetDeviceFlags = cudaGetDeviceFlags(flags: *mut u32);
            DeviceSetCacheConfig = cudaDeviceSetCacheConfig(config: i32);
            DeviceGetLimit = cudaDeviceGetLimit(value: *mut usize, limit: i32);
            DeviceSetLimit = cudaDeviceSetLimit(limit: i32, value: usize);

            // ---- memory ----
            Malloc = cudaMalloc(dev_ptr: *mut *mut core::ffi::c_void, size: usize);
            Free = cudaFree(dev_ptr: *mut core::ffi::c_void);
            MallocPitch = cudaMallocPitch(dev_ptr: *mut *mut core::ffi::c_void, pitch: *mut usize, width: usize, height: usize);
            HostRegister = cudaHostRegister(ptr: *mut core::ffi::c_void, size: usize, flags: u32);
            HostUnregister = cudaHostUnregister(ptr: *mut core::ffi::c_void);
            Memcpy = cudaMemcpy(dst: *mut core::ffi::c_void, src: *const core::ffi::c_void, count: usize, kind: i32);
            MemcpyAsync = cudaMemcpyAsync(dst: *mut core::ffi::c_void, src: *const core::ffi::c_void, count: usize, kind: i32, stream: $crate::StreamHandle);
            Memcpy2D = cudaMemcpy2D(dst: *mut core::ffi::c_void, dpitch: usize, src: *const core::ffi::c_void, spitch: usize, width: usize, height: usize, kind: i32);
            Memcpy2DAsync = cudaMemcpy2DAsync(dst: *mut core::ffi::c_void, dpitch: usize, src: *const core::ffi::c_void, spitch: usize, width: usize, height: usize, kind: i32, stream: $crate::StreamHandle);
            Memset = cudaMemset(dev_ptr: *mut core::ffi::c_void, value: i32, count: usize);
            MemsetAsync = cudaMemsetAsync(dev_ptr: *mut core::ffi::c_void, value: i32, count: usize, stream: $crate::StreamHandle);
            MemcpyToSymbol = cudaMemcpyToSymbol(symbol: *const core::ffi::c_void, src: *const core::ffi::c_void, count: usize, offset: usize, kind: i32);
            MemcpyFromSymbol = cudaMemcpyFromSymbol(dst: *mut core::ffi::c_void, symbol: *const core::ffi::c_void, count: usize, offset: usize, kind: i32);
            MemcpyToSymbolAsync = cudaMemcpyToSymbolAsync(symbol: *const core::ffi::c_void, src: *const core::ffi::c_void, count: usize, offset: usize, kind: i32, stream: $crate::StreamHandle);
            MemcpyFromSymbolAsync = cudaMemcpyFromSymbolAsync(dst: *mut core::ffi::c_void, symbol: *const core::ffi::c_void, count: usize, offset: usize, kind: i32, stream: $crate::StreamHandle);
            GetSymbolAddress = cudaGetSymbolAddress(dev_ptr: *mut *mut core::ffi::c_void, symbol: *const core::ffi::c_void);
            GetSymbolSize = cudaGetSymbolSize(size: *mut usize, symbol: *const core::ffi::c_void);
            PointerGetAttributes = cudaPointerGetAttributes(attributes: *mut $crate::PointerAttributes, ptr: *const core::ffi::c_void);

            // ---- streams ----
            StreamCreate = cudaStreamCreate(stream: *mut $crate::StreamHandle);
            StreamCreateWithFlags = cudaStreamCreateWithFlags(stream: *mut $crate::StreamHandle, flags: u32);
            StreamCreateWithPriority = cudaStreamCreateWithPriority(stream: *mut $crate::StreamHandle, flags: u32, priority: i32);
            StreamDestroy = cudaStreamDestroy(stream: $crate::StreamHandle);
            StreamSynchronize = cudaStreamSynchronize(stream: $crate::StreamHandle);
            StreamQuery = cudaStreamQuery(stream: $crate::StreamHandle);
            StreamWaitEvent = cudaStreamWaitEvent(stream: $crate::StreamHandle, event: $crate::EventHandle, flags: u32);
            StreamGetPriority = cudaStreamGetPriority(stream: $crate::StreamHandle, priority: *mut i32);
            StreamGetFlags = cudaStreamGetFlags(stream: $crate::StreamHandle, flags: *mut u32);
            LaunchHostFunc = cudaLaunchHostFunc(stream: $crate::StreamHandle, func: *const core::ffi::c_void, user_data: *mut core::ffi::c_void);
            StreamAddCallback = cudaStreamAddCallback(stream: $crate::StreamHandle, callback: *const core::ffi::c_void, user_data: *mut core::ffi::c_void, flags: u32);

            // ---- events ----
            EventCreate = cudaEventCreate(event: *mut $crate::EventHandle);
            EventCreateWithFlags = cudaEventCreateWithFlags(event: *mut $crate::EventHandle, flags: u32);
            EventRecord = cudaEventRecord(event: $crate::EventHandle, stream: $crate::StreamHandle);
            EventSynchronize = cudaEventSynchronize(event: $crate::EventHandle);
            EventQuery = cudaEventQuery(event: $crate::EventHandle);
            EventElapsedTime = cudaEventElapsedTime(ms: *mut f32, start: $crate::EventHandle, end: $crate::EventHandle);
            EventDestroy = cudaEventDestroy(event: $crate::EventHandle);

            // ---- modules and launches ----
            RegisterFatBinary = __cudaRegisterFatBinary(handle: *mut u64, fat_cubin: *const core::ffi::c_void);
            RegisterFatBinaryEnd = __cudaRegisterFatBinaryEnd(handle: u64);
            UnregisterFatBinary = __cudaUnregisterFatBinary(handle: u64);
            RegisterFunction = __cudaRegisterFunction(handle: u64, host_fun: *const core::ffi::c_char, device_fun: *mut core::ffi::c_char, device_name: *const core::ffi::c_char, thread_limit: i32, tid: *mut core::ffi::c_void, bid: *mut core::ffi::c_void, block_dim: *mut $crate::Dim3, grid_dim: *mut $crate::Dim3, warp_size: *mut i32);
            RegisterVar = __cudaRegisterVar(handle: u64, host_var: *mut core::ffi::c_char, device_address: *mut core::ffi::c_char, device_name: *const core::ffi::c_char, ext: i32, size: usize, constant: i32, global: i32);
            RegisterManagedVar = __cudaRegisterManagedVar(handle: u64, host_var_ptr_address: *mut *mut core::ffi::c_void, device_address: *mut core::ffi::c_char, device_name: *const core::ffi::c_char, ext: i32, size: usize, constant: i32, global: i32);
            InitModule = __cudaInitModule(handle: u64);
            LaunchKernel = cudaLaunchKernel(func: *const core::ffi::c_void, grid: $crate::Dim3, block: $crate::Dim3, args: *mut *mut core::ffi::c_void, shared_mem: usize, stream: $crate::StreamHandle);
            FuncGetAttributes = cudaFuncGetAttributes(attr: *mut $crate::FuncAttributes, func: *const core::ffi::c_void);
            FuncSetAttribute = cudaFuncSetAttribute(func: *const core::ffi::c_void, attr: i32, value: i32);
            FuncSetCacheConfig = cudaFuncSetCacheConfig(func: *const core::ffi::c_void, config: i32);
            OccupancyMaxActiveBlocksPerMultiprocessor = cudaOccupancyMaxActiveBlocksPerMultiprocessor(num_blocks: *mut i32, func: *const core::ffi::c_void, block_size: i32, dynamic_smem: usize);
            OccupancyMaxActiveBlocksPerMultiprocessorWithFlags = cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(num_blocks: *mut i32, func: *const core::ffi::c_void, block_size: i32, dynamic_smem: usize, flags: u32);
            OccupancyAvailableDynamicSMemPerBlock = cudaOccupancyAvailableDynamicSMemPerBlock(dynamic_smem: *mut usize, func: *const core::ffi::c_void, num_blocks: i32, block_size: i32);

            // ---- crac-internal ----
            PinnedAlloc = __crac_pinned_alloc(ptr: *mut core::ffi::c_void, size: usize, flags: u32);
            PinnedFree = __crac_pinned_free(ptr: *mut core::ffi::c_void, size: *mut usize);
            HostCallbackNext = __crac_host_callback_next(callback: *mut $crate::HostCallback);
            HostCallbackDone = __crac_host_callback_done(token: u64);
            PrintfTake = __crac_printf_take(buf: *mut u8, cap: usize, len: *mut usize);
        }
    };
}

macro_rules! define_op_enum {
    ($($variant:ident = $name:ident($($param:ident: $ty:ty),* $(,)?);)*) => {
        /// One CUDA runtime operation.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $variant,
            )*
        }

        impl Op {
            /// Every operation, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The C function's name.
            pub fn c_name(self) -> &'static str {
                match self {
                    $(Op::$variant => stringify!($name),)*
                }
            }

            /// How many argument words the operation takes ([`Dim3`](crate::Dim3) counts two).
            pub fn arg_words(self) -> usize {
                match self {
                    $(Op::$variant => 0 $(+ $crate::ops::words_of(stringify!($ty)))*,)*
                }
            }

            /// The operation with this number.
            pub fn from_u32(n: u32) -> Option<Op> {
                Self::ALL.get(usize::try_from(n).ok()?).copied()
            }
        }
    };
}

cuda_ops!(define_op_enum);

/// Argument words a parameter of the type spelled `ty` takes: two for `Dim3`, one otherwise.
pub const fn words_of(ty: &str) -> usize {
    let b = ty.as_bytes();
    let n = b.len();
    // "… Dim3" (a by-value dim3; `*mut …Dim3` is a pointer and ends the same way, so look at
    // the first byte too)
    if n >= 4 && b[n - 4] == b'D' && b[n - 3] == b'i' && b[n - 2] == b'm' && b[n - 1] == b'3' {
        if b[0] == b'*' { 1 } else { 2 }
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_round_trips() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(Op::from_u32(u32::try_from(i).unwrap()), Some(*op));
            let n = op.c_name();
            assert!(
                n.starts_with("cuda") || n.starts_with("__cuda") || n.starts_with("__crac_"),
                "{n}"
            );
        }
        assert_eq!(Op::from_u32(u32::try_from(Op::ALL.len()).unwrap()), None);
    }

    #[test]
    fn every_op_fits_the_argument_array() {
        for op in Op::ALL {
            assert!(op.arg_words() <= crate::MAX_ARGS, "{op:?}");
        }
        assert_eq!(Op::LaunchKernel.arg_words(), 8);
        assert_eq!(Op::RegisterFunction.arg_words(), 10);
        assert_eq!(Op::DeviceSynchronize.arg_words(), 0);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Op::ALL.iter().map(|o| o.c_name()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
