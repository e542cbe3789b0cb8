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

#[test]
fn a_checkpoint_of_a_gpu_program_is_refused_and_the_program_goes_on() {
    gpu_support::shim_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut child = crac_e2e::Cmd::new(program("ckpt_refused", Runtime::Shared))
        .timeout(std::time::Duration::from_secs(120))
        .under_crac_with(&["--gpu", "sim"])
        .spawn()
        .unwrap();
    child.wait_for_line("ready").unwrap();
    let out = crac_e2e::ckpt::checkpoint(child.pid(), dir.path(), &[]).unwrap();
    crac_e2e::assert_clean_failure(&out, 1, &["--gpu", "device"]);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a refused checkpoint left a file behind"
    );
    child.write_stdin(b"go\n").unwrap();
    let done = child.finish().unwrap();
    assert_eq!(done.code(), Some(0), "{done}");
    assert!(
        done.stdout_text()
            .contains("after the refused checkpoint: device state intact"),
        "{done}"
    );
}
