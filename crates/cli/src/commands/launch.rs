//! `crac_launch [OPTIONS] PROGRAM [ARGS…]`: become the lower half, start the agent, arm the
//! checkpoint triggers, prepare the device backend if asked, enter the program.
//!
//! Nothing here writes to stdout: that is the program's. Errors go to stderr prefixed with the
//! name we were started under.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::LaunchArgs;
use crac_core::image::CheckpointPolicy;
use crac_loader::exec;

/// Status when the program was found but could not be started (the shell's 126).
const CANNOT_RUN: u8 = 126;
/// Status for options that cannot be used (as clap's usage errors).
const USAGE: u8 = 2;

/// The checkpoint policy the options ask for; the directory made absolute and checked.
fn policy(args: &LaunchArgs) -> anyhow::Result<CheckpointPolicy> {
    let dir = super::checkpoint_dir(args.dir.as_deref())?;
    Ok(CheckpointPolicy {
        dir: dir.display().to_string(),
        interval_secs: args.interval,
        keep: args.keep,
        signal: args.ckpt_signal,
        exit_after_ckpt: args.exit_after_ckpt,
    })
}

/// Runs `crac_launch`; returns only if the program could not be entered.
pub fn run(name: &str, args: LaunchArgs) -> anyhow::Result<ExitCode> {
    super::become_lower_half()?;

    let target = match exec::resolve(args.program(), args.args()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: {e}");
            return Ok(ExitCode::from(
                u8::try_from(e.exit_code()).unwrap_or(CANNOT_RUN),
            ));
        }
    };
    let policy = match policy(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    crac_agent::policy::start_lineage(&args.program().to_string_lossy(), std::process::id());
    let agent = crac_agent::start().context("cannot start crac's agent")?;
    crac_agent::trigger::arm(&policy).context("cannot set up the checkpoint triggers")?;
    let mut env = program_env(std::env::vars_os());
    if let Some(kind) = args.gpu {
        if let Err(e) = crate::gpu::prepare_launch(kind, &target, &mut env) {
            eprintln!("{name}: {e:#}");
            return Ok(ExitCode::from(CANNOT_RUN));
        }
    }
    let Err(e) = exec::enter(target, env);
    drop(agent);
    eprintln!(
        "{name}: cannot start {}: {e}",
        args.program().to_string_lossy()
    );
    Ok(ExitCode::from(CANNOT_RUN))
}

/// The program's environment: ours, minus crac's private `__CRAC_*` variables, as `KEY=VALUE`.
fn program_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<OsString> {
    vars.filter(|(k, _)| !k.as_bytes().starts_with(b"__CRAC_"))
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_variables_are_dropped() {
        let vars = [
            ("PATH", "/bin"),
            ("__CRAC_STAGE", "1"),
            ("CRAC_LOG", "debug"),
            ("X", "a=b"),
        ]
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(program_env(vars), ["PATH=/bin", "CRAC_LOG=debug", "X=a=b"]);
    }
}
