//! The shim libraries as files: SONAMEs, symbol versions and the full export lists of NVIDIA's
//! runtimes (checked with readelf against the committed lists, and against NVIDIA's own
//! libcudart.so.13 from the wheel nvcc came with); and their behaviour outside crac.

mod gpu_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use gpu_support::{cuda_lib_dir, repo_root, shim_dir};

/// `readelf --dyn-syms -W` of `lib`: (name, version) of every defined function.
fn defined_functions(lib: &Path) -> BTreeSet<(String, String)> {
    let out = Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(lib)
        .output()
        .expect("readelf runs");
    assert!(out.status.success(), "readelf failed on {}", lib.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[3] == "FUNC" && f[6] != "UND").then(|| {
                let (name, version) = f[7].split_once('@').unwrap_or((f[7], ""));
                (
                    name.to_string(),
                    version.trim_start_matches('@').to_string(),
                )
            })
        })
        .collect()
}

fn soname(lib: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(lib)
        .output()
        .expect("readelf runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .expect("a SONAME");
    line.split('[')
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or("")
        .to_string()
}

fn listed(major: u32) -> BTreeSet<String> {
    let path = repo_root().join(format!("crates/cuda-shim/symbols/libcudart.so.{major}.txt"));
    std::fs::read_to_string(&path)
        .expect("symbol list")
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn each_library_has_nvidias_soname_and_exports_every_listed_function_at_its_version() {
    let dir = shim_dir();
    for major in [12, 13] {
        let lib = dir.join(format!("libcudart.so.{major}"));
        let version = format!("libcudart.so.{major}");
        assert_eq!(soname(&lib), version);
        let got = defined_functions(&lib);
        let names: BTreeSet<String> = got
            .iter()
            .filter(|(_, v)| *v == version)
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(names, listed(major), "exports of {}", lib.display());
        for f in ["sigaction", "signal"] {
            assert!(
                got.contains(&(f.to_string(), "GLIBC_2.2.5".to_string())),
                "{f} is not interposed by {}",
                lib.display()
            );
        }
        assert!(got.contains(&(
            "crac_shim_fsmap_insert".to_string(),
            "CRAC_SHIM_1".to_string()
        )));
        // Nothing else leaks out (Rust internals stay local).
        assert_eq!(got.len(), names.len() + 3, "{got:?}");
    }
}

#[test]
fn the_cuda_13_list_is_what_nvidias_own_library_exports() {
    let nvidia = cuda_lib_dir().join("libcudart.so.13");
    assert!(
        nvidia.is_file(),
        "{} is missing: run scripts/setup.sh",
        nvidia.display()
    );
    assert_eq!(soname(&nvidia), "libcudart.so.13");
    let theirs: BTreeSet<(String, String)> = defined_functions(&nvidia);
    let ours = defined_functions(&shim_dir().join("libcudart.so.13"));
    let missing: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "NVIDIA exports these and the shim does not: {missing:?}"
    );
}

fn build_outside_program() -> std::path::PathBuf {
    let dir = crac_e2e::binaries::cache_dir("cuda-programs").expect("cache dir");
    let out = dir.join("shim_outside");
    let status = Command::new("gcc")
        .arg(gpu_support::programs_dir().join("shim_outside.c"))
        .arg("-o")
        .arg(&out)
        .arg(format!("-L{}", shim_dir().display()))
        .arg("-l:libcudart.so.13")
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed on shim_outside.c");
    out
}

#[test]
fn outside_crac_every_call_says_how_to_run_the_program_and_unimplemented_ones_name_themselves() {
    let prog = build_outside_program();
    let shim = shim_dir().join("libcudart.so.13");
    let out = Command::new(&prog)
        .env("LD_LIBRARY_PATH", shim_dir())
        .env(
            "LD_PRELOAD",
            format!("{}:/nonexistent-keep.so", shim.display()),
        )
        .output()
        .expect("run shim_outside");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "count: cudaErrorNoDevice, malloc: cudaErrorNoDevice, last: cudaErrorNotSupported\n\
         graph: cudaErrorNotSupported cudaErrorNotSupported\n\
         errno kept: 1, runtime version: 13000\n\
         LD_PRELOAD: /nonexistent-keep.so\n"
    );
    let outside = "crac: libcudart shim loaded outside crac_launch --gpu; run the program with crac_launch --gpu sim|cuda";
    assert_eq!(stderr.matches(outside).count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("crac: cudaGraphCreate is not implemented by crac's libcudart shim; it returned cudaErrorNotSupported").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_program_linked_against_cuda_12_gets_cuda_12_struct_layouts_under_crac() {
    let dir = crac_e2e::binaries::cache_dir("cuda-programs").expect("cache dir");
    let prog = dir.join("cuda12_layout");
    let status = Command::new("gcc")
        .arg(gpu_support::programs_dir().join("cuda12_layout.c"))
        .arg("-o")
        .arg(&prog)
        .arg(format!("-L{}", shim_dir().display()))
        .arg("-l:libcudart.so.12")
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed on cuda12_layout.c");
    let out = gpu_support::run_sim(&prog, &[]);
    gpu_support::assert_output(
        &out,
        "props: 0, warpSize 32, major agrees 1, SMs agree 1, clockRate set 1, guard 1\n\
         pointer: 0, type 2, device pointer agrees 1, guard 1\n\
         runtime version 12090\n",
    );
}
