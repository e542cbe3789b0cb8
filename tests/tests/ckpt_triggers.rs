//! What starts a checkpoint besides `crac_ckpt PID`: the checkpoint signal (with
//! `--exit-after-ckpt`), the period with `--keep` rotation, `crac_ckpt --exit` and `--all`; and
//! `crac_restart DIR` choosing the newest good image.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::time::{Duration, Instant};

use crac_e2e::ckpt::{assert_same_after, checkpoint, images, restart, wait_agent};
use crac_e2e::{Cmd, Link, c_program};

/// Exit status of a process stopped after its checkpoint.
const EXIT_AFTER_CHECKPOINT: i32 = 85;

#[test]
fn ckpt_signal_with_exit_after_ckpt() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("300");
    let native = cmd.run().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let child = cmd
        .under_crac_with(&["--ckpt-signal", "USR1", "--exit-after-ckpt", "--dir", &d])
        .spawn()
        .unwrap();
    wait_agent(child.pid());
    std::thread::sleep(Duration::from_millis(300));
    child.signal(libc::SIGUSR1).unwrap();
    let stopped = child.finish().unwrap();
    assert_eq!(stopped.code(), Some(EXIT_AFTER_CHECKPOINT), "{stopped}");
    assert_eq!(stopped.stdout_text(), "", "stopped before the end");
    assert_eq!(images(dir.path()).unwrap().len(), 1);
    // The restarted process keeps the policy: the signal checkpoints (and stops) it again, into
    // the next image of the same lineage.
    let again = restart(dir.path()).spawn().unwrap();
    wait_agent(again.pid());
    again.signal(libc::SIGUSR1).unwrap();
    let stopped = again.finish().unwrap();
    assert_eq!(stopped.code(), Some(EXIT_AFTER_CHECKPOINT), "{stopped}");
    assert!(
        stopped.stderr_text().contains("restarting from"),
        "{stopped}"
    );
    assert_eq!(images(dir.path()).unwrap().len(), 2);
    let restarted = restart(dir.path()).run().unwrap();
    assert_same_after(&native, &restarted, 0);
}

#[test]
fn interval_with_keep_two() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("700");
    let native = cmd.run().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let started = Instant::now();
    let out = cmd
        .under_crac_with(&["--interval", "1", "--keep", "2", "--dir", &d])
        .run()
        .unwrap();
    assert_same_after(&native, &out, 0);
    let kept = images(dir.path()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3) || kept.len() == 2,
        "ran {:?}, kept {kept:?}",
        started.elapsed()
    );
    assert!(!kept.is_empty() && kept.len() <= 2, "{kept:?}");
    let restarted = restart(dir.path()).run().unwrap();
    assert_same_after(&native, &restarted, 0);
}

#[test]
fn ckpt_exit_stops_the_program_after_a_good_image() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("300");
    let native = cmd.run().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = cmd.under_crac().spawn().unwrap();
    wait_agent(child.pid());
    let out = checkpoint(child.pid(), dir.path(), &["--exit"]).unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    let image = out.stdout_text().lines().last().unwrap().to_owned();
    let stopped = child.finish().unwrap();
    assert_eq!(stopped.code(), Some(EXIT_AFTER_CHECKPOINT), "{stopped}");
    let restarted = restart(image.as_ref()).run().unwrap();
    assert_same_after(&native, &restarted, 0);
}

#[test]
fn restart_dir_skips_a_damaged_newer_image() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("300");
    let native = cmd.run().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = cmd.under_crac().spawn().unwrap();
    wait_agent(child.pid());
    let good = crac_e2e::ckpt::checkpoint_ok(child.pid(), dir.path());
    crac_e2e::ckpt::kill9(child).unwrap();
    // A newer "image" that is not one.
    let fake = dir.path().join("zzz-1-9999.crac");
    std::fs::write(&fake, b"not an image at all").unwrap();
    let restarted = restart(dir.path()).run().unwrap();
    assert_same_after(&native, &restarted, 0);
    let err = restarted.stderr_text();
    assert!(err.contains(&good.display().to_string()), "{err}");
    assert!(err.contains("zzz-1-9999.crac"), "{err}");
}

#[test]
fn ckpt_all_and_bad_pids() {
    // A private runtime directory: `--all` then sees this test's process only, never other
    // tests' (or the user's) crac processes.
    let runtime = tempfile::tempdir().unwrap();
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie))
        .arg("300")
        .env("XDG_RUNTIME_DIR", runtime.path());
    let dir = tempfile::tempdir().unwrap();
    let child = cmd.under_crac().spawn().unwrap();
    let ckpt = |args: &[&str]| {
        crac_e2e::Cmd::new(&crac_e2e::tools().ckpt)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .args(args)
            .timeout(Duration::from_secs(30))
            .run()
            .unwrap()
    };
    let pid = child.pid().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while ckpt(&["--status", &pid]).code() != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the agent of {pid} never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = dir.path().display().to_string();
    let out = ckpt(&["--dir", &d, "--all"]);
    assert_eq!(out.code(), Some(0), "{out}");
    let images: Vec<_> = out.stdout_text().lines().map(str::to_owned).collect();
    let prefix = format!("-{pid}-");
    assert!(
        images.len() == 1 && images[0].contains(&prefix),
        "--all must checkpoint exactly this test's process: {out}"
    );
    drop(child);
    let gone = checkpoint(4_000_000, dir.path(), &[]).unwrap();
    crac_e2e::assert_clean_failure(&gone, 1, &["no process 4000000"]);
    let not_crac = checkpoint(std::process::id(), dir.path(), &[]).unwrap();
    crac_e2e::assert_clean_failure(&not_crac, 1, &["not running under crac"]);
}

#[test]
fn the_checkpoint_signal_works_after_the_program_closed_every_fd() {
    // close_range(3, ~0) closes crac's socket and its trigger pipe too: the agent makes new
    // ones, and a signal that came meanwhile is not lost.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let cmd = Cmd::new(c_program("hostile", Link::Pie)).arg("close-fds-wait");
    let native = cmd.run().unwrap();
    let mut child = cmd
        .under_crac_with(&["--ckpt-signal", "USR2", "--dir", &d])
        .spawn()
        .unwrap();
    child.wait_for_line("ready").unwrap();
    child.signal(libc::SIGUSR2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while images(dir.path()).unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let written = images(dir.path()).unwrap();
    assert_eq!(written.len(), 1, "no image after the signal");
    let out = child.finish().unwrap();
    assert_same_after(&native, &out, 0);
    let restarted = restart(&written[0]).run().unwrap();
    assert_same_after(&native, &restarted, 1);
}
