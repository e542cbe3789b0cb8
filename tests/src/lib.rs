//! Helpers for crac's end-to-end tests: locating the built binaries and building test programs.
//!
//! The tests drive the real `crac` binary (through its `crac_launch`, `crac_ckpt` and
//! `crac_restart` names) over small purpose-written programs from `tests/programs/`, and compare
//! each run against the same program started without crac.
//!
//! - [`binaries`] finds `crac` (`$CRAC_BIN`, else `<target>/<profile>/crac`) and makes the
//!   underscore-named links to it.
//! - [`programs`] compiles the C and Rust test programs once per test process.
//! - [`run`] starts a child with a time limit (a hang fails the test instead of blocking CI),
//!   natively or under `crac_launch`, and captures stdout, stderr and the exit status
//!   ([`outcome`]); [`spawned`] keeps one running while the test inspects it.
//! - [`compare`] holds the assertions shared by the test files.
//! - [`ckpt`] runs checkpoint scenarios: checkpoint at a random moment, kill, restart, compare.
//! - [`gpu`] reads the CUDA section of an image through `crac inspect --json` and rewrites
//!   images (a device buffer damaged, the replay log changed) for the CUDA failure tests.

pub mod binaries;
pub mod ckpt;
pub mod compare;
pub mod gpu;
pub mod outcome;
pub mod programs;
pub mod run;
pub mod spawned;

pub use binaries::{crac_bin, tools};
pub use compare::{assert_clean_failure, assert_no_crash, assert_same};
pub use outcome::Outcome;
pub use programs::{Link, c_program, c_program_with_libcrac, rust_program};
pub use run::{Cmd, Input, run_both};
pub use spawned::Spawned;

use std::path::PathBuf;

/// Everything that can go wrong while preparing or running an end-to-end test.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `crac` binary is not where the tests look for it.
    #[error("no crac binary at {path}; build it first: cargo build -p crac (or set CRAC_BIN)")]
    CracMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The test executable's own path did not tell where the target directory is.
    #[error("cannot find the target directory from {exe}; set CARGO_TARGET_DIR or CRAC_BIN")]
    TargetDir {
        /// The test executable.
        exe: PathBuf,
    },
    /// A filesystem operation of the harness failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file it was done on.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A test program did not compile.
    #[error(
        "building {source_file} failed ({command}); is a C compiler with static libc installed? (bash scripts/setup.sh)\n{stderr}"
    )]
    Build {
        /// The source file.
        source_file: PathBuf,
        /// The compiler command line.
        command: String,
        /// What the compiler wrote to stderr.
        stderr: String,
    },
    /// Starting or waiting for a child process failed.
    #[error("running {program}: {source}")]
    Spawn {
        /// The program started.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A child ran past its time limit and was killed.
    #[error("{program} ran longer than {secs} s and was killed; output so far:\n{partial}")]
    Timeout {
        /// The program started.
        program: String,
        /// The limit in seconds.
        secs: u64,
        /// What it had written to stdout by then.
        partial: String,
    },
    /// An interactive child ended, or went silent, before printing the line waited for.
    #[error("{program} did not print a line starting with {wanted:?}; it printed:\n{seen}")]
    MissingLine {
        /// The program started.
        program: String,
        /// The line prefix waited for.
        wanted: String,
        /// The lines it printed.
        seen: String,
    },
}

/// The result type of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with the operation and path it came from.
pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}
