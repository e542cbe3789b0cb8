//! Device `printf` output: the lower half keeps it (once asked, at load) and the shim writes it
//! to the program's own `stdout` stream after each synchronising call and at exit, as CUDA
//! does, so it lands in order with the program's host output even when stdout is buffered.

use crac_abi::Op;

use super::{out, ptr};
use crate::{switch, sys};

/// Bytes taken per crossing.
const CHUNK: usize = 16 << 10;

/// Asks the lower half to keep device output for the shim from now on (under crac only), and
/// drains it at exit.
pub fn start() {
    if !switch::under_crac() {
        return;
    }
    let mut len = 0usize;
    let _ = switch::call(Op::PrintfTake, &[0, 0, out(&mut len)]);
    sys::at_exit(drain_at_exit);
}

extern "C" fn drain_at_exit() {
    drain();
}

/// Writes the pending device output to the program's stdout. Never changes the thread's last
/// error.
pub fn drain() {
    if !switch::under_crac() {
        return;
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut len = 0usize;
        let r = switch::call(
            Op::PrintfTake,
            &[ptr(buf.as_mut_ptr()), CHUNK as u64, out(&mut len)],
        );
        let len = len.min(CHUNK);
        if r != 0 || len == 0 {
            return;
        }
        sys::write_program_stdout(&buf[..len]);
        if len < CHUNK {
            return;
        }
    }
}

/// Drains device output after a synchronising call; returns the call's result.
pub fn after_sync(result: u32) -> u32 {
    drain();
    result
}
