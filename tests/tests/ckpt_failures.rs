//! Checkpoints and restarts that cannot succeed fail cleanly: a full disk (or a file-size
//! limit) while writing, the process killed in the middle of a write, damaged images, images of
//! another crac build, files that are not images, and garbage on the control socket. Each is a
//! clear message and exit status, never a crash, and never damages an earlier image or stops
//! the program.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crac_core::image::ImageReader;
use crac_e2e::ckpt::{
    assert_same_after, checkpoint, checkpoint_ok, images, kill9, restart, wait_agent,
};
use crac_e2e::run::Input;
use crac_e2e::{Cmd, Link, Outcome, assert_clean_failure, c_program, crac_bin};

/// `crac inspect [--verify] IMAGE`.
fn inspect(image: &Path, verify: bool) -> Outcome {
    let mut cmd = Cmd::new(crac_bin()).arg("inspect");
    if verify {
        cmd = cmd.arg("--verify");
    }
    cmd.arg(image).run().unwrap()
}

/// Asserts that every image in `dir` verifies and no temporary file is left.
fn all_images_verify(dir: &Path) {
    for image in images(dir).unwrap() {
        let out = inspect(&image, true);
        assert_eq!(out.code(), Some(0), "{out}");
    }
    let tmp: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

/// A small tmpfs of `mib` MiB at a new directory, unmounted when dropped; `None` where this
/// user cannot mount.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(mib: u32) -> Option<Self> {
        if std::env::var_os("CRAC_E2E_NO_MOUNT").is_some() {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_checkpoint_and_leaves_the_program_and_the_old_image() {
    // A real ENOSPC on a 40 MiB tmpfs where mounting is allowed; elsewhere the process's
    // RLIMIT_FSIZE is lowered (prlimit) so the image writer gets EFBIG instead: the same path
    // through the writer (a write fails half-way), a different errno. CRAC_E2E_NO_MOUNT=1
    // forces the second way.
    let cmd = Cmd::new(c_program("ck_grow", Link::Pie)).arg("48");
    let native = cmd
        .clone()
        .input(Input::Bytes(b"\n".to_vec()))
        .run()
        .unwrap();
    let fs = SmallFs::mount(40);
    let scratch = tempfile::tempdir().unwrap();
    let dir = fs.as_ref().map_or(scratch.path(), |f| f.dir.path());
    let mut child = cmd.under_crac().spawn().unwrap();
    child.wait_for_line("phase 0").unwrap();
    wait_agent(child.pid());
    let first = checkpoint_ok(child.pid(), dir);
    child.write_stdin(b"\n").unwrap();
    child.wait_for_line("phase 1").unwrap();
    if fs.is_none() {
        let limited = Cmd::new("prlimit")
            .args(["--pid", &child.pid().to_string(), "--fsize=16777216:"])
            .run()
            .unwrap();
        assert_eq!(limited.code(), Some(0), "{limited}");
    }
    let failed = checkpoint(child.pid(), dir, &[]).unwrap();
    let why = if fs.is_some() {
        "No space left on device"
    } else {
        "File too large"
    };
    assert_clean_failure(&failed, 1, &["checkpoint of process", why]);
    assert_eq!(images(dir).unwrap(), std::slice::from_ref(&first));
    all_images_verify(dir);
    // The program goes on and ends as it would have.
    let out = child.finish().unwrap();
    assert_same_after(&native, &out, 0);
}

#[test]
fn killing_the_process_in_the_middle_of_a_write_leaves_the_old_image() {
    let cmd = Cmd::new(c_program("ck_grow", Link::Pie)).arg("256");
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd.under_crac().spawn().unwrap();
    child.wait_for_line("phase 0").unwrap();
    wait_agent(child.pid());
    let first = checkpoint_ok(child.pid(), dir.path());
    child.write_stdin(b"\n").unwrap();
    child.wait_for_line("phase 1").unwrap();
    let pid = child.pid();
    let ckpt = std::thread::spawn({
        let dir = dir.path().to_owned();
        move || checkpoint(pid, &dir, &[]).unwrap()
    });
    std::thread::sleep(Duration::from_millis(150));
    kill9(child).unwrap();
    let out = ckpt.join().unwrap();
    // Either the write was cut (an error naming the process) or it had just finished.
    if out.code() != Some(0) {
        assert_clean_failure(&out, 1, &[&pid.to_string()]);
    }
    // The temporary file of a killed write stays behind (nobody is left to remove it) but is
    // never taken for an image; every *.crac verifies, the first one among them.
    let left = images(dir.path()).unwrap();
    assert!(left.contains(&first), "{left:?}");
    for image in left {
        let v = inspect(&image, true);
        assert_eq!(v.code(), Some(0), "{v}");
    }
    let r = restart(dir.path()).run().unwrap();
    crac_e2e::assert_no_crash(&r);
}

/// A good image of the counter program, killed after its checkpoint, with the native output.
fn good_image(dir: &Path) -> (PathBuf, Outcome) {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("200");
    let native = cmd.run().unwrap();
    let child = cmd.under_crac().spawn().unwrap();
    wait_agent(child.pid());
    let image = checkpoint_ok(child.pid(), dir);
    kill9(child).unwrap();
    (image, native)
}

/// A copy of `image` at `to` with `f` applied to its bytes.
fn damaged(image: &Path, to: &Path, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(image).unwrap();
    f(&mut bytes);
    std::fs::write(to, bytes).unwrap();
    to.to_owned()
}

#[test]
fn damaged_images_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (image, native) = good_image(dir.path());
    let bad = tempfile::tempdir().unwrap();
    let meta = ImageReader::open_path(&image).unwrap();
    let first_payload = meta
        .meta()
        .regions
        .iter()
        .flat_map(|r| &r.runs)
        .next()
        .unwrap()
        .payload
        .offset;
    let section = meta.header().sections[0].offset;
    drop(meta);

    // A flipped byte in memory contents: --verify and an eager restart find it.
    let flipped = damaged(&image, &bad.path().join("payload.crac"), |b| {
        b[usize::try_from(first_payload).unwrap() + 100] ^= 0x40;
    });
    assert_clean_failure(&inspect(&flipped, true), 1, &["damaged"]);
    let r = restart(&flipped).arg("--eager").run().unwrap();
    assert_clean_failure(&r, 1, &["checksum"]);

    // A flipped byte in the metadata: even opening it fails.
    let flipped = damaged(&image, &bad.path().join("meta.crac"), |b| {
        b[usize::try_from(section).unwrap() + 3] ^= 0x01;
    });
    assert_clean_failure(&inspect(&flipped, false), 1, &["meta.crac"]);
    assert_clean_failure(&restart(&flipped).run().unwrap(), 1, &["meta.crac"]);

    // Truncated.
    let cut = damaged(&image, &bad.path().join("cut.crac"), |b| {
        let half = b.len() / 2;
        b.truncate(half);
    });
    assert_clean_failure(&restart(&cut).run().unwrap(), 1, &["cut.crac"]);
    assert_clean_failure(&inspect(&cut, false), 1, &["cut.crac"]);

    // Not an image at all, an empty file, an empty directory, a missing path.
    let text = bad.path().join("notes.crac");
    std::fs::write(&text, "just some text\n".repeat(400)).unwrap();
    assert_clean_failure(&restart(&text).run().unwrap(), 1, &["not a crac image"]);
    let empty = bad.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_clean_failure(&restart(&empty).run().unwrap(), 1, &["empty"]);
    let none = tempfile::tempdir().unwrap();
    assert_clean_failure(
        &restart(none.path()).run().unwrap(),
        1,
        &["holds no checkpoint image"],
    );
    assert_clean_failure(
        &restart(&bad.path().join("missing.crac")).run().unwrap(),
        1,
        &["missing.crac"],
    );
    // A directory of only bad images names each and why. (Choosing checks headers and
    // metadata, not every payload: an image whose memory alone is damaged would be chosen.)
    std::fs::remove_file(bad.path().join("payload.crac")).unwrap();
    let r = restart(bad.path()).run().unwrap();
    assert_clean_failure(&r, 1, &["no image in", "meta.crac", "cut.crac"]);

    // The original is still good.
    let r = restart(&image).run().unwrap();
    assert_same_after(&native, &r, 0);
}

#[test]
fn an_image_of_another_crac_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (image, _native) = good_image(dir.path());
    // Rewrite the image as another build would have written it: same contents, other build-id.
    let other = dir.path().join("other-build.crac");
    {
        let mut reader = ImageReader::open_path(&image).unwrap();
        let mut meta = reader.meta().clone();
        meta.header.build_id = "0123456789abcdef0123456789abcdef01234567".into();
        let out = std::fs::File::create(&other).unwrap();
        let mut writer = crac_core::image::ImageWriter::new(out).unwrap();
        for region in &mut meta.regions {
            for run in &mut region.runs {
                let mut buf = vec![0u8; usize::try_from(run.len).unwrap()];
                reader.read_payload(&run.payload, &mut buf).unwrap();
                run.payload = writer.payload(&buf).unwrap();
            }
        }
        let mut file = writer.finish(&meta).unwrap();
        file.flush().unwrap();
    }
    let v = inspect(&other, true);
    assert_eq!(v.code(), Some(0), "the rewritten image is well formed: {v}");
    let r = restart(&other).run().unwrap();
    assert_clean_failure(&r, 1, &["0123456789abcdef0123456789abcdef01234567"]);
    // In a directory, it is passed over for the good one.
    std::fs::remove_file(&image).unwrap();
    let r = restart(dir.path()).run().unwrap();
    assert_clean_failure(&r, 1, &["another crac build"]);
}

/// The control socket of `pid`.
fn socket_of(pid: u32) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut dirs = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| Path::new(x).is_absolute()) {
        dirs.push(PathBuf::from(x).join("crac"));
    }
    dirs.push(PathBuf::from(format!("/tmp/crac-{uid}")));
    dirs.into_iter()
        .map(|d| d.join(format!("{pid}.sock")))
        .find(|p| p.exists())
        .unwrap()
}

#[test]
fn garbage_on_the_control_socket_gets_an_error_and_the_program_goes_on() {
    let cmd = Cmd::new(c_program("ck_counter", Link::Pie)).arg("200");
    let native = cmd.run().unwrap();
    let child = cmd.under_crac().spawn().unwrap();
    wait_agent(child.pid());
    let path = socket_of(child.pid());
    for garbage in [
        &b"\x10\x00\x00\x00not json at all!"[..],
        b"\x40\x00\x00\x00{\"version\":2,\"body\":{\"type\":\"checkpoint\",\"dir\":17}}   ",
        b"\xff\xff\xff\xff",
        b"\x05\x00",
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.write_all(garbage).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("\"type\":\"error\""), "{text}");
    }
    let out = child.finish().unwrap();
    assert_same_after(&native, &out, 0);
}
