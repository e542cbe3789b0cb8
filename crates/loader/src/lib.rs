//! crac's launch: the lower half's start-up (ASLR re-exec, brk guard, fd moves), loading the
//! program like the kernel does (its segments, its `PT_INTERP` ld.so, a fresh stack and auxv)
//! and jumping in, and tracking which memory is the lower half's.
//!
//! The order in `crac_launch` is: [`startup::ensure_no_aslr`] (re-exec once without ASLR),
//! [`startup::init_lower_half`] (brk guard, start-up mappings), start the agent thread (which
//! calls [`lower::register_current_thread`]), [`exec::resolve`], then [`exec::enter`], which
//! does not return: the main thread becomes the program's.
//!
//! Linking this crate makes the binary's allocator the lower arena: it defines Rust's global
//! allocator and exports the C malloc and mmap families (see `sys/exports.rs`) and
//! `pthread_create` (every lower thread registers itself, `sys/threads.rs`). Lower code that
//! maps memory *for the upper half* through `mmap` (restart) must call [`lower::forget`].
//!
//! Known differences from a native run, all deliberate: the program's environment carries
//! `GLIBC_TUNABLES=…glibc.pthread.rseq=0` (see [`exec`]), `/proc/self/exe` names crac, and
//! set-user-ID bits and file capabilities of the program are not applied (no kernel exec).
//!
//! Unsafe code lives only in `sys/` (system calls, exports, the arena) and `arch/x86_64.rs`
//! (the jump).

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("crac's loader supports x86-64 Linux only");

pub mod arch;
pub mod exec;
pub mod fds;
pub mod lower;
pub mod startup;
mod sys;
pub mod table;

pub use sys::arena::LowerAlloc;
pub use sys::mm::set_mm_map;

/// Lower-half Rust allocations come from the same arena as the exported C malloc.
#[global_allocator]
static GLOBAL: LowerAlloc = LowerAlloc;

/// The symbols the `crac` executable must export dynamically (the build scripts read the same
/// list from `exported-symbols.txt`).
pub fn exported_symbols() -> impl Iterator<Item = &'static str> {
    sys::exports::EXPORTED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
}

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crac_core::elf::ElfError;
use thiserror::Error;

/// Why the lower half's start-up failed.
#[derive(Debug, Error)]
pub enum StartupError {
    /// personality(2) failed.
    #[error("cannot read or set the process personality (ADDR_NO_RANDOMIZE): {0}")]
    Personality(#[source] io::Error),
    /// The re-exec of `/proc/self/exe` failed.
    #[error("cannot re-execute crac without address randomization (/proc/self/exe): {0}")]
    Reexec(#[source] io::Error),
    /// After the re-exec ASLR is still on.
    #[error(
        "address randomization is still on after the re-exec; the system refuses \
         ADDR_NO_RANDOMIZE (a seccomp or container policy?); run crac where personality(2) is allowed"
    )]
    AslrStillOn,
    /// The PROT_NONE guard above the break could not be mapped.
    #[error("cannot map the guard above the program break: {0}")]
    BrkGuard(#[source] io::Error),
    /// `/proc/self/maps` could not be read or parsed.
    #[error("cannot read /proc/self/maps to record crac's own memory: {0}")]
    Maps(String),
    /// The `.init_array` constructor that captures the start-up signal state did not run.
    #[error("start-up signal state was not captured (the loader's constructor was not linked)")]
    SignalsNotCaptured,
    /// The soft RLIMIT_NOFILE could not be read to place crac's fd range.
    #[error("cannot read the open-file limit (RLIMIT_NOFILE) to place crac's own fds: {0}")]
    FdRange(#[source] io::Error),
    /// pthread_atfork failed.
    #[error("cannot register the lower heap's fork handlers: {0}")]
    AtFork(#[source] io::Error),
}

/// Why a program could not be found or is not something crac can run; the exit status a
/// shell would give is [`ResolveError::exit_code`].
#[derive(Debug, Error)]
pub enum ResolveError {
    /// No such file (or not found in `PATH`).
    #[error("{name}: no such file or directory")]
    NotFound {
        /// The name as typed.
        name: String,
    },
    /// A bare name not found in any `PATH` directory.
    #[error("{name}: command not found")]
    CommandNotFound {
        /// The name as typed.
        name: String,
    },
    /// The path is a directory.
    #[error("{name}: is a directory")]
    IsDirectory {
        /// The path.
        name: String,
    },
    /// No execute permission (or not a regular file).
    #[error("{name}: permission denied (not executable; check its mode with ls -l)")]
    NotExecutable {
        /// The path.
        name: String,
    },
    /// Neither ELF nor `#!`.
    #[error("{name}: cannot execute binary file: exec format error (neither ELF nor a #! script)")]
    ExecFormat {
        /// The path.
        name: String,
    },
    /// A `#!` line the kernel rejects: no interpreter named, or a name longer than it reads.
    #[error(
        "{name}: cannot execute: its #! line names no interpreter, or a name longer than the \
         kernel reads (255 bytes); put the interpreter's full path right after #!"
    )]
    BadShebangLine {
        /// The script.
        name: String,
    },
    /// An ELF file crac cannot load.
    #[error("{name}: cannot execute: {source}")]
    BadElf {
        /// The path.
        name: String,
        /// What is wrong.
        #[source]
        source: ElfError,
    },
    /// The ELF interpreter named by `PT_INTERP` does not exist or is not loadable.
    #[error("{name}: bad ELF interpreter {interp}: {problem}")]
    BadInterpreter {
        /// The program.
        name: String,
        /// The interpreter path.
        interp: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A `#!` interpreter that does not exist or cannot run.
    #[error("{name}: bad interpreter {interp}: {problem}")]
    BadShebang {
        /// The script.
        name: String,
        /// The interpreter named on the `#!` line.
        interp: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `#!` scripts nested too deep (the kernel allows 4 levels).
    #[error("{name}: too many levels of #! interpreters")]
    ShebangLoop {
        /// The first script.
        name: String,
    },
    /// Another I/O error while checking the file.
    #[error("{name}: {source}")]
    Io {
        /// The path.
        name: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl ResolveError {
    /// The status a shell exits with: 127 when not found, 126 when found but not runnable.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. } | Self::CommandNotFound { .. } => 127,
            _ => 126,
        }
    }
}

/// Why mapping or entering the program failed (the process is then unusable: exit).
#[derive(Debug, Error)]
pub enum LoadError {
    /// Reading the program or interpreter file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Mapping a segment, the stack or a reservation failed.
    #[error("cannot map {what} of {path}: {source}")]
    Map {
        /// What was being mapped.
        what: &'static str,
        /// The file it belongs to.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A fixed-address (ET_EXEC) program overlaps crac's own memory.
    #[error(
        "{path} must be loaded at {start:#x}-{end:#x}, which crac's own memory already uses; \
         rebuild the program as PIE (-fPIE -pie)"
    )]
    AddressInUse {
        /// The program.
        path: PathBuf,
        /// Start of the wanted range.
        start: u64,
        /// End of the wanted range.
        end: u64,
    },
    /// The stack would not fit the arguments and environment.
    #[error("argument list and environment too long for the program's stack ({needed} bytes)")]
    ArgsTooLong {
        /// Bytes needed.
        needed: usize,
    },
    /// `/proc/self/auxv` could not be read.
    #[error("cannot read crac's auxiliary vector (/proc/self/auxv): {0}")]
    Auxv(#[source] io::Error),
    /// Restoring the signal state for the program failed.
    #[error("cannot restore the start-up signal state for the program: {0}")]
    Signals(#[source] io::Error),
    /// Closing a standard fd that was closed when crac started failed.
    #[error("cannot close again the standard fds crac was started without (0-2): {0}")]
    StdFds(#[source] io::Error),
    /// An argument or environment string holds a NUL byte.
    #[error("argument or environment string holds a NUL byte: {0:?}")]
    Nul(OsString),
}
