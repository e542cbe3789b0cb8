//! `crac_ckpt [--exit] [--dir DIR] (PID…|--all)`: ask launched processes for a checkpoint over
//! their control sockets and wait for each; `crac_ckpt --status PID [--json]`: show a process's
//! threads and memory.
//!
//! stdout gets only the image paths, one a line, so `img=$(crac_ckpt PID | tail -n1)` works;
//! progress goes to stderr when it is a terminal.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use crac_agent::client::{self, CheckpointAsk, CheckpointEvent};

use crate::cli::CkptArgs;
use crate::render;

/// Runs `crac_ckpt`.
pub fn run(name: &str, args: CkptArgs) -> anyhow::Result<ExitCode> {
    if let Some(pid) = args.status {
        return status(pid, args.json);
    }
    let pids = if args.all {
        let me = std::process::id();
        let pids: Vec<u32> = client::live_agents()
            .into_iter()
            .filter(|&p| p != me)
            .collect();
        anyhow::ensure!(
            !pids.is_empty(),
            "no process of yours is running under crac"
        );
        pids
    } else {
        args.pids.clone()
    };
    let dir = super::checkpoint_dir(args.dir.as_deref())?;
    let tty = std::io::stderr().is_terminal();
    let ask = CheckpointAsk {
        dir: Some(dir.display().to_string()),
        exit: args.exit,
        progress: tty,
    };
    let mut failed = false;
    for pid in pids {
        let mut bar = Bar::new(pid, tty);
        let result = client::checkpoint(pid, &ask, &mut |e| bar.show(e));
        bar.clear();
        match result {
            Ok(report) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", report.path)
                    .and_then(|()| out.flush())
                    .context("cannot write to stdout")?;
                if report.image_bytes > 0 {
                    tracing::info!(
                        "process {pid}: {} image, {} of memory, paused {} ms, written in {} ms",
                        render::size(report.image_bytes),
                        render::size(report.memory_bytes),
                        report.pause_ms,
                        report.write_ms
                    );
                }
                if report.device_bytes > 0 {
                    tracing::info!(
                        "process {pid}: {} of device memory, device drained in {} ms, written \
                         in {} ms",
                        render::size(report.device_bytes),
                        report.drain_ms,
                        report.device_write_ms
                    );
                }
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `--status PID [--json]`.
fn status(pid: u32, json: bool) -> anyhow::Result<ExitCode> {
    let report = client::status(pid)?;
    let text = if json {
        let mut json = serde_json::to_string_pretty(&report).context("cannot encode the status")?;
        json.push('\n');
        json
    } else {
        render::status(&report)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// A one-line progress bar on stderr (`\r` redrawn), only on a terminal.
struct Bar {
    pid: u32,
    on: bool,
    drawn: bool,
}

impl Bar {
    const WIDTH: u64 = 30;

    fn new(pid: u32, on: bool) -> Self {
        Self {
            pid,
            on,
            drawn: false,
        }
    }

    fn show(&mut self, e: CheckpointEvent<'_>) {
        if !self.on {
            return;
        }
        let line = match e {
            CheckpointEvent::Started(path) => format!("{}: writing {path}", self.pid),
            CheckpointEvent::Progress { done, total } => {
                let filled = (done.min(total) * Self::WIDTH)
                    .checked_div(total)
                    .unwrap_or(Self::WIDTH);
                let filled = usize::try_from(filled).unwrap_or(0);
                let empty = usize::try_from(Self::WIDTH).unwrap_or(0) - filled.min(30);
                format!(
                    "{}: [{}{}] {:>3}% {} / {}",
                    self.pid,
                    "#".repeat(filled),
                    " ".repeat(empty),
                    (done.min(total) * 100).checked_div(total).unwrap_or(100),
                    render::size(done),
                    render::size(total)
                )
            }
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}
