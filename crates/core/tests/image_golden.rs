//! Golden images: every released format version's fixture still loads and decodes to the
//! metadata and payloads it was written with. `CRAC_BLESS_FIXTURES=1` writes the fixture of the
//! current version (do it once per version, never to paper over a changed encoding: a model
//! change that breaks an old fixture needs a major version bump, see docs/image-format.md).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::fs::File;
use std::path::PathBuf;

use common::*;
use crac_core::image::*;

fn fixture(version: (u16, u16)) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("image-v{}.{}.crac", version.0, version.1))
}

/// Checks that the image at `path` holds the sample.
fn check_sample(path: &PathBuf) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = ImageReader::open(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The payload references come from the file (offsets depend on compressed sizes); the
    // payloads they lead to are checked below, so nothing here is taken on trust.
    let refs: Vec<PayloadRef> = payload_uses(r.meta()).map(|u| *u.payload).collect();
    assert_eq!(refs.len(), 3, "the sample has three payloads");
    assert_eq!(
        r.meta(),
        &sample_meta(&refs),
        "{} no longer decodes to the sample: the encoding changed (bump the format's major \
         version and add a fixture, see docs/image-format.md)",
        path.display()
    );
    for (p, (bytes, encoding)) in refs.iter().zip(sample_payloads()) {
        assert_eq!(p.encoding, encoding);
        let mut dst = vec![0u8; bytes.len()];
        r.read_payload(p, &mut dst).unwrap();
        assert!(dst == bytes, "payload at {:#x} differs", p.offset);
    }
    r.verify_payloads(&mut |_, _| {}).unwrap();
}

#[test]
fn the_current_version_has_a_golden_image() {
    let path = fixture(FORMAT_VERSION);
    if std::env::var_os("CRAC_BLESS_FIXTURES").is_some() {
        let (bytes, _) = write_image(&sample_payloads(), sample_meta);
        // Through a rename: the other tests read the fixtures meanwhile.
        let tmp = path.with_extension("crac.tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    assert!(
        path.exists(),
        "no golden image for format {}.{}: write it with CRAC_BLESS_FIXTURES=1",
        FORMAT_VERSION.0,
        FORMAT_VERSION.1
    );
    check_sample(&path);
}

#[test]
fn every_golden_image_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "crac") {
            check_sample(&path);
            found += 1;
        }
    }
    assert!(found >= 1);
}

#[test]
fn todays_writer_reproduces_the_golden_metadata() {
    // Same sample, written now: decodes to the same metadata as the fixture of this version.
    let (bytes, meta) = write_image(&sample_payloads(), sample_meta);
    let r = ImageReader::open(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(r.meta(), &meta);
    let golden = ImageReader::open(File::open(fixture(FORMAT_VERSION)).unwrap()).unwrap();
    assert_eq!(golden.header().version, FORMAT_VERSION);
    assert_eq!(golden.meta().process, meta.process);
}
