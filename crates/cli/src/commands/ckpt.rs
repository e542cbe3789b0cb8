//! `crac_ckpt --status PID [--json]`: ask a launched process's agent for its threads and memory.
//! Checkpointing itself (`crac_ckpt PID…`) is not in this build yet.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::CkptArgs;
use crate::render;

/// Runs `crac_ckpt`.
pub fn run(name: &str, args: CkptArgs) -> anyhow::Result<ExitCode> {
    let Some(pid) = args.status else {
        return Ok(super::not_available(name));
    };
    let report = crac_agent::client::status(pid)?;
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&report).context("cannot encode the status")?;
        json.push('\n');
        json
    } else {
        render::status(&report)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
