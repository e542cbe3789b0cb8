//! Where a launched process's control socket lives, and making that place safe.
//!
//! The socket is `$XDG_RUNTIME_DIR/crac/<pid>.sock` when `XDG_RUNTIME_DIR` names a directory of
//! ours, else `/tmp/crac-<uid>/<pid>.sock`. The `crac` directory is created mode 0700 and refused
//! when it belongs to someone else or others may write to it (they could swap the socket); the
//! socket itself is mode 0600. Clients look in the same places and make the same checks.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Longest path a Unix socket address can hold (`sun_path` minus its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why the control socket's directory or the socket could not be set up or trusted.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Creating the socket directory failed.
    #[error("cannot create the control socket directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Reading the directory's owner and mode failed.
    #[error("cannot inspect the control socket directory {path}: {source}")]
    InspectDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The directory is not safe to put a socket in.
    #[error(
        "refusing the control socket directory {path}: {problem}; remove it or fix its owner \
         and mode (it must be a directory of user {uid}, mode 0700)"
    )]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// Our user id.
        uid: u32,
    },
    /// The socket path would not fit in a Unix socket address.
    #[error(
        "control socket path {path} is longer than {MAX_SOCKET_PATH} bytes; \
         set XDG_RUNTIME_DIR to a shorter directory"
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// Removing a stale socket left at our path failed.
    #[error("cannot remove the stale control socket {path}: {source}")]
    RemoveStale {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Binding or setting the socket's mode failed.
    #[error("cannot create the control socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The directories a control socket of user `uid` may live in, preferred first: the `crac`
/// directory under `xdg_runtime_dir` when that is an absolute path, then `/tmp/crac-<uid>`.
pub fn candidate_dirs(xdg_runtime_dir: Option<&OsStr>, uid: u32) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(2);
    if let Some(xdg) = xdg_runtime_dir.map(Path::new).filter(|p| p.is_absolute()) {
        out.push(xdg.join("crac"));
    }
    out.push(PathBuf::from(format!("/tmp/crac-{uid}")));
    out
}

/// Set in the environment of a `crac_restart --same-pid` that runs in a pid namespace of its
/// own: the pid, outside that namespace, of its supervisor, which users know the process by.
pub const SOCKET_PID_ENV: &str = "__CRAC_SOCKET_PID";

/// The pid this process's control socket is named after: `$__CRAC_SOCKET_PID` when it holds
/// one, else our own.
pub fn own_socket_pid() -> u32 {
    std::env::var(SOCKET_PID_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(std::process::id)
}

/// Whether `/proc` shows every process of the machine: false inside a nested pid namespace
/// (`crac_restart --same-pid`'s, a container's), where a live process's socket would look
/// stale to [`sweep_stale`] and be removed if probed between its `bind` and `listen`.
pub fn proc_shows_every_process() -> bool {
    fs::read_to_string("/proc/self/status").map_or(true, |status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_none_or(|pids| pids.split_whitespace().count() <= 1)
    })
}

/// The socket path of process `pid` inside `dir`.
pub fn socket_path(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}.sock"))
}

/// Whether `dir`'s parent is a usable runtime directory of `uid` (exists, is a directory, ours).
fn parent_usable(dir: &Path, uid: u32) -> bool {
    dir.parent()
        .and_then(|p| fs::metadata(p).ok())
        .is_some_and(|m| m.is_dir() && m.uid() == uid)
}

/// Creates (mode 0700) or checks the socket directory `dir` for user `uid`.
pub fn prepare_dir(dir: &Path, uid: u32) -> Result<(), SocketError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(SocketError::CreateDir {
                path: dir.to_owned(),
                source,
            });
        }
    }
    check_dir(dir, uid)
}

/// Checks that `dir` is a real directory (not a symlink) owned by `uid` that nobody else may
/// write to.
pub fn check_dir(dir: &Path, uid: u32) -> Result<(), SocketError> {
    let meta = fs::symlink_metadata(dir).map_err(|source| SocketError::InspectDir {
        path: dir.to_owned(),
        source,
    })?;
    let unsafe_dir = |problem: String| SocketError::UnsafeDir {
        path: dir.to_owned(),
        problem,
        uid,
    };
    if !meta.file_type().is_dir() {
        return Err(unsafe_dir("it is not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(unsafe_dir(format!("it belongs to user {}", meta.uid())));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "others may write to it (mode {mode:04o})"
        )));
    }
    Ok(())
}

/// Picks and prepares the directory for this process's socket: the first candidate whose
/// parent is usable and that can be prepared; `/tmp/crac-<uid>` is always tried, and its
/// error is the one reported.
pub fn choose_dir(xdg_runtime_dir: Option<&OsStr>, uid: u32) -> Result<PathBuf, SocketError> {
    let dirs = candidate_dirs(xdg_runtime_dir, uid);
    let (fallback, preferred) = dirs.split_last().ok_or_else(|| SocketError::CreateDir {
        path: PathBuf::from("/tmp"),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    for dir in preferred {
        if !parent_usable(dir, uid) {
            continue;
        }
        match prepare_dir(dir, uid) {
            Ok(()) => return Ok(dir.clone()),
            Err(e) => tracing::warn!("{e}; using {} instead", fallback.display()),
        }
    }
    prepare_dir(fallback, uid)?;
    Ok(fallback.clone())
}

/// Binds a listening socket at `path` (mode 0600), replacing a stale socket of a dead process
/// that had our pid.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(SocketError::PathTooLong {
            path: path.to_owned(),
        });
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // Our pid is ours: whatever socket is here belonged to a dead process.
            fs::remove_file(path).map_err(|source| SocketError::RemoveStale {
                path: path.to_owned(),
                source,
            })?;
        }
        _ => {}
    }
    let bind_err = |source| SocketError::Bind {
        path: path.to_owned(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    // The directory is 0700, so nobody else can connect between bind and chmod.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// Removes the sockets in `dir` left by processes that have ended: named `<pid>.sock`, no
/// `<proc>/<pid>` directory, and nobody listening (a process of another pid namespace sharing the
/// directory still accepts, so its socket is kept). Returns how many were removed.
pub fn sweep_stale(dir: &Path, proc: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let is_socket = entry.file_type().is_ok_and(|t| t.is_socket());
        if !is_socket || proc.join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        let refused = matches!(
            std::os::unix::net::UnixStream::connect(&path),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
        );
        if refused && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::effective_uid;

    #[test]
    fn candidates_prefer_an_absolute_xdg_dir() {
        let d = candidate_dirs(Some(OsStr::new("/run/user/5")), 5);
        assert_eq!(d, [PathBuf::from("/run/user/5/crac"), "/tmp/crac-5".into()]);
        let d = candidate_dirs(Some(OsStr::new("relative")), 5);
        assert_eq!(d, [PathBuf::from("/tmp/crac-5")]);
        assert_eq!(candidate_dirs(None, 7), [PathBuf::from("/tmp/crac-7")]);
        assert_eq!(socket_path(Path::new("/x"), 12), Path::new("/x/12.sock"));
    }

    #[test]
    fn prepare_creates_a_private_dir_and_refuses_open_ones() {
        let uid = effective_uid();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("crac");
        prepare_dir(&dir, uid).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        prepare_dir(&dir, uid).unwrap();

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare_dir(&dir, uid).unwrap_err();
        assert!(
            err.to_string()
                .contains("others may write to it (mode 0777)"),
            "{err}"
        );

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let err = check_dir(&dir, uid + 1).unwrap_err();
        assert!(
            err.to_string().contains(&format!("belongs to user {uid}")),
            "{err}"
        );

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = check_dir(&link, uid).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn choose_dir_uses_xdg_when_it_is_ours() {
        let uid = effective_uid();
        let tmp = tempfile::tempdir().unwrap();
        let dir = choose_dir(Some(tmp.path().as_os_str()), uid).unwrap();
        assert_eq!(dir, tmp.path().join("crac"));
        assert!(check_dir(&dir, uid).is_ok());
    }

    #[test]
    fn bind_sets_mode_and_replaces_a_stale_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let path = socket_path(tmp.path(), 99);
        drop(bind(&path).unwrap());
        // The first listener is gone but its file stays: a stale socket.
        assert!(path.exists());
        let _l = bind(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let long = tmp.path().join("x".repeat(120));
        assert!(matches!(bind(&long), Err(SocketError::PathTooLong { .. })));
    }

    #[test]
    fn sweep_removes_only_dead_unanswered_sockets() {
        let tmp = tempfile::tempdir().unwrap();
        let proc = tmp.path().join("proc");
        fs::create_dir_all(proc.join("20")).unwrap();
        let dir = tmp.path().join("crac");
        prepare_dir(&dir, effective_uid()).unwrap();
        drop(bind(&socket_path(&dir, 10)).unwrap()); // dead pid, nobody listening: removed
        drop(bind(&socket_path(&dir, 20)).unwrap()); // live pid: kept
        let _other_ns = bind(&socket_path(&dir, 30)).unwrap(); // unknown pid but answering: kept
        fs::write(dir.join("40.sock"), b"").unwrap(); // not a socket: kept
        fs::write(dir.join("notes.txt"), b"").unwrap();
        assert_eq!(sweep_stale(&dir, &proc), 1);
        let mut left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["20.sock", "30.sock", "40.sock", "notes.txt"]);
    }
}
