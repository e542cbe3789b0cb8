//! CUDA-aware checkpoints under `--gpu sim`: a CUDA program (`tests/cuda/programs/ckpt_*.cu`)
//! checkpointed at a random moment, killed with SIGKILL and restarted ends exactly as an
//! uninterrupted run under `crac_launch --gpu sim` does (which itself prints the program's
//! `.expected` output), bit for bit: device memory, `__device__`/`__constant__` variables,
//! streams, events, pinned host memory and work still queued at checkpoint time all carry over.
//! Chains of restarts and checkpoints, the replay log's size after 10^5 allocation cycles, and
//! the failures (device addresses that cannot be had again, damaged device memory or log, a
//! backend that is not there) are each checked.
//!
//! Each program waits for a line on stdin before it prints its results, so a checkpoint may
//! land while it computes or while it waits: the first run's stdin stays open and empty, and
//! the restarted run (and the reference) read "go".
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

mod gpu_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crac_e2e::ckpt::{
    Interrupted, assert_same_after, checkpoint_ok, interrupted_run, kill9, random_in, restart,
    wait_agent,
};
use crac_e2e::gpu::{
    checkpoint_device, cuda_json, flip_device_byte, inspect_json, log_objects, replace_log_address,
    rewrite_image,
};
use crac_e2e::run::Input;
use crac_e2e::{Cmd, Outcome, assert_clean_failure, crac_bin};
use gpu_support::{Runtime, assert_expected, program, run_sim_input, shim_dir};

/// `crac_launch` options of every run here.
const SIM: &[&str] = &["--gpu", "sim"];
/// What the programs wait for before they print their results.
const GO: &[u8] = b"go\n";
/// Time limit of one run (the sim device interprets every kernel).
const LIMIT: Duration = Duration::from_secs(240);
/// The device-address window of `--gpu sim` (`crac_gpu`): 1 TiB from here.
const WINDOW_START: u64 = 0x7e00_0000_0000;
const WINDOW_END: u64 = WINDOW_START + (1 << 40);

/// `tests/cuda/programs/<name>` with the run limit.
fn cmd(name: &str) -> Cmd {
    Cmd::new(program(name, Runtime::Shared)).timeout(LIMIT)
}

/// The uninterrupted run under `--gpu sim`, which must print `<name>.expected`.
fn reference(name: &str) -> Outcome {
    let out = run_sim_input(&program(name, Runtime::Shared), &[], GO);
    assert_expected(&out, name);
    out
}

/// Checkpoint after `wait` and a random delay in `delay` ms, SIGKILL, restart: the restarted run
/// ends as the reference. Returns the run and the directory holding its image.
fn scenario(name: &str, wait: &str, delay: (u64, u64)) -> (Interrupted, tempfile::TempDir) {
    let reference = reference(name);
    let dir = tempfile::tempdir().unwrap();
    let run = interrupted_run(
        &cmd(name),
        SIM,
        dir.path(),
        Some(wait),
        delay,
        Input::Bytes(GO.to_vec()),
    )
    .unwrap();
    assert_same_after(&reference, &run.restarted, run.lines_before);
    let cuda = cuda_json(&run.image);
    assert_eq!(cuda["backend"], "sim", "{cuda:#}");
    (run, dir)
}

#[test]
fn stencil_of_ten_thousand_steps_over_two_streams_with_events() {
    let (run, _dir) = scenario("ckpt_stencil", "stencil: ready", (0, 2500));
    let cuda = cuda_json(&run.image);
    assert_eq!(log_objects(&cuda, "allocation").len(), 2, "{cuda:#}");
    assert_eq!(log_objects(&cuda, "stream").len(), 2, "{cuda:#}");
    assert_eq!(log_objects(&cuda, "event").len(), 2, "{cuda:#}");
}

#[test]
fn kernels_still_queued_on_three_streams_at_checkpoint_time() {
    // Seconds of kernels are queued when "queued" is printed; the checkpoint comes well inside
    // that, so it must finish the queued work (and run the host callbacks queued behind it)
    // before it saves the device: its drain takes time, and the restarted run, whose own
    // cudaDeviceSynchronize finds nothing left to do, ends as the reference.
    let reference = reference("ckpt_queued");
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd("ckpt_queued").under_crac_with(SIM).spawn().unwrap();
    child.wait_for_line("queued").unwrap();
    wait_agent(child.pid());
    std::thread::sleep(Duration::from_millis(random_in(0, 200)));
    let ckpt = checkpoint_device(child.pid(), dir.path());
    eprintln!("{ckpt:?}");
    let killed = kill9(child).unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    assert!(
        ckpt.drain_ms >= 50,
        "the checkpoint found no queued work to drain ({} ms)",
        ckpt.drain_ms
    );
    let restarted = restart(&ckpt.image)
        .input(Input::Bytes(GO.to_vec()))
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_same_after(&reference, &restarted, 1);
}

#[test]
fn four_host_threads_each_with_its_own_stream() {
    let (run, _dir) = scenario("ckpt_threads", "threads: ready", (0, 2000));
    let cuda = cuda_json(&run.image);
    assert!(log_objects(&cuda, "stream").len() <= 4, "{cuda:#}");
}

#[test]
fn alloc_free_cycles_leave_a_log_the_size_of_the_live_objects() {
    let (run, _dir) = scenario("ckpt_realloc", "realloc: ready", (50, 700));
    let cuda = cuda_json(&run.image);
    // 16 slots and the accumulator (one slot may be between its free and its malloc), the
    // module and its kernel: never one entry per cycle.
    let entries = cuda["log_entries"].as_u64().unwrap();
    assert!(entries < 100, "{entries} log entries:\n{cuda:#}");
    let allocations = log_objects(&cuda, "allocation");
    assert!(
        (16..=17).contains(&allocations.len()),
        "{} allocations live:\n{cuda:#}",
        allocations.len()
    );
    let buffers = cuda["buffers"].as_array().unwrap().len();
    assert!(
        buffers >= allocations.len() && buffers < 100,
        "{buffers} device buffers saved:\n{cuda:#}"
    );
}

#[test]
fn device_counters_and_constant_tables() {
    let (run, _dir) = scenario("ckpt_symbols", "symbols: ready", (0, 1500));
    let cuda = cuda_json(&run.image);
    let labels: Vec<String> = cuda["buffers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["label"].as_str().unwrap_or_default().to_owned())
        .collect();
    for var in ["counters", "state", "table"] {
        assert!(
            labels.iter().any(|l| l.contains(var)),
            "no device buffer for the variable {var}: {labels:?}"
        );
    }
}

#[test]
fn pinned_host_buffers_with_async_copies_in_flight() {
    scenario("ckpt_pinned", "pinned: ready", (0, 2000));
}

#[test]
fn a_checkpoint_leaves_the_device_state_intact_in_the_program_that_goes_on() {
    shim_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd("ckpt_live").under_crac_with(SIM).spawn().unwrap();
    child.wait_for_line("ready").unwrap();
    wait_agent(child.pid());
    let image = checkpoint_ok(child.pid(), dir.path());
    child.write_stdin(GO).unwrap();
    let done = child.finish().unwrap();
    let intact = "after the checkpoint: device state intact\n";
    assert_eq!(done.code(), Some(0), "{done}");
    assert_eq!(done.stdout_text(), format!("ready\n{intact}"), "{done}");
    // One 128-byte allocation, saved with its contents.
    let cuda = cuda_json(&image);
    assert_eq!(
        log_objects(&cuda, "allocation")
            .iter()
            .map(|&(_, size)| size)
            .collect::<Vec<_>>(),
        [128],
        "{cuda:#}"
    );
    let restarted = restart(&image)
        .input(Input::Bytes(GO.to_vec()))
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_eq!(restarted.code(), Some(0), "{restarted}");
    assert_eq!(restarted.stdout_text(), intact, "{restarted}");
}

#[test]
fn restart_checkpoint_restart_three_times() {
    let reference = reference("ckpt_stencil");
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd("ckpt_stencil").under_crac_with(SIM).spawn().unwrap();
    child.wait_for_line("stencil: ready").unwrap();
    for round in 0..3 {
        wait_agent(child.pid());
        let delay = random_in(0, 1000);
        eprintln!("round {round}: checkpoint after {delay} ms");
        std::thread::sleep(Duration::from_millis(delay));
        let image = checkpoint_ok(child.pid(), dir.path());
        let killed = kill9(child).unwrap();
        assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
        child = restart(&image).timeout(LIMIT).spawn().unwrap();
    }
    child.write_stdin(GO).unwrap();
    let last = child.finish().unwrap();
    assert_same_after(&reference, &last, 1);
}

#[test]
fn twenty_checkpoints_while_the_program_goes_on() {
    let reference = reference("ckpt_stencil");
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd("ckpt_stencil").under_crac_with(SIM).spawn().unwrap();
    child.wait_for_line("stencil: ready").unwrap();
    wait_agent(child.pid());
    let mut images: Vec<PathBuf> = (0..20)
        .map(|_| checkpoint_ok(child.pid(), dir.path()))
        .collect();
    child.write_stdin(GO).unwrap();
    let out = child.finish().unwrap();
    assert_same_after(&reference, &out, 0);
    images.sort();
    images.dedup();
    assert_eq!(images.len(), 20, "every checkpoint has its own image");
    // The last image restarts to the same end.
    let last = images.last().unwrap();
    let restarted = restart(last)
        .input(Input::Bytes(GO.to_vec()))
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_same_after(&reference, &restarted, 1);
}

/// A good image of the stencil program (checkpointed while it waits for "go", then killed),
/// and the reference run.
fn good_image(dir: &Path) -> (PathBuf, Outcome) {
    let reference = reference("ckpt_stencil");
    let mut child = cmd("ckpt_stencil")
        .arg("200")
        .under_crac_with(SIM)
        .spawn()
        .unwrap();
    child.wait_for_line("stencil: ready").unwrap();
    wait_agent(child.pid());
    let image = checkpoint_ok(child.pid(), dir);
    kill9(child).unwrap();
    (image, reference)
}

/// Asserts that restarting `image` fails cleanly, mentioning each of `mentions`, and that the
/// program printed nothing (it never ran on).
fn restart_refused(image: &Path, extra: &[&str], mentions: &[&str]) -> Outcome {
    let out = Cmd::new(&crac_e2e::tools().restart)
        .args(extra)
        .arg(image)
        .input(Input::Bytes(GO.to_vec()))
        .timeout(LIMIT)
        .run()
        .unwrap();
    eprintln!("{}", out.stderr_text());
    assert_clean_failure(&out, 1, mentions);
    assert!(
        out.stdout_text().is_empty(),
        "the program ran on after a failed restart:\n{out}"
    );
    out
}

#[test]
fn a_good_image_restarts_on_the_sim_backend_named_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = good_image(dir.path());
    let out = Cmd::new(&crac_e2e::tools().restart)
        .args(["--gpu", "sim"])
        .arg(&image)
        .input(Input::Bytes(GO.to_vec()))
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        out.stdout_text()
            .contains("stencil: 200 steps, 0 cells differ from the CPU"),
        "{out}"
    );
}

#[test]
fn an_allocation_moved_outside_the_device_window_is_refused_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = good_image(dir.path());
    let cuda = cuda_json(&image);
    let (addr, _) = log_objects(&cuda, "allocation")[1];
    let outside = WINDOW_END + 0x10_0000;
    let bad = tempfile::tempdir().unwrap();
    let moved = rewrite_image(&image, &bad.path().join("moved.crac"), |meta| {
        let c = meta.cuda.as_mut().unwrap();
        c.log = replace_log_address(&c.log, addr, outside).expect("the address is in the log");
    })
    .unwrap();
    restart_refused(&moved, &[], &[&format!("{outside:x}")]);
}

#[test]
fn overlapping_allocations_are_refused_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = good_image(dir.path());
    let cuda = cuda_json(&image);
    let allocations = log_objects(&cuda, "allocation");
    let (first, _) = allocations[0];
    let (second, _) = allocations[1];
    // The second allocation placed 256 bytes into the first one: the device cannot give both.
    let into = first + 256;
    let bad = tempfile::tempdir().unwrap();
    let moved = rewrite_image(&image, &bad.path().join("overlap.crac"), |meta| {
        let c = meta.cuda.as_mut().unwrap();
        c.log = replace_log_address(&c.log, second, into).expect("the address is in the log");
    })
    .unwrap();
    restart_refused(&moved, &[], &[&format!("{into:x}")]);
}

#[test]
fn a_damaged_device_buffer_is_refused_naming_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = good_image(dir.path());
    let bad = tempfile::tempdir().unwrap();
    let flipped = flip_device_byte(&image, &bad.path().join("flipped.crac"), 0).unwrap();
    let verify = Cmd::new(crac_bin())
        .args(["inspect", "--verify"])
        .arg(&flipped)
        .run()
        .unwrap();
    assert_clean_failure(&verify, 1, &["damaged"]);
    restart_refused(&flipped, &[], &["checksum"]);
}

#[test]
fn a_damaged_replay_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = good_image(dir.path());
    let bad = tempfile::tempdir().unwrap();
    let cut = rewrite_image(&image, &bad.path().join("cut.crac"), |meta| {
        let c = meta.cuda.as_mut().unwrap();
        let half = c.log.len() / 2;
        c.log.truncate(half);
    })
    .unwrap();
    let json = inspect_json(&cut);
    assert!(
        json["cuda"]["log_error"].is_string(),
        "crac inspect reads a cut log:\n{json:#}"
    );
    let verify = Cmd::new(crac_bin())
        .args(["inspect", "--verify"])
        .arg(&cut)
        .run()
        .unwrap();
    assert_clean_failure(&verify, 1, &["log"]);
    restart_refused(&cut, &[], &["log"]);
}

#[test]
fn a_restart_on_cuda_without_a_driver_says_so() {
    if Path::new("/dev/nvidia0").exists() {
        eprintln!("skipped: this machine has an NVIDIA GPU");
        return;
    }
    shim_dir();
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = good_image(dir.path());
    restart_refused(&image, &["--gpu", "cuda"], &["driver"]);
}
