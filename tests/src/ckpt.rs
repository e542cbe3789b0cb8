//! Checkpoint scenarios: a program under `crac_launch` checkpointed with `crac_ckpt` at a random
//! moment, killed with SIGKILL, and resumed with `crac_restart`; the restarted run's output is
//! compared with an uninterrupted native run.
//!
//! Programs written for this print their result only at the end (or a few lines the test waits
//! for first), so "the output after restart" is the native output minus the lines seen before
//! the checkpoint.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::outcome::Outcome;
use crate::run::{Cmd, Input};
use crate::spawned::Spawned;
use crate::{Error, Result, io_err, tools};

/// How long one `crac_ckpt` may take.
const CKPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A number in `lo..hi` from the clock (printed by the callers, so a failure can be replayed).
pub fn random_in(lo: u64, hi: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    lo + x % (hi - lo).max(1)
}

/// Waits until process `pid`'s agent answers (`crac_ckpt --status`), at most 15 s.
///
/// # Panics
/// When it never does.
pub fn wait_agent(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while Instant::now() < deadline {
        let out = Cmd::new(&tools().ckpt)
            .args(["--status", &pid.to_string()])
            .timeout(Duration::from_secs(10))
            .run();
        match out {
            Ok(o) if o.code() == Some(0) => return,
            other => last = Some(format!("{other:?}")),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the agent of process {pid} never answered: {last:?}");
}

/// Runs `crac_ckpt --dir DIR [extra…] PID` and returns its outcome.
pub fn checkpoint(pid: u32, dir: &Path, extra: &[&str]) -> Result<Outcome> {
    Cmd::new(&tools().ckpt)
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .arg(pid.to_string())
        .timeout(CKPT_TIMEOUT)
        .run()
}

/// Checkpoints `pid` into `dir` and returns the image path (`crac_ckpt`'s last stdout line).
///
/// # Panics
/// When `crac_ckpt` fails or prints no path of an existing file.
pub fn checkpoint_ok(pid: u32, dir: &Path) -> PathBuf {
    let out = checkpoint(pid, dir, &[]).unwrap_or_else(|e| panic!("crac_ckpt {pid}: {e}"));
    assert_eq!(out.code(), Some(0), "crac_ckpt {pid} failed:\n{out}");
    let text = out.stdout_text();
    let path = PathBuf::from(text.lines().last().unwrap_or_default());
    assert!(path.is_file(), "crac_ckpt printed no image path:\n{out}");
    path
}

/// `crac_restart IMAGE|DIR`.
pub fn restart(image: &Path) -> Cmd {
    Cmd::new(&tools().restart).arg(image)
}

/// The `*.crac` files in `dir`, sorted.
pub fn images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err("reading", dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "crac"))
        .collect();
    out.sort();
    Ok(out)
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill9(child: Spawned) -> Result<Outcome> {
    child.signal(libc::SIGKILL)?;
    child.finish()
}

/// What an interrupted run did.
#[derive(Debug)]
pub struct Interrupted {
    /// The image the restart used.
    pub image: PathBuf,
    /// stdout lines the first run printed before the checkpoint was asked for.
    pub lines_before: usize,
    /// The restarted run.
    pub restarted: Outcome,
}

/// Runs `cmd` under `crac_launch OPTIONS`, checkpoints it into `dir` after a random delay in
/// `delay_ms`, kills it, and restarts the image with `restart_input` on stdin.
///
/// `wait_line` (if any) is a stdout line prefix the first run must print before the delay
/// starts.
pub fn interrupted_run(
    cmd: &Cmd,
    options: &[&str],
    dir: &Path,
    wait_line: Option<&str>,
    delay_ms: (u64, u64),
    restart_input: Input,
) -> Result<Interrupted> {
    let mut child = cmd.under_crac_with(options).spawn()?;
    if let Some(prefix) = wait_line {
        child.wait_for_line(prefix)?;
    }
    wait_agent(child.pid());
    let delay = random_in(delay_ms.0, delay_ms.1);
    eprintln!("checkpoint after {delay} ms");
    std::thread::sleep(Duration::from_millis(delay));
    let lines_before = child.lines().len();
    let image = checkpoint_ok(child.pid(), dir);
    let killed = kill9(child)?;
    if killed.signal() != Some(libc::SIGKILL) {
        return Err(Error::MissingLine {
            program: killed.command.clone(),
            wanted: "(to be still running at the checkpoint)".into(),
            seen: format!("{killed}"),
        });
    }
    let restarted = restart(&image).input(restart_input).run()?;
    Ok(Interrupted {
        image,
        lines_before,
        restarted,
    })
}

/// Asserts that `restarted` ended as `native` did and printed what `native` printed after its
/// first `skip` lines.
///
/// # Panics
/// On a difference, with both outputs.
pub fn assert_same_after(native: &Outcome, restarted: &Outcome, skip: usize) {
    let want: String = native
        .stdout_text()
        .lines()
        .skip(skip)
        .map(|l| format!("{l}\n"))
        .collect();
    let got = restarted.stdout_text();
    assert!(
        native.status == restarted.status && want == got,
        "the restarted run differs from the native run (after {skip} lines)\n=== native ===\n\
         {native}\n=== restarted ===\n{restarted}"
    );
}
