//! Streams (create, destroy, synchronize, query, wait, properties, capture queries) and host
//! callbacks.
//!
//! Host callbacks run program code, so they run on a program-side thread with the program's
//! fs: the first `cudaLaunchHostFunc`/`cudaStreamAddCallback` starts one shim thread that
//! loops on `__crac_host_callback_next` (which blocks in the lower half until a callback is
//! due), calls the program's function in upper mode, and reports `__crac_host_callback_done`.
//! Both operations go through the gate's callback lane ([`switch::call_callback`]): they pass
//! while a checkpoint drains the device, and wait in upper mode once it pauses callbacks, where
//! the checkpoint's quiesce signal (33, the one signal this thread leaves unblocked)
//! stops the thread like any other.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Once;

use crac_abi::{CALLBACK_STREAM, HostCallback, Op};

use super::{call, handle, int, out, ptr};
use crate::{errors as codes, switch, sys};

/// `cudaStreamCreate`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaStreamCreate(stream: *mut *mut c_void) -> u32 {
    call(Op::StreamCreate, &[ptr(stream)])
}

/// `cudaStreamCreateWithFlags`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaStreamCreateWithFlags(stream: *mut *mut c_void, flags: c_uint) -> u32 {
    call(Op::StreamCreateWithFlags, &[ptr(stream), u64::from(flags)])
}

/// `cudaStreamCreateWithPriority`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaStreamCreateWithPriority(
    stream: *mut *mut c_void,
    flags: c_uint,
    priority: c_int,
) -> u32 {
    call(
        Op::StreamCreateWithPriority,
        &[ptr(stream), u64::from(flags), int(priority)],
    )
}

/// `cudaStreamDestroy`.
#[unsafe(no_mangle)]
pub extern "C" fn cudaStreamDestroy(stream: *mut c_void) -> u32 {
    call(Op::StreamDestroy, &[ptr(stream)])
}

with_ptsz! {
    /// `cudaStreamSynchronize`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamSynchronize / cudaStreamSynchronize_ptsz(
        stream: *mut c_void,
    ) -> u32
    [s = stream] {
        super::printf::after_sync(call(Op::StreamSynchronize, &[s]))
    }
}

with_ptsz! {
    /// `cudaStreamQuery`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamQuery / cudaStreamQuery_ptsz(stream: *mut c_void) -> u32
    [s = stream] {
        call(Op::StreamQuery, &[s])
    }
}

with_ptsz! {
    /// `cudaStreamWaitEvent`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamWaitEvent / cudaStreamWaitEvent_ptsz(
        stream: *mut c_void,
        event: *mut c_void,
        flags: c_uint,
    ) -> u32
    [s = stream] {
        call(Op::StreamWaitEvent, &[s, ptr(event), u64::from(flags)])
    }
}

with_ptsz! {
    /// `cudaStreamGetPriority`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamGetPriority / cudaStreamGetPriority_ptsz(
        stream: *mut c_void,
        priority: *mut c_int,
    ) -> u32
    [s = stream] {
        call(Op::StreamGetPriority, &[s, ptr(priority)])
    }
}

with_ptsz! {
    /// `cudaStreamGetFlags`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamGetFlags / cudaStreamGetFlags_ptsz(
        stream: *mut c_void,
        flags: *mut c_uint,
    ) -> u32
    [s = stream] {
        call(Op::StreamGetFlags, &[s, ptr(flags)])
    }
}

/// Whether `stream` names a stream (`cudaStreamQuery` answers success or not-ready).
fn stream_exists(stream: u64) -> u32 {
    match call(Op::StreamQuery, &[stream]) {
        600 => codes::SUCCESS,
        r => r,
    }
}

/// Writes `value` to a non-null `int` out-parameter.
///
/// # Safety
/// `out` must be null or valid for one `int` write.
unsafe fn put_int(out: *mut c_int, value: c_int) -> u32 {
    if out.is_null() {
        return crate::state::record(codes::INVALID_VALUE);
    }
    // SAFETY: non-null, and the caller guarantees it is writable.
    unsafe { out.write(value) };
    codes::SUCCESS
}

with_ptsz! {
    /// `cudaStreamIsCapturing`: crac does not support stream capture, so a stream that exists
    /// is never capturing (`cudaStreamCaptureStatusNone`).
    ///
    /// # Safety
    /// `status` must be null or valid for one `int` write.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cudaStreamIsCapturing / cudaStreamIsCapturing_ptsz(
        stream: *mut c_void,
        status: *mut c_int,
    ) -> u32
    [s = stream] {
        match stream_exists(s) {
            // SAFETY: the caller's contract.
            codes::SUCCESS => unsafe { put_int(status, 0) },
            r => r,
        }
    }
}

/// `cudaThreadExchangeStreamCaptureMode`: kept per thread (no capture ever starts).
///
/// # Safety
/// `mode` must be null or valid for one `int` read and write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cudaThreadExchangeStreamCaptureMode(mode: *mut c_int) -> u32 {
    if mode.is_null() {
        return crate::state::record(codes::INVALID_VALUE);
    }
    // SAFETY: non-null, and the caller guarantees it is readable and writable.
    let new = unsafe { mode.read() };
    if !(0..=2).contains(&new) {
        return crate::state::record(codes::INVALID_VALUE);
    }
    let old = crate::state::exchange_capture_mode(new);
    // SAFETY: as above.
    unsafe { mode.write(old) };
    codes::SUCCESS
}

with_ptsz! {
    /// `cudaStreamGetDevice`: the device of an existing stream (the current one: crac drives
    /// one).
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamGetDevice / cudaStreamGetDevice_ptsz(
        stream: *mut c_void,
        device: *mut c_int,
    ) -> u32
    [s = stream] {
        match stream_exists(s) {
            codes::SUCCESS => call(Op::GetDevice, &[ptr(device)]),
            r => r,
        }
    }
}

with_ptsz! {
    /// `cudaLaunchHostFunc`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaLaunchHostFunc / cudaLaunchHostFunc_ptsz(
        stream: *mut c_void,
        func: *const c_void,
        user_data: *mut c_void,
    ) -> u32
    [s = stream] {
        start_callback_thread();
        call(Op::LaunchHostFunc, &[s, ptr(func), ptr(user_data)])
    }
}

with_ptsz! {
    /// `cudaStreamAddCallback`.
    #[unsafe(no_mangle)]
    pub extern "C" fn cudaStreamAddCallback / cudaStreamAddCallback_ptsz(
        stream: *mut c_void,
        callback: *const c_void,
        user_data: *mut c_void,
        flags: c_uint,
    ) -> u32
    [s = stream] {
        start_callback_thread();
        call(
            Op::StreamAddCallback,
            &[s, ptr(callback), ptr(user_data), u64::from(flags)],
        )
    }
}

/// The signal crac's checkpoint stops program threads with (33, which the C library never blocks anyway).
const QUIESCE_SIGNAL: c_int = 33;

/// Starts the host-callback thread once (only under crac: outside, no callback is queued).
fn start_callback_thread() {
    static START: Once = Once::new();
    if !switch::under_crac() {
        return;
    }
    START.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("crac-callbacks".into())
            .spawn(callback_loop);
        if spawned.is_err() {
            sys::write_stderr(b"crac: cannot start the host-callback thread; cudaLaunchHostFunc and cudaStreamAddCallback callbacks will not run\n");
        }
    });
}

/// The host-callback thread: waits in the lower half for the next due callback, runs it here
/// (upper mode, the program's fs), reports it done.
fn callback_loop() {
    // The program's signals go to its own threads, as with NVIDIA's runtime threads; crac's
    // quiesce signal must reach this one too, so a checkpoint can stop it.
    let _mask = sys::block_all_signals_but(QUIESCE_SIGNAL);
    loop {
        let mut cb = HostCallback::default();
        match switch::call_callback(Op::HostCallbackNext, &[out(&mut cb)]) {
            codes::SUCCESS => {
                // SAFETY: the lower half hands back exactly the function and data the program
                // queued with cudaLaunchHostFunc/cudaStreamAddCallback, of the kind it says.
                unsafe { run_callback(&cb) };
                let _ = switch::call_callback(Op::HostCallbackDone, &[cb.token]);
            }
            600 => {}
            other => {
                let msg = format!(
                    "crac: waiting for host callbacks failed with CUDA error {other}; later callbacks will not run\n"
                );
                sys::write_stderr(msg.as_bytes());
                return;
            }
        }
    }
}

/// Calls one host callback.
///
/// # Safety
/// `cb.func` must be the program's function of the C type `cb.kind` says.
unsafe fn run_callback(cb: &HostCallback) {
    let Ok(addr) = usize::try_from(cb.func) else {
        return;
    };
    if addr == 0 {
        return;
    }
    let data = handle(cb.user_data);
    if cb.kind == CALLBACK_STREAM {
        type StreamCallback = unsafe extern "C" fn(*mut c_void, u32, *mut c_void);
        // SAFETY: the caller guarantees `addr` is a cudaStreamCallback_t.
        let f = unsafe { std::mem::transmute::<usize, StreamCallback>(addr) };
        // SAFETY: called as the program asked, with its own data.
        unsafe { f(handle(cb.stream), cb.status, data) };
    } else {
        type HostFn = unsafe extern "C" fn(*mut c_void);
        // SAFETY: the caller guarantees `addr` is a cudaHostFn_t.
        let f = unsafe { std::mem::transmute::<usize, HostFn>(addr) };
        // SAFETY: called as the program asked, with its own data.
        unsafe { f(data) };
    }
}
