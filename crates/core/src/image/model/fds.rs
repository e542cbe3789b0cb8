//! The fd records of an image: one per program fd, grouped by open file description, with
//! what each kind needs to be made again at restart.

use serde::{Deserialize, Serialize};

/// One open fd of the program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdRecord {
    /// The fd number, restored as is.
    pub fd: i32,
    /// `FD_CLOEXEC`.
    pub cloexec: bool,
    /// fds with equal `description` shared one open file description (`dup`, inherited): they
    /// are restored as duplicates of one another, sharing offset and status flags.
    pub description: u32,
    /// What it was.
    pub kind: FdKind,
}

/// The kinds of fd crac saves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FdKind {
    /// fds 0, 1, 2 as they were at launch: at restart they are `crac_restart`'s own.
    Stdio,
    /// A regular file or directory, reopened by path at its offset.
    File {
        /// Absolute path.
        path: String,
        /// `open` flags (`O_ACCMODE`, `O_APPEND`, `O_NONBLOCK`, …).
        flags: i32,
        /// File offset.
        offset: u64,
        /// Size at checkpoint time (a shorter file at restart is reported).
        size: u64,
    },
    /// One end of a pipe. Both ends of a pipe share `pipe_id`; the bytes that were in flight
    /// travel with the read end and are written back into the new pipe.
    Pipe {
        /// Pairs the ends of one pipe.
        pipe_id: u64,
        /// Read end (`true`) or write end.
        read_end: bool,
        /// Status flags.
        flags: i32,
        /// `F_GETPIPE_SZ`.
        capacity: u32,
        /// Bytes in flight (on the read end's record only).
        data: Vec<u8>,
        /// The other end was not open in the program: after restart the pipe behaves as with
        /// that end closed.
        peer_outside: bool,
    },
    /// A character device reopened by path (`/dev/null`, `/dev/zero`, `/dev/urandom`, a tty, …).
    Device {
        /// Device path.
        path: String,
        /// `open` flags.
        flags: i32,
    },
    /// An eventfd with its counter.
    EventFd {
        /// The counter.
        count: u64,
        /// `EFD_*` flags (semaphore, nonblock).
        flags: i32,
    },
    /// An epoll instance and what it watched.
    Epoll {
        /// `(fd, events, data)` for every watched fd.
        watches: Vec<EpollWatch>,
    },
    /// A timerfd and its setting.
    TimerFd {
        /// `CLOCK_*`.
        clock: i32,
        /// `TFD_*` flags.
        flags: i32,
        /// Remaining time and interval, nanoseconds.
        value_ns: u64,
        /// Interval, nanoseconds.
        interval_ns: u64,
    },
    /// A signalfd and its mask.
    SignalFd {
        /// The signals it reads.
        mask: u64,
        /// `SFD_*` flags.
        flags: i32,
    },
    /// A listening socket, bound again to its address.
    ListenSocket {
        /// `AF_*`.
        domain: i32,
        /// `SOCK_*`.
        ty: i32,
        /// Protocol.
        protocol: i32,
        /// The bound address as the kernel returned it from `getsockname`.
        addr: Vec<u8>,
        /// Status flags.
        flags: i32,
    },
    /// A connected (or unconnected non-listening) socket: it comes back as a socket of the same
    /// kind whose peer is gone (reads see end-of-file, writes fail with `EPIPE`).
    DeadSocket {
        /// `AF_*`.
        domain: i32,
        /// `SOCK_*`.
        ty: i32,
        /// Status flags.
        flags: i32,
    },
    /// The program's connection to crac's agent that asked for this checkpoint
    /// (`crac_checkpoint()` in `crac.h`): restored as a socket holding `reply`, so the waiting
    /// call returns "restarted".
    AgentReply {
        /// The reply frame the call reads after restart.
        reply: Vec<u8>,
    },
    /// One end of an `AF_UNIX` socketpair whose both ends the program held: restored as one
    /// connected pair. Both ends share `pair_id`; a `pair_id` with records of only one end is a
    /// socket whose peer had been closed (its queued bytes are read after restart, then
    /// end-of-file). Added after the other kinds, so older images decode unchanged.
    SocketPair {
        /// Pairs the two ends.
        pair_id: u64,
        /// Which end: the two ends have different values.
        first: bool,
        /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
        ty: i32,
        /// Status flags.
        flags: i32,
        /// What was queued for reading on this end: the bytes of a stream socket; for datagram
        /// and seqpacket sockets each message as a `u32` little-endian length and its bytes.
        data: Vec<u8>,
    },
}

/// One epoll registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpollWatch {
    /// The watched fd.
    pub fd: i32,
    /// `EPOLL*` event mask.
    pub events: u32,
    /// The user data.
    pub data: u64,
}
