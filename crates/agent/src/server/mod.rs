//! The agent's accept loop: one request and one reply per connection, peers checked by
//! `SO_PEERCRED`; and the checkpoints the triggers ask for ([`crate::trigger`]).
//!
//! Checkpoints run on this thread, whatever asked for them (a `crac_ckpt` request, the
//! program's own `crac_checkpoint()`, the checkpoint signal, the period), so there is never more
//! than one at a time: a request that comes while one runs waits in the socket's backlog and is
//! served after it. A checkpoint request is answered by a [`ReplyBody::Started`] frame naming the
//! image, [`ReplyBody::Progress`] frames when asked, and a final [`ReplyBody::Checkpointed`] or
//! error. After a good image, `--keep` rotation ([`crate::policy::rotate`]) removes the
//! lineage's older images in that directory; a checkpoint-and-exit then sends its reply and ends
//! the process with [`EXIT_AFTER_CHECKPOINT`].
//!
//! The loop sleeps in `poll` on the listening socket (no timers while idle), not in `accept`:
//! a blocking `accept` reserves the lowest free fd number for as long as it waits, so the program
//! would see one fd number taken by crac. After `poll` says a connection is waiting, `accept4`
//! takes a low number for an instant and the connection moves to crac's high range at once. A
//! connection gets a read and write timeout so a silent client cannot hold the agent. Whatever a
//! client sends, the agent answers with a reply or closes the connection.
//!
//! The program owns the fd table: it may close crac's socket (`close_range(3, ~0)`) or reuse
//! its number (`dup2` onto it). Whenever `poll` returns — a connection, or the identity-check
//! timeout ([`IDENTITY_CHECK_MS`], one cheap `fstat` a second, no measurable load) — the loop
//! checks that the number still refers to the socket it bound ([`Guarded`]); when it does not,
//! it forgets the number without closing it and binds a fresh socket at the same path. A
//! connection that reached the old socket is lost with it (`crac_ckpt` tries again for a few
//! seconds). Running out of fds (the program lowered its limit and used
//! them all) is waited out quietly. Problems are logged once per kind, never repeated.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::time::Instant;

use crac_core::protocol::{self, ErrorCode, Reply, ReplyBody, RequestBody};

use crate::guard::Guarded;
use crate::lower::LowerHalf;
use crate::socket;
use crate::status;
use crate::sys;
use crate::trigger;

mod checkpoint;

pub use checkpoint::Ask;

/// How long a connected client may take to send its request or read the reply.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often (milliseconds) an idle agent checks that its socket's fd number is still its own:
/// a number the program took over with `dup2` for a file that never becomes readable would
/// otherwise keep the loop asleep for good.
pub const IDENTITY_CHECK_MS: i32 = 1000;

/// Pause before accepting again after a failure that is not about one connection (out of fds or
/// memory): the waiting connection keeps the socket readable, so without it the loop would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Kinds of problems, each logged once at its level and at `debug` afterwards.
#[derive(Clone, Copy)]
enum Problem {
    OutOfFds = 1,
    Accept = 2,
    ProtectConnection = 4,
    Credentials = 8,
    Refused = 16,
    Timeouts = 32,
    BadRequest = 64,
    Reply = 128,
    Rebound = 256,
    Trigger = 512,
}

/// The control socket server.
pub struct Server {
    listener: Guarded<UnixListener>,
    path: PathBuf,
    lower: Arc<dyn LowerHalf>,
    allowed_uid: u32,
    reported: Cell<u32>,
}

impl Server {
    /// A server on `listener` (bound at `path`, already in crac's fd range) that accepts peers
    /// running as `allowed_uid` only.
    pub fn new(
        listener: UnixListener,
        path: PathBuf,
        lower: Arc<dyn LowerHalf>,
        allowed_uid: u32,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener: Guarded::new(listener)?,
            path,
            lower,
            allowed_uid,
            reported: Cell::new(0),
        })
    }

    /// Whether `problem` is reported for the first time (and records that it was).
    fn first(&self, problem: Problem) -> bool {
        let bit = problem as u32;
        let seen = self.reported.get();
        self.reported.set(seen | bit);
        seen & bit == 0
    }

    /// Serves connections until the control socket is lost and cannot be re-created.
    pub fn run(mut self) {
        loop {
            let wake = match trigger::ensure_wake() {
                Ok(fd) => fd,
                Err(e) => {
                    self.log(
                        Problem::Trigger,
                        format_args!("checkpoint signal and period are not served: {e}"),
                    );
                    -1
                }
            };
            let timeout = trigger::timeout_ms(Instant::now(), IDENTITY_CHECK_MS);
            let waited = if wake < 0 {
                sys::wait_readable(self.listener.raw(), timeout)
            } else {
                trigger::wait_two(self.listener.raw(), wake, timeout).map(|ready| {
                    if ready.second != 0 {
                        trigger::drain_wake();
                    }
                    ready.first
                })
            };
            let events = match waited {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // poll itself failed (out of memory): wait and try again.
                    self.log(
                        Problem::Accept,
                        format_args!("waiting for control connections failed: {e}"),
                    );
                    std::thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
            };
            if let Some(t) = trigger::take_due(Instant::now()) {
                self.triggered(t);
            }
            if !self.listener.is_ours() {
                match self.rebind() {
                    Ok(()) => continue,
                    Err(()) => return,
                }
            }
            if events == 0 {
                // The identity check's timeout: nothing to accept.
                continue;
            }
            match sys::accept_cloexec(self.listener.raw()) {
                Ok(fd) => {
                    let served = catch_unwind(AssertUnwindSafe(|| self.serve(fd)));
                    if served.is_err() {
                        tracing::error!("a control request failed unexpectedly; still serving");
                    }
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => {}
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        // The program uses every fd it may have: not crac's business to
                        // complain about on its stderr. Wait until one is free.
                        if self.first(Problem::OutOfFds) {
                            tracing::debug!("no fd free to accept a control connection: {e}");
                        }
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                    _ => {
                        self.log(
                            Problem::Accept,
                            format_args!("accepting a control connection failed: {e}"),
                        );
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                },
            }
        }
    }

    /// Logs `message` at `warn` the first time `problem` happens, at `debug` afterwards.
    fn log(&self, problem: Problem, message: std::fmt::Arguments<'_>) {
        if self.first(problem) {
            tracing::warn!("{message}");
        } else {
            tracing::debug!("{message}");
        }
    }

    /// The program closed or reused the listening socket's number: forget that number without
    /// closing it (it may be the program's file now) and bind a fresh socket at our path.
    /// `Err` when that fails; the agent then stops serving and leaves the process alone.
    fn rebind(&mut self) -> Result<(), ()> {
        let fresh = socket::bind(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|l| {
                self.lower
                    .protect_fd(OwnedFd::from(l))
                    .map_err(|e| e.to_string())
            })
            .map(UnixListener::from)
            .and_then(|l| {
                l.set_nonblocking(true)
                    .and_then(|()| Guarded::new(l))
                    .map_err(|e| e.to_string())
            });
        match fresh {
            Ok(listener) => {
                std::mem::replace(&mut self.listener, listener).forget();
                self.log(
                    Problem::Rebound,
                    format_args!(
                        "the program closed crac's control socket; listening again at {}",
                        self.path.display()
                    ),
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    "the program closed crac's control socket and it cannot be re-created \
                     ({e}); crac_ckpt cannot reach this process any more"
                );
                Err(())
            }
        }
    }

    /// Answers one connection.
    fn serve(&self, fd: OwnedFd) {
        // Out of the program's numbers before anything else happens.
        let stream = match self
            .lower
            .protect_fd(fd)
            .map(UnixStream::from)
            .and_then(Guarded::new)
        {
            Ok(s) => s,
            Err(e) => {
                self.log(
                    Problem::ProtectConnection,
                    format_args!("cannot move a control connection out of the program's fds: {e}"),
                );
                return;
            }
        };
        let mut stream: &UnixStream = &stream;
        let peer = match sys::peer_cred(stream.as_fd()) {
            Ok(p) => p,
            Err(e) => {
                self.log(
                    Problem::Credentials,
                    format_args!("refused a control connection: cannot read its credentials: {e}"),
                );
                return;
            }
        };
        if peer.uid != self.allowed_uid {
            self.log(
                Problem::Refused,
                format_args!(
                    "refused a control connection from pid {} of user {} (only user {} may \
                     control this process)",
                    peer.pid, peer.uid, self.allowed_uid
                ),
            );
            return;
        }
        let timeouts = stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)));
        if let Err(e) = timeouts {
            self.log(
                Problem::Timeouts,
                format_args!("cannot set control connection timeouts: {e}"),
            );
            return;
        }
        let reply = match protocol::read_frame(&mut stream, protocol::MAX_FRAME)
            .and_then(|b| protocol::decode_request(&b))
        {
            Ok(protocol::Request {
                body:
                    RequestBody::Checkpoint {
                        dir,
                        exit,
                        progress,
                        program_fd,
                    },
                ..
            }) => {
                let ask = Ask {
                    dir,
                    exit,
                    program_fd,
                };
                self.serve_checkpoint(stream, peer.pid, &ask, progress);
                return;
            }
            Ok(req) => self.answer(req.body),
            Err(protocol::ProtocolError::Truncated {
                got: 0,
                expected: 4,
            }) => {
                // Connected and left without a word (a liveness probe): nothing to answer.
                tracing::debug!("pid {} closed its control connection unused", peer.pid);
                return;
            }
            Err(e) => {
                self.log(
                    Problem::BadRequest,
                    format_args!("bad control request from pid {}: {e}", peer.pid),
                );
                Reply::error(e.code(), e.to_string())
            }
        };
        self.send(stream, peer.pid, &reply);
    }

    /// Sends one reply frame; failures are logged (once) and otherwise ignored: the client may
    /// have given up, and the agent goes on.
    fn send(&self, stream: &UnixStream, pid: i32, reply: &Reply) -> bool {
        let sent = encode_reply(reply)
            .map_err(|e| e.to_string())
            .and_then(|bytes| send_all(stream, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = &sent {
            self.log(
                Problem::Reply,
                format_args!("cannot send the control reply to pid {pid}: {e}"),
            );
        }
        sent.is_ok()
    }

    /// What the agent answers to a request other than a checkpoint.
    fn answer(&self, body: RequestBody) -> Reply {
        match body {
            RequestBody::Status => match status::collect(self.lower.as_ref()) {
                Ok(report) => Reply::new(ReplyBody::Status(report)),
                Err(e) => Reply::error(ErrorCode::Internal, e.to_string()),
            },
            RequestBody::Checkpoint { .. } => {
                Reply::error(ErrorCode::Internal, "checkpoint requests are served apart")
            }
        }
    }
}

/// `reply` as a frame; a reply too big for `crac_ckpt` to read becomes an error reply saying
/// so, instead of a connection closed without a word.
fn encode_reply(reply: &Reply) -> Result<Vec<u8>, protocol::ProtocolError> {
    match protocol::encode_frame(reply, protocol::MAX_REPLY_FRAME) {
        Err(protocol::ProtocolError::TooLarge { len, limit }) => {
            let message = format!(
                "the reply is {len} bytes, more than the {limit} bytes crac_ckpt reads; \
                 the process has too many mappings to list"
            );
            protocol::encode_frame(
                &Reply::error(ErrorCode::TooLarge, message),
                protocol::MAX_REPLY_FRAME,
            )
        }
        other => other,
    }
}

/// Writes all of `bytes` to `stream` without ever raising `SIGPIPE`.
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match sys::send_nosignal(stream.as_fd(), bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
