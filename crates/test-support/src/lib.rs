//! Helpers shared by crac's tests: running a test alone in a fresh process, finding nvcc,
//! and a stable hash for build caches.
//!
//! Much of crac changes process-wide state — the fd table, signal dispositions and masks,
//! personality, mappings — so such a test runs alone in a fresh copy of its test binary
//! ([`in_fresh_process`]), never beside the harness's other threads.

#![forbid(unsafe_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether `setarch -R` (util-linux) can run a program here.
fn setarch_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        Command::new("setarch")
            .args(["-R", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The environment variable that marks the child, holding the test's name.
const CHILD: &str = "CRAC_TEST_CHILD";

/// How long a child may run before it counts as hung and is killed.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs test `name` (its full path, as `cargo test -- --exact` takes it) alone in a fresh
/// process. Returns `true` in that child, where the caller then runs the scenario; in the
/// parent it waits for the child (killing it after two minutes) and returns `false` if it
/// passed.
///
/// # Panics
/// In the parent, when the child fails, hangs or cannot be started, with its output.
pub fn in_fresh_process(name: &str) -> bool {
    fresh_process(name, false)
}

/// Like [`in_fresh_process`], but the child runs without address randomization (`setarch
/// -R`), as crac's own processes do: a test that reserves the fixed device-address window needs
/// it, since with randomization a library can land there (about one run in fifteen).
///
/// # Panics
/// As [`in_fresh_process`].
pub fn in_fresh_process_without_aslr(name: &str) -> bool {
    fresh_process(name, true)
}

fn fresh_process(name: &str, without_aslr: bool) -> bool {
    if std::env::var_os(CHILD).is_some_and(|v| v == name) {
        return true;
    }
    // stdout and stderr are pipes (what a child sees under the harness), each drained by a
    // thread of its own so a chatty child never blocks while the parent polls it.
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = if without_aslr && setarch_works() {
        let mut c = Command::new("setarch");
        c.arg("-R").arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = cmd
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the test binary again");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Some(s) if s.success() && text.contains("1 passed") => false,
        Some(s) => panic!("{name} failed in its child ({s}):\n{text}"),
        None => panic!("{name} hung in its child and was killed after {LIMIT:?}:\n{text}"),
    }
}

/// The nvcc the tests compile CUDA with: `$CRAC_NVCC`, else the path `scripts/setup.sh`
/// recorded in `$CRAC_TOOLS/nvcc-path` (default `~/.cache/crac-tools/nvcc-path`).
///
/// # Panics
/// When neither names an executable file: CUDA tests must never skip silently.
pub fn nvcc() -> PathBuf {
    static NVCC: OnceLock<PathBuf> = OnceLock::new();
    NVCC.get_or_init(|| {
        let from_env = std::env::var_os("CRAC_NVCC")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let recorded = || {
            let tools = std::env::var_os("CRAC_TOOLS")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/crac-tools"))
                })?;
            let text = std::fs::read_to_string(tools.join("nvcc-path")).ok()?;
            Some(PathBuf::from(text.trim()))
        };
        match from_env.or_else(recorded) {
            Some(p) if p.is_file() => p,
            Some(p) => panic!(
                "nvcc not found: run scripts/setup.sh ({} does not exist)",
                p.display()
            ),
            None => panic!("nvcc not found: run scripts/setup.sh (or set CRAC_NVCC)"),
        }
    })
    .clone()
}

/// FNV-1a, 64-bit, over several parts with a separator between them (so `("ab", "c")` and
/// `("a", "bc")` differ): a cache key that, unlike `DefaultHasher`, is stable across Rust
/// versions.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_runs_the_body_and_the_parent_sees_it_pass() {
        if !in_fresh_process("tests::the_child_runs_the_body_and_the_parent_sees_it_pass") {
            return;
        }
        assert_eq!(
            std::env::var(CHILD).unwrap(),
            "tests::the_child_runs_the_body_and_the_parent_sees_it_pass"
        );
    }

    #[test]
    fn a_failing_child_fails_the_parent() {
        if std::env::var_os(CHILD).is_some() {
            // The child of this test: fail on purpose.
            panic!("deliberate failure in the child");
        }
        let result = std::panic::catch_unwind(|| {
            in_fresh_process("tests::a_failing_child_fails_the_parent")
        });
        let message = *result.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("deliberate failure"), "{message}");
    }
}
