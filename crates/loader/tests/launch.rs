//! Runs programs through the `minilaunch` example (crac's launch without the agent) and
//! compares stdout, stderr and exit status with a native run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn minilaunch() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("examples").join("minilaunch");
    assert!(
        p.exists(),
        "{} missing: `cargo test -p crac-loader` builds it",
        p.display()
    );
    p
}

fn run(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(program);
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("spawn")
}

/// Native run vs launched run: same stdout, stderr and status.
fn same(args: &[&str]) {
    let native = run(Path::new(args[0]), &args[1..], &[]);
    let launched = run(&minilaunch(), args, &[]);
    assert_eq!(
        String::from_utf8_lossy(&launched.stderr),
        String::from_utf8_lossy(&native.stderr),
        "stderr of {args:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&launched.stdout),
        String::from_utf8_lossy(&native.stdout),
        "stdout of {args:?}"
    );
    assert_eq!(
        launched.status.code(),
        native.status.code(),
        "status of {args:?}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        launched.status.signal(),
        native.status.signal(),
        "signal of {args:?}"
    );
}

#[test]
fn system_programs_behave_as_native() {
    same(&["/bin/echo", "hello", "world"]);
    same(&["/bin/sh", "-c", "exit 7"]);
    same(&["/bin/sh", "-c", "kill -TERM $$"]);
    same(&[
        "/bin/sh",
        "-c",
        "echo $0 $#; ls /nonexistent-dir 2>&1; exit 3",
        "zero",
        "a",
    ]);
    same(&[
        "/usr/bin/env",
        "-u",
        "GLIBC_TUNABLES",
        "sh",
        "-c",
        "echo $PATH",
    ]);
}

fn build(dir: &Path, kind: &str) -> PathBuf {
    let flags: &[&str] = match kind {
        "pie" => &["-fPIE", "-pie"],
        "nopie" => &["-fno-pie", "-no-pie"],
        "static" => &["-static"],
        "static-pie" => &["-static-pie"],
        _ => unreachable!("kind"),
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/probe.c");
    let out = dir.join(format!("probe-{kind}"));
    let st = Command::new("cc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .args(flags)
        .status()
        .expect("run cc (a C compiler is needed for these tests)");
    assert!(st.success(), "cc {kind} failed");
    out
}

#[test]
fn c_programs_of_every_link_kind_behave_as_native() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in ["pie", "nopie", "static", "static-pie"] {
        let p = build(dir.path(), kind);
        let p = p.to_str().expect("utf-8 path");
        same(&[p, "one", "two"]);
        same(&[p]);
        // And with a registered lower-half thread alive, as the agent will be.
        let native = run(Path::new(p), &["x"], &[]);
        let launched = run(&minilaunch(), &[p, "x"], &[("MINILAUNCH_THREAD", "1")]);
        assert_eq!(launched.stdout, native.stdout, "{kind} with a lower thread");
        assert_eq!(launched.status.code(), native.status.code());
    }
}

#[test]
fn signal_state_of_the_caller_reaches_the_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = build(dir.path(), "pie");
    // Start both runs with SIGPIPE ignored and SIGUSR1 blocked, through a shell.
    let script = "trap '' PIPE; exec python3 -c 'import signal,os,sys; \
         signal.pthread_sigmask(signal.SIG_BLOCK,[signal.SIGUSR1]); os.execv(sys.argv[1], sys.argv[1:])' \"$@\"";
    let out = |args: &[&str]| {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args)
            .output()
            .expect("spawn")
    };
    let pstr = p.to_str().expect("utf-8");
    let native = out(&[pstr]);
    let launched = out(&[minilaunch().to_str().expect("utf-8"), pstr]);
    let text = String::from_utf8_lossy(&launched.stdout);
    assert!(text.contains("sigpipe=ign"), "{text}");
    assert!(text.contains("usr1blocked=1"), "{text}");
    assert_eq!(launched.stdout, native.stdout);
}

#[test]
fn closed_standard_fds_stay_closed() {
    // The program reports, on fd 3, which of its fds 0-2 are open; it is started through a
    // shell with some of them closed, natively and under minilaunch (whose Rust runtime
    // reopens closed ones on /dev/null before main).
    let report = "for f in 0 1 2; do \
         if [ -e /proc/$$/fd/$f ]; then echo \"$f open\" >&3; else echo \"$f closed\" >&3; fi; \
         done";
    let ml = minilaunch();
    let ml = ml.to_str().expect("utf-8");
    for (redir, closed) in [
        ("<&-", "0"),
        (">&-", "1"),
        ("2>&-", "2"),
        ("<&- >&- 2>&-", "0 1 2"),
    ] {
        let out = |launcher: &[&str]| {
            Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("\"$@\" 3>&1 {redir}"))
                .arg("sh")
                .args(launcher)
                .args(["/bin/sh", "-c", report])
                .output()
                .expect("spawn")
        };
        let native = out(&[]);
        let launched = out(&[ml]);
        let native_text = String::from_utf8_lossy(&native.stdout);
        for fd in closed.split(' ') {
            assert!(
                native_text.contains(&format!("{fd} closed")),
                "{native_text}"
            );
        }
        assert_eq!(
            String::from_utf8_lossy(&launched.stdout),
            native_text,
            "fds seen with {redir}"
        );
        assert_eq!(launched.status.code(), native.status.code(), "{redir}");
    }
}

#[test]
fn scripts_and_argv0_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = dir.path().join("script.sh");
    std::fs::write(
        &s,
        "#!/bin/sh -e\necho \"$0|$*\"; cat /proc/$$/comm; exit 5\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    same(&[s.to_str().expect("utf-8"), "a", "b c"]);
    // argv[0] as typed, found on PATH.
    let launched = run(&minilaunch(), &["sh", "-c", "echo $0"], &[]);
    assert_eq!(String::from_utf8_lossy(&launched.stdout), "sh\n");
}

#[test]
fn launch_errors_are_shell_like() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |arg: &Path, code: i32, msg: &str| {
        let o = run(&minilaunch(), &[arg.to_str().expect("utf-8")], &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{arg:?}: {err}");
        assert!(err.contains(msg), "{arg:?}: {err}");
    };
    check(&dir.path().join("nope"), 127, "no such file or directory");
    check(dir.path(), 126, "is a directory");
    let text = dir.path().join("text");
    std::fs::write(&text, "hello\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    check(&text, 126, "exec format error");
    let o = run(&minilaunch(), &["no-such-command-xyz"], &[]);
    assert_eq!(o.status.code(), Some(127));
}

fn build_bare(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/exit42.c");
    let out = dir.join(name);
    let st = Command::new("cc")
        .args(["-O1", "-nostdlib", "-static", "-fno-pie", "-no-pie", "-o"])
        .arg(&out)
        .arg(&src)
        .args(extra)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc {name} failed");
    out
}

#[test]
fn a_libc_free_static_program_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = build_bare(dir.path(), "bare", &[]);
    same(&[p.to_str().expect("utf-8")]);
}

#[test]
fn a_fixed_address_program_over_crac_is_refused_clearly() {
    // Linked where crac itself lives with ASLR off (the kernel's PIE base).
    let dir = tempfile::tempdir().expect("tempdir");
    let p = build_bare(dir.path(), "clash", &["-Wl,-Ttext-segment=0x555555554000"]);
    let native = run(&p, &[], &[]);
    assert_eq!(native.status.code(), Some(42));
    let o = run(&minilaunch(), &[p.to_str().expect("utf-8")], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(126), "{err}");
    assert!(err.contains("rebuild the program as PIE"), "{err}");
}

#[test]
fn the_binary_exports_the_lower_allocator() {
    let out = Command::new("readelf")
        .args(["--dyn-syms", "--wide"])
        .arg(minilaunch())
        .output()
        .expect("readelf (binutils) is needed");
    let text = String::from_utf8_lossy(&out.stdout);
    for sym in crac_loader::exported_symbols() {
        let defined = text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 8 && f[7] == sym && f[3] == "FUNC" && f[6] != "UND"
        });
        assert!(defined, "{sym} is not exported by minilaunch");
    }
}

#[test]
fn a_tight_address_space_limit_still_launches() {
    // 4 GB of address space: the 64 GiB arena reservation must fall back to a smaller one.
    let o = Command::new("/bin/sh")
        .arg("-c")
        .arg("ulimit -v 4000000 && exec \"$0\" /bin/echo fits")
        .arg(minilaunch())
        .output()
        .expect("spawn");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "fits\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success());
}

#[test]
fn argument_lists_past_the_usual_stack_cap_fit() {
    // 3 MB of arguments: more than a quarter of an 8 MiB stack, allowed with a 64 MiB limit.
    // The shell builds them, as this test process's own limit may be too small to pass them.
    let script = "ulimit -s 65536 || exit 99; a=$(head -c 100000 /dev/zero | tr '\\0' x); \
                  set -- \"$@\" /bin/echo; \
                  for i in $(seq 30); do set -- \"$@\" \"$a\"; done; exec \"$@\" | wc -c";
    let run_with = |launcher: &[&Path]| {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(launcher)
            .output()
            .expect("spawn")
    };
    let native = run_with(&[]);
    let launched = run_with(&[&minilaunch()]);
    assert_eq!(String::from_utf8_lossy(&native.stdout).trim(), "3000030");
    assert_eq!(
        launched.stdout,
        native.stdout,
        "{}",
        String::from_utf8_lossy(&launched.stderr)
    );
}
