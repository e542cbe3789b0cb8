//! The program sees the same surroundings under crac as without it: argv (spaces, empty and
//! UTF-8 arguments), environment (crac's own `__CRAC_*` variables never reach it), working
//! directory, umask, rlimits, signal mask and ignored signals, its stdin/stdout/stderr (the very
//! pipes, files or terminal it was given), no extra low fds, and its process name.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::collections::BTreeMap;

use crac_e2e::compare::line_diff;
use crac_e2e::{Cmd, Input, Link, Outcome, c_program};

/// crac's v1 rseq policy (DESIGN.md): the program runs with `glibc.pthread.rseq=0` in
/// `GLIBC_TUNABLES`, replacing any rseq entry and keeping the others in order. It is the one
/// difference from a native run's environment that is expected; `env` holds `env KEY=VALUE`
/// lines.
fn with_rseq_off(env: &mut Vec<String>) {
    let prefix = "env GLIBC_TUNABLES=";
    let old = env
        .iter()
        .position(|l| l.starts_with(prefix))
        .map(|i| env.remove(i));
    let mut parts: Vec<String> = old
        .as_deref()
        .map(|l| {
            l[prefix.len()..]
                .split(':')
                .filter(|p| !p.is_empty() && !p.starts_with("glibc.pthread.rseq="))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    parts.push("glibc.pthread.rseq=0".into());
    env.push(format!("{prefix}{}", parts.join(":")));
    env.sort();
}

/// The info program's lines grouped by their first word (`argv[1]`, `env`, `rlimit`, …), with
/// the environment sorted and crac's own `__CRAC_*` variables taken out. For a native run
/// (`native` true) the environment is what crac is expected to give: rseq turned off.
fn facts(out: &Outcome, native: bool) -> BTreeMap<String, Vec<String>> {
    assert_eq!(out.code(), Some(0), "{out}");
    let text = out.normalize_pipes(&out.stdout_text());
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("env __CRAC_") {
            continue;
        }
        let key = line.split(' ').next().unwrap_or_default().to_owned();
        map.entry(key).or_default().push(line.to_owned());
    }
    let env = map.entry("env".to_owned()).or_default();
    env.sort();
    if native {
        with_rseq_off(env);
    }
    map
}

/// Runs the info program natively and under crac with `cmd`'s settings and asserts every fact
/// is the same; returns the crac run.
fn same_facts(cmd: &Cmd) -> Outcome {
    let native = cmd.run().unwrap();
    let crac = cmd.under_crac().run().unwrap();
    let (n, c) = (facts(&native, true), facts(&crac, false));
    let keys: std::collections::BTreeSet<&String> = n.keys().chain(c.keys()).collect();
    for key in keys {
        let (nv, cv) = (
            n.get(key).cloned().unwrap_or_default(),
            c.get(key).cloned().unwrap_or_default(),
        );
        assert!(
            nv == cv,
            "`{key}` lines differ under crac:\n{}\n=== crac run ===\n{crac}",
            line_diff(&nv.join("\n"), &cv.join("\n"))
        );
    }
    assert_eq!(native.stderr, crac.stderr, "stderr differs\n{crac}");
    crac
}

fn info() -> Cmd {
    Cmd::new(c_program("info", Link::Pie))
}

#[test]
fn argv_with_spaces_empty_and_utf8_arguments() {
    let args = [
        "plain",
        "",
        "two words",
        "  lead and trail  ",
        "tab\there",
        "é日本語🦀",
        "a\nb",
        "*",
        "$HOME",
    ];
    for link in Link::ALL {
        let cmd = Cmd::new(c_program("info", link)).args(args);
        let crac = same_facts(&cmd);
        assert!(
            crac.stdout_text().contains("argv[3] len 9 [two words]"),
            "{crac}"
        );
    }
}

#[test]
fn many_and_long_arguments() {
    let long = "x".repeat(100_000);
    let many: Vec<String> = (0..2000).map(|i| format!("arg{i}")).collect();
    same_facts(&info().arg(&long).args(&many));
}

/// The soft stack limit in bytes, from /proc/self/limits (unlimited reads as u64::MAX).
fn stack_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max stack size"))
        .unwrap();
    let soft = line["Max stack size".len()..]
        .split_whitespace()
        .next()
        .unwrap();
    soft.parse().unwrap_or(u64::MAX)
}

#[test]
fn arguments_near_the_kernel_limit() {
    // The kernel takes argv + envp up to a quarter of the stack limit. crac re-executes itself
    // with a few extra variables and must still fit, and must place them on the program's stack.
    let env_bytes: u64 = std::env::vars_os()
        .map(|(k, v)| (k.len() + v.len() + 2 + 8) as u64)
        .sum();
    let quarter = (stack_limit() / 4).min(6 << 20);
    let budget = quarter.saturating_sub(env_bytes + (16 << 10));
    let piece = 100_000u64;
    let args: Vec<String> = (0..budget / (piece + 8))
        .map(|i| format!("{i}:{}", "a".repeat(usize::try_from(piece).unwrap() - 8)))
        .collect();
    assert!(
        args.len() > 4,
        "stack limit too small for this test: {quarter}"
    );
    same_facts(&info().args(&args));
}

#[test]
fn environment_is_the_same_minus_crac_variables() {
    let cmd = info()
        .env("CRAC_E2E_PLAIN", "value")
        .env("CRAC_E2E_EMPTY", "")
        .env("CRAC_E2E_UTF8", "é 日本 🦀")
        .env("CRAC_E2E_EQUALS", "a=b=c")
        .env("LD_LIBRARY_PATH", "/nonexistent/crac-e2e");
    let crac = same_facts(&cmd);
    assert!(
        crac.stdout_text().contains("env CRAC_E2E_EQUALS=a=b=c\n"),
        "{crac}"
    );
}

#[test]
fn existing_glibc_tunables_are_kept() {
    let crac = same_facts(&info().env(
        "GLIBC_TUNABLES",
        "glibc.malloc.arena_max=2:glibc.pthread.rseq=1",
    ));
    assert!(
        crac.stdout_text()
            .contains("env GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.pthread.rseq=0\n"),
        "{crac}"
    );
}

#[test]
fn a_program_found_in_path_sees_the_name_it_was_called_by() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("crac-e2e-info");
    std::fs::copy(c_program("info", Link::Pie), &exe).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let crac = same_facts(&Cmd::new("crac-e2e-info").arg("x").env("PATH", path));
    assert!(
        crac.stdout_text()
            .contains("argv[0] len 13 [crac-e2e-info]\n"),
        "{crac}"
    );
}

#[test]
fn an_almost_empty_environment() {
    // crac itself must cope without PATH, HOME or anything else.
    let exe = c_program("info", Link::Pie);
    let native = Cmd::new("/usr/bin/env")
        .args(["-i", "A=1"])
        .arg(&exe)
        .run()
        .unwrap();
    let crac = Cmd::new("/usr/bin/env")
        .args(["-i", "A=1"])
        .arg(&crac_e2e::tools().launch)
        .arg("--")
        .arg(&exe)
        .run()
        .unwrap();
    assert_eq!(facts(&native, true), facts(&crac, false), "\n{crac}");
    assert_eq!(
        facts(&crac, false)["env"],
        ["env A=1", "env GLIBC_TUNABLES=glibc.pthread.rseq=0"],
        "{crac}"
    );
}

#[test]
fn no_crac_variable_leaks_to_the_program_or_its_children() {
    for cmd in [info(), Cmd::new("bash").args(["-c", "env; bash -c env"])] {
        let crac = cmd.under_crac().run().unwrap();
        assert_eq!(crac.code(), Some(0), "{crac}");
        let text = crac.stdout_text();
        let leaked: Vec<&str> = text.lines().filter(|l| l.contains("__CRAC_")).collect();
        assert!(
            leaked.is_empty(),
            "crac's variables reached the program: {leaked:?}"
        );
    }
}

#[test]
fn working_directory_umask_and_rlimits() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a dir with spaces");
    std::fs::create_dir(&sub).unwrap();
    same_facts(&info().cwd(&sub));
    // Changed limits and umask are inherited as they were set, not as crac would like them.
    let exe = c_program("info", Link::Pie);
    let setup = "umask 027; ulimit -S -n 200; ulimit -S -s 4096; ulimit -S -c 0; exec \"$@\"";
    let native = Cmd::new("bash")
        .args(["-c", setup, "bash"])
        .arg(&exe)
        .run()
        .unwrap();
    let crac = Cmd::new("bash")
        .args(["-c", setup, "bash"])
        .arg(&crac_e2e::tools().launch)
        .arg("--")
        .arg(&exe)
        .run()
        .unwrap();
    let (n, c) = (facts(&native, true), facts(&crac, false));
    for key in ["umask", "rlimit", "cwd"] {
        assert_eq!(n.get(key), c.get(key), "`{key}` differs\n{crac}");
    }
    assert!(crac.stdout_text().contains("rlimit nofile 200 "), "{crac}");
}

#[test]
fn blocked_and_ignored_signals_are_inherited() {
    let exe = c_program("info", Link::Pie);
    // `trap '' INT` makes bash ignore SIGINT, which exec passes on as ignored.
    let setup = "trap '' INT HUP; exec \"$@\"";
    let native = Cmd::new("bash")
        .args(["-c", setup, "bash"])
        .arg(&exe)
        .run()
        .unwrap();
    let crac = Cmd::new("bash")
        .args([
            "-c",
            setup,
            "bash",
            crac_e2e::tools().launch.to_str().unwrap_or_default(),
            "--",
        ])
        .arg(&exe)
        .run()
        .unwrap();
    let (n, c) = (facts(&native, true), facts(&crac, false));
    assert!(
        n["signal"].iter().any(|l| l == "signal 2 ignored"),
        "{native}"
    );
    assert_eq!(n.get("signal"), c.get("signal"), "\n{crac}");
    same_facts(&info());
}

#[test]
fn standard_fds_are_the_pipes_given() {
    // normalize_pipes maps each run's own pipe inodes to pipe:[fd0..2]; equal facts mean the
    // program's fds 0-2 are the very pipes the test holds, and the fds open below 100 are those
    // the native run has (crac keeps its own fds higher).
    let crac = same_facts(&info().input(Input::Bytes(b"x".to_vec())));
    let text = crac.normalize_pipes(&crac.stdout_text());
    for fd in 0..3 {
        assert!(
            text.contains(&format!("fd {fd} -> pipe:[fd{fd}]")),
            "{crac}"
        );
    }
}

#[test]
fn standard_fds_are_the_files_given() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "input\n").unwrap();
    let exe = c_program("info", Link::Pie);
    let run = |tag: &str, crac: bool| {
        let out = dir.path().join(format!("{tag}.out"));
        let cmd = Cmd::new(&exe)
            .input(Input::File(input.clone()))
            .stdout_to(&out)
            .stderr_to(dir.path().join("err.txt"));
        let outcome = if crac {
            cmd.under_crac().run()
        } else {
            cmd.run()
        }
        .unwrap();
        // The output names its own file: make the two runs' names equal before comparing.
        let text = outcome
            .stdout_text()
            .replace(out.to_str().unwrap_or_default(), "OUT");
        (outcome, text)
    };
    let (native, native_text) = run("native", false);
    let (crac, crac_text) = run("crac", true);
    assert!(
        native_text.contains(&format!("fd 0 -> {}", input.display())),
        "{native}"
    );
    assert!(crac_text.contains("fd 1 -> OUT\n"), "{crac}");
    assert_eq!(native.status, crac.status);
    let pick = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("fd "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(&native_text), pick(&crac_text), "\n{crac}");
}

#[test]
fn process_name_is_the_program() {
    let crac = same_facts(&info());
    assert!(crac.stdout_text().contains("comm info-pie\n"), "{crac}");
}

#[test]
fn a_terminal_stays_the_programs_terminal() {
    // A pseudo-terminal as stdin, stdout and stderr; `script` makes one without extra crates.
    // The program prints its fd targets and isatty results to the terminal, which `script`
    // copies to our stdout.
    if !Cmd::new("script")
        .arg("--version")
        .run()
        .is_ok_and(|o| o.code() == Some(0))
    {
        eprintln!("skipping: util-linux `script` is not installed");
        return;
    }
    let exe = c_program("info", Link::Pie);
    let under = |prefix: &str| -> Outcome {
        let line = format!("{prefix}{} ; echo \"status $?\"", exe.display());
        Cmd::new("script")
            .args(["-qec", &line, "/dev/null"])
            .run()
            .unwrap()
    };
    let native = under("");
    let crac = under(&format!("{} -- ", crac_e2e::tools().launch.display()));
    let ttys = |o: &Outcome| -> Vec<String> {
        o.stdout_text()
            .lines()
            .filter(|l| l.contains("isatty") || l.starts_with("status"))
            .map(|l| l.trim_end_matches('\r').to_owned())
            .collect()
    };
    assert!(
        ttys(&native).contains(&"fd 1 isatty 1".to_owned()),
        "{native}"
    );
    assert_eq!(ttys(&native), ttys(&crac), "\n{crac}");
    assert!(crac.stdout_text().contains("fd 0 -> /dev/pts/"), "{crac}");
}
