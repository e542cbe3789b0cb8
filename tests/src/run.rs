//! Running a child with a time limit, natively or under `crac_launch`, and capturing what it did.
//!
//! Every child starts in its own process group, so a time-out kills the program and everything
//! it started (a shell's children too) and the test fails instead of hanging CI.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries::tools;
use crate::outcome::Outcome;
use crate::{Error, Result, io_err};

/// How long a child may run before it is killed, unless the test says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a child reads on its stdin.
#[derive(Clone, Debug)]
pub enum Input {
    /// `/dev/null`.
    Null,
    /// A pipe fed these bytes, then closed.
    Bytes(Vec<u8>),
    /// This file, opened for reading.
    File(PathBuf),
}

/// A program to run, its arguments and surroundings; run it natively with [`Cmd::run`] or under
/// crac with `cmd.under_crac().run()`.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    input: Input,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdout_file: Option<PathBuf>,
    stderr_file: Option<PathBuf>,
    pub(crate) timeout: Duration,
}

/// Runs `program args` natively, then under `crac_launch`, each fed `stdin`, and returns both
/// outcomes (native first).
pub fn run_both(
    program: impl AsRef<OsStr>,
    args: &[&str],
    stdin: &[u8],
) -> Result<(Outcome, Outcome)> {
    let cmd = Cmd::new(program)
        .args(args)
        .input(Input::Bytes(stdin.to_vec()));
    Ok((cmd.run()?, cmd.under_crac().run()?))
}

/// Kills the whole process group `pgid`; a group already gone is fine.
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the group was
        // created for this child by `process_group(0)`, so nothing else of the test is in it.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Reads `file` to its end on a thread; the bytes arrive on the returned channel.
pub(crate) fn drain(file: File) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = BufReader::new(file).read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Takes a child's pipe end as a `File`, with the pipe's inode number.
fn pipe_file(end: Option<impl Into<OwnedFd>>) -> (Option<File>, Option<u64>) {
    let file = end.map(|e| File::from(e.into()));
    let ino = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| m.ino());
    (file, ino)
}

/// Waits for a channel's value until `deadline`.
pub(crate) fn recv_until<T>(rx: &Receiver<T>, deadline: Instant) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left).ok()
}

impl Cmd {
    /// A command for `program` (a path, or a name looked up in `PATH`) with no arguments, stdin
    /// from `/dev/null`, the test's environment and working directory, and the default time
    /// limit.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            input: Input::Null,
            env: Vec::new(),
            cwd: None,
            stdout_file: None,
            stderr_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets what stdin is.
    pub fn input(mut self, input: Input) -> Self {
        self.input = input;
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Sets the child's working directory.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sends stdout to a new file at `path` instead of a pipe.
    pub fn stdout_to(mut self, path: impl AsRef<Path>) -> Self {
        self.stdout_file = Some(path.as_ref().to_owned());
        self
    }

    /// Sends stderr to a new file at `path` instead of a pipe.
    pub fn stderr_to(mut self, path: impl AsRef<Path>) -> Self {
        self.stderr_file = Some(path.as_ref().to_owned());
        self
    }

    /// Sets the time limit.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The same command started as `crac_launch -- PROGRAM ARGS…`.
    pub fn under_crac(&self) -> Self {
        self.under_crac_with(&[])
    }

    /// The same command started as `crac_launch OPTIONS -- PROGRAM ARGS…`.
    pub fn under_crac_with(&self, options: &[&str]) -> Self {
        let mut args: Vec<OsString> = options.iter().map(OsString::from).collect();
        args.push("--".into());
        args.push(self.program.clone());
        args.extend(self.args.iter().cloned());
        Self {
            program: tools().launch.clone().into(),
            args,
            ..self.clone()
        }
    }

    /// The command line, for messages.
    pub fn describe(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&format!("{:?}", a.to_string_lossy()));
        }
        s
    }

    fn command(&self) -> Result<Command> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).process_group(0);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(match &self.input {
            Input::Null => Stdio::null(),
            Input::Bytes(_) => Stdio::piped(),
            Input::File(path) => File::open(path).map_err(io_err("opening", path))?.into(),
        });
        cmd.stdout(match &self.stdout_file {
            Some(path) => File::create(path).map_err(io_err("creating", path))?.into(),
            None => Stdio::piped(),
        });
        cmd.stderr(match &self.stderr_file {
            Some(path) => File::create(path).map_err(io_err("creating", path))?.into(),
            None => Stdio::piped(),
        });
        Ok(cmd)
    }

    pub(crate) fn spawn_child(&self) -> Result<Child> {
        self.command()?.spawn().map_err(|source| Error::Spawn {
            program: self.describe(),
            source,
        })
    }

    /// Runs the command to its end (or its time limit) and returns what happened.
    pub fn run(&self) -> Result<Outcome> {
        let deadline = Instant::now() + self.timeout;
        let mut child = self.spawn_child()?;
        let pgid = child.id();
        let (stdin, in_ino) = pipe_file(child.stdin.take());
        let (stdout, out_ino) = pipe_file(child.stdout.take());
        let (stderr, err_ino) = pipe_file(child.stderr.take());
        if let (Some(mut stdin), Input::Bytes(bytes)) = (stdin, &self.input) {
            let bytes = bytes.clone();
            // A child that exits without reading everything makes this fail with EPIPE: fine.
            thread::spawn(move || stdin.write_all(&bytes));
        }
        let out_rx = stdout.map(drain);
        let err_rx = stderr.map(drain);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Ok(None) => {
                    kill_group(pgid);
                    let _ = child.wait();
                    let partial = out_rx
                        .as_ref()
                        .and_then(|rx| recv_until(rx, Instant::now() + Duration::from_secs(5)))
                        .unwrap_or_default();
                    return Err(Error::Timeout {
                        program: self.describe(),
                        secs: self.timeout.as_secs(),
                        partial: String::from_utf8_lossy(&partial).into_owned(),
                    });
                }
                Err(source) => {
                    kill_group(pgid);
                    return Err(Error::Spawn {
                        program: self.describe(),
                        source,
                    });
                }
            }
        };
        // Children the program left behind may still hold the pipes: give them until the
        // deadline, then kill them.
        let collect = |rx: Option<Receiver<Vec<u8>>>| match rx {
            None => Vec::new(),
            Some(rx) => recv_until(&rx, deadline).unwrap_or_else(|| {
                kill_group(pgid);
                rx.recv().unwrap_or_default()
            }),
        };
        let mut stdout = collect(out_rx);
        let stderr = collect(err_rx);
        if let Some(path) = &self.stdout_file {
            stdout = std::fs::read(path).map_err(io_err("reading", path))?;
        }
        Ok(Outcome {
            command: self.describe(),
            stdout,
            stderr,
            status,
            pipes: [in_ino, out_ino, err_ino],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo err >&2; exit 3"])
            .input(Input::Bytes(b"in\n".to_vec()))
            .run()
            .unwrap();
        assert_eq!(out.stdout, b"in\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.code(), Some(3));
    }

    #[test]
    fn reports_death_by_signal() {
        let out = Cmd::new("sh").args(["-c", "kill -TERM $$"]).run().unwrap();
        assert_eq!(out.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn a_hang_times_out_and_kills_the_group() {
        let started = Instant::now();
        let err = Cmd::new("sh")
            .args(["-c", "echo started; sleep 100 & sleep 100"])
            .timeout(Duration::from_millis(300))
            .run()
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { ref partial, .. } if partial == "started\n"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_leftover_grandchild_holding_stdout_is_killed_at_the_limit() {
        let out = Cmd::new("sh")
            .args(["-c", "sleep 100 & echo parent done"])
            .timeout(Duration::from_millis(500))
            .run()
            .unwrap();
        assert_eq!(out.code(), Some(0));
        assert_eq!(out.stdout, b"parent done\n");
    }

    #[test]
    fn pipe_names_are_normalized() {
        let out = Cmd::new("readlink")
            .args(["/proc/self/fd/0", "/proc/self/fd/1"])
            .input(Input::Bytes(Vec::new()))
            .run()
            .unwrap();
        assert_eq!(
            out.normalize_pipes(&out.stdout_text()),
            "pipe:[fd0]\npipe:[fd1]\n"
        );
    }
}
