//! Checkpoint at a random moment, SIGKILL, restart: the restarted program ends exactly as an
//! uninterrupted native run does. One purpose-written program per behaviour that a checkpoint
//! must carry: plain computation, many threads under mutexes and condition variables, an open
//! file's offset, bytes in flight in a pipe, threads blocked in `read` and `nanosleep`, a large
//! Python heap, an event loop woken through a socketpair, and signal handlers.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use crac_e2e::ckpt::{assert_same_after, interrupted_run, wait_agent};
use crac_e2e::run::Input;
use crac_e2e::{Cmd, Link, c_program};

fn scenario(cmd: &Cmd, wait_line: Option<&str>, delay: (u64, u64), input: &[u8]) {
    let native = cmd
        .clone()
        .input(Input::Bytes(input.to_vec()))
        .run()
        .unwrap();
    assert_eq!(native.code(), Some(0), "{native}");
    let dir = tempfile::tempdir().unwrap();
    let run = interrupted_run(
        cmd,
        &[],
        dir.path(),
        wait_line,
        delay,
        Input::Bytes(input.to_vec()),
    )
    .unwrap();
    assert_same_after(&native, &run.restarted, run.lines_before);
}

#[test]
fn single_threaded_counter() {
    scenario(
        &Cmd::new(c_program("ck_counter", Link::Pie)),
        None,
        (0, 600),
        b"",
    );
}

#[test]
fn sixteen_threads_with_mutexes_and_condition_variables() {
    scenario(
        &Cmd::new(c_program("ck_threads", Link::Pie)),
        None,
        (0, 500),
        b"",
    );
}

#[test]
fn a_file_being_written_keeps_its_offset_and_contents() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.txt");
    scenario(
        &Cmd::new(c_program("ck_file", Link::Pie)).arg(&file),
        None,
        (100, 700),
        b"",
    );
}

#[test]
fn bytes_in_flight_in_a_pipe_between_two_threads() {
    scenario(
        &Cmd::new(c_program("ck_pipe", Link::Pie)),
        None,
        (50, 500),
        b"",
    );
}

#[test]
fn threads_blocked_in_read_and_nanosleep() {
    // The first run's stdin stays open and empty, so its reader is blocked in read(2) at the
    // checkpoint; the restarted run reads this from crac_restart's stdin.
    scenario(
        &Cmd::new(c_program("ck_blocked", Link::Pie)),
        None,
        (100, 900),
        b"hello after restart\n",
    );
}

#[test]
fn static_program() {
    scenario(
        &Cmd::new(c_program("ck_counter", Link::Static)),
        None,
        (0, 600),
        b"",
    );
}

#[test]
fn python_with_a_million_entry_dict() {
    let script = crac_e2e::programs::source_dir().join("ck_dict.py");
    scenario(
        &Cmd::new(crac_e2e::programs::python()).arg(script),
        None,
        (400, 1000),
        b"",
    );
}

#[test]
fn python_loop_woken_through_a_socketpair() {
    // An event loop's self-pipe (asyncio's is a socketpair): it must come back connected, or
    // the restarted loop reads end-of-file from it.
    let script = crac_e2e::programs::source_dir().join("ck_selfpipe.py");
    scenario(
        &Cmd::new(crac_e2e::programs::python()).arg(script),
        Some("ready"),
        (200, 800),
        b"",
    );
}

#[test]
fn signal_handlers_still_fire_after_restart() {
    let cmd = Cmd::new(c_program("ck_signals", Link::Pie));
    let native = {
        let mut child = cmd.spawn().unwrap();
        child.wait_for_line("ready").unwrap();
        for _ in 0..3 {
            child.signal(libc::SIGUSR2).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(60));
        }
        child.finish().unwrap()
    };
    assert_eq!(native.code(), Some(0), "{native}");
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd.under_crac().spawn().unwrap();
    child.wait_for_line("ready").unwrap();
    wait_agent(child.pid());
    // One signal before the checkpoint: its count travels in the image.
    child.signal(libc::SIGUSR2).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let image = crac_e2e::ckpt::checkpoint_ok(child.pid(), dir.path());
    crac_e2e::ckpt::kill9(child).unwrap();
    let restarted = crac_e2e::ckpt::restart(&image).spawn().unwrap();
    wait_agent(restarted.pid());
    for _ in 0..2 {
        restarted.signal(libc::SIGUSR2).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    let restarted = restarted.finish().unwrap();
    assert_same_after(&native, &restarted, 1);
}
