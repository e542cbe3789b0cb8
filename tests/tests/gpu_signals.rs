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
