//! Signals and errno across the crossing: SIGALRM every 100 µs while a thread makes 10^6 CUDA
//! calls; the program's handler (using a `__thread` variable and errno) must run with the
//! program's fs wherever the signal lands, and errno must never change across a call.

mod gpu_support;

use gpu_support::{Runtime, assert_expected, program, run_sim};

#[test]
fn a_signal_storm_during_a_million_cuda_calls() {
    let out = run_sim(&program("signal_storm", Runtime::Shared), &[]);
    assert_expected(&out, "signal_storm");
}
