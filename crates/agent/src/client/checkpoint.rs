//! `crac_ckpt PID…` and `--all`: ask for a checkpoint and follow its frames (`Started`,
//! progress, the result), and find every live agent of this user.

use std::path::Path;
use std::time::Duration;

use crac_core::protocol::{
    CheckpointReport, ErrorCode, ProtocolError, ReplyBody, Request, RequestBody,
};
use std::os::unix::net::UnixStream;

use super::{
    ClientError, RETRIES, RETRY_PAUSE, connect, lost_with_an_old_socket, read_reply, send_request,
};
use crate::{socket, sys};

/// How long to wait for each frame of a checkpoint's answer: writing a large image can take
/// minutes between progress frames on a slow disk, and a checkpoint may wait for another to end.
const CHECKPOINT_FRAME_TIMEOUT: Duration = Duration::from_secs(3600);

/// What `crac_ckpt` asks of one process.
#[derive(Clone, Debug, Default)]
pub struct CheckpointAsk {
    /// The image directory (absolute); `None`: the process's own.
    pub dir: Option<String>,
    /// Stop the process after a good image.
    pub exit: bool,
    /// Ask for progress frames.
    pub progress: bool,
}

/// What happens while a checkpoint is written.
#[derive(Clone, Copy, Debug)]
pub enum CheckpointEvent<'a> {
    /// The agent chose the image path and started.
    Started(&'a str),
    /// Bytes written so far, of the total.
    Progress {
        /// Written.
        done: u64,
        /// In all.
        total: u64,
    },
}

/// Asks process `pid` for a checkpoint and waits for it, telling `on_event` how it goes.
///
/// As with [`status`], a connection lost to an old socket before the checkpoint started is
/// tried again. A checkpoint-and-exit whose process ended after `Started` without a final frame
/// counts as written when the image is there (no `.tmp` suffix): the process may end before
/// its agent could answer.
pub fn checkpoint(
    pid: u32,
    ask: &CheckpointAsk,
    on_event: &mut dyn FnMut(CheckpointEvent<'_>),
) -> Result<CheckpointReport, ClientError> {
    let mut tries = 0;
    loop {
        let mut started = None;
        let result = connect(pid)
            .and_then(|stream| checkpoint_over(stream, pid, ask, &mut started, on_event));
        match result {
            Err(e) if started.is_none() && tries < RETRIES && lost_with_an_old_socket(&e) => {
                tries += 1;
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(ClientError::CheckpointLost {
                path: Some(path), ..
            }) if ask.exit && Path::new(&path).is_file() && !process_alive(pid) => {
                return Ok(CheckpointReport {
                    path,
                    image_bytes: 0,
                    memory_bytes: 0,
                    pause_ms: 0,
                    write_ms: 0,
                    restarted: false,
                    device_bytes: 0,
                    drain_ms: 0,
                    device_write_ms: 0,
                });
            }
            other => return other,
        }
    }
}

/// Whether `pid` still runs (a zombie has ended).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Sends a checkpoint request over a connected stream and reads its answer; `started` gets the
/// image path once the agent names it.
pub fn checkpoint_over(
    mut stream: UnixStream,
    pid: u32,
    ask: &CheckpointAsk,
    started: &mut Option<String>,
    on_event: &mut dyn FnMut(CheckpointEvent<'_>),
) -> Result<CheckpointReport, ClientError> {
    let req = Request::new(RequestBody::Checkpoint {
        dir: ask.dir.clone(),
        exit: ask.exit,
        progress: ask.progress,
        program_fd: None,
    });
    send_request(&mut stream, pid, &req, CHECKPOINT_FRAME_TIMEOUT)?;
    loop {
        let reply = match read_reply(&mut stream, pid) {
            Ok(r) => r,
            Err(ClientError::Refused { .. }) if started.is_some() => {
                return Err(ClientError::CheckpointLost {
                    pid,
                    path: started.clone(),
                });
            }
            Err(ClientError::BadReply {
                source: ProtocolError::Truncated { .. } | ProtocolError::Io(_),
                ..
            }) if started.is_some() => {
                return Err(ClientError::CheckpointLost {
                    pid,
                    path: started.clone(),
                });
            }
            Err(e) => return Err(e),
        };
        match reply.body {
            ReplyBody::Started { path } => {
                on_event(CheckpointEvent::Started(&path));
                *started = Some(path);
            }
            ReplyBody::Progress { done, total } => {
                on_event(CheckpointEvent::Progress { done, total });
            }
            ReplyBody::Checkpointed(report) => return Ok(report),
            ReplyBody::Error { code, message }
                if started.is_some() || code != ErrorCode::Internal =>
            {
                return Err(match code {
                    ErrorCode::CheckpointFailed | ErrorCode::BadRequest => {
                        ClientError::CheckpointFailed { pid, code, message }
                    }
                    _ => ClientError::Agent { pid, code, message },
                });
            }
            ReplyBody::Error { code, message } => {
                return Err(ClientError::Agent { pid, code, message });
            }
            ReplyBody::Status(_) => return Err(ClientError::UnexpectedReply { pid }),
        }
    }
}

/// The pids of every live process of ours with a control socket in the directory a process
/// started in this environment would use (`$XDG_RUNTIME_DIR/crac` when it is there and ours,
/// else `/tmp/crac-<uid>`), in order. Only that one directory: a caller with a runtime directory
/// of its own (a batch job, a test) must not reach processes started elsewhere.
pub fn live_agents() -> Vec<u32> {
    let uid = sys::effective_uid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    let mut pids: Vec<u32> = socket::candidate_dirs(xdg.as_deref(), uid)
        .iter()
        .find(|d| socket::check_dir(d, uid).is_ok())
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flat_map(|entries| entries.flatten())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".sock"))
                .and_then(|p| p.parse::<u32>().ok())
        })
        .filter(|&pid| process_alive(pid))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
