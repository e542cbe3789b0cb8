//! Finding nvcc and compiling the test kernels in `tests/cuda/kernels/` to fat binaries.
//!
//! Each (source, flags) pair is compiled once per test process and cached on disk under the
//! target dir, keyed by a hash of the source text, the flags and the nvcc binary (path, size,
//! mtime), so test binaries running in parallel share the work. A compile writes to a unique
//! temporary name and renames it into place: a reader sees either no file or a whole one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// What kind of fat binary to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FatbinKind {
    /// PTX only for compute_75, compressed as nvcc does by default (the usual case).
    Ptx,
    /// PTX only for compute_75, stored as plain text (`--no-compress`).
    PtxUncompressed,
    /// An sm_75 cubin and no PTX at all: the sim device must refuse it with a clear error.
    CubinOnly,
    /// Not a fat binary: the PTX text itself (`nvcc -ptx -arch=compute_75`), as committed in
    /// `tests/cuda/ptx/`.
    PtxText,
}

impl FatbinKind {
    fn flags(self) -> &'static [&'static str] {
        match self {
            FatbinKind::Ptx => &["-fatbin", "-gencode", "arch=compute_75,code=compute_75"],
            FatbinKind::PtxUncompressed => &[
                "-fatbin",
                "-gencode",
                "arch=compute_75,code=compute_75",
                "--no-compress",
            ],
            FatbinKind::CubinOnly => &["-fatbin", "-gencode", "arch=compute_75,code=sm_75"],
            FatbinKind::PtxText => &["-ptx", "-arch=compute_75"],
        }
    }
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Path of the kernel source `tests/cuda/kernels/<name>.cu`.
pub fn kernel_source(name: &str) -> PathBuf {
    repo_root()
        .join("tests/cuda/kernels")
        .join(format!("{name}.cu"))
}

pub use crac_test_support::nvcc;

fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crac-sim-fatbins");
    std::fs::create_dir_all(&dir).expect("create the fat-binary cache dir");
    dir
}

/// Compiles `tests/cuda/kernels/<name>.cu` to a fat binary of `kind` (cached) and returns its
/// bytes (for [`FatbinKind::PtxText`], the PTX text).
///
/// # Panics
/// When nvcc is missing or the compile fails (the panic carries nvcc's output).
pub fn fatbin(name: &str, kind: FatbinKind) -> Vec<u8> {
    static DONE: OnceLock<Mutex<HashMap<(String, FatbinKind), PathBuf>>> = OnceLock::new();
    let done = DONE.get_or_init(|| Mutex::new(HashMap::new()));
    // Holding the lock across the compile keeps one compile per (source, kind) per process.
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    let key = (name.to_string(), kind);
    if let Some(path) = done.get(&key) {
        return std::fs::read(path).expect("read a cached fat binary");
    }
    let src_path = kernel_source(name);
    let src = std::fs::read(&src_path)
        .unwrap_or_else(|e| panic!("read kernel source {}: {e}", src_path.display()));
    let nvcc = nvcc();
    let flags = kind.flags().join(" ");
    // The nvcc binary's size and mtime stand in for its version: an nvcc updated in place
    // invalidates the cache.
    let stamp = std::fs::metadata(&nvcc)
        .map(|m| format!("{}:{:?}", m.len(), m.modified().ok()))
        .unwrap_or_default();
    let hash = crac_test_support::stable_hash(&[
        &src,
        flags.as_bytes(),
        nvcc.as_os_str().as_encoded_bytes(),
        stamp.as_bytes(),
    ]);
    let out = cache_dir().join(format!("{name}-{hash:016x}.fatbin"));
    if !out.is_file() {
        compile(&nvcc, &src_path, kind, &out);
    }
    let bytes = std::fs::read(&out).expect("read the compiled fat binary");
    done.insert(key, out);
    bytes
}

fn compile(nvcc: &Path, src: &Path, kind: FatbinKind, out: &Path) {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = out.with_extension(format!("tmp.{}.{seq}", std::process::id()));
    let output = Command::new(nvcc)
        .args(kind.flags())
        .arg("-o")
        .arg(&tmp)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("nvcc not found: run scripts/setup.sh ({e})"));
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "nvcc failed on {} ({}):\n{}{}",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::rename(&tmp, out).expect("move the compiled fat binary into the cache");
}
