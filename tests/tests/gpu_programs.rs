//! Whole CUDA programs (`tests/cuda/programs/*.cu`, built with `-cudart shared`) run unmodified
//! under `crac_launch --gpu sim` through the libcudart shim, and print what their own CPU
//! references predict.

mod gpu_support;

use gpu_support::{Runtime, assert_output, program, run_sim};

#[test]
fn basics_device_queries_copies_and_kernels_match_the_cpu() {
    let out = run_sim(&program("basics", Runtime::Shared), &[]);
    assert_output(
        &out,
        "device: count 1, warp 32, props agree with attributes\n\
         vector_add: 0 mismatches\n\
         block_sum: 149920000 (cpu 149920000)\n\
         matmul: 0 mismatches\n\
         errno: kept (failing call gave cudaErrorInvalidValue)\n\
         LD_PRELOAD: clean\n\
         basics: done\n",
    );
}

#[test]
fn streams_events_pinned_memory_and_host_callbacks() {
    let out = run_sim(&program("streams", Runtime::Shared), &[]);
    assert_output(
        &out,
        "streams: flags 1, priority is greatest 1\n\
         pointer attributes: pinned host, device device\n\
         chain: 0 mismatches, elapsed non-negative, timing-disabled event gives cudaErrorInvalidResourceHandle\n\
         callbacks: order 1 2 3 (of 3), not on the main thread 1, main thread's tls 5\n\
         cudaFreeHost twice: cudaErrorInvalidValue\n\
         streams: done\n",
    );
}

#[test]
fn device_and_constant_variables_through_symbols() {
    let out = run_sim(&program("symbols", Runtime::Shared), &[]);
    assert_output(
        &out,
        "table: 256 bytes at a device address yes\n\
         apply: 0 mismatches, counter 1000, table tail 4 3 2 1\n\
         symbol address aliases the variable: 7\n\
         dyn: 0 mismatches with 64 KiB; occupancy positive, suggested block positive\n\
         symbols: done\n",
    );
}

#[test]
fn four_threads_drive_kernels_at_once() {
    let out = run_sim(&program("threads", Runtime::Shared), &[]);
    assert_output(
        &out,
        "thread 0: 0 mismatches, last error private 1\n\
         thread 1: 0 mismatches, last error private 1\n\
         thread 2: 0 mismatches, last error private 1\n\
         thread 3: 0 mismatches, last error private 1\n\
         threads: done\n",
    );
}

#[test]
fn error_paths_return_cudas_codes() {
    let out = run_sim(&program("errors", Runtime::Shared), &[]);
    assert_output(
        &out,
        "too many threads: cudaErrorInvalidConfiguration\n\
         peek keeps it: cudaErrorInvalidConfiguration\n\
         get reset it: cudaSuccess\n\
         empty block: cudaErrorInvalidConfiguration\n\
         copy past the end: cudaErrorInvalidValue\n\
         read past the end: cudaErrorInvalidValue\n\
         free twice: cudaErrorInvalidValue\n\
         copy to freed: cudaErrorInvalidValue\n\
         bad stream: cudaErrorInvalidResourceHandle\n\
         bad device: cudaErrorInvalidDevice\n\
         strings: invalid value / unrecognized error code\n\
         errors: done\n",
    );
}

#[test]
fn a_statically_linked_runtime_is_refused_with_the_remedy() {
    let prog = program("basics", Runtime::Static);
    let out = run_sim(&prog, &[]);
    assert!(
        out.code().is_some_and(|c| c != 0) && !out.stdout_text().contains("basics: done"),
        "{}: {:?}\n{}\n{}",
        out.command,
        out.status,
        out.stdout_text(),
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("-cudart shared"),
        "the refusal does not give the remedy:\n{}",
        out.stderr_text()
    );
}
