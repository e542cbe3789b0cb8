//! `crac jupyter install|uninstall`: the "Python 3 (crac)" kernelspec (to be built: this is the
//! contract the command line calls).

use std::process::ExitCode;

use crate::cli::JupyterArgs;

/// Runs `crac jupyter`.
pub fn run(name: &str, args: JupyterArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("{name}: crac jupyter is not available yet")
}
