//! Reading and writing the program's memory through `/proc/self/mem`, which ignores page
//! protections and reports an unmapped or unbacked page as an error instead of a fault: for
//! memory the agent cannot or must not touch directly (regions without `PROT_READ`, file pages
//! past the end of their file, another thread's signal frame, its TCB).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

use crate::lower::LowerHalf;

/// `/proc/self/mem`, opened read-write.
#[derive(Debug)]
pub struct ProcMem {
    file: File,
}

impl ProcMem {
    /// Opens it and moves the fd to crac's range at once (the program's threads may be running).
    pub fn open(lower: &dyn LowerHalf) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/self/mem")?;
        let file = File::from(lower.protect_fd(OwnedFd::from(file))?);
        Ok(Self { file })
    }

    /// Opens it where it lands (no program is running: the restorer, tests).
    pub fn open_plain() -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/self/mem")?;
        Ok(Self { file })
    }

    /// Wraps an already open `/proc/self/mem`.
    pub fn from_file(file: File) -> Self {
        Self { file }
    }

    /// The fd, to move it elsewhere.
    pub fn into_fd(self) -> OwnedFd {
        OwnedFd::from(self.file)
    }

    /// Reads `buf.len()` bytes at `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, addr)
    }

    /// Reads one little-endian u64 at `addr`.
    pub fn read_u64(&self, addr: u64) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes `buf` at `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, addr)
    }

    /// Writes one little-endian u64 at `addr`.
    pub fn write_u64(&self, addr: u64, v: u64) -> io::Result<()> {
        self.write(addr, &v.to_le_bytes())
    }
}

impl AsRawFd for ProcMem {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
