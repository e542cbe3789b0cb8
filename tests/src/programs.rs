//! Building the test programs of `tests/programs/` once per test process.
//!
//! Outputs go to `<target>/<profile>/crac-e2e/programs/`; each is compiled to a temporary name
//! and renamed into place, so test processes running side by side never see half a binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::binaries::cache_dir;
use crate::{Error, Result, io_err};

/// How a C test program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// A position-independent executable using the system's ld.so (gcc's default).
    Pie,
    /// A fixed-address executable using the system's ld.so.
    NoPie,
    /// A statically linked fixed-address executable: no interpreter.
    Static,
    /// A statically linked position-independent executable: no interpreter, self-relocating.
    StaticPie,
}

impl Link {
    /// Every kind, for tests that cover them all.
    pub const ALL: [Link; 4] = [Link::Pie, Link::NoPie, Link::Static, Link::StaticPie];

    fn flags(self) -> &'static [&'static str] {
        match self {
            Link::Pie => &["-fPIE", "-pie"],
            Link::NoPie => &["-fno-pie", "-no-pie"],
            Link::Static => &["-fno-pie", "-static"],
            Link::StaticPie => &["-fPIE", "-static-pie"],
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Link::Pie => "pie",
            Link::NoPie => "nopie",
            Link::Static => "static",
            Link::StaticPie => "static-pie",
        }
    }
}

/// The folder holding the test programs' sources: `$CRAC_E2E_PROGRAMS` if set, else
/// `tests/programs` of the checkout the tests were built from, else (test binaries copied with
/// their `target/` to another machine, as `gpu-tests/run.sh` does) `tests/programs` next to the
/// target directory.
pub fn source_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CRAC_E2E_PROGRAMS").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    if built_from.is_dir() {
        return built_from;
    }
    crate::binaries::profile_dir()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("tests/programs")))
        .filter(|d| d.is_dir())
        .unwrap_or(built_from)
}

type Slot = Arc<OnceLock<Result<PathBuf, String>>>;

/// Runs `build` once per `key` in this process and returns its result every time after.
/// Different keys build in parallel; the same key waits for the first build.
fn once(key: String, build: impl FnOnce() -> Result<PathBuf>) -> Result<PathBuf, String> {
    static SLOTS: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    let slot = {
        let mut slots = SLOTS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key).or_default())
    };
    slot.get_or_init(|| build().map_err(|e| e.to_string()))
        .clone()
}

/// Runs a compiler command that writes `out`, via a temporary name renamed into place.
fn compile(mut cmd: Command, source: &Path, out: &Path) -> Result<PathBuf> {
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    cmd.arg("-o").arg(&tmp);
    let command = format!("{cmd:?}");
    let result = cmd.output().map_err(|source| Error::Spawn {
        program: command.clone(),
        source,
    })?;
    if !result.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Build {
            source_file: source.to_path_buf(),
            command,
            stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
        });
    }
    std::fs::rename(&tmp, out).map_err(io_err("renaming to", out))?;
    Ok(out.to_path_buf())
}

fn build_c(name: &str, link: Link) -> Result<PathBuf> {
    let source = source_dir().join(format!("{name}.c"));
    let out = cache_dir("programs")?.join(format!("{name}-{}", link.suffix()));
    let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args(["-O2", "-g", "-Wall", "-pthread"])
        .args(link.flags())
        .arg(&source);
    compile(cmd, &source, &out)
}

fn build_rust(name: &str) -> Result<PathBuf> {
    let source = source_dir().join(format!("{name}.rs"));
    let out = cache_dir("programs")?.join(format!("{name}-rs"));
    let mut cmd = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    cmd.args(["-O", "--edition", "2021"]).arg(&source);
    compile(cmd, &source, &out)
}

/// The C program `tests/programs/<name>.c` linked as `link`, compiled with `cc` (or `$CC`) the
/// first time this process asks for it.
///
/// # Panics
/// When it does not compile: the test cannot go on, and the compiler's message says why.
pub fn c_program(name: &str, link: Link) -> PathBuf {
    once(format!("c:{name}:{link:?}"), || build_c(name, link)).unwrap_or_else(|msg| panic!("{msg}"))
}

/// The checkout's root (holding `include/crac.h` and `lib/crac/crac.c`): the parent of the
/// programs' folder.
fn checkout_root() -> PathBuf {
    source_dir()
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn build_libcrac() -> Result<PathBuf> {
    let root = checkout_root();
    let source = root.join("lib/crac/crac.c");
    let dir = cache_dir("libcrac")?;
    let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args([
        "-O2", "-g", "-Wall", "-Wextra", "-fPIC", "-shared", "-pthread",
    ])
    .arg("-I")
    .arg(root.join("include"))
    .arg(&source);
    compile(cmd, &source, &dir.join("libcrac.so"))?;
    Ok(dir)
}

/// The directory holding `libcrac.so`, built from `lib/crac/crac.c` the first time this process
/// asks for it.
///
/// # Panics
/// When it does not compile.
pub fn libcrac_dir() -> PathBuf {
    once("libcrac".into(), build_libcrac).unwrap_or_else(|msg| panic!("{msg}"))
}

/// The C program `tests/programs/<name>.c` using `crac.h`, linked against `libcrac.so` (found
/// through its run path).
///
/// # Panics
/// When it does not compile.
pub fn c_program_with_libcrac(name: &str) -> PathBuf {
    let lib = libcrac_dir();
    once(format!("c-libcrac:{name}"), || {
        let source = source_dir().join(format!("{name}.c"));
        let out = cache_dir("programs")?.join(format!("{name}-libcrac"));
        let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
        cmd.args(["-O2", "-g", "-Wall", "-pthread"])
            .arg("-I")
            .arg(checkout_root().join("include"))
            .arg(&source)
            .arg("-L")
            .arg(&lib)
            .arg("-lcrac")
            .arg(format!("-Wl,-rpath,{}", lib.display()));
        compile(cmd, &source, &out)
    })
    .unwrap_or_else(|msg| panic!("{msg}"))
}

/// The Rust program `tests/programs/<name>.rs`, compiled with `rustc` (or `$RUSTC`) the first
/// time this process asks for it.
///
/// # Panics
/// When it does not compile.
pub fn rust_program(name: &str) -> PathBuf {
    once(format!("rs:{name}"), || build_rust(name)).unwrap_or_else(|msg| panic!("{msg}"))
}

/// The Python interpreter itself (`sys.executable` of `python3`): `python3` may be a wrapper
/// script that execs it (pyenv), and an exec leaves crac behind.
///
/// # Panics
/// When `python3` cannot be run.
pub fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("run python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_kind_builds_and_runs() {
        for link in Link::ALL {
            let exe = c_program("status", link);
            let out = Command::new(&exe).args(["exit", "3"]).output().unwrap();
            assert_eq!(out.status.code(), Some(3), "{link:?}");
            // Asking again gives the same file without rebuilding.
            assert_eq!(c_program("status", link), exe);
        }
    }

    #[test]
    fn static_kinds_have_no_interpreter() {
        for (link, dynamic) in [
            (Link::Pie, true),
            (Link::Static, false),
            (Link::StaticPie, false),
        ] {
            let bytes = std::fs::read(c_program("status", link)).unwrap();
            let interp: &[u8] = b"/lib64/ld-linux-x86-64.so.2";
            let has_interp = bytes.windows(interp.len()).any(|w| w == interp);
            assert_eq!(has_interp, dynamic, "{link:?}");
        }
    }

    #[test]
    fn a_broken_source_reports_the_compiler_error() {
        let err = compile(
            {
                let mut c = Command::new("cc");
                c.args(["-x", "c", "-"]);
                c
            },
            Path::new("stdin.c"),
            &std::env::temp_dir().join(format!("crac-e2e-never-{}", std::process::id())),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Build { .. }), "{err}");
    }
}
