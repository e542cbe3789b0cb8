//! The kernel sources themselves: the PTX committed in `tests/cuda/ptx/` is what nvcc emits for
//! `tests/cuda/kernels/` today, and every kernel file's fat binary registers on the sim device
//! with every `.entry` it defines reachable by name.

mod common;

use common::{FatbinKind, Gpu, fatbin, nvcc::repo_root};

/// Every `tests/cuda/kernels/*.cu`, by stem, sorted.
fn kernel_files() -> Vec<String> {
    let dir = repo_root().join("tests/cuda/kernels");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| {
            let path = e.expect("directory entry").path();
            (path.extension()? == "cu").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    assert!(names.len() >= 16, "kernel sources missing: {names:?}");
    names
}

/// The `.entry` names in PTX text.
fn entries(ptx: &str) -> Vec<String> {
    ptx.lines()
        .filter_map(|l| l.trim().strip_prefix(".visible .entry "))
        .map(|rest| rest.trim_end_matches('(').trim().to_string())
        .collect()
}

#[test]
fn committed_ptx_matches_nvcc() {
    for name in kernel_files() {
        let fresh = String::from_utf8(fatbin(&name, FatbinKind::PtxText)).expect("PTX is text");
        let path = repo_root()
            .join("tests/cuda/ptx")
            .join(format!("{name}.ptx"));
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}; run tests/cuda/gen-ptx.sh", path.display()));
        assert!(
            fresh == committed,
            "{} is stale: run tests/cuda/gen-ptx.sh and commit the result",
            path.display()
        );
    }
}

#[test]
fn every_kernel_file_registers_with_all_its_entries() {
    let gpu = Gpu::new();
    for name in kernel_files() {
        let ptx = String::from_utf8(fatbin(&name, FatbinKind::PtxText)).expect("PTX is text");
        let names = entries(&ptx);
        assert!(!names.is_empty(), "{name}.cu defines no kernel");
        let module = gpu.load(&name);
        for entry in names {
            let f = gpu.func(module, &entry);
            let params = gpu.dev().function_params(f).expect("parameter layout");
            // Offsets are naturally aligned and increasing, as the CUDA ABI packs them.
            let mut end = 0;
            for p in &params {
                assert!(
                    p.size > 0 && p.offset % p.size.min(8) == 0,
                    "{entry}: {params:?}"
                );
                assert!(p.offset >= end, "{entry}: {params:?}");
                end = p.offset + p.size;
            }
        }
    }
}

/// Runs this test binary's `committed_ptx_matches_nvcc` in a child with `env` changes; returns
/// whether it passed and everything it printed.
fn child_with_env(set: &[(&str, &std::ffi::OsStr)], remove: &[&str]) -> (bool, String) {
    let exe = std::env::current_exe().expect("own test binary");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", "committed_ptx_matches_nvcc", "--test-threads=1"]);
    for (k, v) in set {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn missing_nvcc_fails_loudly_instead_of_skipping() {
    // CRAC_NVCC naming nothing.
    let (ok, text) = child_with_env(&[("CRAC_NVCC", "/nonexistent/bin/nvcc".as_ref())], &[]);
    assert!(!ok, "a test needing nvcc passed without it:\n{text}");
    assert!(
        text.contains("nvcc not found: run scripts/setup.sh"),
        "{text}"
    );
    // No CRAC_NVCC and no recorded path either.
    let home = tempfile::tempdir().expect("temp dir");
    let (ok, text) = child_with_env(
        &[("HOME", home.path().as_os_str())],
        &["CRAC_NVCC", "CRAC_TOOLS"],
    );
    assert!(!ok, "a test needing nvcc passed without it:\n{text}");
    assert!(
        text.contains("nvcc not found: run scripts/setup.sh"),
        "{text}"
    );
}

/// The body of `.entry name` in PTX text.
fn entry_body<'a>(ptx: &'a str, name: &str) -> &'a str {
    let start = ptx
        .find(&format!(".entry {name}("))
        .unwrap_or_else(|| panic!("no entry {name}"));
    let rest = &ptx[start..];
    let end = rest.find("\n}").expect("end of entry");
    &rest[..end]
}

#[test]
fn references_rest_on_how_nvcc_compiled_the_arithmetic() {
    // The bit-exact references assume these contractions; if nvcc changes them, the references
    // must change too.
    let ptx = |file: &str| String::from_utf8(fatbin(file, FatbinKind::PtxText)).expect("PTX");
    let saxpy = ptx("saxpy");
    assert!(
        entry_body(&saxpy, "saxpy").contains("fma.rn.f32"),
        "saxpy is fused"
    );
    let unfused = entry_body(&saxpy, "saxpy_unfused");
    assert!(!unfused.contains("fma."), "saxpy_unfused is not fused");
    assert!(unfused.contains("mul.rn.f32") && unfused.contains("add.rn.f32"));
    let matmul = ptx("matmul");
    assert_eq!(
        entry_body(&matmul, "matmul_tiled")
            .matches("fma.rn.f32")
            .count(),
        32
    );
    let stencil = ptx("stencil");
    let body = entry_body(&stencil, "stencil5");
    assert!(!body.contains("fma."), "stencil must not be contracted");
    assert_eq!(body.matches("add.f32").count(), 4);
    assert_eq!(body.matches("mul.f32").count(), 1);
}
