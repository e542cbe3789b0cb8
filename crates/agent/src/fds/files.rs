//! Regular files, directories and character devices: saved by path, reopened by path.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crac_core::image::FdKind;

use super::FdError;
use super::capture::Probe;
use super::sys;

/// Character devices that are safe to reopen by path: stateless ones and terminals.
fn reopenable_device(path: &str) -> bool {
    matches!(
        path,
        "/dev/null" | "/dev/zero" | "/dev/full" | "/dev/random" | "/dev/urandom" | "/dev/tty"
    ) || path
        .strip_prefix("/dev/pts/")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The path of `p` as UTF-8, or the error naming it.
fn utf8_path(p: &Probe) -> Result<String, FdError> {
    p.link
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| FdError::PathNotUtf8 {
            fd: p.fd,
            path: p.link_lossy(),
        })
}

/// `/proc/PID/…` of this process as `/proc/self/…`, so the restarted process (a new pid)
/// opens its own.
fn own_proc_path(path: &str, pid: u32) -> String {
    match path
        .strip_prefix("/proc/")
        .and_then(|rest| rest.strip_prefix(pid.to_string().as_str()))
    {
        Some(tail) if tail.is_empty() || tail.starts_with('/') => format!("/proc/self{tail}"),
        _ => path.to_owned(),
    }
}

/// A regular file or directory.
pub(super) fn capture_file(p: &Probe) -> Result<FdKind, FdError> {
    let link = p.link.as_bytes();
    if link.starts_with(b"/memfd:") {
        return Err(FdError::Unsupported {
            fd: p.fd,
            what: format!("a memfd ({})", p.link_lossy()),
            short: "memfds",
        });
    }
    if !link.starts_with(b"/") {
        return Err(FdError::Unsupported {
            fd: p.fd,
            what: format!("a file with no path ({})", p.link_lossy()),
            short: "it",
        });
    }
    let path = utf8_path(p)?;
    if let Some(gone) = path.strip_suffix(" (deleted)") {
        // A file really named "… (deleted)" still exists under that name; anything else is gone.
        if !Path::new(&path).exists() {
            return Err(FdError::DeletedFile {
                fd: p.fd,
                path: gone.to_owned(),
            });
        }
    }
    // O_PATH fds have no offset; neither do some special files. They restore at 0.
    let offset = sys::offset(p.fd).unwrap_or(0);
    Ok(FdKind::File {
        path: own_proc_path(&path, std::process::id()),
        flags: p.flags,
        offset,
        size: p.st.size,
    })
}

/// A character device: reopened by path if it is stateless or a terminal.
pub(super) fn capture_device(p: &Probe) -> Result<FdKind, FdError> {
    let path = utf8_path(p)?;
    if reopenable_device(&path) {
        return Ok(FdKind::Device {
            path,
            flags: p.flags,
        });
    }
    let (what, short) = if path.starts_with("/dev/nvidia") {
        (
            format!("an NVIDIA device ({path}) the program opened itself"),
            "device files the program opens itself",
        )
    } else {
        (format!("the character device {path}"), "this device")
    };
    Err(FdError::Unsupported {
        fd: p.fd,
        what,
        short,
    })
}

/// Reopens a [`FdKind::File`] at its offset, checking that a file whose offset was within its
/// `size` at checkpoint time is still long enough (files of size 0 with an offset, as in
/// `/proc`, are not checked).
pub(super) fn restore_file(
    fd: i32,
    path: &str,
    flags: i32,
    offset: u64,
    size: u64,
) -> Result<OwnedFd, FdError> {
    let reopen = |source| FdError::Reopen {
        fd,
        path: path.to_owned(),
        source,
    };
    let file = sys::open(Path::new(path), flags).map_err(reopen)?;
    let st = sys::fstat(file.as_raw_fd()).map_err(reopen)?;
    if st.file_type() == libc::S_IFREG && offset <= size && st.size < offset {
        return Err(FdError::FileShrunk {
            fd,
            path: path.to_owned(),
            offset,
            size: st.size,
        });
    }
    if offset != 0 {
        sys::seek(file.as_raw_fd(), offset).map_err(reopen)?;
    }
    Ok(file)
}

/// Reopens a [`FdKind::Device`].
pub(super) fn restore_device(fd: i32, path: &str, flags: i32) -> Result<OwnedFd, FdError> {
    // A terminal must not become the restarter's controlling tty by accident.
    sys::open(Path::new(path), flags | libc::O_NOCTTY).map_err(|source| FdError::Reopen {
        fd,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_proc_paths_become_self() {
        assert_eq!(own_proc_path("/proc/42/maps", 42), "/proc/self/maps");
        assert_eq!(own_proc_path("/proc/42", 42), "/proc/self");
        assert_eq!(own_proc_path("/proc/421/maps", 42), "/proc/421/maps");
        assert_eq!(own_proc_path("/proc/7/maps", 42), "/proc/7/maps");
        assert_eq!(own_proc_path("/tmp/proc/42/x", 42), "/tmp/proc/42/x");
    }

    #[test]
    fn reopenable_devices() {
        for ok in ["/dev/null", "/dev/urandom", "/dev/tty", "/dev/pts/12"] {
            assert!(reopenable_device(ok), "{ok}");
        }
        for no in [
            "/dev/nvidia0",
            "/dev/pts/",
            "/dev/pts/ptmx",
            "/dev/sda",
            "/dev/nullx",
        ] {
            assert!(!reopenable_device(no), "{no}");
        }
    }
}
