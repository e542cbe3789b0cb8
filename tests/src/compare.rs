//! Assertions shared by the end-to-end tests.

use std::collections::BTreeSet;

use crate::run::Outcome;

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
    assert_no_crash(out);
    assert_eq!(out.code(), Some(code), "wrong exit code\n{out}");
    let stderr = out.stderr_text();
    assert!(!stderr.trim().is_empty(), "no message on stderr\n{out}");
    for m in mentions {
        assert!(stderr.contains(m), "stderr does not mention {m:?}\n{out}");
    }
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

    #[test]
    fn diff_names_lines_on_each_side() {
        let d = line_diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(d, "- native only: b\n+ crac only:   d\n");
    }
}
