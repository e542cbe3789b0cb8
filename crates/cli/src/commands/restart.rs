//! `crac_restart IMAGE|DIR`: resume a program from an image (not in this build yet).

use std::process::ExitCode;

use crate::cli::RestartArgs;

/// Runs `crac_restart`.
pub fn run(name: &str, _args: RestartArgs) -> anyhow::Result<ExitCode> {
    Ok(super::not_available(name))
}
