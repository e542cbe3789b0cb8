//! One short adapter per verb: parse results in, library calls, an exit code out.

pub mod ckpt;
pub mod inspect;
pub mod jupyter;
pub mod launch;
pub mod restart;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use crac_loader::{fds, startup};

use crate::logging;

/// The start-up that launch and restart share, so both lay the address space out the same way:
/// the re-exec without address randomization, the lower half's start-up set, and crac's
/// messages sent to a copy of stderr in crac's protected fd range (fd 2 is the program's).
pub fn become_lower_half() -> anyhow::Result<()> {
    startup::ensure_no_aslr().context("cannot turn off address randomization")?;
    startup::init_lower_half().context("cannot set up crac's lower half")?;
    let log_fd = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(fds::move_high)
        .context("cannot keep a copy of stderr for crac's messages")?;
    logging::redirect(log_fd).context("cannot keep a copy of stderr for crac's messages")?;
    logging::route_panics();
    Ok(())
}

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
