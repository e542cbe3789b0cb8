//! Memory ownership as `crac_ckpt --status PID --json` reports it for a running program: every
//! byte the program owns is in the upper (saved) half, crac's own binary, libc copy, heap and
//! agent-thread stack are in the lower half, and no byte is in both. Also: the agent costs no
//! CPU while the program idles, and its control socket is private to the user.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crac_core::interval::{Interval, IntervalSet};
use crac_core::protocol::{Half, Reply, ReplyBody, StatusReport};
use crac_e2e::{Cmd, Link, Spawned, assert_no_crash, c_program, crac_bin, tools};

/// The regions program started under crac, waiting on stdin, with what it printed.
struct Program {
    child: Spawned,
    pid: i32,
    regions: Vec<(String, Interval)>,
    _scratch: tempfile::TempDir,
}

fn start(link: Link) -> Program {
    let scratch = tempfile::tempdir().unwrap();
    let mut child = Cmd::new(c_program("regions", link))
        .arg(scratch.path())
        .under_crac()
        .spawn()
        .unwrap();
    child.wait_for_line("ready").unwrap();
    let mut pid = None;
    let mut regions = Vec::new();
    for line in child.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["pid", p] => pid = p.parse().ok(),
            ["region", name, start, end] => {
                let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
                regions.push((name.to_owned(), Interval::new(hex(start), hex(end))));
            }
            _ => {}
        }
    }
    let pid = pid.expect("the program prints its pid");
    // One process: the pid the launcher's parent sees is the program's own.
    assert_eq!(
        u32::try_from(pid).ok(),
        Some(child.pid()),
        "the program runs in crac's process"
    );
    Program {
        child,
        pid,
        regions,
        _scratch: scratch,
    }
}

impl Program {
    /// Lets the program check its memory and exit; asserts it found everything intact.
    fn finish(self) {
        let out = self.child.finish().unwrap();
        assert_eq!(out.code(), Some(0), "{out}");
        assert!(out.stdout_text().ends_with("ok\n"), "{out}");
    }
}

/// Parses `crac_ckpt --status --json` output: the status report, or a whole reply holding one.
fn parse_status(json: &str) -> StatusReport {
    if let Ok(report) = serde_json::from_str::<StatusReport>(json) {
        return report;
    }
    match serde_json::from_str::<Reply>(json) {
        Ok(Reply {
            body: ReplyBody::Status(report),
            ..
        }) => report,
        other => {
            panic!("`crac_ckpt --status --json` printed no status report ({other:?}):\n{json}")
        }
    }
}

fn status(pid: i32) -> StatusReport {
    let out = Cmd::new(&tools().ckpt)
        .args(["--status", &pid.to_string(), "--json"])
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    assert_no_crash(&out);
    assert_eq!(out.code(), Some(0), "{out}");
    parse_status(&out.stdout_text())
}

fn set_of(report: &StatusReport, half: Half) -> IntervalSet {
    let mut set = IntervalSet::new();
    for r in report.regions.iter().filter(|r| r.half == half) {
        set.insert(Interval::new(r.start, r.end));
    }
    set
}

/// The half holding `iv` wholly, if one does.
fn half_of(report: &StatusReport, iv: &Interval) -> Option<Half> {
    [Half::Upper, Half::Lower, Half::Kernel]
        .into_iter()
        .find(|&h| set_of(report, h).covers(iv))
}

/// The stack pointer of a thread blocked in a system call (`/proc/PID/task/TID/syscall`).
fn blocked_sp(pid: i32, tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    // "NR arg1 … arg6 sp pc" while blocked; "running" or "-1 sp pc" otherwise.
    (words.len() == 9).then(|| u64::from_str_radix(words[7].trim_start_matches("0x"), 16).ok())?
}

fn check_ownership(link: Link) {
    let program = start(link);
    let report = status(program.pid);
    assert_eq!(report.pid, program.pid);
    let describe = || {
        report
            .regions
            .iter()
            .map(|r| format!("{:x}-{:x} {:?} {}", r.start, r.end, r.half, r.path))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Every byte exactly once: sorted, non-empty, disjoint regions.
    for pair in report.regions.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "regions overlap or are unsorted:\n{}",
            describe()
        );
    }
    assert!(
        report.regions.iter().all(|r| r.start < r.end),
        "an empty region\n{}",
        describe()
    );
    let (upper, lower) = (set_of(&report, Half::Upper), set_of(&report, Half::Lower));
    for iv in upper.intervals() {
        assert!(
            lower.intersect(iv).is_empty(),
            "bytes in both halves at {iv:x?}"
        );
    }

    // The program's memory, of every kind, is upper half.
    for (name, iv) in &program.regions {
        assert_eq!(
            half_of(&report, iv),
            Some(Half::Upper),
            "program region {name} {iv:x?} is not wholly in the upper half\n{}",
            describe()
        );
    }

    // crac's binary, its libc copy and its heap are lower half.
    let crac = std::fs::canonicalize(crac_bin()).unwrap();
    let crac_regions: Vec<_> = report
        .regions
        .iter()
        .filter(|r| Path::new(&r.path) == crac)
        .collect();
    assert!(
        !crac_regions.is_empty(),
        "crac's binary {crac:?} is not mapped\n{}",
        describe()
    );
    for r in crac_regions {
        assert_eq!(
            r.half,
            Half::Lower,
            "crac's binary mapped in the upper half at {:x}",
            r.start
        );
    }
    let libc_halves: Vec<Half> = report
        .regions
        .iter()
        .filter(|r| r.path.ends_with("/libc.so.6"))
        .map(|r| r.half)
        .collect();
    assert!(
        libc_halves.contains(&Half::Lower),
        "no lower-half libc copy\n{}",
        describe()
    );
    if link == Link::Pie {
        assert!(
            libc_halves.contains(&Half::Upper),
            "no upper-half libc copy\n{}",
            describe()
        );
    }
    // The program break is crac's: a lower-half heap or guard starts right at it, so a
    // program's sbrk cannot grow into either half. (/proc/PID/stat field 47 is start_brk.)
    let stat = proc_stat_fields(program.pid);
    let start_brk = stat[47];
    assert_eq!(
        half_of(&report, &Interval::new(start_brk, start_brk + 4096)),
        Some(Half::Lower),
        "the page at the program break {start_brk:x} is not crac's\n{}",
        describe()
    );
    // What /proc/PID/cmdline and environ show (fields 48-51: arg_start..env_end) is the
    // program's own copy, in its memory.
    let args_env = Interval::new(stat[48], stat[51]);
    assert_eq!(
        half_of(&report, &args_env),
        Some(Half::Upper),
        "argv/environ at {args_env:x?} are not in the program's memory\n{}",
        describe()
    );
    for r in report.regions.iter().filter(|r| r.path == "[heap]") {
        assert_eq!(
            r.half,
            Half::Lower,
            "the brk heap is crac's, not the program's"
        );
    }
    for r in report.regions.iter().filter(|r| r.path.starts_with("[v")) {
        assert_eq!(r.half, Half::Kernel, "{} belongs to the kernel", r.path);
    }

    // Threads: the program's two (main has the pid), and crac's agent, each on its own half's
    // stack.
    let upper_tids: Vec<i32> = report
        .threads
        .iter()
        .filter(|t| t.half == Half::Upper)
        .map(|t| t.tid)
        .collect();
    assert_eq!(
        upper_tids.len(),
        2,
        "the program has two threads: {:?}",
        report.threads
    );
    assert!(
        upper_tids.contains(&program.pid),
        "the main thread is the program's"
    );
    let mut lower_checked = 0;
    for t in &report.threads {
        let Some(sp) = blocked_sp(program.pid, t.tid) else {
            continue;
        };
        let iv = Interval::new(sp, sp + 1);
        assert_eq!(
            half_of(&report, &iv),
            Some(t.half),
            "thread {} ({}) runs on a stack of the other half",
            t.tid,
            t.name
        );
        lower_checked += usize::from(t.half == Half::Lower);
    }
    assert!(
        lower_checked > 0,
        "no lower-half (agent) thread found blocked: {:?}",
        report.threads
    );
    program.finish();
}

#[test]
fn memory_is_split_by_owner_pie() {
    check_ownership(Link::Pie);
}

#[test]
fn memory_is_split_by_owner_static() {
    check_ownership(Link::Static);
}

/// The numeric fields of `/proc/PID/stat`, indexed by their field number (1-based, as in
/// proc(5)); fields 1 to 3 (pid, comm, state) read as 0.
fn proc_stat_fields(pid: i32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let mut fields = vec![0, 0, 0];
    fields.extend(after_comm.split(' ').map(|f| f.trim().parse().unwrap_or(0)));
    fields
}

/// User plus system CPU ticks the whole process has used (`/proc/PID/stat` fields 14 and 15,
/// counting every thread, finished ones included).
fn cpu_ticks(pid: i32) -> u64 {
    let fields = proc_stat_fields(pid);
    fields[14] + fields[15]
}

#[test]
fn the_agent_is_idle_while_the_program_sleeps() {
    let program = start(Link::Pie);
    let before = cpu_ticks(program.pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(program.pid) - before;
    assert!(
        used < 2,
        "the process used {used} CPU ticks in one idle second"
    );
    program.finish();
}

/// The paths of the unix sockets bound by `pid` (its socket fds matched to /proc/net/unix).
fn bound_socket_paths(pid: i32) -> Vec<String> {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if let Some(ino) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes.push(ino.to_owned());
        }
    }
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 8 && inodes.iter().any(|i| i == w[6])).then(|| w[7].to_owned())
        })
        .collect()
}

#[test]
fn the_control_socket_is_private() {
    let program = start(Link::Pie);
    let paths = bound_socket_paths(program.pid);
    assert!(
        !paths.is_empty(),
        "no bound unix socket in the process (an abstract or no control socket)"
    );
    for path in &paths {
        assert!(
            !path.starts_with('@'),
            "control socket {path} is abstract: any local user could connect"
        );
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(
            meta.mode() & 0o777,
            0o600,
            "socket {path} mode {:o}",
            meta.mode() & 0o777
        );
        let dir = Path::new(path).parent().unwrap();
        let dmeta = std::fs::metadata(dir).unwrap();
        assert_eq!(
            dmeta.mode() & 0o777,
            0o700,
            "directory {dir:?} mode {:o}",
            dmeta.mode() & 0o777
        );
        // SAFETY: getuid(2) has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        assert_eq!((meta.uid(), dmeta.uid()), (uid, uid));
    }
    program.finish();
}

#[test]
fn status_in_words_and_for_a_process_not_under_crac() {
    let program = start(Link::Pie);
    let words = Cmd::new(&tools().ckpt)
        .args(["--status", &program.pid.to_string()])
        .run()
        .unwrap();
    assert_eq!(words.code(), Some(0), "{words}");
    assert!(!words.stdout_text().trim().is_empty(), "{words}");
    program.finish();

    let plain = Cmd::new("sleep").arg("30").spawn().unwrap();
    let out = Cmd::new(&tools().ckpt)
        .args(["--status", &plain.pid().to_string(), "--json"])
        .run()
        .unwrap();
    assert_no_crash(&out);
    assert_ne!(
        out.code(),
        Some(0),
        "status of a process not launched by crac succeeded\n{out}"
    );
    assert!(!out.stderr_text().trim().is_empty(), "no message\n{out}");
    drop(plain);
}

/// Starts the hostile program in `mode` under crac, waits for "ready", asks for its status,
/// then lets it finish; returns the report and the program's whole stdout.
fn status_after(mode: &str) -> (StatusReport, String) {
    let mut child = Cmd::new(c_program("hostile", Link::Pie))
        .arg(mode)
        .under_crac()
        .spawn()
        .unwrap();
    child.wait_for_line("ready").unwrap();
    let pid = i32::try_from(child.pid()).unwrap();
    let report = status(pid);
    let paths = bound_socket_paths(pid);
    assert!(!paths.is_empty(), "no control socket after `{mode}`");
    let out = child.finish().unwrap();
    assert_eq!(out.code(), Some(0), "{out}");
    (report, out.stdout_text())
}

#[test]
fn status_still_answers_after_the_program_closed_every_fd() {
    let (report, stdout) = status_after("close-fds-wait");
    assert!(report.threads.iter().any(|t| t.half == Half::Upper));
    assert_eq!(stdout, "ready\ndone\n");
}

#[test]
fn status_still_answers_after_the_program_took_cracs_fd_numbers() {
    // The program may use any fd number below its limit, crac's range included; its writes must
    // reach its own file and crac must keep answering.
    let (report, stdout) = status_after("take-high-fds");
    assert!(report.threads.iter().any(|t| t.half == Half::Lower));
    assert_eq!(stdout, "ready\nwritten through fd top\ndone\n");
}
