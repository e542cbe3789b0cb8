//! One short adapter per verb: parse results in, library calls, an exit code out.

pub mod ckpt;
pub mod inspect;
pub mod launch;
pub mod restart;

use std::process::ExitCode;

/// Exit status for a verb this build does not have yet (the usage-error status).
const NOT_AVAILABLE: u8 = 2;

/// Says that checkpoint and restart are not in this build, and gives the status for it.
fn not_available(name: &str) -> ExitCode {
    eprintln!("{name}: checkpoint and restart are not available in this build yet");
    ExitCode::from(NOT_AVAILABLE)
}
