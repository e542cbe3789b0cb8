//! Checkpoints taken again and again: restart → checkpoint → restart chains, twenty
//! checkpoint-and-continue rounds in one run, and programs asking for their own checkpoint
//! through `crac.h`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::time::Duration;

use crac_e2e::ckpt::{
    assert_same_after, checkpoint_ok, images, kill9, random_in, restart, wait_agent,
};
use crac_e2e::{Cmd, Link, c_program, c_program_with_libcrac};

#[test]
fn restart_checkpoint_restart_three_times() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("400");
    let native = cmd.run().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd.under_crac().spawn().unwrap();
    for round in 0..3 {
        wait_agent(child.pid());
        std::thread::sleep(Duration::from_millis(random_in(100, 400)));
        let image = checkpoint_ok(child.pid(), dir.path());
        eprintln!("round {round}: {}", image.display());
        let killed = kill9(child).unwrap();
        assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
        child = restart(&image).spawn().unwrap();
    }
    let last = child.finish().unwrap();
    assert_same_after(&native, &last, 0);
    // One lineage: every image continues the first one's name with a larger sequence number.
    let names: Vec<String> = images(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let lineage = |n: &str| n.rsplit_once('-').unwrap().0.to_owned();
    assert!(
        names.iter().all(|n| lineage(n) == lineage(&names[0])),
        "{names:?}"
    );
}

#[test]
fn twenty_checkpoints_while_the_program_goes_on() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("500");
    let native = cmd.run().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = cmd.under_crac().spawn().unwrap();
    wait_agent(child.pid());
    let mut paths = Vec::new();
    for _ in 0..20 {
        paths.push(checkpoint_ok(child.pid(), dir.path()));
    }
    let out = child.finish().unwrap();
    assert_same_after(&native, &out, 0);
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 20, "every checkpoint has its own image");
    // The last image still restarts to the same end.
    let restarted = restart(paths.last().unwrap()).run().unwrap();
    assert_same_after(&native, &restarted, 0);
}

#[test]
fn crac_h_tells_continued_from_restarted() {
    let exe = c_program_with_libcrac("crac_api");
    let native = Cmd::new(&exe).run().unwrap();
    assert_eq!(
        native.stdout_text().lines().take(2).collect::<Vec<_>>(),
        ["under crac: 0", "checkpoint: not under crac"],
        "{native}"
    );
    let dir = tempfile::tempdir().unwrap();
    let launched = Cmd::new(&exe)
        .under_crac_with(&["--dir", &dir.path().display().to_string()])
        .run()
        .unwrap();
    let result = native.stdout_text().lines().last().unwrap().to_owned();
    assert_eq!(
        launched.stdout_text(),
        format!("under crac: 1\ncheckpoint: continued\n{result}\n"),
        "{launched}"
    );
    let image = images(dir.path())
        .unwrap()
        .pop()
        .expect("crac_checkpoint() wrote an image");
    let restarted = restart(&image).run().unwrap();
    assert_eq!(
        restarted.stdout_text(),
        format!("checkpoint: restarted\n{result}\n"),
        "{restarted}"
    );
    assert_eq!(restarted.code(), Some(0));
    // A checkpoint that cannot be written: the call says why, and the program goes on.
    let failed = Cmd::new(&exe)
        .under_crac_with(&["--dir", "/proc"])
        .run()
        .unwrap();
    let line = failed
        .stdout_text()
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.starts_with("checkpoint: error -4: cannot create /proc/crac_api_libcrac-")
            && line.contains("check that the directory exists and is writable"),
        "{failed}"
    );
    assert_eq!(failed.stdout_text().lines().last(), Some(result.as_str()));
}
