//! Device `printf` output on its way to the program's own `stdout` stream.
//!
//! CUDA prints device output at synchronising calls through the program's C library, so it
//! lands in order with the program's host output even when `stdout` is a pipe. The lower half
//! has its own C library, so the bytes are kept here until the shim takes them
//! (`__crac_printf_take`) and writes them with the program's `fwrite`. Until the shim first
//! asks, nothing is kept: output goes straight to fd 1, so a shim that never drains it loses
//! nothing.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;

/// Most bytes kept for the shim; more is dropped, as CUDA's printf FIFO (1 MiB by default)
/// drops what does not fit.
const MAX_PENDING: usize = 64 << 20;

/// Device output waiting for the shim.
#[derive(Debug, Default)]
pub struct DevicePrintf {
    buffered: AtomicBool,
    pending: Mutex<Vec<u8>>,
}

impl DevicePrintf {
    /// A `Write` for the backend's printf output (`crac_sim::Sim::set_printf`).
    pub fn writer(self: &Arc<Self>) -> PrintfWriter {
        PrintfWriter(Arc::clone(self))
    }

    /// Up to `cap` pending bytes, oldest first; from now on output is kept for the shim.
    pub fn take(&self, cap: usize) -> Vec<u8> {
        self.buffered.store(true, Ordering::SeqCst);
        let mut pending = lock(&self.pending);
        let n = cap.min(pending.len());
        pending.drain(..n).collect()
    }
}

/// The backend's end of a [`DevicePrintf`].
#[derive(Debug)]
pub struct PrintfWriter(Arc<DevicePrintf>);

impl Write for PrintfWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.buffered.load(Ordering::SeqCst) {
            let mut pending = lock(&self.0.pending);
            let room = MAX_PENDING.saturating_sub(pending.len());
            pending.extend_from_slice(&buf[..buf.len().min(room)]);
            Ok(buf.len())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(buf)?;
            out.flush()?;
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_once_the_shim_asks_and_taken_in_order() {
        let p = Arc::new(DevicePrintf::default());
        let mut w = p.writer();
        assert!(p.take(10).is_empty());
        w.write_all(b"hello ").expect("write");
        w.write_all(b"world\n").expect("write");
        assert_eq!(p.take(3), b"hel");
        assert_eq!(p.take(100), b"lo world\n");
        assert!(p.take(100).is_empty());
    }
}
