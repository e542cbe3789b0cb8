//! crac's lower-half agent: the control socket and the requests it answers.
//!
//! [`start`] runs on the launch path before the program is entered: it binds the control socket
//! and starts the agent thread with every signal blocked, so signals sent to the process always
//! reach the program's threads. The thread registers itself with the loader as a lower-half
//! thread, then blocks in `accept` and answers one request per connection ([`server`]).
//! `crac_ckpt` talks to it through [`client`].

pub mod checkpoint;
pub mod client;
pub mod fds;
pub mod guard;
pub mod lower;
pub mod policy;
pub mod restore;
pub mod server;
pub mod socket;
mod start;
pub mod status;
mod sys;
pub mod trigger;

use std::io;

pub use lower::{LoaderLowerHalf, LowerHalf};
pub use socket::SocketError;
pub use start::{Agent, start, start_in};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The control socket could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The socket's fd could not be moved to crac's protected range.
    #[error("cannot move the control socket out of the program's fds: {0}")]
    ProtectFd(#[source] io::Error),
    /// The control socket could not be prepared for the agent's loop.
    #[error("cannot prepare the control socket: {0}")]
    Listen(#[source] io::Error),
    /// Blocking or restoring the signal mask around the thread's start failed.
    #[error("cannot set the signal mask for the agent thread: {0}")]
    SignalMask(#[source] io::Error),
    /// The thread could not be created.
    #[error("cannot start the agent thread: {0}")]
    Spawn(#[source] io::Error),
}
