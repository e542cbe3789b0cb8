//! The program's memory as the lower-half runtime sees it: the seam between the runtime's safe
//! semantics and the raw pointers the program passes as CUDA arguments.
//!
//! The `crac` executable implements [`HostMemory`] over real addresses (the only place that
//! dereferences program pointers); tests implement it over a buffer. Every method fails rather
//! than touching an address it can tell is bad (null, inside the device window).

use crac_gpu::GpuError;
use thiserror::Error;

/// A program pointer the runtime cannot use.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HostFault {
    /// Null, or a range that wraps.
    #[error("host pointer {addr:#x} (+{len} bytes) is null or wraps the address space")]
    Null {
        /// The address.
        addr: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// The range is not program memory (unmapped, or device memory passed as host memory).
    #[error("host range {addr:#x}+{len} is not host memory the program owns")]
    NotHost {
        /// The address.
        addr: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// A C string with no NUL within the limit.
    #[error("string at {addr:#x} has no terminating NUL within {max} bytes")]
    Unterminated {
        /// The address.
        addr: u64,
        /// The limit.
        max: usize,
    },
}

impl From<HostFault> for GpuError {
    fn from(f: HostFault) -> GpuError {
        GpuError::InvalidValue(f.to_string())
    }
}

/// Access to the calling program's memory.
pub trait HostMemory {
    /// Runs `f` over the `len` bytes at `addr`, read in place.
    fn with_bytes(&self, addr: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), HostFault>;

    /// Runs `f` over the `len` bytes at `addr`, writable in place.
    fn with_bytes_mut(
        &self,
        addr: u64,
        len: u64,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), HostFault>;

    /// Copies `buf.len()` bytes from `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), HostFault> {
        self.with_bytes(addr, buf.len() as u64, &mut |src| buf.copy_from_slice(src))
    }

    /// Copies `data` to `addr`.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), HostFault> {
        self.with_bytes_mut(addr, data.len() as u64, &mut |dst| {
            dst.copy_from_slice(data)
        })
    }

    /// The bytes of the NUL-terminated string at `addr`, without the NUL, at most `max`.
    fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, HostFault> {
        let mut out = Vec::new();
        let mut at = addr;
        // Read in chunks that never cross a page boundary, so a short string at the end of a
        // mapping never reads into the next page.
        while out.len() <= max {
            let left = u64::try_from(max - out.len() + 1).unwrap_or(u64::MAX);
            let room = (4096 - (at % 4096)).min(left);
            let mut chunk = vec![0u8; usize::try_from(room).unwrap_or(4096)];
            self.read(at, &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|b| *b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            at += room;
        }
        Err(HostFault::Unterminated { addr, max })
    }
}

/// Reads a little-endian `u64` at `addr`.
pub fn read_u64(mem: &dyn HostMemory, addr: u64) -> Result<u64, HostFault> {
    let mut b = [0u8; 8];
    mem.read(addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Writes a little-endian `u64` at `addr`.
pub fn write_u64(mem: &dyn HostMemory, addr: u64, v: u64) -> Result<(), HostFault> {
    mem.write(addr, &v.to_le_bytes())
}

/// Writes a little-endian `u32`/`i32` at `addr`.
pub fn write_u32(mem: &dyn HostMemory, addr: u64, v: u32) -> Result<(), HostFault> {
    mem.write(addr, &v.to_le_bytes())
}

/// A flat buffer standing for program memory at a fixed base address: for tests of the
/// runtime without a program, and for benchmarks.
pub struct BufferMemory {
    base: u64,
    bytes: std::sync::Mutex<Vec<u8>>,
}

impl BufferMemory {
    /// `len` zero bytes at `base`.
    pub fn new(base: u64, len: usize) -> BufferMemory {
        BufferMemory {
            base,
            bytes: std::sync::Mutex::new(vec![0; len]),
        }
    }

    /// The first address.
    pub fn base(&self) -> u64 {
        self.base
    }

    fn range(&self, addr: u64, len: u64, have: usize) -> Result<std::ops::Range<usize>, HostFault> {
        let bad = HostFault::NotHost { addr, len };
        if addr == 0 {
            return Err(HostFault::Null { addr, len });
        }
        let start = addr.checked_sub(self.base).ok_or(bad.clone())?;
        let end = start.checked_add(len).ok_or(bad.clone())?;
        if end > have as u64 {
            return Err(bad);
        }
        let start = usize::try_from(start).map_err(|_| bad.clone())?;
        let end = usize::try_from(end).map_err(|_| bad)?;
        Ok(start..end)
    }
}

impl HostMemory for BufferMemory {
    fn with_bytes(&self, addr: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), HostFault> {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.range(addr, len, bytes.len())?;
        f(&bytes[r]);
        Ok(())
    }

    fn with_bytes_mut(
        &self,
        addr: u64,
        len: u64,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), HostFault> {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.range(addr, len, bytes.len())?;
        f(&mut bytes[r]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_memory_checks_ranges_and_reads_strings() {
        let m = BufferMemory::new(0x1000, 0x2000);
        m.write(0x1ffe, b"ab\0").expect("write across a page");
        assert_eq!(m.read_cstr(0x1ffe, 100).expect("string"), b"ab");
        m.write(0x1000, b"abcd\0").expect("write");
        assert!(matches!(
            m.read_cstr(0x1000, 3),
            Err(HostFault::Unterminated { .. })
        ));
        assert_eq!(m.read_cstr(0x1000, 4).expect("fits"), b"abcd");
        assert_eq!(
            m.write(0x2fff, b"xy"),
            Err(HostFault::NotHost {
                addr: 0x2fff,
                len: 2
            })
        );
        assert!(matches!(
            m.read(0, &mut [0u8; 1]),
            Err(HostFault::Null { .. })
        ));
        write_u64(&m, 0x1008, 0xdead_beef).expect("write");
        assert_eq!(read_u64(&m, 0x1008), Ok(0xdead_beef));
    }
}
