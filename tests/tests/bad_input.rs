//! What cannot run is refused with the shell's exit codes and a clear message, never a crash:
//! 127 when the program does not exist, 126 when it exists but cannot be run (a directory, no
//! execute permission, not an ELF nor a `#!` script, another architecture, a missing ELF
//! interpreter, corrupt headers).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crac_e2e::compare::{assert_clean_failure, clean_failure_problem};
use crac_e2e::{Cmd, Link, Outcome, assert_no_crash, c_program, tools};

/// Runs `program` under crac in a scratch directory: a launcher that wrongly ran a binary as a
/// shell script would otherwise litter the current directory with files named by its bytes.
fn launch(program: impl AsRef<std::ffi::OsStr>) -> Outcome {
    let scratch = tempfile::tempdir().unwrap();
    Cmd::new(program)
        .arg("an-argument")
        .cwd(scratch.path())
        .under_crac()
        .run()
        .unwrap()
}

/// Writes `bytes` to `dir/name` with mode `mode` and returns the path.
fn file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The bytes of a working PIE test program, to be damaged by the tests.
fn good_elf() -> Vec<u8> {
    std::fs::read(c_program("status", Link::Pie)).unwrap()
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Asserts a clean refusal with `code` whose message names the file.
fn refused(path: &Path, code: i32) {
    let out = launch(path);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert_clean_failure(&out, code, &[name]);
}

#[test]
fn missing_program_is_127() {
    refused(Path::new("/nonexistent/crac-e2e/program"), 127);
    let out = launch("crac-e2e-no-such-command");
    assert_clean_failure(&out, 127, &["crac-e2e-no-such-command"]);
}

#[test]
fn a_directory_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    refused(&sub, 126);
}

#[test]
fn a_file_without_execute_permission_is_126() {
    let dir = tempfile::tempdir().unwrap();
    refused(&file(dir.path(), "not-executable", &good_elf(), 0o644), 126);
    refused(
        &file(
            dir.path(),
            "script-not-executable",
            b"#!/bin/sh\necho hi\n",
            0o644,
        ),
        126,
    );
}

#[test]
fn a_file_neither_elf_nor_script_is_126() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        &file(dir.path(), "text-file", b"echo this is no script\n", 0o755),
        126,
    );
    refused(&file(dir.path(), "empty-file", b"", 0o755), 126);
    refused(&file(dir.path(), "just-magic", b"\x7fELF", 0o755), 126);
}

#[test]
fn a_foreign_architecture_elf_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let mut aarch64 = good_elf();
    put_u16(&mut aarch64, 18, 183); // e_machine = EM_AARCH64
    refused(&file(dir.path(), "aarch64-program", &aarch64, 0o755), 126);
    let mut elf32 = good_elf();
    elf32[4] = 1; // EI_CLASS = ELFCLASS32
    refused(&file(dir.path(), "elf32-program", &elf32, 0o755), 126);
    let mut big_endian = good_elf();
    big_endian[5] = 2; // EI_DATA = ELFDATA2MSB
    refused(
        &file(dir.path(), "big-endian-program", &big_endian, 0o755),
        126,
    );
}

#[test]
fn an_elf_whose_interpreter_is_missing_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let mut elf = good_elf();
    let interp: &[u8] = b"/lib64/ld-linux-x86-64.so.2";
    let at = elf
        .windows(interp.len())
        .position(|w| w == interp)
        .expect("PIE has PT_INTERP");
    let missing: &[u8] = b"/nonexistent/ld-crac-e2e.so";
    assert_eq!(missing.len(), interp.len());
    elf[at..at + interp.len()].copy_from_slice(missing);
    let path = file(dir.path(), "no-interpreter", &elf, 0o755);
    let out = launch(&path);
    assert_clean_failure(&out, 126, &["no-interpreter"]);
}

/// `elf` with its PT_INTERP string replaced by `interp` (at most as long, NUL-padded).
fn with_interpreter(elf: &[u8], interp: &str) -> Vec<u8> {
    let old: &[u8] = b"/lib64/ld-linux-x86-64.so.2";
    let at = elf
        .windows(old.len())
        .position(|w| w == old)
        .expect("PIE has PT_INTERP");
    assert!(interp.len() <= old.len());
    let mut out = elf.to_vec();
    out[at..at + old.len()].fill(0);
    out[at..at + interp.len()].copy_from_slice(interp.as_bytes());
    out
}

#[test]
fn an_elf_whose_interpreter_is_no_interpreter_is_126() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_elf();
    let problems: Vec<String> = [
        ("interp-text-file", "/etc/passwd"),
        ("interp-directory", "/"),
        ("interp-empty", ""),
        ("interp-relative", "no-such-relative-ld.so"),
    ]
    .into_iter()
    .filter_map(|(name, interp)| {
        let out = launch(file(
            dir.path(),
            name,
            &with_interpreter(&good, interp),
            0o755,
        ));
        clean_failure_problem(&out, 126, &[name]).map(|p| format!("[{name}] {p}"))
    })
    .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn corrupt_elf_headers_are_126() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_elf();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![("truncated-header", good[..40].to_vec())];
    let mut phoff = good.clone();
    put_u64(&mut phoff, 32, 0xffff_ffff_ffff_0000); // e_phoff far past the end
    cases.push(("phoff-past-end", phoff));
    let mut phnum = good.clone();
    put_u16(&mut phnum, 56, 0xffff); // e_phnum
    cases.push(("phnum-huge", phnum));
    let mut phentsize = good.clone();
    put_u16(&mut phentsize, 54, 1); // e_phentsize
    cases.push(("phentsize-wrong", phentsize));
    let mut etype = good.clone();
    put_u16(&mut etype, 16, 1); // e_type = ET_REL
    cases.push(("relocatable-object", etype));
    cases.push(("headers-only", good[..good.len().min(4096)].to_vec()));
    cases.push(("cut-in-half", good[..good.len() / 2].to_vec()));
    // Every case runs, then all problems are reported together.
    let problems: Vec<String> = cases
        .into_iter()
        .filter_map(|(name, bytes)| {
            let out = launch(file(dir.path(), name, &bytes, 0o755));
            clean_failure_problem(&out, 126, &[name]).map(|p| format!("[{name}] {p}"))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn scripts_that_cannot_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        &file(
            dir.path(),
            "bad-interpreter",
            b"#!/nonexistent/interpreter\n",
            0o755,
        ),
        126,
    );
    // A script that names itself as its interpreter: the kernel gives up with ELOOP.
    let looping = dir.path().join("looping-script");
    let text = format!("#!{}\n", looping.display());
    refused(
        &file(dir.path(), "looping-script", text.as_bytes(), 0o755),
        126,
    );
    refused(&file(dir.path(), "bare-shebang", b"#!\n", 0o755), 126);
}

#[test]
fn no_program_at_all_is_a_usage_error() {
    for args in [&[][..], &["--"]] {
        let out = Cmd::new(&tools().launch).args(args).run().unwrap();
        assert_no_crash(&out);
        assert_ne!(out.code(), Some(0), "{out}");
        assert!(
            !out.stderr_text().trim().is_empty(),
            "no usage message\n{out}"
        );
    }
}
