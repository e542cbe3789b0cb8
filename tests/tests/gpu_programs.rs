//! Whole CUDA programs (`tests/cuda/programs/*.cu`, built with `-cudart shared`) run unmodified
//! under `crac_launch --gpu sim` through the libcudart shim, and print what their own CPU
//! references predict (`tests/cuda/programs/<name>.expected`, which `gpu-tests/run.sh` also
//! checks with `--gpu cuda` on a GPU machine).

mod gpu_support;

use gpu_support::{Runtime, assert_expected, program, run_sim};

#[test]
fn basics_device_queries_copies_and_kernels_match_the_cpu() {
    assert_expected(&run_sim(&program("basics", Runtime::Shared), &[]), "basics");
}

#[test]
fn streams_events_pinned_memory_and_host_callbacks() {
    assert_expected(
        &run_sim(&program("streams", Runtime::Shared), &[]),
        "streams",
    );
}

#[test]
fn device_and_constant_variables_through_symbols() {
    assert_expected(
        &run_sim(&program("symbols", Runtime::Shared), &[]),
        "symbols",
    );
}

#[test]
fn four_threads_drive_kernels_at_once() {
    assert_expected(
        &run_sim(&program("threads", Runtime::Shared), &[]),
        "threads",
    );
}

#[test]
fn error_paths_return_cudas_codes() {
    assert_expected(&run_sim(&program("errors", Runtime::Shared), &[]), "errors");
}

#[test]
fn stream_ordered_allocation_launch_ex_and_event_record_flags() {
    assert_expected(&run_sim(&program("modern", Runtime::Shared), &[]), "modern");
}

#[test]
fn device_printf_lands_in_order_with_buffered_host_output() {
    assert_expected(
        &run_sim(&program("device_printf", Runtime::Shared), &[]),
        "device_printf",
    );
}

#[test]
fn per_thread_default_stream_builds_use_the_ptsz_entry_points_with_the_same_results() {
    for name in ["basics", "streams", "symbols"] {
        let out = run_sim(&program(name, Runtime::SharedPerThread), &[]);
        assert_expected(&out, name);
    }
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
