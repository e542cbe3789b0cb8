//! Programs that do legal but unusual things to their own process — close every fd, exit the
//! main thread first, block and catch every signal, count on open() giving the lowest free fd,
//! lower their fd limit, grow the break —
//! behave under crac as they do natively, or (for the break, which crac blocks by design) fail
//! the way the C library documents, never by crashing.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::time::Duration;

use crac_e2e::{Cmd, Link, assert_no_crash, assert_same, c_program};

/// Runs the hostile program in `mode` natively once and under crac `repeat` times per link kind
/// (repeats catch races with crac's start-up), asserting every run matches the native one.
fn same_as_native(mode: &str, repeat: usize) {
    for link in [Link::Pie, Link::Static] {
        let cmd = Cmd::new(c_program("hostile", link))
            .arg(mode)
            .timeout(Duration::from_secs(20));
        let native = cmd.run().unwrap();
        assert_eq!(native.code(), Some(0), "{native}");
        for _ in 0..repeat {
            assert_same(&native, &cmd.under_crac().run().unwrap());
        }
    }
}

#[test]
fn closing_every_fd_above_2() {
    // crac's own fds (control socket, log copy) go too; the program must not notice. It closes
    // them right at start, racing crac's agent thread, so run it several times.
    same_as_native("close-fds", 10);
}

#[test]
fn the_main_thread_exits_first() {
    // The process ends when the program's last thread does, whatever crac's threads do.
    same_as_native("main-exits", 2);
}

#[test]
fn every_signal_blocked_and_caught() {
    same_as_native("block-all", 2);
}

#[test]
fn open_gets_the_lowest_free_fd() {
    // POSIX: open returns the lowest fd not open in the process. A lower-half thread blocked in
    // accept(2) holds a reserved fd number (the kernel allocates it before waiting), which would
    // shift every fd the program opens.
    same_as_native("first-fd", 3);
}

#[test]
fn a_low_fd_limit() {
    same_as_native("low-nofile", 2);
}

#[test]
fn growing_the_break_fails_cleanly_or_works() {
    // crac blocks the shared program break (a guard page above it) so the two halves' heaps
    // cannot collide: sbrk may fail with ENOMEM, as it may natively, but nothing may crash.
    for link in [Link::Pie, Link::Static] {
        let out = Cmd::new(c_program("hostile", link))
            .arg("sbrk")
            .under_crac()
            .run()
            .unwrap();
        assert_no_crash(&out);
        let text = out.stdout_text();
        let ok = (out.code() == Some(0) && text == "sbrk gave 1 MiB\n")
            || (out.code() == Some(2) && text == "sbrk failed: Cannot allocate memory\n");
        assert!(ok, "{out}");
    }
}

#[test]
fn closed_standard_fds_stay_closed() {
    // Started with stdin and stderr closed, the program's first files take fds 0 and 2, as
    // natively: crac must not leave anything of its own at those numbers.
    let exe = c_program("hostile", Link::Pie);
    let setup = "exec 0<&- 2>&-; exec \"$@\"";
    let native = Cmd::new("bash")
        .args(["-c", setup, "bash"])
        .arg(&exe)
        .arg("first-fd")
        .run()
        .unwrap();
    assert_eq!(native.stdout_text(), "first fds 0 2\n", "{native}");
    let crac = Cmd::new("bash")
        .args(["-c", setup, "bash"])
        .arg(&crac_e2e::tools().launch)
        .arg("--")
        .arg(&exe)
        .arg("first-fd")
        .run()
        .unwrap();
    assert_same(&native, &crac);
}
