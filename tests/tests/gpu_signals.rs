//! Signals and errno across the crossing: SIGALRM every 100 µs while a thread makes 10^6 CUDA
//! calls; the program's handler (using a `__thread` variable and errno) must run with the
//! program's fs wherever the signal lands, and errno must never change across a call.

mod gpu_support;

use gpu_support::{Runtime, assert_expected, program, run_sim, run_sim_env};

#[test]
fn a_signal_storm_during_a_million_cuda_calls() {
    let out = run_sim(&program("signal_storm", Runtime::Shared), &[]);
    assert_expected(&out, "signal_storm");
}

#[test]
fn the_same_storm_with_arch_prctl_switches_instead_of_wrfsbase() {
    let out = run_sim_env(
        &program("signal_storm", Runtime::Shared),
        &[],
        &[("CRAC_SHIM_NO_FSGSBASE", "1")],
    );
    assert_expected(&out, "signal_storm");
}

#[test]
fn with_both_shim_libraries_loaded_the_first_ones_trampoline_knows_the_seconds_threads() {
    let dir = crac_e2e::binaries::cache_dir("cuda-programs").expect("cache dir");
    let shim_l = format!("-L{}", gpu_support::shim_dir().display());
    let helper = dir.join("libtwo_shims_use13.so");
    let status = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC"])
        .arg(gpu_support::programs_dir().join("two_shims_use13.c"))
        .arg("-o")
        .arg(&helper)
        .arg(&shim_l)
        .arg("-l:libcudart.so.13")
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed on two_shims_use13.c");
    let prog = dir.join("two_shims");
    let status = std::process::Command::new("gcc")
        .arg(gpu_support::programs_dir().join("two_shims.c"))
        .arg("-o")
        .arg(&prog)
        .arg(&shim_l)
        .arg(format!("-L{}", dir.display()))
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .arg(format!(
            "-Wl,-rpath-link,{}",
            gpu_support::shim_dir().display()
        ))
        .args(["-l:libcudart.so.12", "-ltwo_shims_use13"])
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed on two_shims.c");
    let shim_dir = gpu_support::shim_dir();
    let out = run_sim_env(
        &prog,
        &[],
        &[("LD_LIBRARY_PATH", shim_dir.to_str().expect("utf-8 path"))],
    );
    gpu_support::assert_output(
        &out,
        "runtime 12 answers 12090; calls through 13 failed 0\n\
         signals: handled some, thread-local agrees 1\n",
    );
}
