//! Tests of the program lookup: `#!` parsing, `PATH`, shell-like errors and exit codes, and
//! ELF files (program or interpreter) whose segments lie past the end of the file.

use super::*;

fn sb(interp: &str, arg: Option<&str>) -> Option<Shebang> {
    Some(Shebang {
        interp: interp.as_bytes().to_vec(),
        arg: arg.map(|a| a.as_bytes().to_vec()),
    })
}

#[test]
fn shebang_lines_parse_like_the_kernel() {
    assert_eq!(parse_shebang(b"\x7fELF"), Ok(None));
    assert_eq!(parse_shebang(b"#!/bin/sh\necho"), Ok(sb("/bin/sh", None)));
    assert_eq!(parse_shebang(b"#! /bin/sh  \n"), Ok(sb("/bin/sh", None)));
    assert_eq!(
        parse_shebang(b"#!/usr/bin/env python3 -u  \n"),
        Ok(sb("/usr/bin/env", Some("python3 -u")))
    );
    assert_eq!(
        parse_shebang(b"#!/bin/awk\t-f\r\n"),
        Ok(sb("/bin/awk", Some("-f\r")))
    );
    assert_eq!(parse_shebang(b"#!/bin/sh\0junk\n"), Ok(sb("/bin/sh", None)));
    assert_eq!(parse_shebang(b"#!   \n"), Err(()));
    assert_eq!(parse_shebang(b"#!\n"), Err(()));
    let long = [b"#!/".as_slice(), &[b'a'; 300]].concat();
    assert_eq!(parse_shebang(&long), Err(()));
    let long_arg = [b"#!/bin/sh ".as_slice(), &[b'x'; 300]].concat();
    let parsed = parse_shebang(&long_arg)
        .expect("accepted")
        .expect("shebang");
    assert_eq!(parsed.arg.map(|a| a.len()), Some(SHEBANG_BUF - 10));
}

#[test]
fn path_lookup_like_a_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let exe = d.join("tool");
    std::fs::write(&exe, b"#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let plain = d.join("data");
    std::fs::write(&plain, b"x").expect("write");
    let path_var = format!("/nonexistent:{}", d.display());
    let found = lookup(OsStr::new("tool"), Some(OsStr::new(&path_var))).expect("found");
    assert_eq!(found, exe);
    let e = lookup(OsStr::new("nope"), Some(OsStr::new(&path_var))).expect_err("missing");
    assert_eq!(e.exit_code(), 127);
    assert_eq!(e.to_string(), "nope: command not found");
    let e = lookup(OsStr::new("data"), Some(OsStr::new(&path_var))).expect_err("not exec");
    assert_eq!(e.exit_code(), 126);
    assert_eq!(
        lookup(OsStr::new("./x"), None).expect("slash"),
        PathBuf::from("./x")
    );
}

fn script(dir: &Path, name: &str, body: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

#[test]
fn resolve_gives_shell_errors_and_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let code = |p: &Path| {
        resolve(p.as_os_str(), &[])
            .map(|_| 0)
            .unwrap_or_else(|e| e.exit_code())
    };
    let missing = d.join("missing");
    let e = resolve(missing.as_os_str(), &[]).expect_err("missing");
    assert_eq!(
        e.to_string(),
        format!("{}: no such file or directory", missing.display())
    );
    assert_eq!(e.exit_code(), 127);
    assert_eq!(code(d), 126, "directory");
    assert_eq!(code(&script(d, "noexec", b"#!/bin/sh\n", 0o644)), 126);
    assert_eq!(code(&script(d, "text", b"echo hi\n", 0o755)), 126);
    // A `#!` with no interpreter is not "neither ELF nor a #! script": say what is wrong.
    let e = resolve(
        script(d, "emptysb", b"#!  \necho hi\n", 0o755).as_os_str(),
        &[],
    )
    .expect_err("empty #!");
    assert!(matches!(e, ResolveError::BadShebangLine { .. }), "{e}");
    assert!(e.to_string().contains("names no interpreter"), "{e}");
    assert_eq!(e.exit_code(), 126);
    assert_eq!(
        code(&script(d, "badsb", b"#!/no/such/interp\n", 0o755)),
        126
    );
    let mut arm = std::fs::read("/bin/true").expect("read /bin/true");
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let e = resolve(script(d, "arm", &arm, 0o755).as_os_str(), &[]).expect_err("arm");
    assert!(
        e.to_string().ends_with("x86-64 needed, found aarch64"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 126);
    let mut noint = std::fs::read("/bin/true").expect("read /bin/true");
    let elf = Elf::parse(&noint).expect("parse");
    let ip = elf.interp().expect("interp");
    noint[usize::try_from(ip.offset).expect("small")] = b'X';
    let e = resolve(script(d, "noint", &noint, 0o755).as_os_str(), &[]).expect_err("interp");
    assert!(matches!(e, ResolveError::BadInterpreter { .. }), "{e}");
    assert_eq!(code(&script(d, "trunc", &noint[..100], 0o755)), 126);
    let a = script(d, "a", format!("#!{}/b\n", d.display()).as_bytes(), 0o755);
    script(d, "b", format!("#!{}/a\n", d.display()).as_bytes(), 0o755);
    assert!(matches!(
        resolve(a.as_os_str(), &[]),
        Err(ResolveError::ShebangLoop { .. })
    ));
}

/// `/bin/true` with its `PT_INTERP` pointing at `interp` (a shorter path than the real one).
fn with_interp(interp: &Path) -> Vec<u8> {
    let mut b = std::fs::read("/bin/true").expect("read /bin/true");
    let elf = Elf::parse(&b).expect("parse");
    let (index, ip) = elf
        .phdrs
        .iter()
        .enumerate()
        .find(|(_, p)| p.kind == elf::PT_INTERP)
        .expect("PT_INTERP");
    let path = interp.as_os_str().as_bytes();
    assert!(
        path.len() < usize::try_from(ip.filesz).expect("small"),
        "path too long"
    );
    let at = usize::try_from(ip.offset).expect("small");
    b[at..at + path.len()].copy_from_slice(path);
    b[at + path.len()] = 0;
    let ph = usize::try_from(elf.header.phoff).expect("small") + index * elf::PHDR_SIZE;
    b[ph + 32..ph + 40].copy_from_slice(&(path.len() as u64 + 1).to_le_bytes());
    b
}

#[test]
fn segments_past_the_end_of_the_file_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let full = std::fs::read("/bin/true").expect("read /bin/true");
    for cut in [4096, full.len() / 2] {
        let p = script(d, &format!("cut{cut}"), &full[..cut], 0o755);
        let e = resolve(p.as_os_str(), &[]).expect_err("truncated program");
        assert!(
            matches!(
                e,
                ResolveError::BadElf {
                    source: ElfError::PastEndOfFile { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("only {cut} bytes")), "{e}");
        assert_eq!(e.exit_code(), 126);
    }
    // The same for the interpreter: a headers-only copy of the real ld.so.
    let ld = std::fs::read("/lib64/ld-linux-x86-64.so.2").expect("read ld.so");
    let short = d.join("ld");
    std::fs::write(&short, &ld[..4096]).expect("write");
    let prog = script(d, "prog", &with_interp(&short), 0o755);
    let e = resolve(prog.as_os_str(), &[]).expect_err("truncated interpreter");
    assert!(matches!(e, ResolveError::BadInterpreter { .. }), "{e}");
    assert!(e.to_string().contains("only 4096 bytes"), "{e}");
    assert_eq!(e.exit_code(), 126);
    // And the whole ld.so at that path is fine.
    std::fs::write(&short, &ld).expect("write");
    let t = resolve(prog.as_os_str(), &[]).expect("whole interpreter");
    assert_eq!(t.interpreter(), Some(short.as_path()));
}

#[test]
fn scripts_get_the_kernels_argv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = script(dir.path(), "s.sh", b"#!/bin/sh -e\nexit 3\n", 0o755);
    let t = resolve(s.as_os_str(), &["x".into(), "y".into()]).expect("resolves");
    let want: Vec<OsString> = vec![
        "/bin/sh".into(),
        "-e".into(),
        s.clone().into(),
        "x".into(),
        "y".into(),
    ];
    assert_eq!(t.argv(), &want[..]);
    assert_eq!(t.comm, OsString::from("s.sh"));
    assert_eq!(t.execfn, s.into_os_string());
    let t = resolve(OsStr::new("true"), &[]).expect("true on PATH");
    assert_eq!(t.argv(), &[OsString::from("true")][..]);
    assert!(t.interp.is_some());
}
