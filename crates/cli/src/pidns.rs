//! `crac_restart --same-pid`: resume the program under the pid it had when it was checkpointed.
//!
//! Some programs remember their pid and stop working when `getpid()` changes: CPython's asyncio
//! (up to 3.11) ignores a running loop that belongs to another pid ("no running event loop"),
//! and libzmq's signaler treats a changed pid as a fork. A pid can only be chosen inside a pid
//! namespace, which an unprivileged user gets through a user namespace. Three processes:
//!
//! - **P**, the `crac_restart` the user started (its pid is the one users, schedulers and
//!   `crac_ckpt` know), reads the image's pid N, enters a new user namespace (our uid and gid
//!   mapped to themselves, `setgroups` denied) and pid namespace, and forks:
//! - **C**, pid 1 of the new pid namespace, dies with P (`PR_SET_PDEATHSIG`), gets a private
//!   mount namespace with a fresh `/proc` (so `/proc/self/task`, which the checkpoint's quiesce
//!   reads, shows the namespace's thread ids), and creates with `clone3`'s `set_tid`:
//! - **G**, pid N, which execs crac again as the same `crac_restart` command line with
//!   `__CRAC_SOCKET_PID=P` in its environment. That marks it as inside (so it restarts the
//!   image itself) and names its control socket after P, so `crac_ckpt P` reaches it; the
//!   program never sees crac's environment (it resumes with its own, from the image).
//!
//! C reaps every orphan of the namespace (it is its init) and sends G's wait status to P over a
//! pipe. P forwards the signals a user or a scheduler sends it to G (signals from the terminal
//! reach G directly: it is in P's process group) and then ends as G did: the same exit code, or
//! the same signal. When G ends, C ends, and the kernel kills what is left in the namespace.

mod sys;

use std::ffi::{CString, OsString, c_int};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crac_agent::socket::SOCKET_PID_ENV;

use crate::cli::RestartArgs;
use crate::{build_id, images};

use sys::Forked;

/// Exit status when the image cannot be restarted (as `crac_restart`'s).
const CANNOT_RESTART: u8 = 1;

/// The signals P passes on to the program when a process sends them to P.
const FORWARDED: [c_int; 10] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCONT,
    libc::SIGWINCH,
    libc::SIGXCPU,
];

/// What C writes to P once G exists (then G's wait status follows, 4 bytes).
const STARTED: u8 = b'G';

/// Why the restart could not be set up under the image's pid.
#[derive(Debug, thiserror::Error)]
pub enum PidnsError {
    /// Reading the image for its pid failed.
    #[error(transparent)]
    Image(#[from] images::ImagesError),
    /// The image's pid cannot be given again.
    #[error(
        "the program in {path} had pid {pid}, which only the first process of a pid namespace \
         can have, and that is crac's own there; restart it without --same-pid"
    )]
    PidNotAvailable {
        /// The image.
        path: PathBuf,
        /// Its pid.
        pid: i32,
    },
    /// This process runs more than one thread, and a user namespace needs one.
    #[error(
        "cannot enter a new user namespace: crac_restart runs {threads} threads (it needs one)"
    )]
    Threads {
        /// How many it runs.
        threads: usize,
    },
    /// The kernel refused the namespaces.
    #[error(
        "cannot create a user and pid namespace for --same-pid: {source}; unprivileged user \
         namespaces may be turned off on this machine (sysctl kernel.unprivileged_userns_clone, \
         user.max_user_namespaces or a security module); restart without --same-pid"
    )]
    Unshare {
        /// Why.
        source: io::Error,
    },
    /// Writing the new user namespace's id maps failed.
    #[error(
        "cannot map user {uid} and group {gid} into the new user namespace ({file}): {source}; \
         restart without --same-pid"
    )]
    MapIds {
        /// Our user id.
        uid: u32,
        /// Our group id.
        gid: u32,
        /// The `/proc/self` file written.
        file: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A pipe, signalfd, or the signal mask could not be set up.
    #[error("cannot set up the supervisor of the restarted program ({what}): {source}")]
    Setup {
        /// What.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// Forking the namespace's first process failed.
    #[error("cannot start the first process of the new pid namespace: {source}")]
    Fork {
        /// Why.
        source: io::Error,
    },
    /// The namespace's first process ended without the program's status.
    #[error("the restart in the new pid namespace ended without a result ({status})")]
    NoStatus {
        /// How the first process ended.
        status: String,
    },
}

/// With `--same-pid`, runs the restart in a child that has the image's pid in a new pid
/// namespace and returns that child's exit status (this process stays as its supervisor);
/// without it, or inside that child already, returns `None` and the caller restarts here.
pub fn supervise_if_asked(name: &str, args: &RestartArgs) -> anyhow::Result<Option<ExitCode>> {
    if !args.same_pid || std::env::var_os(SOCKET_PID_ENV).is_some() {
        return Ok(None);
    }
    match image_pid(&args.image) {
        Ok(pid) => Ok(Some(supervise(name, pid)?)),
        Err(e @ (PidnsError::Image(_) | PidnsError::PidNotAvailable { .. })) => {
            eprintln!("{name}: {e}");
            Ok(Some(ExitCode::from(CANNOT_RESTART)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The pid recorded in the image `crac_restart IMAGE|DIR` would use.
fn image_pid(image: &Path) -> Result<i32, PidnsError> {
    let ours = build_id::of_file(Path::new("/proc/self/exe"))
        .ok()
        .flatten();
    let chosen = images::choose(image, ours.as_deref())?;
    let pid = images::open(&chosen.path)?.meta().process.pid;
    if pid <= 1 {
        return Err(PidnsError::PidNotAvailable {
            path: chosen.path,
            pid,
        });
    }
    Ok(pid)
}

/// P: enters the namespaces, forks C, forwards signals to G, and returns (or dies) as G ended.
fn supervise(name: &str, pid: i32) -> Result<ExitCode, PidnsError> {
    let setup = |what| move |source| PidnsError::Setup { what, source };
    // Blocked before C exists, so a signal sent to us meanwhile waits to be passed on.
    let forwarded = sys::SigSet::of(&FORWARDED);
    let old_mask = sys::block(&forwarded).map_err(setup("blocking signals"))?;
    let signals = sys::signalfd(&forwarded).map_err(setup("signalfd"))?;
    enter_namespaces()?;
    let (status_r, status_w) = sys::pipe().map_err(setup("status pipe"))?;
    let (mut status_r, status_w) = (File::from(status_r), File::from(status_w));
    let (lifeline_r, lifeline_w) = sys::pipe().map_err(setup("lifeline pipe"))?;
    let me = std::process::id();
    // SAFETY: `enter_namespaces` checked that this process has one thread (a user namespace
    // cannot be entered otherwise), and nothing since has started one.
    match unsafe { sys::fork() }.map_err(|source| PidnsError::Fork { source })? {
        Forked::Child => {
            drop((status_r, lifeline_w, signals));
            init(name, pid, me, status_w, lifeline_r, &old_mask)
        }
        Forked::Parent(c) => {
            drop((status_w, lifeline_r));
            let status = forward_until_done(c, pid, &mut status_r, signals.as_fd());
            // Kept open until here: C checks it to learn that we still live.
            drop(lifeline_w);
            finish(c, status)
        }
    }
}

/// Enters a new user namespace (our ids mapped to themselves) and a new pid namespace, whose
/// first process will be our next child.
fn enter_namespaces() -> Result<(), PidnsError> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count);
    if threads != 1 {
        return Err(PidnsError::Threads { threads });
    }
    let (uid, gid) = sys::effective_ids();
    sys::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID)
        .map_err(|source| PidnsError::Unshare { source })?;
    for (file, text) in [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("{uid} {uid} 1")),
        ("gid_map", format!("{gid} {gid} 1")),
    ] {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|source| {
            PidnsError::MapIds {
                uid,
                gid,
                file,
                source,
            }
        })?;
    }
    Ok(())
}

/// P's loop: passes signals on to G until C sends G's wait status (or ends without it).
fn forward_until_done(
    c: libc::pid_t,
    pid: i32,
    status: &mut File,
    signals: std::os::fd::BorrowedFd<'_>,
) -> Option<c_int> {
    let mut started = [0u8; 1];
    if status.read_exact(&mut started).is_err() || started[0] != STARTED {
        return None;
    }
    let program = find_program(c, pid);
    loop {
        let ready = sys::poll_in(&[status.as_fd(), signals], -1).ok()?;
        if ready.first().is_some_and(|r| *r != 0) {
            let mut word = [0u8; 4];
            return status
                .read_exact(&mut word)
                .ok()
                .map(|()| c_int::from_ne_bytes(word));
        }
        if ready.get(1).is_some_and(|r| *r != 0) {
            let Ok((signo, code)) = sys::read_signal(signals) else {
                continue;
            };
            // The terminal's signals (SI_KERNEL) went to G too: it is in our process group.
            if code == libc::SI_KERNEL {
                continue;
            }
            let sent = program
                .as_ref()
                .map(|fd| sys::pidfd_send_signal(fd.as_fd(), signo));
            if let Some(Err(e)) = sent {
                tracing::debug!("cannot pass signal {signo} on to the program: {e}");
            }
        }
    }
}

/// A pidfd of G: C's child whose pid in the namespace is `pid` (found in `/proc`, as we see it).
fn find_program(c: libc::pid_t, pid: i32) -> Option<OwnedFd> {
    let is_g = |outer: &str| {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{outer}/status")) else {
            return false;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        field("PPid:") == c.to_string()
            && field("NSpid:").split_whitespace().last() == Some(&pid.to_string())
    };
    let found = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .find(|n| is_g(n))?;
    let fd = sys::pidfd_open(found.parse().ok()?).ok()?;
    // The pid may have been reused between reading and opening: check again, now it is held.
    is_g(&found).then_some(fd)
}

/// P's end: reaps C and returns G's exit status, or dies by G's signal.
fn finish(c: libc::pid_t, status: Option<c_int>) -> Result<ExitCode, PidnsError> {
    let c_status = sys::wait(c).map(|(_, s)| s);
    let status = match (status, c_status) {
        (Some(s), _) => s,
        // C reported its own failure on stderr and exited with the status to return.
        (None, Ok(s)) if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) != 0 => s,
        (None, Ok(s)) => {
            return Err(PidnsError::NoStatus {
                status: describe(s),
            });
        }
        (None, Err(e)) => {
            return Err(PidnsError::NoStatus {
                status: e.to_string(),
            });
        }
    };
    if libc::WIFSIGNALED(status) {
        sys::die_by(libc::WTERMSIG(status));
    }
    Ok(ExitCode::from(
        u8::try_from(libc::WEXITSTATUS(status)).unwrap_or(CANNOT_RESTART),
    ))
}

/// A wait status in words.
fn describe(status: c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// C: pid 1 of the new namespace. Never returns.
fn init(
    name: &str,
    pid: i32,
    supervisor: u32,
    mut status: File,
    lifeline: OwnedFd,
    mask: &sys::SigSet,
) -> ! {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("{name}: --same-pid: {what}: {e}; restart without --same-pid");
        std::process::exit(i32::from(CANNOT_RESTART))
    };
    if let Err(e) = sys::set_parent_death_signal(libc::SIGKILL) {
        fail("cannot tie the namespace to crac_restart", &e);
    }
    // P may have ended before the line above: then its end of the lifeline is closed.
    if sys::poll_in(&[lifeline.as_fd()], 0).is_ok_and(|r| r.first().is_some_and(|e| *e != 0)) {
        std::process::exit(i32::from(CANNOT_RESTART));
    }
    drop(lifeline);
    if let Err(e) = sys::set_mask(mask) {
        fail("cannot restore the signal mask", &e);
    }
    if let Err(e) = private_proc() {
        fail("cannot mount a /proc of the new pid namespace", &e);
    }
    let exec = match program_exec(supervisor) {
        Ok(x) => x,
        Err(e) => fail("cannot pass the command line on", &e),
    };
    // SAFETY: this process is a fork of P's single thread and started none.
    match unsafe { sys::fork_with_pid(pid) } {
        Ok(Forked::Child) => {
            let e = exec.run();
            eprintln!("{name}: --same-pid: cannot run crac again: {e}");
            std::process::exit(i32::from(CANNOT_RESTART))
        }
        Ok(Forked::Parent(_)) => {}
        Err(e) => fail(&format!("cannot create a process with pid {pid}"), &e),
    }
    if status.write_all(&[STARTED]).is_err() {
        std::process::exit(i32::from(CANNOT_RESTART));
    }
    loop {
        match sys::wait(-1) {
            Ok((p, s)) if p == pid => {
                let _ = status.write_all(&s.to_ne_bytes());
                std::process::exit(0)
            }
            Ok(_) => {}
            Err(e) => fail("lost the restarted program", &e),
        }
    }
}

/// A mount namespace of our own whose `/proc` is the new pid namespace's.
fn private_proc() -> io::Result<()> {
    sys::unshare(libc::CLONE_NEWNS)?;
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE)?;
    sys::mount(
        Some(c"proc"),
        c"/proc",
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
    )
}

/// G's `execve`: crac again (`/proc/self/exe` is still crac's binary after the new `/proc`),
/// the same command line, our environment plus the socket pid of the supervisor.
fn program_exec(supervisor: u32) -> io::Result<sys::Exec> {
    let (argv, envp) = command_line(std::env::args_os(), std::env::vars_os(), supervisor)?;
    let path = CString::new("/proc/self/exe").map_err(io::Error::other)?;
    Ok(sys::Exec::new(path, argv, envp))
}

/// `args` and `vars` as `execve`'s argv and envp, with [`SOCKET_PID_ENV`] set to `supervisor`.
fn command_line(
    args: impl Iterator<Item = OsString>,
    vars: impl Iterator<Item = (OsString, OsString)>,
    supervisor: u32,
) -> io::Result<(Vec<CString>, Vec<CString>)> {
    let c = |s: OsString| CString::new(s.into_vec()).map_err(io::Error::other);
    let argv = args.map(c).collect::<io::Result<Vec<_>>>()?;
    let mut envp = Vec::new();
    for (mut kv, v) in vars.filter(|(k, _)| k != SOCKET_PID_ENV) {
        kv.push("=");
        kv.push(v);
        envp.push(c(kv)?);
    }
    envp.push(c(format!("{SOCKET_PID_ENV}={supervisor}").into())?);
    Ok((argv, envp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inner_restart_gets_our_command_line_and_the_supervisors_pid() {
        let args = ["crac_restart", "--same-pid", "img.crac"].map(OsString::from);
        let vars = [("A", "1"), (SOCKET_PID_ENV, "5"), ("B", "x=y")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let (argv, envp) = command_line(args.into_iter(), vars.into_iter(), 42).unwrap();
        assert_eq!(argv, [c"crac_restart", c"--same-pid", c"img.crac"]);
        assert_eq!(envp, [c"A=1", c"B=x=y", c"__CRAC_SOCKET_PID=42"]);
    }

    #[test]
    fn wait_statuses_read_as_words() {
        assert_eq!(describe(3 << 8), "exit status 3");
        assert_eq!(describe(libc::SIGTERM), "killed by signal 15");
    }
}
