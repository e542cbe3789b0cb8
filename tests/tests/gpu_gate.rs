//! The API gate under load (`--gpu sim`): `tests/cuda/programs/gate_storm.cu` runs eight threads
//! calling CUDA as fast as they can, with host callbacks due and a SIGALRM every millisecond,
//! while `crac_ckpt` checkpoints it again and again. Each checkpoint closes the gate with calls
//! inside the lower half and threads waiting at it; the program must go on to the same results
//! as an uninterrupted run, and so must a restart from the last image after SIGKILL (the
//! restarted threads, some of which were waiting at the gate or counted in it, get a fresh
//! gate and new lower TCBs).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

mod gpu_support;

use std::time::Duration;

use crac_e2e::Cmd;
use crac_e2e::ckpt::{assert_same_after, checkpoint_ok, kill9, random_in, restart, wait_agent};
use crac_e2e::run::Input;
use gpu_support::{Runtime, assert_expected, program, run_sim_input};

/// What the program waits for before it prints its results.
const GO: &[u8] = b"go\n";
/// Time limit of one run (the sim device interprets every kernel).
const LIMIT: Duration = Duration::from_secs(240);
/// Rounds per thread: enough that the checkpoints below land while the threads still call.
const ROUNDS: &str = "40000";

#[test]
fn checkpoints_of_eight_threads_calling_cuda_in_a_signal_storm_change_no_result() {
    let exe = program("gate_storm", Runtime::Shared);
    let reference = run_sim_input(&exe, &[ROUNDS], GO);
    assert_expected(&reference, "gate_storm");

    let dir = tempfile::tempdir().unwrap();
    let mut child = Cmd::new(&exe)
        .arg(ROUNDS)
        .timeout(LIMIT)
        .under_crac_with(&["--gpu", "sim"])
        .spawn()
        .unwrap();
    child.wait_for_line("gate: ready").unwrap();
    wait_agent(child.pid());
    let computing = |child: &crac_e2e::spawned::Spawned| {
        !child
            .lines()
            .iter()
            .any(|l| l.starts_with("gate: computed"))
    };
    checkpoint_ok(child.pid(), dir.path());
    assert!(
        computing(&child),
        "the threads finished before the first checkpoint did: raise ROUNDS"
    );
    for _ in 0..5 {
        let delay = random_in(0, 200);
        eprintln!("checkpoint after {delay} ms");
        std::thread::sleep(Duration::from_millis(delay));
        checkpoint_ok(child.pid(), dir.path());
    }
    let lines_before = child.lines().len();
    let image = checkpoint_ok(child.pid(), dir.path());
    let killed = kill9(child).unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    let restarted = restart(&image)
        .input(Input::Bytes(GO.to_vec()))
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_same_after(&reference, &restarted, lines_before);
}
