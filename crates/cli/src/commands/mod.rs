//! One short adapter per verb: parse results in, library calls, an exit code out.

pub mod ckpt;
pub mod inspect;
pub mod launch;
pub mod restart;

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The checkpoint directory: `given`, else `$CRAC_DIR`, else the current directory; made
/// absolute (against the current directory) and checked to be a directory.
pub fn checkpoint_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot find the current directory")?;
    let dir = match given {
        Some(d) => cwd.join(d),
        None => match std::env::var_os("CRAC_DIR").filter(|d| !d.is_empty()) {
            Some(d) => cwd.join(d),
            None => cwd,
        },
    };
    let meta = std::fs::metadata(&dir)
        .with_context(|| format!("checkpoint directory {} cannot be used", dir.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "checkpoint directory {} is not a directory",
        dir.display()
    );
    Ok(dir)
}
