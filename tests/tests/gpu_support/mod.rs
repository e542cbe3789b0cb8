//! Shared by the `gpu_*` tests: building the whole CUDA programs of `tests/cuda/programs/`
//! with nvcc (`-cudart shared`, PTX only, so the `sim` device can run them), finding the shim
//! libraries `scripts/link-shim.sh` links next to the `crac` binary, and running a program
//! under `crac_launch --gpu sim`.
//!
//! nvcc is `$CRAC_NVCC`, else the path `scripts/setup.sh` recorded in
//! `$CRAC_TOOLS/nvcc-path` (default `~/.cache/crac-tools/nvcc-path`). Compiled programs are
//! cached under the target dir keyed by source text and flags, so `gpu-tests/run.sh` can copy a
//! built tree to a machine without nvcc.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crac_e2e::binaries::{cache_dir, profile_dir};
use crac_e2e::{Cmd, Outcome};

/// How a CUDA program links the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `-cudart shared`: what crac needs.
    Shared,
    /// `-cudart shared --default-stream per-thread`: the `_ptsz`/`_ptds` entry points.
    SharedPerThread,
    /// nvcc's default, the static runtime: crac must refuse it with the remedy.
    Static,
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `tests/cuda/programs/`.
pub fn programs_dir() -> PathBuf {
    repo_root().join("tests/cuda/programs")
}

pub use crac_test_support::nvcc;

/// The CUDA runtime wheel's `lib` folder next to nvcc's `bin` (holds `libcudart.so`).
pub fn cuda_lib_dir() -> PathBuf {
    nvcc()
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("lib"))
        .expect("nvcc sits in a bin folder")
}

/// Builds `tests/cuda/programs/<name>.cu` (cached) and returns the executable.
///
/// # Panics
/// When nvcc is missing or fails (with its output).
pub fn program(name: &str, runtime: Runtime) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = programs_dir().join(format!("{name}.cu"));
    let text = std::fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let common = headers();
    let mut flags = vec!["-arch=compute_80", "-code=compute_80", "-O2"];
    match runtime {
        Runtime::Shared => flags.extend(["-cudart", "shared"]),
        Runtime::SharedPerThread => {
            flags.extend(["-cudart", "shared", "--default-stream", "per-thread"]);
        }
        Runtime::Static => {}
    }
    let key = crac_test_support::stable_hash(&[&text, &common, flags.join(" ").as_bytes()]);
    let dir = cache_dir("cuda-programs").expect("the target dir is writable");
    let out = dir.join(format!("{name}-{key:016x}"));
    if out.is_file() {
        return out;
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let lib = cuda_lib_dir();
    let output = Command::new(nvcc())
        .args(&flags)
        .arg("-I")
        .arg(programs_dir())
        .arg(format!("-L{}", lib.display()))
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .arg("-lpthread")
        .output()
        .unwrap_or_else(|e| panic!("nvcc not found: run scripts/setup.sh ({e})"));
    assert!(
        output.status.success(),
        "nvcc failed on {}:\n{}{}",
        src.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&tmp, &out).expect("move the program into the cache");
    out
}

/// Every header of `tests/cuda/programs/`, concatenated in name order (part of the cache key,
/// so a changed header rebuilds the programs).
fn headers() -> Vec<u8> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(programs_dir())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "h"));
    names.sort();
    names
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

/// Where `scripts/link-shim.sh` put the shim libraries for this build.
///
/// # Panics
/// When they are missing, with the command that makes them.
pub fn shim_dir() -> PathBuf {
    let dir = profile_dir().expect("target dir").join("crac-shim");
    for major in [12, 13] {
        let lib = dir.join(format!("libcudart.so.{major}"));
        assert!(
            lib.is_file(),
            "{} is missing: run bash scripts/link-shim.sh (scripts/test.sh does)",
            lib.display()
        );
    }
    dir
}

/// Runs `program args…` under `crac_launch --gpu sim` with a generous time limit.
pub fn run_sim(program: &Path, args: &[&str]) -> Outcome {
    run_sim_env(program, args, &[])
}

/// [`run_sim`] with extra environment variables for the program.
pub fn run_sim_env(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    shim_dir();
    let mut cmd = Cmd::new(program)
        .args(args)
        .timeout(Duration::from_secs(240));
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.under_crac_with(&["--gpu", "sim"])
        .run()
        .expect("run the program under crac_launch --gpu sim")
}

/// Runs `program args…` under `crac_launch --gpu sim` with `input` on stdin.
pub fn run_sim_input(program: &Path, args: &[&str], input: &[u8]) -> Outcome {
    shim_dir();
    Cmd::new(program)
        .args(args)
        .input(crac_e2e::run::Input::Bytes(input.to_vec()))
        .timeout(Duration::from_secs(240))
        .under_crac_with(&["--gpu", "sim"])
        .run()
        .expect("run the program under crac_launch --gpu sim")
}

/// Asserts a clean exit 0 with exactly `tests/cuda/programs/<name>.expected` on stdout.
pub fn assert_expected(out: &Outcome, name: &str) {
    let path = programs_dir().join(format!("{name}.expected"));
    let want =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_output(out, &want);
}

/// Asserts a clean exit 0 with exactly `want` on stdout.
pub fn assert_output(out: &Outcome, want: &str) {
    assert!(
        out.code() == Some(0) && out.stdout_text() == want,
        "{}: status {:?}\n--- stdout:\n{}\n--- wanted:\n{}\n--- stderr:\n{}",
        out.command,
        out.status,
        out.stdout_text(),
        want,
        out.stderr_text()
    );
}
