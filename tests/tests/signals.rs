//! Signals sent to a program under crac from outside reach the program as they would without
//! crac: a default action kills it with that signal, a handler it installed runs, and stopping
//! and continuing it works. crac's agent thread blocks every signal, so the kernel always
//! delivers them to the program's threads.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::time::Duration;

use crac_e2e::{Cmd, Link, Outcome, assert_same, c_program};

/// Starts `cmd`, waits for its "ready" line, sends it `sigs` in order, then lets it finish.
fn signalled(cmd: &Cmd, sigs: &[i32]) -> Outcome {
    let mut child = cmd
        .clone()
        .timeout(Duration::from_secs(20))
        .spawn()
        .unwrap();
    child.wait_for_line("ready").unwrap();
    for &sig in sigs {
        child.signal(sig).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    child.finish().unwrap()
}

fn same_when_signalled(cmd: &Cmd, sigs: &[i32]) -> Outcome {
    let native = signalled(cmd, sigs);
    let crac = signalled(&cmd.under_crac(), sigs);
    assert_same(&native, &crac);
    crac
}

const WAIT_LOOP: &str = "echo ready; while :; do sleep 0.02; done";

#[test]
fn a_default_action_kills_the_program() {
    // A C program blocked in read(2) (not bash: bash ignores SIGINT while it waits for a child).
    let scratch = tempfile::tempdir().unwrap();
    let cmd = Cmd::new(c_program("regions", Link::Pie)).arg(scratch.path());
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGKILL] {
        // Its output holds addresses, which differ under crac: compare how it ended.
        let native = signalled(&cmd, &[sig]);
        let crac = signalled(&cmd.under_crac(), &[sig]);
        assert_eq!(native.signal(), Some(sig), "{native}");
        assert_eq!(crac.status, native.status, "{crac}");
        assert_eq!(crac.stderr, native.stderr, "{crac}");
    }
}

#[test]
fn the_programs_own_handler_runs() {
    let script = format!("trap 'echo caught USR1; exit 3' USR1; {WAIT_LOOP}");
    let out = same_when_signalled(&Cmd::new("bash").args(["-c", &script]), &[libc::SIGUSR1]);
    assert_eq!(out.code(), Some(3), "{out}");
    assert!(out.stdout_text().contains("caught USR1"), "{out}");
}

#[test]
fn stop_and_continue() {
    let script = "echo ready; read line; echo \"after [$line]\"";
    let out = same_when_signalled(
        &Cmd::new("bash").args(["-c", script]),
        &[libc::SIGSTOP, libc::SIGCONT],
    );
    assert_eq!(out.code(), Some(0), "{out}");
}

#[test]
fn a_signal_to_a_multithreaded_program() {
    let script = "import signal, sys, threading, time\n\
                  def h(s, f):\n    print('handled', s, flush=True); sys.exit(4)\n\
                  signal.signal(signal.SIGUSR2, h)\n\
                  ts = [threading.Thread(target=time.sleep, args=(30,), daemon=True) for _ in range(4)]\n\
                  [t.start() for t in ts]\n\
                  print('ready', flush=True)\n\
                  while True: time.sleep(0.02)";
    let out = same_when_signalled(&Cmd::new("python3").args(["-c", script]), &[libc::SIGUSR2]);
    assert_eq!(out.code(), Some(4), "{out}");
}
