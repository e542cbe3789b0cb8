//! Running a child with a time limit, natively or under `crac_launch`, and capturing what it did.
//!
//! Every child starts in its own process group, so a time-out kills the program and everything
//! it started (a shell's children too) and the test fails instead of hanging CI.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries::tools;
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
    timeout: Duration,
}

/// How a child ended and what it wrote.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for messages.
    pub command: String,
    /// Everything written to stdout (read back from the file when stdout went to one).
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// The exit status, death by signal included.
    pub status: ExitStatus,
    /// Inode numbers of the pipes given as fds 0, 1 and 2, where they were pipes.
    pub pipes: [Option<u64>; 3],
}

impl Outcome {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The exit code, when the child exited rather than died of a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// `text` with this run's pipe names (`pipe:[12345]`) replaced by `pipe:[fd0]` etc., so the
    /// outputs of two runs that each saw their own pipes can be compared.
    pub fn normalize_pipes(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (fd, ino) in self.pipes.iter().enumerate() {
            if let Some(ino) = ino {
                text = text.replace(&format!("pipe:[{ino}]"), &format!("pipe:[fd{fd}]"));
            }
        }
        text
    }
}

/// Longest piece of a command line or output shown in a message.
const SHOW_MAX: usize = 6000;

/// `text` cut to [`SHOW_MAX`] bytes (at a character boundary), saying how much was left out.
fn shorten(text: &str) -> String {
    if text.len() <= SHOW_MAX {
        return text.to_owned();
    }
    let mut cut = SHOW_MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &text[..cut], text.len() - cut)
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` ended with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            shorten(&self.command),
            self.status,
            shorten(&self.stdout_text()),
            shorten(&self.stderr_text())
        )
    }
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
fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the group was
        // created for this child by `process_group(0)`, so nothing else of the test is in it.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Reads `file` to its end on a thread; the bytes arrive on the returned channel.
fn drain(file: File) -> Receiver<Vec<u8>> {
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
fn recv_until<T>(rx: &Receiver<T>, deadline: Instant) -> Option<T> {
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

    fn spawn_child(&self) -> Result<Child> {
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

    /// Starts the command with stdin a pipe that stays open until [`Spawned::finish`], so a
    /// test can look at the process while it runs.
    pub fn spawn(&self) -> Result<Spawned> {
        let mut cmd = self.clone();
        cmd.input = Input::Bytes(Vec::new());
        let mut child = cmd.spawn_child()?;
        let stdin = child.stdin.take();
        let (lines_tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = child
            .stderr
            .take()
            .map(|e| drain(File::from(OwnedFd::from(e))));
        Ok(Spawned {
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            command: self.describe(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
        })
    }
}

/// A running child started by [`Cmd::spawn`]; dropping it kills its process group.
#[derive(Debug)]
pub struct Spawned {
    command: String,
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<Receiver<Vec<u8>>>,
    deadline: Instant,
    timeout: Duration,
}

impl Spawned {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` to the child (not its group), as `kill PID` does.
    pub fn signal(&self, sig: i32) -> Result<()> {
        let pid = i32::try_from(self.child.id()).map_err(|_| Error::Spawn {
            program: self.command.clone(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the child is ours
        // and not yet reaped (we hold its `Child`), so the pid cannot name another process.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(Error::Spawn {
                program: self.command.clone(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Every stdout line read so far.
    pub fn lines(&self) -> &[String] {
        &self.seen
    }

    /// Reads stdout lines until one starts with `prefix`, and returns it.
    pub fn wait_for_line(&mut self, prefix: &str) -> Result<String> {
        while let Some(line) = recv_until(&self.lines, self.deadline) {
            self.seen.push(line.clone());
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
        let mut seen = self.seen.join("\n");
        if let Some(rx) = self.stderr.take() {
            let stderr =
                recv_until(&rx, Instant::now() + Duration::from_secs(1)).unwrap_or_default();
            seen.push_str("\n--- stderr ---\n");
            seen.push_str(&String::from_utf8_lossy(&stderr));
        }
        Err(Error::MissingLine {
            program: self.command.clone(),
            wanted: prefix.to_owned(),
            seen,
        })
    }

    /// Closes stdin, waits for the child to end (killing it at its time limit) and returns the
    /// outcome; `stdout` holds every line, including those already read.
    pub fn finish(mut self) -> Result<Outcome> {
        drop(self.stdin.take());
        while let Some(line) = recv_until(&self.lines, self.deadline) {
            self.seen.push(line);
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => {
                    thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    return Err(Error::Timeout {
                        program: self.command.clone(),
                        secs: self.timeout.as_secs(),
                        partial: self.seen.join("\n"),
                    });
                }
                Err(source) => {
                    return Err(Error::Spawn {
                        program: self.command.clone(),
                        source,
                    });
                }
            }
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|rx| recv_until(&rx, Instant::now() + Duration::from_secs(5)))
            .unwrap_or_default();
        let mut stdout = self.seen.join("\n").into_bytes();
        if !stdout.is_empty() {
            stdout.push(b'\n');
        }
        Ok(Outcome {
            command: self.command.clone(),
            stdout,
            stderr,
            status,
            pipes: [None; 3],
        })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
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
    fn long_output_is_shortened_in_messages() {
        let long = "é".repeat(SHOW_MAX);
        let short = shorten(&long);
        assert!(short.len() < SHOW_MAX + 40, "{}", short.len());
        assert!(
            short.ends_with(&format!("({} more bytes)", SHOW_MAX)),
            "{short}"
        );
        assert_eq!(shorten("abc"), "abc");
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

    #[test]
    fn spawned_children_are_read_line_by_line() {
        let mut child = Cmd::new("sh")
            .args(["-c", "echo pid $$; echo ready; cat"])
            .spawn()
            .unwrap();
        assert!(child.wait_for_line("ready").is_ok());
        let pid = child.pid();
        assert_eq!(child.lines()[0], format!("pid {pid}"));
        let out = child.finish().unwrap();
        assert_eq!(out.code(), Some(0));
        assert_eq!(out.stdout_text(), format!("pid {pid}\nready\n"));
    }

    #[test]
    fn a_missing_line_is_an_error_with_what_was_printed() {
        let mut child = Cmd::new("sh")
            .args(["-c", "echo one; echo oops >&2"])
            .spawn()
            .unwrap();
        let err = child.wait_for_line("ready").unwrap_err().to_string();
        assert!(err.contains("one") && err.contains("oops"), "{err}");
    }
}
