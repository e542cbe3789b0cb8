//! Checkpoints served by the agent thread: a `checkpoint` request (frames `Started`,
//! `Progress`, then the result), and the triggers' checkpoints; the image's path comes from
//! [`crate::policy`], rotation after a good image, and the exit of a checkpoint-and-exit.

use std::path::Path;
use std::time::Instant;

use crac_core::image::CheckpointPolicy;
use crac_core::protocol::{self, CheckpointReport, ErrorCode, Reply, ReplyBody};
use std::os::unix::net::UnixStream;

use super::Server;
use crate::checkpoint::{self, CheckpointRequest, EXIT_AFTER_CHECKPOINT, Progress};
use crate::policy;
use crate::trigger::{self, Trigger};

/// One checkpoint to take, whoever asked.
#[derive(Clone, Debug, Default)]
pub struct Ask {
    /// Where to write (absolute); `None`: the policy's directory.
    pub dir: Option<String>,
    /// End the process after a good image.
    pub exit: bool,
    /// The program's fd waiting in `crac_checkpoint()`, if it asked.
    pub program_fd: Option<i32>,
}

/// How a checkpoint failed: the code for the reply and a message for the user.
type Failure = (ErrorCode, String);

impl Server {
    /// Answers a checkpoint request on `stream`: `Started`, progress if asked, then the result.
    pub(super) fn serve_checkpoint(
        &self,
        stream: &UnixStream,
        pid: i32,
        ask: &Ask,
        progress: bool,
    ) {
        let mut alive = true;
        let mut last_sent = (u64::MAX, Instant::now());
        let mut on_progress = |p: Progress| {
            if !(progress && alive) {
                return;
            }
            // At most one frame per percent or per 100 ms, whichever is rarer.
            let percent = p.done.saturating_mul(100) / p.total.max(1);
            let now = Instant::now();
            let too_soon =
                percent == last_sent.0 || now.duration_since(last_sent.1).as_millis() < 100;
            if too_soon && p.done < p.total {
                return;
            }
            last_sent = (percent, now);
            let frame = Reply::new(ReplyBody::Progress {
                done: p.done,
                total: p.total,
            });
            alive = self.send(stream, pid, &frame);
        };
        let mut started = |path: &Path| {
            let frame = Reply::new(ReplyBody::Started {
                path: path.display().to_string(),
            });
            self.send(stream, pid, &frame);
        };
        let result = self.checkpoint_now(ask, &mut started, &mut on_progress);
        let reply = match &result {
            Ok(report) => Reply::new(ReplyBody::Checkpointed(report.clone())),
            Err((code, message)) => Reply::error(*code, message.clone()),
        };
        self.send(stream, pid, &reply);
        if ask.exit && result.is_ok() {
            exit_after_checkpoint();
        }
    }

    /// A checkpoint the signal or the period asked for.
    pub(super) fn triggered(&self, why: Trigger) {
        let policy = trigger::policy().unwrap_or_default();
        let ask = Ask {
            dir: None,
            exit: why == Trigger::Signal && policy.exit_after_ckpt,
            program_fd: None,
        };
        let result = self.checkpoint_now(&ask, &mut |_| {}, &mut |_| {});
        if why == Trigger::Periodic {
            trigger::restart_period(Instant::now());
        }
        match result {
            Ok(report) => {
                tracing::info!("{why} checkpoint written to {}", report.path);
                if ask.exit {
                    exit_after_checkpoint();
                }
            }
            Err((_, message)) => {
                tracing::warn!("the {why} checkpoint failed: {message}; the program goes on");
            }
        }
    }

    /// Takes one checkpoint: chooses the image's path, calls the engine, rotates old images.
    /// `started` hears the path before the engine starts.
    fn checkpoint_now(
        &self,
        ask: &Ask,
        started: &mut dyn FnMut(&Path),
        progress: &mut dyn FnMut(Progress),
    ) -> Result<CheckpointReport, Failure> {
        let policy = trigger::policy().unwrap_or_default();
        let dir = checkpoint_dir(ask, &policy)?;
        let path = policy::next_image_path(&dir)
            .map_err(|e| (ErrorCode::CheckpointFailed, e.to_string()))?;
        let agent_reply = match ask.program_fd {
            Some(fd) => {
                // What the program reads on `fd` if it is restarted from this image. Sizes are
                // not known yet; the path is.
                let restarted = Reply::new(ReplyBody::Checkpointed(CheckpointReport {
                    path: path.display().to_string(),
                    image_bytes: 0,
                    memory_bytes: 0,
                    pause_ms: 0,
                    write_ms: 0,
                    restarted: true,
                    device_bytes: 0,
                    drain_ms: 0,
                    device_write_ms: 0,
                }));
                let frame = protocol::encode_frame(&restarted, protocol::MAX_REPLY_FRAME)
                    .map_err(|e| (ErrorCode::Internal, e.to_string()))?;
                Some((fd, frame))
            }
            None => None,
        };
        let request = CheckpointRequest {
            path: path.clone(),
            exit_after: ask.exit,
            policy,
            agent_reply,
        };
        started(&path);
        let outcome = checkpoint::checkpoint(&request, self.lower.as_ref(), progress)
            .map_err(|e| (ErrorCode::CheckpointFailed, e.to_string()))?;
        if let Some(keep) = request.policy.keep {
            match policy::rotate(&dir, &outcome.path, keep) {
                Ok(removed) => {
                    for r in removed {
                        tracing::debug!("removed the old image {}", r.display());
                    }
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        Ok(CheckpointReport {
            path: outcome.path.display().to_string(),
            image_bytes: outcome.image_bytes,
            memory_bytes: outcome.memory_bytes,
            pause_ms: millis(outcome.pause),
            write_ms: millis(outcome.write),
            restarted: false,
            device_bytes: outcome.device_bytes,
            drain_ms: millis(outcome.drain),
            device_write_ms: millis(outcome.device_write),
        })
    }
}

/// The directory a checkpoint goes to: the one asked for, else the policy's, else the
/// process's working directory.
fn checkpoint_dir(ask: &Ask, policy: &CheckpointPolicy) -> Result<std::path::PathBuf, Failure> {
    let dir = match (&ask.dir, policy.dir.is_empty()) {
        (Some(d), _) => std::path::PathBuf::from(d),
        (None, false) => std::path::PathBuf::from(&policy.dir),
        (None, true) => std::env::current_dir().map_err(|e| {
            (
                ErrorCode::CheckpointFailed,
                format!("the process has no checkpoint directory and no working directory: {e}"),
            )
        })?,
    };
    if !dir.is_absolute() {
        return Err((
            ErrorCode::BadRequest,
            format!(
                "checkpoint directory {} is not an absolute path",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// `d` in whole milliseconds.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Ends the process after a checkpoint-and-exit whose image is durable.
fn exit_after_checkpoint() -> ! {
    tracing::debug!("exiting after the checkpoint, status {EXIT_AFTER_CHECKPOINT}");
    trigger::exit_process(EXIT_AFTER_CHECKPOINT)
}
