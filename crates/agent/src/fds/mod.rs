//! The program's fds and process-wide state (cwd, umask, rlimits): captured at checkpoint,
//! restored at restart (DESIGN.md, "Checkpoint and restart of the CPU side").
//!
//! [`capture`] runs on the agent thread while the program's threads are stopped. It lists
//! `/proc/self/fd` first (so nothing crac opens afterwards shows up), skips crac's own fds, and
//! makes one [`FdRecord`] per program fd. fds that share an open file description (`dup`,
//! inheritance) get the same `description` id, found with `kcmp(KCMP_FILE)`; where kcmp is not
//! available, regular files with equal device, inode, flags and offset are taken as one
//! description and every other fd as its own. Bytes in flight in a pipe whose read end the
//! program holds are copied with `tee`, which leaves them in the pipe; only where that is
//! impossible are they drained, and [`FdCapture::resume`] writes them back.
//!
//! Kinds ([`FdKind`]): regular files and directories by path, offset, flags and size; pipes
//! and FIFOs natively (both ends in the program → one pipe; one end → the other end closed
//! after restart); `/dev/null`-like character devices and ttys by path; eventfd, epoll, timerfd and
//! signalfd recreated from `/proc/self/fdinfo`; listening sockets re-bound; `AF_UNIX` sockets
//! whose peer is another of the program's fds (or closed) as socketpairs with their queued bytes
//! (`socketpairs.rs`); every other socket comes back as a dead socket (its peer gone). Anything else — inotify, memfd, io_uring,
//! pidfd, `/dev/nvidia*`, deleted files — is a clear error naming the fd: the checkpoint fails
//! and the program goes on.
//!
//! [`FdKind`]: crac_core::image::FdKind
//! [`FdKind::Stdio`]: crac_core::image::FdKind::Stdio
//!
//! **Standard fds.** fds 0–2 open on the same file as crac's own start-up fds 0–2 (recorded by
//! [`note_startup_stdio`] when the agent starts) are [`FdKind::Stdio`]: after restart they
//! are `crac_restart`'s own stdin, stdout and stderr. A file the program itself put on 0–2 (a
//! `freopen`, a pipe it reads with a thread as ipykernel does) is saved as what it is. An fd
//! above 2 sharing the description of a `Stdio` fd (`exec 3>&1`) is `Stdio` too and comes back
//! as a duplicate of it. Without a start-up record (the agent was not started), fds 0–2 that
//! are ttys, devices, sockets or pipes with their other end outside the program are `Stdio`.
//!
//! [`restore`] runs in `crac_restart` after memory is mapped, before threads resume. Every fd
//! is first made at a free temporary number above the highest recorded one, then `dup3`ed into
//! place at the end, so no step clobbers an fd a later step needs; epoll watches are added last,
//! once every watched fd is at its number (epoll keys its watches by number). fds 0–2 that were
//! closed in the program are closed.
//!
//! [`capture_process`] and [`restore_process`] save and restore cwd, umask and every rlimit. A
//! hard limit that cannot be raised back (only root may) is restored as high as allowed and
//! reported as [`FdError::HardLimitsLowered`], which the engine may show as a warning.

mod capture;
mod events;
mod files;
mod pipes;
mod process;
mod restore;
mod socketpairs;
mod sockets;
mod sys;
mod unix_diag;

use std::io;

use crac_core::image::{FdRecord, Rlimit};

pub use capture::{capture, note_startup_stdio};
pub use process::{capture_process, restore_process};
pub use restore::restore;

/// Why fds could not be captured or restored.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// `/proc/self/fd` could not be listed.
    #[error("cannot list the program's fds in /proc/self/fd: {0}")]
    ListFds(#[source] io::Error),
    /// An fd could not be inspected.
    #[error("cannot inspect fd {fd} ({what}): {source}")]
    Inspect {
        /// The fd.
        fd: i32,
        /// What was asked.
        what: &'static str,
        /// The system's answer.
        source: io::Error,
    },
    /// The fd is of a kind crac cannot save.
    #[error(
        "fd {fd} is {what}; crac cannot checkpoint {short} yet (close it before checkpointing)"
    )]
    Unsupported {
        /// The fd.
        fd: i32,
        /// What it is, for the message ("an inotify instance").
        what: String,
        /// The kind in short ("inotify").
        short: &'static str,
    },
    /// The fd is open on a file that has been deleted.
    #[error(
        "fd {fd} is open on {path}, which was deleted; crac cannot checkpoint deleted files yet \
         (close it, or keep the file until the checkpoint is taken)"
    )]
    DeletedFile {
        /// The fd.
        fd: i32,
        /// The path it had.
        path: String,
    },
    /// A path crac has to save is not UTF-8.
    #[error("fd {fd} is open on {path:?}, whose name is not UTF-8; crac cannot save it")]
    PathNotUtf8 {
        /// The fd.
        fd: i32,
        /// The path, lossily.
        path: String,
    },
    /// `/proc/self/fdinfo` did not have what the kind needs.
    #[error("cannot read the {field} of fd {fd} from /proc/self/fdinfo")]
    Fdinfo {
        /// The fd.
        fd: i32,
        /// The field.
        field: &'static str,
    },
    /// An epoll instance watches an fd that is no longer open at that number.
    #[error(
        "epoll fd {epoll} watches fd {watched}, which is closed or reused; crac cannot \
         checkpoint it (remove the watch with EPOLL_CTL_DEL before closing the fd)"
    )]
    StaleWatch {
        /// The epoll fd.
        epoll: i32,
        /// The number it watches.
        watched: i32,
    },
    /// Reading the bytes in flight in a pipe failed.
    #[error("cannot read the bytes in flight in the pipe at fd {fd}: {source}")]
    ReadPipe {
        /// The pipe's read end.
        fd: i32,
        /// The system's answer.
        source: io::Error,
    },
    /// Writing drained bytes back into a pipe after a checkpoint failed.
    #[error("cannot put {len} drained bytes back into the pipe at fd {fd}: {source}")]
    Refill {
        /// The pipe's read end.
        fd: i32,
        /// How many bytes.
        len: usize,
        /// The system's answer.
        source: io::Error,
    },
    /// A file could not be reopened at restart.
    #[error(
        "cannot reopen {path} for fd {fd}: {source}; put the file back where it was, readable \
         as it was, at checkpoint time"
    )]
    Reopen {
        /// The fd.
        fd: i32,
        /// The path.
        path: String,
        /// The system's answer.
        source: io::Error,
    },
    /// A file is shorter than the saved offset.
    #[error(
        "{path} (fd {fd}) is {size} bytes now, shorter than its saved offset {offset}; put the \
         file back as it was at checkpoint time"
    )]
    FileShrunk {
        /// The fd.
        fd: i32,
        /// The path.
        path: String,
        /// The saved offset.
        offset: u64,
        /// The size now.
        size: u64,
    },
    /// An fd could not be made again.
    #[error("cannot recreate fd {fd} ({what}): {source}")]
    Recreate {
        /// The fd.
        fd: i32,
        /// What it is.
        what: &'static str,
        /// The system's answer.
        source: io::Error,
    },
    /// The records contradict themselves (a corrupt or hand-made image).
    #[error("fd {fd} in the image is inconsistent: {why}")]
    BadRecord {
        /// The fd.
        fd: i32,
        /// What is wrong.
        why: String,
    },
    /// An fd could not be put at its number.
    #[error("cannot put fd {fd} at its number: {source}")]
    Place {
        /// The fd.
        fd: i32,
        /// The system's answer.
        source: io::Error,
    },
    /// An epoll watch could not be added back.
    #[error("cannot make epoll fd {epoll} watch fd {watched} again: {source}")]
    Watch {
        /// The epoll fd.
        epoll: i32,
        /// The watched fd.
        watched: i32,
        /// The system's answer.
        source: io::Error,
    },
    /// The working directory could not be read.
    #[error("cannot read the working directory: {0}")]
    ReadCwd(#[source] io::Error),
    /// The working directory was deleted.
    #[error(
        "the program's working directory {0} was deleted; crac cannot checkpoint it (chdir \
         elsewhere first)"
    )]
    DeletedCwd(String),
    /// The working directory could not be entered at restart.
    #[error(
        "cannot return to the working directory {path}: {source}; recreate it (or restart on a \
         machine that has it)"
    )]
    Chdir {
        /// The directory.
        path: String,
        /// The system's answer.
        source: io::Error,
    },
    /// The umask could not be read.
    #[error("cannot read the umask from /proc/self/status: {0}")]
    ReadUmask(String),
    /// A resource limit could not be read or set.
    #[error("cannot {op} resource limit {resource}: {source}")]
    Rlimit {
        /// `read` or `set`.
        op: &'static str,
        /// `RLIMIT_*` number.
        resource: u32,
        /// The system's answer.
        source: io::Error,
    },
    /// Some hard limits could not be raised back; everything else was restored.
    #[error(
        "cannot raise hard resource limits back ({0}); the program goes on with the lower \
         limits (restart as root to keep them)"
    )]
    HardLimitsLowered(String),
}

/// The program's fds as captured, plus what must be put back if the program continues.
#[derive(Debug, Default)]
pub struct FdCapture {
    /// The records for the image.
    pub records: Vec<FdRecord>,
    /// Bytes drained from pipes that `tee` could not copy: `(read end, bytes)`.
    drained: Vec<(i32, Vec<u8>)>,
}

impl FdCapture {
    /// Puts back what capture took (bytes drained from pipes) so the program goes on as if
    /// nothing happened. Called after a checkpoint-and-continue, written or failed.
    pub fn resume(self) -> Result<(), FdError> {
        let mut first = Ok(());
        for (fd, bytes) in &self.drained {
            if let Err(e) = pipes::refill(*fd, bytes)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

/// Process-wide state kept with the fds.
#[derive(Clone, Debug, Default)]
pub struct ProcessState {
    /// Working directory.
    pub cwd: String,
    /// umask.
    pub umask: u32,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
}
