//! Diagnostics: `tracing` events as one line on stderr, `<name>: <level>: <message>`, at `warn`
//! unless `CRAC_LOG` says otherwise (`CRAC_LOG=debug`).
//!
//! Once a program is launched, fd 2 is the program's: it may close or reuse it. The launch
//! therefore sends crac's logs to a duplicate of the original stderr kept in crac's protected fd
//! range ([`redirect`]). The program may close that copy too (`close_range(3, ~0)`) or reuse its
//! number: every line first checks that the fd still is the copy, and once it is not, logs are
//! dropped silently for good. Logging never fails, never aborts, and never falls back to the
//! program's fds 1 or 2.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crac_agent::guard::Guarded;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Where logs go once [`redirect`] was called.
static TARGET: OnceLock<Guarded<File>> = OnceLock::new();

/// Set once the program closed or reused [`TARGET`]'s number: logs are dropped from then on.
static LOST: AtomicBool = AtomicBool::new(false);

/// Installs the global subscriber; `name` prefixes every line.
pub fn init(name: &'static str) {
    let filter = EnvFilter::try_from_env("CRAC_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(Line { name })
        .with_writer(|| Sink)
        .try_init();
    if installed.is_err() {
        eprintln!("{name}: warning: logging was already set up");
    }
}

/// Sends every later log line to `fd` instead of fd 2.
pub fn redirect(fd: OwnedFd) -> io::Result<()> {
    if TARGET.set(Guarded::new(File::from(fd))?).is_err() {
        tracing::debug!("log output was already redirected");
    }
    Ok(())
}

/// Reports panics of crac's own threads through the log (so on the protected stderr copy)
/// instead of on fd 2, which belongs to the program once it runs.
pub fn route_panics() {
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("internal error, please report it: {info}");
    }));
}

/// Writes to the redirected fd if there is one, else to stderr; never reports an error (the
/// subscriber would print a complaint on fd 2, which may be the program's).
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match TARGET.get() {
            Some(target) => write_guarded(target, &LOST, buf),
            None => {
                let _ = io::stderr().write(buf);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes all of `buf` to `target` if it still is crac's file and `lost` is not set; sets
/// `lost` (for good) when the program closed or reused the number. Errors are dropped.
fn write_guarded(target: &Guarded<File>, lost: &AtomicBool, buf: &[u8]) {
    if lost.load(Ordering::Relaxed) {
        return;
    }
    if !target.is_ours() {
        lost.store(true, Ordering::Relaxed);
        return;
    }
    let mut file: &File = target;
    if let Err(e) = file.write_all(buf)
        && e.raw_os_error() == Some(libc::EBADF)
    {
        lost.store(true, Ordering::Relaxed);
    }
}

/// `name: level: message key=value…`.
struct Line {
    name: &'static str,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let level = if level == "warn" { "warning" } else { &level };
        write!(writer, "{}: {level}: ", self.name)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn logs_stop_when_the_program_takes_the_fd_over() {
        let (ours, mut reader) = UnixStream::pair().unwrap();
        let target = Guarded::new(File::from(OwnedFd::from(ours))).unwrap();
        let lost = AtomicBool::new(false);
        write_guarded(&target, &lost, b"one\n");
        let mut got = [0u8; 4];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"one\n");

        // The program puts its own file at the log fd's number.
        let theirs = File::open("/dev/null").unwrap();
        let n = target.raw();
        // SAFETY: test: replaces our own log fd, as a hostile program would.
        assert_eq!(unsafe { libc::dup2(theirs.as_raw_fd(), n) }, n);
        write_guarded(&target, &lost, b"two\n");
        assert!(lost.load(Ordering::Relaxed));
        // Nothing reached the old file, and the program's file is still open at that number.
        reader.set_nonblocking(true).unwrap();
        assert!(!matches!(reader.read(&mut got), Ok(n) if n > 0));
        drop(target);
        // SAFETY: test: F_GETFD only queries the number.
        let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
        assert!(flags >= 0, "program's fd closed");
    }
}
