//! `crac_launch --gpu sim|cuda`: set up the lower half's device backend and the program's
//! environment so that its CUDA runtime calls land in crac's shim.
//!
//! CONTRACT (skeleton; being written): `prepare_launch` runs after `exec::resolve` and before
//! `exec::enter`; it refuses (with the remedy) a program that links the CUDA runtime
//! statically, starts the chosen backend, publishes the call table, reserves the device window,
//! and puts the shim into `env`'s `LD_PRELOAD`.

use std::ffi::OsString;

use crac_loader::exec::Target;

/// Which device backend the program's CUDA calls go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[allow(dead_code)]
pub enum GpuKind {
    /// crac's CPU model of a CUDA device (no GPU needed).
    Sim,
    /// The real CUDA runtime and driver, loaded at run time.
    Cuda,
}

/// Prepares the lower half and the program's environment for `kind`.
#[allow(dead_code)] // wired to `--gpu` by the launch options work
pub fn prepare_launch(
    kind: GpuKind,
    target: &Target,
    env: &mut Vec<OsString>,
) -> anyhow::Result<()> {
    let _ = (target, env);
    anyhow::bail!("--gpu {kind:?} is not available in this build yet")
}
