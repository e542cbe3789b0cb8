//! How a child ended and what it wrote, and how that reads in a failure message.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
