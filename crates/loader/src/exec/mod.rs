//! Finding the program ([`resolve`]) and loading it like the kernel does ([`enter`]): its
//! `PT_LOAD` segments (ET_EXEC at their addresses, PIE at a free base), its `PT_INTERP` ld.so
//! at a free base, a fresh stack with argv, envp and a patched auxv, then a jump to the
//! interpreter's entry (the program's own for static and static-pie programs). The program sees
//! its own `argv[0]` and `AT_EXECFN` exactly as after `execve`.
//!
//! rseq: DESIGN.md's v1 policy keeps glibc from registering rseq in both halves. The upper
//! glibc reads `GLIBC_TUNABLES` only from the program's own environment, at its start, so the
//! one place to say it is that environment: [`program_env`] merges `glibc.pthread.rseq=0` into
//! it (keeping every other tunable). This is the one visible difference from a native run: the
//! program's environment carries that tunable.

mod resolve;
pub mod stack;

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crac_core::elf::Elf;

pub use resolve::{Shebang, lookup, parse_shebang, resolve};

use crate::LoadError;
use crate::startup::merge_tunables;
use crate::sys::load;

/// Largest stack given to the program (RLIMIT_STACK above this, or unlimited, is capped).
const MAX_STACK: u64 = 8 << 20;
/// Largest stack made to hold a huge argument list and environment.
const MAX_ARGS_STACK: u64 = 1 << 30;
/// Smallest stack given to the program.
const MIN_STACK: u64 = 128 << 10;

/// Auxiliary-vector entries added to the program's auxv by [`enter`] (see [`set_extra_auxv`]).
static EXTRA_AUXV: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

/// Adds `entries` to the auxiliary vector [`enter`] gives the program (replacing entries of
/// the same type): how crac passes the CUDA call table's address to the upper-half shim. They
/// also go into the kernel's copy (`/proc/PID/auxv`).
pub fn set_extra_auxv(entries: &[(u64, u64)]) {
    let mut extra = EXTRA_AUXV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for &(key, value) in entries {
        extra.retain(|(k, _)| *k != key);
        extra.push((key, value));
    }
}

/// `auxv` with the [`set_extra_auxv`] entries put in (replacing entries of the same type).
fn with_extra_auxv(mut auxv: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let extra = EXTRA_AUXV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for &(key, value) in extra.iter() {
        auxv.retain(|(k, _)| *k != key);
        auxv.push((key, value));
    }
    auxv
}

/// An opened, checked ELF file.
#[derive(Debug)]
pub(crate) struct Loadable {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) elf: Elf,
}

/// A resolved program ready to enter.
#[derive(Debug)]
pub struct Target {
    /// The ELF file to map (the interpreter of a `#!` script).
    pub(crate) program: Loadable,
    /// Its `PT_INTERP` ld.so, if dynamic.
    pub(crate) interp: Option<Loadable>,
    /// The argv the program sees.
    pub(crate) argv: Vec<OsString>,
    /// The path as passed to "execve" (`AT_EXECFN`).
    pub(crate) execfn: OsString,
    /// The process name (`comm`): the basename of that path.
    pub(crate) comm: OsString,
}

impl Target {
    /// The argv the program will see (for a script: interpreter, its argument, script path…).
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// The ELF file that will be mapped.
    pub fn path(&self) -> &Path {
        &self.program.path
    }

    /// Whether the program is a `#!` script (then [`Target::path`] is its interpreter).
    pub fn is_script(&self) -> bool {
        Path::new(&self.execfn) != self.program.path
    }

    /// The program's ELF interpreter, if it is dynamically linked.
    pub fn interpreter(&self) -> Option<&Path> {
        self.interp.as_ref().map(|i| i.path.as_path())
    }
}

/// The environment the program gets: `env` with `glibc.pthread.rseq=0` merged into its
/// `GLIBC_TUNABLES` (added if absent); everything else unchanged and in order.
pub fn program_env(env: Vec<OsString>) -> Vec<OsString> {
    const KEY: &[u8] = b"GLIBC_TUNABLES=";
    let mut found = false;
    let mut out: Vec<OsString> = env
        .into_iter()
        .map(|e| match e.as_bytes().strip_prefix(KEY) {
            Some(value) => {
                found = true;
                let mut merged = OsString::from("GLIBC_TUNABLES=");
                merged.push(merge_tunables(Some(OsStr::from_bytes(value))));
                merged
            }
            None => e,
        })
        .collect();
    if !found {
        let mut e = OsString::from("GLIBC_TUNABLES=");
        e.push(merge_tunables(None));
        out.push(e);
    }
    out
}

fn stack_size() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a valid local.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0;
    let want = if ok { lim.rlim_cur } else { MAX_STACK };
    want.clamp(MIN_STACK, MAX_STACK) & !(crac_core::elf::PAGE_SIZE - 1)
}

fn bytes_of(v: &[OsString]) -> Result<Vec<Vec<u8>>, LoadError> {
    v.iter()
        .map(|s| {
            if s.as_bytes().contains(&0) {
                Err(LoadError::Nul(s.clone()))
            } else {
                Ok(s.as_bytes().to_vec())
            }
        })
        .collect()
}

/// Maps the program and (if any) its interpreter and jumps in. `env` is the environment the
/// program must see (the caller already removed crac's private `__CRAC_*` variables).
pub fn enter(target: Target, env: Vec<OsString>) -> Result<Infallible, LoadError> {
    let env = program_env(env);
    let argv = bytes_of(&target.argv)?;
    let envp = bytes_of(&env)?;
    let execfn = target.execfn.as_bytes().to_vec();
    let needed: usize = argv.iter().chain(&envp).map(|s| s.len() + 9).sum::<usize>() + execfn.len();
    // Like the kernel, strings may use a quarter of the stack: grow it past the usual cap for
    // huge argument lists (crac itself received them, so the kernel's limit already held).
    let needed_stack = (needed as u64)
        .saturating_mul(4)
        .next_multiple_of(crac_core::elf::PAGE_SIZE);
    if needed_stack > MAX_ARGS_STACK {
        return Err(LoadError::ArgsTooLong { needed });
    }
    let size = stack_size().max(needed_stack);
    let comm = CString::new(target.comm.clone().into_vec()).unwrap_or_default();

    let prog = &target.program;
    let bias = load::map_image(&prog.file, &prog.elf, &prog.path)?;
    let phdr = prog.elf.phdr_vaddr().unwrap_or(0).wrapping_add(bias);
    let prog_entry = prog.elf.header.entry.wrapping_add(bias);
    let (base, entry) = match &target.interp {
        Some(i) => {
            let ibias = load::map_image(&i.file, &i.elf, &i.path)?;
            (ibias, i.elf.header.entry.wrapping_add(ibias))
        }
        None => (0, prog_entry),
    };
    let top = load::map_stack(
        usize::try_from(size).unwrap_or(8 << 20),
        prog.elf.exec_stack(),
        &prog.path,
    )?;
    let own = load::own_auxv().map_err(LoadError::Auxv)?;
    let patch = stack::AuxPatch {
        phdr,
        phnum: u64::from(prog.elf.header.phnum),
        entry: prog_entry,
        base,
    };
    let auxv = with_extra_auxv(stack::patch_auxv(&own, patch));
    let platform = load::platform();
    let random = load::random16().map_err(LoadError::Auxv)?;
    let spec = stack::StackSpec {
        argv: &argv,
        envp: &envp,
        execfn: &execfn,
        platform: platform.as_deref(),
        random,
        auxv: &auxv,
    };
    let image = stack::build(&spec, top);
    load::write_stack(image.sp, &image.bytes).map_err(|source| LoadError::Map {
        what: "the stack",
        path: prog.path.clone(),
        source,
    })?;
    let sp = image.sp;

    // From here on the process is the program's: its signal state, name and persona.
    crate::sys::signals::restore_for_program().map_err(LoadError::Signals)?;
    let _ = crate::sys::set_comm(&comm);
    let _ = crate::sys::mm::describe_program(image.args, image.env, &image.auxv, sp);
    if let Some(p) = crate::startup::original_personality() {
        load::restore_personality(p);
    }
    // Close the program's files and free what we built: nothing of ours survives the jump.
    drop(target);
    drop((argv, envp, execfn, auxv, platform, image, comm));
    // Last: standard fds crac was started without are closed again (std filled them with
    // /dev/null); nothing of ours opens a file between here and the jump.
    crate::sys::stdfds::close_for_program().map_err(LoadError::StdFds)?;
    // SAFETY: `entry` is the entry of the interpreter (or static program) mapped above and
    // `sp` the 16-byte aligned argc of the complete stack image written into the fresh stack.
    unsafe { crate::arch::x86_64::enter(entry, sp) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_auxv_entries_are_added_once_and_replace_their_type() {
        set_extra_auxv(&[(0x6372_6163, 1)]);
        set_extra_auxv(&[(0x6372_6163, 2)]);
        let out = with_extra_auxv(vec![(6, 4096), (0x6372_6163, 7)]);
        assert_eq!(out, vec![(6, 4096), (0x6372_6163, 2)]);
    }

    #[test]
    fn program_env_merges_the_rseq_tunable_and_keeps_the_rest() {
        let env = vec![
            "A=1".into(),
            "GLIBC_TUNABLES=glibc.malloc.check=3".into(),
            "B=2".into(),
        ];
        assert_eq!(
            program_env(env),
            vec![
                OsString::from("A=1"),
                "GLIBC_TUNABLES=glibc.malloc.check=3:glibc.pthread.rseq=0".into(),
                "B=2".into()
            ]
        );
        assert_eq!(
            program_env(vec!["A=1".into()]),
            vec![
                OsString::from("A=1"),
                "GLIBC_TUNABLES=glibc.pthread.rseq=0".into()
            ]
        );
        let already = vec![OsString::from("GLIBC_TUNABLES=glibc.pthread.rseq=0")];
        assert_eq!(program_env(already.clone()), already);
    }
}
