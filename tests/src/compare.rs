//! Assertions shared by the end-to-end tests.

use std::collections::BTreeSet;

use crate::outcome::Outcome;

/// Asserts that a run under crac is indistinguishable from the native run: same stdout, same
/// stderr, same exit status (code or signal), and crac did not panic.
///
/// # Panics
/// On any difference, with both runs in the message.
pub fn assert_same(native: &Outcome, crac: &Outcome) {
    assert_not_panicked(crac);
    let same_status = native.status == crac.status;
    let same_out = native.stdout == crac.stdout;
    let same_err = native.stderr == crac.stderr;
    assert!(
        same_status && same_out && same_err,
        "run under crac differs from the native run (status same: {same_status}, stdout same: \
         {same_out}, stderr same: {same_err})\n=== native ===\n{native}\n=== crac ===\n{crac}\n{}",
        line_diff(&native.stdout_text(), &crac.stdout_text()),
    );
}

/// Asserts that crac failed cleanly: it exited with `code` (not a signal), wrote a message to
/// stderr that contains every string of `mentions`, and did not panic.
///
/// # Panics
/// When any of that does not hold.
pub fn assert_clean_failure(out: &Outcome, code: i32, mentions: &[&str]) {
    if let Some(problem) = clean_failure_problem(out, code, mentions) {
        panic!("{problem}");
    }
}

/// What keeps `out` from being a clean failure with `code` whose message mentions every string
/// of `mentions` (see [`assert_clean_failure`]), or `None` when it is one.
pub fn clean_failure_problem(out: &Outcome, code: i32, mentions: &[&str]) -> Option<String> {
    let stderr = out.stderr_text();
    let problem = if let Some(sig) = out.signal() {
        format!("killed by signal {sig}")
    } else if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        "crac panicked".to_owned()
    } else if out.code() != Some(code) {
        format!("exit code {:?}, expected {code}", out.code())
    } else if stderr.trim().is_empty() {
        "no message on stderr".to_owned()
    } else if let Some(m) = mentions.iter().find(|m| !stderr.contains(**m)) {
        format!("stderr does not mention {m:?}")
    } else {
        return None;
    };
    Some(format!("{problem}\n{out}"))
}

/// Asserts that crac itself did not crash: no death by signal and no Rust panic message.
///
/// # Panics
/// When it crashed.
pub fn assert_no_crash(out: &Outcome) {
    assert!(
        out.signal().is_none(),
        "killed by signal {:?}\n{out}",
        out.signal()
    );
    assert_not_panicked(out);
}

fn assert_not_panicked(out: &Outcome) {
    let stderr = out.stderr_text();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "crac panicked\n{out}"
    );
}

/// The lines only in `a` and only in `b`, for messages about two long outputs.
pub fn line_diff(a: &str, b: &str) -> String {
    let left: BTreeSet<&str> = a.lines().collect();
    let right: BTreeSet<&str> = b.lines().collect();
    let mut s = String::new();
    for l in left.difference(&right) {
        s.push_str(&format!("- native only: {l}\n"));
    }
    for l in right.difference(&left) {
        s.push_str(&format!("+ crac only:   {l}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: i32, stderr: &str) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        Outcome {
            command: "x".into(),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            status: std::process::ExitStatus::from_raw(status),
            pipes: [None; 3],
        }
    }

    #[test]
    fn clean_failures_are_told_from_crashes() {
        assert_eq!(
            clean_failure_problem(&outcome(126 << 8, "crac: x: bad\n"), 126, &["x"]),
            None
        );
        let cases = [
            (outcome(7, "crac: x: bad\n"), "killed by signal 7"),
            (
                outcome(101 << 8, "thread 'main' panicked at x\n"),
                "crac panicked",
            ),
            (
                outcome(127 << 8, "crac: x: bad\n"),
                "exit code Some(127), expected 126",
            ),
            (outcome(126 << 8, " \n"), "no message on stderr"),
            (
                outcome(126 << 8, "crac: bad\n"),
                "stderr does not mention \"x\"",
            ),
        ];
        for (out, want) in cases {
            let got = clean_failure_problem(&out, 126, &["x"]).unwrap();
            assert!(got.starts_with(want), "{got}");
        }
    }

    #[test]
    fn diff_names_lines_on_each_side() {
        let d = line_diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(d, "- native only: b\n+ crac only:   d\n");
    }
}
