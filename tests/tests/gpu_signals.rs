//! Signals and errno across the crossing: SIGALRM every 100 µs while a thread makes 10^6 CUDA
//! calls; the program's handler (using a `__thread` variable and errno) must run with the
//! program's fs wherever the signal lands, and errno must never change across a call.

mod gpu_support;

use gpu_support::{Runtime, assert_output, program, run_sim};

#[test]
fn a_signal_storm_during_a_million_cuda_calls() {
    let out = run_sim(&program("signal_storm", Runtime::Shared), &[]);
    assert_output(
        &out,
        "calls 1000000: failed 0, errno changed 0, kernel count right 1\n\
         signals: handled some, thread-local agrees 1\n\
         signal_storm: done\n",
    );
}
