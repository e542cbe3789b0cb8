//! `crac_restart IMAGE|DIR [--eager] [--gpu sim|cuda]`: resume a program from an image.
//!
//! The order matters: the address-space layout must be the launch's (`ensure_no_aslr`, the
//! lower half's start-up), and the restorer must reserve the program's address ranges before
//! anything else maps memory. So only the image's small metadata is read here (to choose and
//! check it), in the lower half's arena, and dropped before the restorer runs; no thread is
//! started. The device backend for an image with CUDA state is started by the restorer, late,
//! through [`crate::gpu::restart_backend`].

use std::process::ExitCode;

use crate::cli::RestartArgs;
use crate::{build_id, images};
use crac_agent::restore::{self, RestartOptions};

/// Exit status when the image cannot be restarted.
const CANNOT_RESTART: u8 = 1;

/// Runs `crac_restart`; returns only if the program could not be restarted.
pub fn run(name: &str, args: RestartArgs) -> anyhow::Result<ExitCode> {
    // With --same-pid this process only supervises: the restart runs in a child that has the
    // image's pid in a new pid namespace, and its exit status comes back here.
    if let Some(code) = crate::pidns::supervise_if_asked(name, &args)? {
        return Ok(code);
    }
    super::become_lower_half()?;

    let ours = build_id::of_file(std::path::Path::new("/proc/self/exe"))
        .ok()
        .flatten();
    let chosen = match images::choose(&args.image, ours.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return Ok(ExitCode::from(CANNOT_RESTART));
        }
    };
    if chosen.from_dir {
        eprintln!(
            "{name}: restarting from {} (the newest good image in {})",
            chosen.path.display(),
            args.image.display()
        );
        for (p, why) in &chosen.skipped {
            eprintln!("{name}: skipped {}: {why}", p.display());
        }
    }
    crac_agent::policy::continue_lineage(&chosen.path, &chosen.comm, std::process::id());
    let path = chosen.path;
    let options = RestartOptions {
        eager: args.eager,
        gpu: args.gpu.map(|g| g.name().to_owned()),
        backend: Some(crate::gpu::restart_backend),
    };
    let Err(e) = restore::restart(&path, &options);
    eprintln!("{name}: cannot restart {}: {e}", path.display());
    Ok(ExitCode::from(CANNOT_RESTART))
}
