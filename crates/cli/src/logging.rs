//! Diagnostics: `tracing` events as one line on stderr, `<name>: <level>: <message>`, at `warn`
//! unless `CRAC_LOG` says otherwise (`CRAC_LOG=debug`).
//!
//! Once a program is launched, fd 2 is the program's: it may close or reuse it. The launch
//! therefore sends crac's logs to a duplicate of the original stderr kept in crac's protected fd
//! range ([`redirect`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Where logs go once [`redirect`] was called.
static TARGET: OnceLock<File> = OnceLock::new();

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
pub fn redirect(fd: OwnedFd) {
    if TARGET.set(File::from(fd)).is_err() {
        tracing::debug!("log output was already redirected");
    }
}

/// Reports panics of crac's own threads through the log (so on the protected stderr copy)
/// instead of on fd 2, which belongs to the program once it runs.
pub fn route_panics() {
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("internal error, please report it: {info}");
    }));
}

/// Writes to the redirected fd if there is one, else to stderr.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match TARGET.get() {
            Some(mut f) => f.write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match TARGET.get() {
            Some(mut f) => f.flush(),
            None => io::stderr().flush(),
        }
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
