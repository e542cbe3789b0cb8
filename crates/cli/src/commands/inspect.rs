//! `crac inspect IMAGE`: describe an image (not in this build yet: there are no images).

use std::process::ExitCode;

use crate::cli::InspectArgs;

/// Runs `crac inspect`.
pub fn run(name: &str, _args: InspectArgs) -> anyhow::Result<ExitCode> {
    Ok(super::not_available(name))
}
