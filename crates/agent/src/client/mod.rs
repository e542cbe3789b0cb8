//! The client side of the control socket, used by `crac_ckpt`: find a process's socket, check
//! that its directory is trustworthy, send one request and read its reply (one frame, or for a
//! checkpoint `Started`, progress frames and the result).
//!
//! A socket whose process is gone (the lower half cannot remove it when the program ends with
//! `exit_group`) is detected here: the connection is refused and `/proc/<pid>` does not exist,
//! so the file is removed.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crac_core::protocol::{
    self, ErrorCode, ProtocolError, Reply, ReplyBody, Request, StatusReport,
};

use crate::socket::{self, SocketError};
use crate::sys;

mod checkpoint;

pub use checkpoint::{CheckpointAsk, CheckpointEvent, checkpoint, checkpoint_over, live_agents};

/// How long to wait for the agent's reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request to a launched process failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No process has this pid.
    #[error("no process {pid} is running")]
    NoProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// The process exists but has no control socket.
    #[error("process {pid} is not running under crac (no control socket at {})", paths_list(.paths))]
    NotUnderCrac {
        /// The pid asked for.
        pid: u32,
        /// Where the socket was looked for.
        paths: Vec<PathBuf>,
    },
    /// The socket was left by a process that has ended; it was removed.
    #[error("process {pid} has ended (removed its stale control socket {path})")]
    Ended {
        /// The pid asked for.
        pid: u32,
        /// The removed socket.
        path: PathBuf,
    },
    /// The socket exists but nobody listens, although a process with that pid exists.
    #[error(
        "process {pid} does not answer on {path}: it is no longer running under crac (a program \
         that calls exec, such as a wrapper script ending in `exec`, leaves crac behind: launch \
         the final program itself), or it was not started with crac_launch and the socket is \
         left from an earlier process with the same pid (it can be removed)"
    )]
    NotListening {
        /// The pid asked for.
        pid: u32,
        /// The socket.
        path: PathBuf,
    },
    /// The socket or its directory may not be used by us.
    #[error(
        "permission denied on {path}: process {pid} belongs to another user; run crac_ckpt as that user"
    )]
    PermissionDenied {
        /// The pid asked for.
        pid: u32,
        /// The socket.
        path: PathBuf,
    },
    /// The process runs as another user, so its socket is in that user's directory.
    #[error(
        "process {pid} belongs to user {owner}, and only that user can control it; \
         run crac_ckpt as user {owner}"
    )]
    OtherUser {
        /// The pid asked for.
        pid: u32,
        /// The process's owner.
        owner: u32,
    },
    /// The socket's directory is not safe to trust.
    #[error(transparent)]
    UnsafeDir(#[from] SocketError),
    /// Connecting failed for another reason.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Sending the request failed.
    #[error("cannot send the request to process {pid}: {source}")]
    Send {
        /// The pid asked for.
        pid: u32,
        /// Why.
        source: io::Error,
    },
    /// The agent closed the connection without a reply.
    #[error(
        "process {pid} closed the control connection without answering \
         (it answers only the user that launched it; see its stderr for the reason)"
    )]
    Refused {
        /// The pid asked for.
        pid: u32,
    },
    /// The reply could not be read or understood.
    #[error("bad reply from process {pid}: {source}")]
    BadReply {
        /// The pid asked for.
        pid: u32,
        /// Why.
        source: ProtocolError,
    },
    /// The agent answered with an error.
    #[error("process {pid} could not answer: {message}")]
    Agent {
        /// The pid asked for.
        pid: u32,
        /// The agent's error kind.
        code: ErrorCode,
        /// The agent's message.
        message: String,
    },
    /// The agent answered with a reply of another kind than asked.
    #[error("process {pid} answered with an unexpected reply")]
    UnexpectedReply {
        /// The pid asked for.
        pid: u32,
    },
    /// The checkpoint failed (the engine's message, verbatim); the process goes on running.
    #[error("checkpoint of process {pid} failed: {message}")]
    CheckpointFailed {
        /// The pid asked for.
        pid: u32,
        /// The agent's error kind.
        code: ErrorCode,
        /// Why, as the agent said it.
        message: String,
    },
    /// The connection ended after the checkpoint started and before its result came.
    #[error(
        "process {pid} stopped answering during its checkpoint{}; the image may be incomplete \
         (a good image never has a .tmp suffix)",
        match .path { Some(p) => format!(" to {p}"), None => String::new() }
    )]
    CheckpointLost {
        /// The pid asked for.
        pid: u32,
        /// The image it was writing, when known.
        path: Option<String>,
    },
}

fn paths_list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(" or ")
}

/// Asks process `pid` for its status.
///
/// A connection that is refused or closed unanswered by a live process is tried again a few
/// times: the agent re-creates its socket when the program closed it, and the connection that
/// woke it up is lost with the old socket.
pub fn status(pid: u32) -> Result<StatusReport, ClientError> {
    let mut tries = 0;
    loop {
        match connect(pid).and_then(|stream| status_over(stream, pid)) {
            Err(e) if tries < RETRIES && lost_with_an_old_socket(&e) => {
                tries += 1;
                std::thread::sleep(RETRY_PAUSE);
            }
            other => return other,
        }
    }
}

/// Whether `e` is what a client sees when its connection reached a socket the agent was just
/// replacing: refused, closed unanswered, or reset while sending.
pub(crate) fn lost_with_an_old_socket(e: &ClientError) -> bool {
    match e {
        ClientError::Refused { .. } | ClientError::NotListening { .. } => true,
        ClientError::Send { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        _ => false,
    }
}

/// How many times [`status`] tries again after a refused or unanswered connection: enough to
/// outlast the agent's identity check ([`crate::server::IDENTITY_CHECK_MS`]) and its rebind.
pub(crate) const RETRIES: u32 = 30;
/// The pause between those tries.
pub(crate) const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Asks for the status over an already connected stream (`pid` is used in messages).
pub fn status_over(stream: UnixStream, pid: u32) -> Result<StatusReport, ClientError> {
    match request(stream, pid, &Request::new(protocol::RequestBody::Status))?.body {
        ReplyBody::Status(report) => Ok(report),
        ReplyBody::Error { code, message } => Err(ClientError::Agent { pid, code, message }),
        _ => Err(ClientError::UnexpectedReply { pid }),
    }
}

/// Sends `req` and reads the reply.
pub fn request(mut stream: UnixStream, pid: u32, req: &Request) -> Result<Reply, ClientError> {
    send_request(&mut stream, pid, req, REPLY_TIMEOUT)?;
    read_reply(&mut stream, pid)
}

/// Sends `req`, and sets how long each reply frame may take.
pub(crate) fn send_request(
    stream: &mut UnixStream,
    pid: u32,
    req: &Request,
    timeout: Duration,
) -> Result<(), ClientError> {
    let send = |source| ClientError::Send { pid, source };
    stream.set_read_timeout(Some(timeout)).map_err(send)?;
    let bytes = protocol::encode_frame(req, protocol::MAX_FRAME)
        .map_err(|source| ClientError::BadReply { pid, source })?;
    stream.write_all(&bytes).map_err(send)
}

/// Reads one reply frame.
pub(crate) fn read_reply(mut stream: &mut UnixStream, pid: u32) -> Result<Reply, ClientError> {
    let body =
        protocol::read_frame(&mut stream, protocol::MAX_REPLY_FRAME).map_err(
            |source| match source {
                ProtocolError::Truncated {
                    got: 0,
                    expected: 4,
                } => ClientError::Refused { pid },
                ProtocolError::Io(ref e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    ClientError::Refused { pid }
                }
                source => ClientError::BadReply { pid, source },
            },
        )?;
    protocol::decode_reply(&body).map_err(|source| ClientError::BadReply { pid, source })
}

/// Connects to the control socket of `pid`, cleaning up a stale one.
pub fn connect(pid: u32) -> Result<UnixStream, ClientError> {
    let uid = sys::effective_uid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    let dirs = socket::candidate_dirs(xdg.as_deref(), uid);
    connect_in(&dirs, pid, uid, Path::new("/proc"))
}

/// Connects to the socket of `pid` in the first of `dirs` that has one; `proc` is where process
/// directories are looked up.
pub fn connect_in(
    dirs: &[PathBuf],
    pid: u32,
    uid: u32,
    proc: &Path,
) -> Result<UnixStream, ClientError> {
    let alive = proc.join(pid.to_string()).exists();
    let mut removed = None;
    for dir in dirs {
        let path = socket::socket_path(dir, pid);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        socket::check_dir(dir, uid)?;
        match UnixStream::connect(&path) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(ClientError::PermissionDenied { pid, path });
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && !alive => {
                if std::fs::remove_file(&path).is_ok() {
                    removed = Some(path);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(ClientError::NotListening { pid, path });
            }
            Err(source) => return Err(ClientError::Connect { path, source }),
        }
    }
    match (removed, alive) {
        (Some(path), _) => Err(ClientError::Ended { pid, path }),
        (None, false) => Err(ClientError::NoProcess { pid }),
        (None, true) => match owner(proc, pid) {
            Some(owner) if owner != uid => Err(ClientError::OtherUser { pid, owner }),
            _ => Err(ClientError::NotUnderCrac {
                pid,
                paths: dirs.iter().map(|d| socket::socket_path(d, pid)).collect(),
            }),
        },
    }
}

/// The user owning process `pid` (the owner of its `/proc` directory).
fn owner(proc: &Path, pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(proc.join(pid.to_string()))
        .ok()
        .map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_process_and_missing_socket_are_told_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = sys::effective_uid();
        let dirs = vec![tmp.path().to_owned()];
        let proc = tmp.path().join("proc");
        std::fs::create_dir_all(proc.join("123")).unwrap();

        let e = connect_in(&dirs, 123, uid, &proc).unwrap_err();
        let want = format!(
            "process 123 is not running under crac (no control socket at {}/123.sock)",
            tmp.path().display()
        );
        assert_eq!(e.to_string(), want);
        let e = connect_in(&dirs, 124, uid, &proc).unwrap_err();
        assert_eq!(e.to_string(), "no process 124 is running");
    }

    #[test]
    fn a_dead_process_socket_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = sys::effective_uid();
        let dir = tmp.path().join("crac");
        socket::prepare_dir(&dir, uid).unwrap();
        let path = socket::socket_path(&dir, 555);
        drop(socket::bind(&path).unwrap());
        let proc = tmp.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();

        let e = connect_in(std::slice::from_ref(&dir), 555, uid, &proc).unwrap_err();
        assert!(matches!(e, ClientError::Ended { pid: 555, .. }), "{e}");
        assert!(!path.exists());

        // The same stale socket with a live process of that pid is reported, not removed.
        drop(socket::bind(&path).unwrap());
        std::fs::create_dir_all(proc.join("555")).unwrap();
        let e = connect_in(&[dir], 555, uid, &proc).unwrap_err();
        assert!(
            matches!(e, ClientError::NotListening { pid: 555, .. }),
            "{e}"
        );
        assert!(path.exists());
    }
}
