//! The raw system calls behind fd capture and restore: one call per helper, each turning the
//! return code into [`io::Error`] at once. Nothing else in `fds` uses `unsafe`.
//!
//! Most helpers take a raw fd *number* rather than a borrowed fd: capture asks about the
//! program's numbers (which crac does not own, and on which `fstat`, `fcntl` queries and
//! `lseek(…, SEEK_CUR)` are harmless), and restore deliberately replaces whatever sits at the
//! program's numbers. Newly created fds come back as [`OwnedFd`]. The event fds' calls are in
//! `events.rs`, the sockets' in `sockets.rs`.

mod events;
mod sockets;

pub use events::*;
pub use sockets::*;

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a `-1`-on-error return into a result.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Wraps a freshly returned fd.
fn owned(rc: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(rc)?;
    // SAFETY: `fd` was just returned by the kernel for a call this module made, so it is open
    // and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What `fstat` says about an fd (the fields capture uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `st_mode`.
    pub mode: u32,
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_rdev`.
    pub rdev: u64,
    /// `st_size`.
    pub size: u64,
}

impl Stat {
    /// The file type bits (`S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// `fstat` of fd number `fd`.
pub fn fstat(fd: RawFd) -> io::Result<Stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` has room for one stat, which fstat fills on success (checked before it is
    // read); a number that is not open only makes it fail with EBADF.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(Stat {
        mode: st.st_mode,
        dev: st.st_dev,
        ino: st.st_ino,
        rdev: st.st_rdev,
        size: u64::try_from(st.st_size).unwrap_or(0),
    })
}

/// `fcntl(fd, F_GETFL)`: the file status flags and access mode.
pub fn status_flags(fd: RawFd) -> io::Result<i32> {
    // SAFETY: F_GETFL only reads the flags of the number, if open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

/// `fcntl(fd, F_SETFL, flags)`: sets the status flags the kernel lets change (`O_APPEND`,
/// `O_NONBLOCK`, `O_ASYNC`, `O_DIRECT`, `O_NOATIME`); other bits are ignored.
pub fn set_status_flags(fd: RawFd, flags: i32) -> io::Result<()> {
    // SAFETY: F_SETFL changes only the status flags of the description; no memory is passed.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

/// Whether `FD_CLOEXEC` is set on fd number `fd`.
pub fn cloexec(fd: RawFd) -> io::Result<bool> {
    // SAFETY: F_GETFD only reads the descriptor flags.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

/// The file offset of `fd` (`lseek(fd, 0, SEEK_CUR)`, which does not move it).
pub fn offset(fd: RawFd) -> io::Result<u64> {
    // SAFETY: SEEK_CUR with 0 only reports the offset.
    let off = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    u64::try_from(off).map_err(|_| io::Error::last_os_error())
}

/// Moves the file offset of `fd` to `off`.
pub fn seek(fd: RawFd, off: u64) -> io::Result<()> {
    let off = i64::try_from(off).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek moves the offset of the description; no memory is passed.
    let rc = unsafe { libc::lseek(fd, off, libc::SEEK_SET) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How the open file descriptions of fd numbers `a` and `b` of this process compare in the
/// kernel's (obfuscated but consistent) order: `Equal` when they are the same description
/// (`kcmp(KCMP_FILE)`). Fails with `ENOSYS` or `EPERM` where kcmp is not available.
pub fn description_order(a: RawFd, b: RawFd) -> io::Result<std::cmp::Ordering> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: getpid has no preconditions.
    let pid = libc::c_long::from(unsafe { libc::getpid() });
    // SAFETY: kcmp compares two fds of this process by their kernel objects; it takes no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_FILE,
            libc::c_long::from(a),
            libc::c_long::from(b),
        )
    };
    match rc {
        0 => Ok(std::cmp::Ordering::Equal),
        1 => Ok(std::cmp::Ordering::Less),
        2 => Ok(std::cmp::Ordering::Greater),
        r if r < 0 => Err(io::Error::last_os_error()),
        _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
    }
}

/// A path as a C string, refusing interior NULs.
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `open(path, flags | O_CLOEXEC)`, never creating the file.
pub fn open(path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = c_path(path)?;
    let flags = (flags & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL)) | libc::O_CLOEXEC;
    // SAFETY: `c` is a NUL-terminated path valid for the call; without O_CREAT no mode is read.
    owned(unsafe { libc::open(c.as_ptr(), flags) })
}

/// Duplicates `fd` to the lowest free number at or above `min`, close-on-exec
/// (`F_DUPFD_CLOEXEC`). Never replaces an open fd.
pub fn dup_at_least(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only takes a free number; it never closes anything.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// Makes fd number `target` refer to the description of `fd` (`dup3`), closing whatever was
/// open at `target` first: restore's contract is that the program's numbers are the program's,
/// even when crac's restarter had something there.
///
/// `fd` must not already be at `target`: dropping it afterwards would close the number just
/// placed (restore makes every object above the recorded numbers, so this is refused, never
/// papered over).
pub fn place(fd: &OwnedFd, target: RawFd, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    if fd.as_raw_fd() == target {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the fd is already at its target number, and dropping it would close it",
        ));
    }
    // SAFETY: dup3 closes `target` (no memory involved) and makes it a duplicate of `fd`, which
    // is open for the call. Replacing `target` is what restore is for.
    check(unsafe { libc::dup3(fd.as_raw_fd(), target, flags) }).map(drop)
}

/// Sets or clears `FD_CLOEXEC` on fd number `fd`.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD changes only the descriptor flags.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

/// Closes fd number `fd`, which restore found open where the program had nothing (fds 0–2
/// the program had closed). Errors are ignored: a number that is not open is the goal anyway.
pub fn close_number(fd: RawFd) {
    // SAFETY: closing a number has no memory effects; the caller (restore) owns the whole fd
    // table below crac's range by contract.
    unsafe {
        libc::close(fd);
    }
}

/// `pipe2(O_CLOEXEC)`: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two numbers pipe2 writes on success.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded: both numbers are new fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `F_GETPIPE_SZ`: the pipe's capacity in bytes.
pub fn pipe_capacity(fd: RawFd) -> io::Result<u32> {
    // SAFETY: F_GETPIPE_SZ only reads the pipe's size.
    let n = check(unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) })?;
    u32::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// `F_SETPIPE_SZ`: resizes the pipe (the kernel rounds up to a power-of-two number of pages).
pub fn set_pipe_capacity(fd: RawFd, bytes: u32) -> io::Result<()> {
    let bytes =
        libc::c_int::try_from(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: F_SETPIPE_SZ resizes the pipe buffer; no memory of ours is involved.
    check(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes) }).map(drop)
}

/// `tee(from, to, len, SPLICE_F_NONBLOCK)`: copies up to `len` bytes waiting in pipe `from`
/// into pipe `to` without consuming them. 0 means `from` holds nothing.
pub fn tee(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: tee moves page references between two pipes inside the kernel; no memory of
    // ours is read or written.
    let n = unsafe { libc::tee(from, to, len, libc::SPLICE_F_NONBLOCK) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `ioctl(FIONREAD)`: how many bytes wait to be read from pipe or socket `fd`.
pub fn bytes_waiting(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`, valid for writes.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) })?;
    usize::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// `read` into `buf`.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length, which is all the kernel writes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `write` from `buf`.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length, which is all the kernel reads.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes all of `buf`, failing on a short write that makes no progress.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets the file-mode creation mask, returning the old one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(mask) }
}

/// `prlimit(0, resource)`: `(soft, hard)` (`u64::MAX` = unlimited).
pub fn get_rlimit(resource: u32) -> io::Result<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a null new limit only reads the current one into `old`, valid for writes.
    check(unsafe { libc::prlimit64(0, resource, std::ptr::null(), &mut old) })?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// `prlimit(0, resource, soft, hard)`.
pub fn set_rlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `new` is valid for the call; the old limit is not asked for (null).
    check(unsafe { libc::prlimit64(0, resource, &new, std::ptr::null_mut()) }).map(drop)
}
