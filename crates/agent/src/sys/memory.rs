//! Raw memory for the checkpoint and the restart: the program's bytes as slices (written to the
//! image without a copy), and the fixed-address mappings the restorer makes for the program.
//!
//! Mappings here go straight to the kernel with raw system calls, never through the `mmap`
//! symbol the `crac` executable exports, which would record them as lower half.

use std::io;

use crac_core::interval::{Interval, IntervalSet};
use crac_core::procfs::MapsEntry;

use super::errno;
use crac_loader::arch::x86_64 as arch;

const SYS_MMAP: i64 = 9;
const SYS_MPROTECT: i64 = 10;
const SYS_MUNMAP: i64 = 11;

/// The program's readable memory while its threads are stopped, as `/proc/self/maps` showed it
/// after they stopped: slices of it can be handed to the image writer without a copy.
#[derive(Debug)]
pub struct StoppedMemory<'a> {
    _stopped: &'a super::quiesce::AllParked,
    readable: IntervalSet,
}

impl<'a> StoppedMemory<'a> {
    /// The readable mappings of `maps` (read after every program thread parked).
    pub fn new(stopped: &'a super::quiesce::AllParked, maps: &[MapsEntry]) -> Self {
        let readable = maps
            .iter()
            .filter(|e| e.perms.read && !e.is_kernel())
            .map(|e| e.range)
            .collect();
        Self {
            _stopped: stopped,
            readable,
        }
    }

    /// The bytes at `[addr, addr + len)`, when the range lies in readable memory.
    pub fn bytes(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let end = addr.checked_add(len)?;
        if !self.readable.covers(&Interval::new(addr, end)) {
            return None;
        }
        let n = usize::try_from(len).ok()?;
        let ptr = usize::try_from(addr).ok()? as *const u8;
        // SAFETY: the range is mapped readable (it lies in readable mappings listed after every
        // program thread parked: `AllParked` proves they are parked and stay so while it is
        // borrowed), and nothing unmaps or writes it meanwhile: the program's threads are
        // stopped and crac's code never touches program memory during a checkpoint.
        Some(unsafe { std::slice::from_raw_parts(ptr, n) })
    }
}

/// A range this process reserved with [`reserve`]: nothing but the restorer maps there, so the
/// restorer may replace what it mapped in it at will.
#[derive(Debug)]
pub struct Reservation {
    start: u64,
    end: u64,
}

/// What a mapping is made of.
#[derive(Clone, Copy, Debug)]
pub enum Backing {
    /// Zero pages, private.
    Anon,
    /// A file (or memfd) at an offset, shared or private.
    File {
        /// The open file.
        fd: i32,
        /// Offset of the mapping's first byte.
        offset: u64,
        /// `MAP_SHARED` rather than `MAP_PRIVATE`.
        shared: bool,
    },
}

/// Reserves `[addr, addr + len)` with a PROT_NONE mapping that replaces nothing
/// (`MAP_FIXED_NOREPLACE`); `EEXIST` when something is there.
pub fn reserve(addr: u64, len: u64) -> io::Result<Reservation> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let flags = flags | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let got = errno(unsafe {
        arch::syscall6(SYS_MMAP, addr, len, 0, u64::from(flags as u32), u64::MAX, 0)
    })?;
    if got != addr {
        // An old kernel took the flag as a hint: undo and report the collision.
        // SAFETY: `got` is the mapping just made, used by nothing.
        let _ = errno(unsafe { arch::syscall4(SYS_MUNMAP, got, len, 0, 0) });
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(Reservation {
        start: addr,
        end: addr + len,
    })
}

impl Reservation {
    fn check(&self, addr: u64, len: u64) -> io::Result<()> {
        let inside = addr >= self.start && addr.checked_add(len).is_some_and(|e| e <= self.end);
        if inside && addr % 4096 == 0 && len % 4096 == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        }
    }

    /// Maps `[addr, addr + len)` (inside the reservation) fixed, with `prot`, from `backing`.
    pub fn map(&self, addr: u64, len: u64, prot: i32, backing: Backing) -> io::Result<()> {
        self.check(addr, len)?;
        let (kind, fd, offset) = match backing {
            Backing::Anon => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0),
            Backing::File { fd, offset, shared } => {
                let kind = if shared {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                };
                (kind, fd, offset)
            }
        };
        let flags = kind | libc::MAP_FIXED;
        // SAFETY: the range lies in this reservation (checked), which only the restorer maps;
        // no thread of the program exists yet to use what is replaced.
        errno(unsafe {
            arch::syscall6(
                SYS_MMAP,
                addr,
                len,
                u64::from(prot as u32),
                u64::from(flags as u32),
                i64::from(fd) as u64,
                offset,
            )
        })
        .map(drop)
    }

    /// Sets the protection of `[addr, addr + len)` (inside the reservation).
    pub fn protect(&self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        self.check(addr, len)?;
        // SAFETY: the range is the restorer's own (checked); nothing runs in it yet.
        errno(unsafe { arch::syscall4(SYS_MPROTECT, addr, len, u64::from(prot as u32), 0) })
            .map(drop)
    }

    /// Makes `[addr, addr + len)` (inside the reservation, already mapped) readable and
    /// writable and hands it to `fill`; the caller sets the final protection afterwards.
    pub fn fill<R>(&self, addr: u64, len: u64, fill: impl FnOnce(&mut [u8]) -> R) -> io::Result<R> {
        self.protect(addr, len, libc::PROT_READ | libc::PROT_WRITE)?;
        let n = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the range is mapped read-write (mprotect just succeeded on all of it), lies
        // in the restorer's own reservation, and no other thread exists to touch it while the
        // slice lives (the borrow ends with `fill`).
        let ptr = usize::try_from(addr).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?
            as *mut u8;
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, n) };
        Ok(fill(bytes))
    }
}

/// A memfd of `len` bytes (for shared anonymous memory), close-on-exec.
pub fn memfd(len: u64) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create reads a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"crac-shared".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd owned by nobody else.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: ftruncate on our own fd.
    if unsafe { libc::ftruncate(fd, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}
