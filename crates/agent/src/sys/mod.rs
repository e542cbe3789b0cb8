//! The agent's raw system calls: one call per helper, each turning the return code into
//! [`io::Error`] at once. Nothing outside this module uses `unsafe`.

pub mod memory;
pub mod process;
pub mod quiesce;
pub mod resume;

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The result of a raw system call (`crac_loader::arch::x86_64::syscall*`): the kernel's value,
/// or the error its `-errno` (-4095..=-1) names.
pub(crate) fn errno(rc: i64) -> io::Result<u64> {
    if (-4095..0).contains(&rc) {
        Err(io::Error::from_raw_os_error(
            i32::try_from(-rc).unwrap_or(libc::EINVAL),
        ))
    } else {
        Ok(rc as u64)
    }
}

/// Credentials of the process at the other end of a Unix socket (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// The peer's process id.
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// Blocks every signal in the calling thread and returns the mask it had before.
pub fn block_all_signals() -> io::Result<libc::sigset_t> {
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset writes a full sigset_t into the pointer, which points at enough
    // writable space for one; it cannot fail for a valid pointer.
    let all = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        all.assume_init()
    };
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `all` is an initialised set; `old` points at space for one set, which
    // pthread_sigmask fills on success (checked before it is read).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_sigmask returned 0, so it wrote the previous mask into `old`.
    Ok(unsafe { old.assume_init() })
}

/// Sets the calling thread's signal mask to `mask`.
pub fn set_signal_mask(mask: &libc::sigset_t) -> io::Result<()> {
    // SAFETY: `mask` is a valid, initialised sigset_t borrowed for the call; the old mask is not
    // asked for (null).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Whether `signal` is blocked in the calling thread.
#[cfg(test)]
pub fn signal_is_blocked(signal: i32) -> io::Result<bool> {
    let mut cur = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a null new mask only reads the current one into `cur`, which has room for it.
    let rc =
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), cur.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_sigmask returned 0 and wrote the current mask; sigismember only reads it.
    let member = unsafe { libc::sigismember(cur.as_ptr(), signal) };
    if member < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(member == 1)
}

/// The credentials of the peer of the connected Unix socket `fd`.
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(size_of::<libc::ucred>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is an open descriptor borrowed for the call; `cred` and `len` are valid for
    // writes and `len` holds the size of `cred`, so the kernel writes at most that much.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Sends bytes on the connected socket `fd` without raising `SIGPIPE` if the peer is gone
/// (`MSG_NOSIGNAL`): the program may have `SIGPIPE` at its default action, and a signal raised
/// on the agent thread, where every signal is blocked, would stay pending forever.
pub fn send_nosignal(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `fd` is an open descriptor borrowed for the call; `buf` is valid for reads of
    // `buf.len()` bytes, which is all the kernel reads.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// What identifies an open file: device and inode of the file an fd refers to (`fstat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file that fd number `fd` refers to right now; `EBADF` when the number is
/// not open. Takes a raw number because the point is to ask about numbers the program may have
/// closed or reused: `fstat` on any number is harmless.
pub fn file_id(fd: RawFd) -> io::Result<FileId> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points at space for one stat, which fstat fills on success (checked before
    // it is read); an fd number that is not open only makes fstat fail with EBADF.
    let rc = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// Closes fd number `fd`, ignoring every error: unlike dropping an `OwnedFd`, a number that is
/// already closed is not fatal here.
///
/// # Safety
/// `fd` must be crac's own open fd (checked with [`file_id`] just before) and nothing may use
/// the number afterwards.
pub unsafe fn close(fd: RawFd) {
    // SAFETY: the caller guarantees the number is ours and unused afterwards; close has no
    // memory effects, and its result is deliberately ignored (EBADF/EINTR leave nothing to do).
    unsafe {
        libc::close(fd);
    }
}

/// Waits until fd number `fd` is readable or no longer valid, or `timeout_ms` pass, and returns
/// the poll events (`POLLNVAL` when the number is not open; 0 on timeout). Unlike a blocking
/// `accept`, which reserves the lowest free fd number for the whole wait, `poll` holds no fd
/// number.
pub fn wait_readable(fd: RawFd, timeout_ms: i32) -> io::Result<i16> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the duration of the call; poll on a number that is
    // not open reports POLLNVAL instead of failing.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pfd.revents)
}

/// Accepts one connection on the listening socket `fd`, close-on-exec (`accept4`). The new fd
/// takes the lowest free number, which is the program's; the caller moves it to crac's range at
/// once.
pub fn accept_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: null address and length pointers ask for no peer address; a number that is not
    // a listening socket only makes accept4 fail.
    let new = unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The names in the directory open at `dir` (one `getdents64` call per buffer full), without
/// `.` and `..`. Unlike `std::fs::read_dir`, this opens nothing: the caller chose where `dir`
/// lives (crac's high fd range).
pub fn dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        // SAFETY: `dir` is an open fd borrowed for the call; `buf` is valid for writes of its
        // length, which is all the kernel writes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        if n == 0 {
            return Ok(names);
        }
        // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name NUL-terminated.
        const NAME_AT: usize = 19;
        let mut at = 0;
        while at + NAME_AT <= n {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            // A record shorter than its fixed part would make the name slice below panic.
            if reclen < NAME_AT || at + reclen > n {
                return Err(io::Error::from(io::ErrorKind::InvalidData));
            }
            let name = &buf[at + NAME_AT..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                names.push(std::ffi::OsStr::from_bytes(name).to_owned());
            }
            at += reclen;
        }
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The kernel thread id of the calling thread.
#[cfg(test)]
pub fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn dir_names_lists_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut want: Vec<String> = (0..300).map(|i| format!("file-{i:04}")).collect();
        for n in &want {
            std::fs::write(tmp.path().join(n), b"").unwrap();
        }
        let dir = std::fs::File::open(tmp.path()).unwrap();
        let mut got: Vec<String> = dir_names(dir.as_fd())
            .unwrap()
            .into_iter()
            .map(|n| n.into_string().unwrap())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn peer_cred_of_a_socketpair_is_us() {
        let (a, _b) = UnixStream::pair().unwrap();
        let cred = peer_cred(a.as_fd()).unwrap();
        assert_eq!(cred.uid, effective_uid());
        assert_eq!(cred.pid, i32::try_from(std::process::id()).unwrap());
    }

    #[test]
    fn send_to_a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(send_nosignal(a.as_fd(), b"hi").unwrap(), 2);
        drop(b);
        let err = send_nosignal(a.as_fd(), b"hi").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }

    #[test]
    fn blocking_all_signals_and_restoring() {
        std::thread::spawn(|| {
            // Threads of this binary start with every signal blocked (the loader's
            // pthread_create does that for lower threads): start from an empty mask.
            // SAFETY: sigemptyset fills a valid local set.
            let empty = unsafe {
                let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
                libc::sigemptyset(set.as_mut_ptr());
                set.assume_init()
            };
            set_signal_mask(&empty).unwrap();
            assert!(!signal_is_blocked(libc::SIGTERM).unwrap());
            let old = block_all_signals().unwrap();
            assert!(signal_is_blocked(libc::SIGTERM).unwrap());
            assert!(signal_is_blocked(libc::SIGUSR1).unwrap());
            set_signal_mask(&old).unwrap();
            assert!(!signal_is_blocked(libc::SIGTERM).unwrap());
            assert!(thread_id() > 0);
        })
        .join()
        .unwrap();
    }
}
