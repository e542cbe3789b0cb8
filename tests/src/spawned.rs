//! A child that keeps running while the test looks at it: started by [`Cmd::spawn`], read
//! line by line, signalled, then finished (or killed with its process group when dropped).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::Child;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::outcome::Outcome;
use crate::run::{Cmd, Input, drain, kill_group, recv_until};
use crate::{Error, Result};

impl Cmd {
    /// Starts the command with stdin a pipe that stays open until [`Spawned::finish`], so a
    /// test can look at the process while it runs.
    pub fn spawn(&self) -> Result<Spawned> {
        let cmd = self.clone().input(Input::Bytes(Vec::new()));
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

    /// Writes `bytes` to the child's stdin.
    pub fn write_stdin(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let program = self.command.clone();
        match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(bytes)
                .and_then(|()| stdin.flush())
                .map_err(|source| Error::Spawn { program, source }),
            None => Err(Error::Spawn {
                program,
                source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
            }),
        }
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
