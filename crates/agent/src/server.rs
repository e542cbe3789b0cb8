//! The agent's accept loop: one request and one reply per connection, peers checked by
//! `SO_PEERCRED`.
//!
//! The loop blocks in `accept` (no timers, no polling while idle). A connection gets a read and
//! write timeout so a silent client cannot hold the agent. Whatever a client sends, the agent
//! answers with a reply or closes the connection; it never stops serving because of a client.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crac_core::protocol::{self, ErrorCode, Reply, ReplyBody, RequestBody};

use crate::lower::LowerHalf;
use crate::status;
use crate::sys;

/// How long a connected client may take to send its request or read the reply.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after an `accept` failure that is not about one connection (out of fds, memory), so a
/// persistent failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The control socket server.
pub struct Server {
    listener: UnixListener,
    lower: Arc<dyn LowerHalf>,
    allowed_uid: u32,
}

impl Server {
    /// A server on `listener` that accepts peers running as `allowed_uid` only.
    pub fn new(listener: UnixListener, lower: Arc<dyn LowerHalf>, allowed_uid: u32) -> Self {
        Self {
            listener,
            lower,
            allowed_uid,
        }
    }

    /// Serves connections until the listening socket fails for good.
    pub fn run(self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let served = catch_unwind(AssertUnwindSafe(|| self.serve(stream)));
                    if served.is_err() {
                        tracing::error!("a control request failed unexpectedly; still serving");
                    }
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK) => {
                        tracing::error!(
                            "control socket failed ({e}); crac_ckpt cannot reach this process any more"
                        );
                        return;
                    }
                    Some(libc::ECONNABORTED | libc::EPROTO) => {}
                    _ => {
                        tracing::warn!("accepting a control connection failed: {e}");
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                },
            }
        }
    }

    /// Answers one connection.
    fn serve(&self, stream: UnixStream) {
        let mut stream = match self.lower.protect_fd(OwnedFd::from(stream)) {
            Ok(fd) => UnixStream::from(fd),
            Err(e) => {
                tracing::warn!("cannot move a control connection out of the program's fds: {e}");
                return;
            }
        };
        let peer = match sys::peer_cred(stream.as_fd()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("refused a control connection: cannot read its credentials: {e}");
                return;
            }
        };
        if peer.uid != self.allowed_uid {
            tracing::warn!(
                "refused a control connection from pid {} of user {} (only user {} may control this process)",
                peer.pid,
                peer.uid,
                self.allowed_uid
            );
            return;
        }
        let timeouts = stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)));
        if let Err(e) = timeouts {
            tracing::warn!("cannot set control connection timeouts: {e}");
            return;
        }
        let reply =
            match protocol::read_frame(&mut stream).and_then(|b| protocol::decode_request(&b)) {
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
                    tracing::warn!("bad control request from pid {}: {e}", peer.pid);
                    Reply::error(e.code(), e.to_string())
                }
            };
        let sent = protocol::encode_frame(&reply)
            .map_err(|e| e.to_string())
            .and_then(|bytes| send_all(&stream, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = sent {
            tracing::warn!("cannot send the control reply to pid {}: {e}", peer.pid);
        }
    }

    /// What the agent answers to a request.
    fn answer(&self, body: RequestBody) -> Reply {
        match body {
            RequestBody::Status => match status::collect(self.lower.as_ref()) {
                Ok(report) => Reply::new(ReplyBody::Status(report)),
                Err(e) => Reply::error(ErrorCode::Internal, e.to_string()),
            },
        }
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
