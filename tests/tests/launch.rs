//! A program launched under crac behaves exactly as without it: same stdout, stderr and exit
//! status (codes and deaths by signal), for every way a program can be linked and for the
//! interpreters people run (Rust, Python, bash, `#!` scripts).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crac_e2e::{Cmd, Input, Link, assert_same, c_program, run_both, rust_program};

/// Every ending the status program can take: (arguments, expected code, expected signal).
const ENDINGS: [(&[&str], Option<i32>, Option<i32>); 6] = [
    (&["exit", "0"], Some(0), None),
    (&["exit", "3"], Some(3), None),
    (&["return", "255"], Some(255), None),
    (&["term"], None, Some(libc::SIGTERM)),
    (&["segv"], None, Some(libc::SIGSEGV)),
    (&["abort"], None, Some(libc::SIGABRT)),
];

fn endings_match(link: Link) {
    let exe = c_program("status", link);
    for (args, code, signal) in ENDINGS {
        let (native, crac) = run_both(&exe, args, b"").unwrap();
        assert_eq!(
            (native.code(), native.signal()),
            (code, signal),
            "native {args:?}\n{native}"
        );
        assert_same(&native, &crac);
    }
}

#[test]
fn exit_codes_and_signals_pie() {
    endings_match(Link::Pie);
}

#[test]
fn exit_codes_and_signals_non_pie() {
    endings_match(Link::NoPie);
}

#[test]
fn exit_codes_and_signals_static() {
    endings_match(Link::Static);
}

#[test]
fn exit_codes_and_signals_static_pie() {
    endings_match(Link::StaticPie);
}

#[test]
fn sixty_four_threads_compute_the_same_digest() {
    for link in [Link::Pie, Link::Static] {
        let (native, crac) = run_both(c_program("threads", link), &[], b"").unwrap();
        assert!(
            native.stdout_text().starts_with("threads 64 digest "),
            "{native}"
        );
        assert_same(&native, &crac);
    }
}

#[test]
fn two_gib_of_touched_memory_checksums_the_same() {
    let exe = c_program("bigmem", Link::Pie);
    let cmd = Cmd::new(exe).arg("2048").timeout(Duration::from_secs(120));
    let native = cmd.run().unwrap();
    assert!(
        native.stdout_text().starts_with("bigmem 2048 MiB pages "),
        "{native}"
    );
    assert_same(&native, &cmd.under_crac().run().unwrap());
}

/// Pseudo-random bytes with every byte value present, zeros and 0xff runs included.
fn binary_input(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut v: Vec<u8> = (0..=255u8).chain([0; 64]).chain([0xff; 64]).collect();
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

#[test]
fn binary_stdin_is_read_intact() {
    let input = binary_input(5 << 20);
    for link in [Link::Pie, Link::StaticPie] {
        let (native, crac) = run_both(c_program("stdin_digest", link), &[], &input).unwrap();
        assert!(
            native.stdout_text().starts_with("bytes 5242880 digest "),
            "{native}"
        );
        assert_same(&native, &crac);
    }
}

#[test]
fn a_rust_program_with_threads() {
    let exe = rust_program("rust_threads");
    for args in [&["0", "two words"][..], &["3"], &["255", "x"]] {
        let (native, crac) = run_both(&exe, args, b"").unwrap();
        assert_same(&native, &crac);
    }
}

#[test]
fn python3() {
    let script = "import sys, threading, hashlib\n\
                  data = sys.stdin.buffer.read()\n\
                  out = []\n\
                  ts = [threading.Thread(target=lambda i=i: out.append((i, hashlib.sha256(data * i).hexdigest()))) for i in range(8)]\n\
                  [t.start() for t in ts]; [t.join() for t in ts]\n\
                  print(sorted(out), sys.argv[1:])\n\
                  print('to stderr', file=sys.stderr)\n\
                  sys.exit(7)";
    let (native, crac) = run_both("python3", &["-c", script, "a b", ""], b"some input").unwrap();
    assert_eq!(native.code(), Some(7), "{native}");
    assert_same(&native, &crac);
}

#[test]
fn bash_with_pipes_and_children() {
    let script = "printf 'b\\na\\nc\\n' | sort | tr a-z A-Z; \
                  x=$(echo sub; bash -c 'echo grandchild; exit 4'; echo \"inner $?\"); echo \"$x\"; \
                  (sleep 0.05; echo background) & wait; \
                  read line; echo \"read [$line]\"; echo to-stderr >&2; exit 9";
    let (native, crac) = run_both("bash", &["-c", script], b"first line\nsecond\n").unwrap();
    assert_eq!(native.code(), Some(9), "{native}");
    assert_same(&native, &crac);
}

#[test]
fn bash_killed_by_a_signal() {
    let (native, crac) = run_both("bash", &["-c", "echo going; kill -TERM $$"], b"").unwrap();
    assert_eq!(native.signal(), Some(libc::SIGTERM), "{native}");
    assert_same(&native, &crac);
}

fn write_script(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn shebang_scripts_with_and_without_an_interpreter_argument() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write_script(
        dir.path(),
        "plain.sh",
        "#!/bin/sh\necho \"script $0 args [$*] count $#\"\nexit 5\n",
    );
    // `-u` on the #! line: an unset variable is an error, so the argument visibly took effect.
    let with_arg = write_script(
        dir.path(),
        "with-arg.sh",
        "#!/bin/sh -u\necho \"before\"\necho \"$UNSET_IN_THIS_TEST\"\necho \"not reached\"\n",
    );
    let env_s = write_script(
        dir.path(),
        "env-python",
        "#!/usr/bin/env python3\nimport sys\nprint('python script', sys.argv)\n",
    );
    for (script, args) in [
        (&plain, &["one", "two words"][..]),
        (&with_arg, &[]),
        (&env_s, &["x"]),
    ] {
        let cmd = Cmd::new(script).args(args).env_remove("UNSET_IN_THIS_TEST");
        let native = cmd.run().unwrap();
        assert_same(&native, &cmd.under_crac().run().unwrap());
    }
}

#[test]
fn path_lookup_finds_echo() {
    let native = Cmd::new("echo").arg("hi").run().unwrap();
    // Without `--`, as a user types it.
    let crac = Cmd::new(&crac_e2e::tools().launch)
        .args(["echo", "hi"])
        .run()
        .unwrap();
    assert_eq!(native.stdout, b"hi\n");
    assert_same(&native, &crac);
}

#[test]
fn program_options_are_not_taken_as_crac_options() {
    let exe = c_program("info", Link::Pie);
    let args = ["-h", "--help", "--", "--version", "-"];
    let native = Cmd::new(&exe).args(args).run().unwrap();
    let crac = Cmd::new(&crac_e2e::tools().launch)
        .arg(&exe)
        .args(args)
        .run()
        .unwrap();
    let argv = |o: &crac_e2e::Outcome| -> Vec<String> {
        o.stdout_text()
            .lines()
            .filter(|l| l.starts_with("arg"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(argv(&native), argv(&crac), "\n{crac}");
    assert_eq!(crac.code(), Some(0), "{crac}");
}

#[test]
fn stdin_from_a_file_and_output_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    std::fs::write(&input, binary_input(100_000)).unwrap();
    let exe = c_program("stdin_digest", Link::Pie);
    let run = |tag: &str, crac: bool| {
        let cmd = Cmd::new(&exe)
            .input(Input::File(input.clone()))
            .stdout_to(dir.path().join(format!("{tag}.out")))
            .stderr_to(dir.path().join(format!("{tag}.err")));
        if crac {
            cmd.under_crac().run()
        } else {
            cmd.run()
        }
        .unwrap()
    };
    let native = run("native", false);
    let crac = run("crac", true);
    assert!(
        native.stdout_text().starts_with("bytes 100000 "),
        "{native}"
    );
    assert_same(&native, &crac);
}

#[test]
fn the_crac_launch_subcommand_is_the_same_as_crac_launch() {
    let exe = c_program("status", Link::Pie);
    let native = Cmd::new(&exe).args(["exit", "3"]).run().unwrap();
    let sub = Cmd::new(crac_e2e::crac_bin())
        .args(["launch", "--"])
        .arg(&exe)
        .args(["exit", "3"])
        .run()
        .unwrap();
    assert_same(&native, &sub);
}

#[test]
fn many_launches_at_once() {
    // Each launched process has its own control socket and lower half: none may disturb another.
    let exe = c_program("threads", Link::Pie);
    let native = Cmd::new(&exe).run().unwrap();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let cmd = Cmd::new(&exe).under_crac();
            std::thread::spawn(move || cmd.run().unwrap())
        })
        .collect();
    for run in runs {
        assert_same(&native, &run.join().unwrap());
    }
}

#[test]
fn python_starts_children_with_vfork_and_posix_spawn() {
    // subprocess uses vfork (CLONE_VM|CLONE_VFORK) where it can; posix_spawn uses clone with its
    // own stack: both run on the program's side of a process that holds crac's lower half.
    let script = "import os, subprocess, sys\n\
                  r = subprocess.run(['sh', '-c', 'echo from child; exit 6'], capture_output=True)\n\
                  print(r.returncode, r.stdout)\n\
                  pid = os.posix_spawn('/bin/sh', ['sh', '-c', 'exit 9'], os.environ)\n\
                  print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n\
                  if os.fork() == 0: print('forked child', flush=True); os._exit(3)\n\
                  print(os.waitstatus_to_exitcode(os.wait()[1]))";
    let (native, crac) = run_both("python3", &["-c", script], b"").unwrap();
    assert_eq!(
        native.stdout_text(),
        "6 b'from child\\n'\n9\nforked child\n3\n",
        "{native}"
    );
    assert_same(&native, &crac);
}
