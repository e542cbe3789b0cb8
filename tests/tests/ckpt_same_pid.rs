//! `crac_restart --same-pid`: the restarted program has the pid it had at the checkpoint (in a
//! pid namespace of its own), the `crac_restart` process supervises it: signals sent to it
//! reach the program, it ends as the program does, `crac_ckpt` reaches the program through its
//! pid, and the chain checkpoint → restart → checkpoint → restart keeps the pid.
//!
//! Skipped (with a message) where unprivileged user namespaces are turned off.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crac_e2e::ckpt::{assert_same_after, checkpoint_ok, kill9, random_in, restart, wait_agent};
use crac_e2e::{Cmd, Link, Spawned, c_program, tools};

/// Whether this machine lets an unprivileged user create user namespaces (what --same-pid
/// needs); says why not on stderr.
fn namespaces_available() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let off = [
        ("/proc/sys/user/max_user_namespaces", "0"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        (
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1",
        ),
    ]
    .into_iter()
    .find(|(file, value)| read(file).as_deref() == Some(*value));
    if let Some((file, value)) = off {
        eprintln!("skipped: user namespaces are turned off here ({file} is {value})");
        return false;
    }
    true
}

/// `crac_restart --same-pid IMAGE`.
fn restart_same_pid(image: &Path) -> Cmd {
    Cmd::new(&tools().restart).arg("--same-pid").arg(image)
}

/// Launches `ck_samepid`, checkpoints it into `dir` and kills it; returns its pid and the image.
fn checkpointed_samepid(dir: &Path) -> (u32, PathBuf) {
    let mut child = Cmd::new(c_program("ck_samepid", Link::Pie))
        .under_crac()
        .spawn()
        .unwrap();
    let line = child.wait_for_line("pid ").unwrap();
    assert_eq!(line, format!("pid {} ready", child.pid()));
    wait_agent(child.pid());
    let image = checkpoint_ok(child.pid(), dir);
    let pid = child.pid();
    let killed = kill9(child).unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    (pid, image)
}

/// Sends SIGUSR1 to the supervisor and waits for the program's line about it (the first time,
/// once the restart is far enough to answer on its control socket: before, the program's
/// handler may not be in place yet).
fn usr1_line(child: &mut Spawned, count: u32) -> String {
    if count == 1 {
        wait_agent(child.pid());
    }
    child.signal(libc::SIGUSR1).unwrap();
    child.wait_for_line(&format!("usr1 {count} ")).unwrap()
}

/// Whether a process whose innermost pid is `pid` in a nested pid namespace and whose name is
/// `comm` still exists (as seen from here).
fn nested_process_alive(pid: u32, comm: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let ns_pids: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let name = status.lines().find_map(|l| l.strip_prefix("Name:"));
        ns_pids.len() > 1
            && ns_pids.last() == Some(&pid.to_string().as_str())
            && name.map(str::trim) == Some(comm)
    })
}

#[test]
fn the_restarted_program_keeps_its_pid_and_gets_the_supervisors_signals() {
    if !namespaces_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pid, image) = checkpointed_samepid(dir.path());

    // Without --same-pid the pid is new (why the flag exists).
    let mut plain = restart(&image).spawn().unwrap();
    let line = usr1_line(&mut plain, 1);
    assert_eq!(line, format!("usr1 1 pid {}", plain.pid()));
    plain.signal(libc::SIGUSR2).unwrap();
    let out = plain.finish().unwrap();
    assert_eq!(out.code(), Some(7), "{out}");

    // With it: getpid() is the checkpoint's, signals sent to crac_restart reach the program,
    // and crac_restart exits with the program's status.
    let mut same = restart_same_pid(&image).spawn().unwrap();
    assert_ne!(same.pid(), pid);
    assert_eq!(usr1_line(&mut same, 1), format!("usr1 1 pid {pid}"));
    assert_eq!(usr1_line(&mut same, 2), format!("usr1 2 pid {pid}"));
    same.signal(libc::SIGUSR2).unwrap();
    let out = same.finish().unwrap();
    assert_eq!(out.code(), Some(7), "{out}");
    assert!(
        out.stdout_text().ends_with(&format!("bye pid {pid}\n")),
        "{out}"
    );

    // A signal that kills the program kills crac_restart the same way.
    let same = restart_same_pid(&image).spawn().unwrap();
    wait_agent(same.pid());
    same.signal(libc::SIGTERM).unwrap();
    let out = same.finish().unwrap();
    assert_eq!(out.signal(), Some(libc::SIGTERM), "{out}");
    assert!(!out.stderr_text().contains("crac_restart"), "{out}");
}

#[test]
fn crac_ckpt_reaches_it_through_the_supervisor_and_the_chain_keeps_the_pid() {
    if !namespaces_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pid, image) = checkpointed_samepid(dir.path());

    let mut first = restart_same_pid(&image).spawn().unwrap();
    assert_eq!(usr1_line(&mut first, 1), format!("usr1 1 pid {pid}"));
    let status = Cmd::new(&tools().ckpt)
        .args(["--status", &first.pid().to_string()])
        .run()
        .unwrap();
    assert!(
        status
            .stdout_text()
            .starts_with(&format!("process {pid} under crac")),
        "{status}"
    );
    let dir2 = tempfile::tempdir().unwrap();
    let image2 = checkpoint_ok(first.pid(), dir2.path());
    let killed = kill9(first).unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    // Killing crac_restart takes its pid namespace, and the program, with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while nested_process_alive(pid, "ck_samepid") {
        assert!(
            Instant::now() < deadline,
            "the program outlived its crac_restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The image of the restarted program records the same pid, and restarts under it again
    // (from the directory, as the newest image), with the count it had.
    let inspect = Cmd::new(crac_e2e::crac_bin())
        .args(["inspect", "--json"])
        .arg(&image2)
        .run()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["meta"]["process"]["pid"], u64::from(pid), "{inspect}");
    let mut second = restart_same_pid(dir2.path()).spawn().unwrap();
    wait_agent(second.pid());
    assert_eq!(usr1_line(&mut second, 2), format!("usr1 2 pid {pid}"));
    second.signal(libc::SIGUSR2).unwrap();
    let out = second.finish().unwrap();
    assert_eq!(out.code(), Some(7), "{out}");
}

#[test]
fn an_asyncio_program_resumes_only_under_its_own_pid() {
    if !namespaces_available() {
        return;
    }
    let script = crac_e2e::programs::source_dir().join("ck_asyncio.py");
    let cmd = Cmd::new(crac_e2e::programs::python()).arg(script);
    let native = cmd.run().unwrap();
    assert_eq!(native.code(), Some(0), "{native}");

    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd.under_crac().spawn().unwrap();
    child.wait_for_line("ready").unwrap();
    wait_agent(child.pid());
    let delay = random_in(0, 800);
    eprintln!("checkpoint after {delay} ms");
    std::thread::sleep(Duration::from_millis(delay));
    let lines_before = child.lines().len();
    let image = checkpoint_ok(child.pid(), dir.path());
    kill9(child).unwrap();

    // Under a new pid, CPython 3.11's asyncio no longer finds its running loop.
    let plain = restart(&image).run().unwrap();
    if python_remembers_the_pid() {
        assert_ne!(plain.code(), Some(0), "{plain}");
        assert!(
            plain.stderr_text().contains("no running event loop"),
            "{plain}"
        );
    }

    let same = restart_same_pid(&image).run().unwrap();
    assert_same_after(&native, &same, lines_before);
}

/// Whether this Python's asyncio ties the running loop to the pid (3.11 and older).
fn python_remembers_the_pid() -> bool {
    let v = Cmd::new(crac_e2e::programs::python())
        .args(["-c", "import sys; print(sys.version_info < (3, 12))"])
        .run()
        .unwrap();
    v.stdout_text().trim() == "True"
}

#[test]
fn an_image_of_pid_1_is_refused_with_the_remedy() {
    use crac_core::image::{ImageMeta, ImageWriter};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.crac");
    let mut meta = ImageMeta::default();
    meta.process.pid = 1;
    meta.process.comm = "init".into();
    let file = std::fs::File::create(&path).unwrap();
    ImageWriter::new(file).unwrap().finish(&meta).unwrap();
    let out = restart_same_pid(&path).run().unwrap();
    assert_eq!(out.code(), Some(1), "{out}");
    let err = out.stderr_text();
    assert!(
        err.starts_with("crac_restart: the program in ")
            && err.contains("had pid 1,")
            && err.trim_end().ends_with("restart it without --same-pid"),
        "{out}"
    );
}

#[test]
fn crac_h_finds_its_agent_after_a_same_pid_restart() {
    if !namespaces_available() {
        return;
    }
    let exe = crac_e2e::c_program_with_libcrac("crac_api_twice");
    let dir = tempfile::tempdir().unwrap();
    let launched = Cmd::new(&exe)
        .under_crac_with(&["--dir", &dir.path().display().to_string()])
        .run()
        .unwrap();
    assert_eq!(
        launched.stdout_text(),
        "1: continued\n2: continued\n",
        "{launched}"
    );
    let mut images = crac_e2e::ckpt::images(dir.path()).unwrap();
    images.sort();
    assert_eq!(images.len(), 2, "{images:?}");
    // From the first image: the second call runs in the restarted process, whose agent listens
    // on a socket named after crac_restart's pid, not the program's own.
    let restarted = restart_same_pid(&images[0]).run().unwrap();
    assert_eq!(
        restarted.stdout_text(),
        "1: restarted\n2: continued\n",
        "{restarted}"
    );
    assert_eq!(restarted.code(), Some(0), "{restarted}");
    assert_eq!(crac_e2e::ckpt::images(dir.path()).unwrap().len(), 3);
}
