//! Every way an image can be damaged ends in its own error, never a panic or a wrong read.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::io::{Cursor, Write};

use common::*;
use crac_core::image::layout::{MAGIC_AARCH64, MAGIC_X86_64, SECTION_CAP};
use crac_core::image::*;

fn sample() -> (Vec<u8>, ImageMeta) {
    write_image(&sample_payloads(), sample_meta)
}

fn open(bytes: Vec<u8>) -> Result<ImageReader<Cursor<Vec<u8>>>, ImageError> {
    ImageReader::open(Cursor::new(bytes))
}

fn header_of(bytes: &[u8]) -> FixedHeader {
    // Any length: the tests below take images apart and put them together again.
    FixedHeader::decode(&bytes[..4096], u64::MAX).unwrap()
}

fn entry(h: &FixedHeader, kind: SectionKind) -> SectionEntry {
    *h.sections.iter().find(|s| s.id == kind.id()).unwrap()
}

/// Replaces a section's bytes, laying the metadata sections out again and fixing every
/// checksum, so that only the contents are wrong.
fn replace_section(bytes: &mut Vec<u8>, kind: SectionKind, content: &[u8]) {
    let old = header_of(bytes);
    let bodies = old
        .sections
        .iter()
        .map(|s| {
            if s.id == kind.id() {
                content.to_vec()
            } else {
                bytes[s.offset as usize..(s.offset + s.len) as usize].to_vec()
            }
        })
        .collect();
    *bytes = relay_sections(bytes, &old, bodies);
}

#[test]
fn a_zeroed_header_is_bad_magic() {
    // What a crash before the header write leaves.
    let (mut bytes, _) = sample();
    bytes[..4096].fill(0);
    assert!(matches!(
        open(bytes),
        Err(ImageError::BadMagic { found: 0 })
    ));
}

#[test]
fn another_file_is_bad_magic() {
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(10_000, 0);
    let err = open(elf).unwrap_err();
    assert!(matches!(err, ImageError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("not a crac image"), "{err}");
}

#[test]
fn another_architectures_image_says_so() {
    let (mut bytes, _) = sample();
    let other = if cfg!(target_arch = "aarch64") {
        MAGIC_X86_64
    } else {
        MAGIC_AARCH64
    };
    bytes[..8].copy_from_slice(&other.to_le_bytes());
    let err = open(bytes).unwrap_err();
    assert!(matches!(err, ImageError::ForeignArch { .. }), "{err}");
}

#[test]
fn a_newer_major_version_is_refused_and_a_newer_minor_is_read() {
    let (bytes, meta) = sample();
    let mut newer = bytes.clone();
    newer[8..10].copy_from_slice(&(FORMAT_VERSION.0 + 1).to_le_bytes());
    let err = open(newer).unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedVersion { major, .. } if major == FORMAT_VERSION.0 + 1),
        "{err}"
    );
    assert!(
        err.to_string().contains("use the crac that wrote it"),
        "{err}"
    );

    // A newer minor with an extra section this version does not know: read, section skipped.
    let mut minor = bytes;
    let mut h = header_of(&minor);
    h.version.1 += 1;
    let extra = b"a section from the future";
    h.sections.push(SectionEntry {
        id: 99,
        flags: 0,
        offset: minor.len() as u64,
        len: extra.len() as u64,
        checksum: 0,
    });
    minor.extend_from_slice(extra);
    h.file_len = minor.len() as u64;
    put_header(&mut minor, &h);
    assert_eq!(open(minor).unwrap().meta(), &meta);
}

#[test]
fn a_flipped_header_byte_is_a_header_checksum_mismatch() {
    let (bytes, _) = sample();
    let h = header_of(&bytes);
    // Past the version (checked first) through the end of the section table.
    for at in 12..64 + 32 * h.sections.len() {
        if (48..56).contains(&at) {
            continue; // reserved: covered by the checksum too, checked below
        }
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let err = open(b).unwrap_err();
        let ok = match err {
            ImageError::ChecksumMismatch { section: "header" } => true,
            // The table size is capped before the checksum that covers the table is computed.
            ImageError::BadHeader { .. } => (44..48).contains(&at),
            _ => false,
        };
        assert!(ok, "byte {at}: {err}");
    }
    let mut b = bytes;
    b[50] = 1;
    assert!(matches!(
        open(b),
        Err(ImageError::ChecksumMismatch { section: "header" })
    ));
}

#[test]
fn a_flipped_byte_in_each_section_names_the_section() {
    let (bytes, _) = sample();
    let h = header_of(&bytes);
    for kind in SectionKind::ALL {
        let e = entry(&h, kind);
        for at in [e.offset, e.offset + e.len / 2, e.offset + e.len - 1] {
            let mut b = bytes.clone();
            b[at as usize] ^= 0x80;
            let err = open(b).unwrap_err();
            assert!(
                matches!(err, ImageError::ChecksumMismatch { section } if section == kind.name()),
                "{} byte {at}: {err}",
                kind.name()
            );
        }
    }
}

#[test]
fn a_flipped_payload_byte_fails_its_read_and_the_verify() {
    let (bytes, meta) = sample();
    assert!(open(bytes.clone()).is_ok());
    for u in payload_uses(&meta) {
        let p = *u.payload;
        for at in [
            p.offset,
            p.offset + p.stored_len / 2,
            p.offset + p.stored_len - 1,
        ] {
            let mut b = bytes.clone();
            b[at as usize] ^= 0x04;
            // The metadata is intact: the image opens; the payload never reads back wrong.
            // A raw payload always fails; a zstd one may still decode right (a flipped bit in
            // the frame's own content checksum, which the decoder does not need).
            let mut r = open(b).unwrap();
            let mut dst = vec![0u8; u.len as usize];
            let bad = |e: &ImageError| {
                matches!(
                    e,
                    ImageError::PayloadChecksum { .. } | ImageError::PayloadDecompress { .. }
                )
            };
            match r.read_payload(&p, &mut dst) {
                Err(e) => assert!(bad(&e), "{} byte {at}: {e}", u.owner),
                Ok(()) => {
                    assert_eq!(p.encoding, Encoding::Zstd, "{} byte {at}", u.owner);
                    let mut good = vec![0u8; u.len as usize];
                    open(bytes.clone())
                        .unwrap()
                        .read_payload(&p, &mut good)
                        .unwrap();
                    assert!(dst == good, "{} byte {at} read back wrong", u.owner);
                    continue;
                }
            }
            let err = r.verify_payloads(&mut |_, _| {}).unwrap_err();
            assert!(bad(&err), "{err}");
        }
    }
    // A raw payload's corruption is always a checksum mismatch at its offset.
    let raw = meta.regions[0].runs[0].payload;
    let mut b = bytes;
    b[raw.offset as usize + 100] ^= 1;
    let mut dst = vec![0u8; raw.stored_len as usize];
    let err = open(b).unwrap().read_payload(&raw, &mut dst).unwrap_err();
    assert!(matches!(err, ImageError::PayloadChecksum { offset } if offset == raw.offset));
}

#[test]
fn every_truncation_is_truncated() {
    let (bytes, _) = sample();
    let len = bytes.len();
    let cuts = (0..len)
        .step_by(97)
        .chain([1, 7, 8, 4095, 4096, 4097, len - 1]);
    for cut in cuts {
        let err = open(bytes[..cut].to_vec()).unwrap_err();
        assert!(
            matches!(err, ImageError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_section_over_the_cap_is_refused_before_reading_it() {
    // A sparse file: the header claims a process section of SECTION_CAP + 1 bytes.
    let (bytes, _) = sample();
    let mut h = header_of(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.crac");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&bytes).unwrap();
    let i = h
        .sections
        .iter()
        .position(|s| s.id == SectionKind::Process.id())
        .unwrap();
    h.sections[i].offset = bytes.len() as u64;
    h.sections[i].len = SECTION_CAP + 1;
    h.file_len = bytes.len() as u64 + SECTION_CAP + 1;
    f.set_len(h.file_len).unwrap();
    let mut head = bytes[..4096].to_vec();
    put_header(&mut head, &h);
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&head).unwrap();
    drop(f);
    let err = ImageReader::open(std::fs::File::open(&path).unwrap()).unwrap_err();
    assert!(
        matches!(err, ImageError::TooLarge { section: "process", len, .. } if len == SECTION_CAP + 1),
        "{err}"
    );
}

#[test]
fn garbage_with_a_good_checksum_is_a_decode_error() {
    let (mut bytes, _) = sample();
    let h = header_of(&bytes);
    let e = entry(&h, SectionKind::Threads);
    replace_section(
        &mut bytes,
        SectionKind::Threads,
        &vec![0xff; e.len as usize],
    );
    let err = open(bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Decode {
                section: "threads",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn extra_bytes_after_a_section_are_refused() {
    let (mut bytes, _) = sample();
    let h = header_of(&bytes);
    let e = entry(&h, SectionKind::Cuda);
    let mut content = bytes[e.offset as usize..(e.offset + e.len) as usize].to_vec();
    content.push(0);
    replace_section(&mut bytes, SectionKind::Cuda, &content);
    let err = open(bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TrailingBytes {
                section: "cuda",
                extra: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_and_duplicate_sections_are_refused() {
    let (bytes, _) = sample();
    let mut missing = bytes.clone();
    let mut h = header_of(&missing);
    h.sections.retain(|s| s.id != SectionKind::Fds.id());
    put_header(&mut missing, &h);
    let err = open(missing).unwrap_err();
    assert!(
        matches!(err, ImageError::MissingSection { section: "fds" }),
        "{err}"
    );

    let mut dup = bytes;
    let mut h = header_of(&dup);
    let signals = entry(&h, SectionKind::Signals);
    h.sections.push(signals);
    put_header(&mut dup, &h);
    let err = open(dup).unwrap_err();
    assert!(
        matches!(err, ImageError::DuplicateSection { section: "signals" }),
        "{err}"
    );
}

#[test]
fn inconsistent_header_fields_are_bad_header() {
    let (bytes, _) = sample();
    let cases: [fn(&mut FixedHeader); 4] = [
        |h| h.payload_end += 1,
        |h| h.payload_start = 0,
        |h| h.sections[0].offset = 4096,
        |h| h.sections[0].len = u64::MAX,
    ];
    for (i, change) in cases.iter().enumerate() {
        let mut b = bytes.clone();
        let mut h = header_of(&b);
        change(&mut h);
        put_header(&mut b, &h);
        let err = open(b).unwrap_err();
        assert!(
            matches!(err, ImageError::BadHeader { .. }),
            "case {i}: {err}"
        );
    }
    // More sections than the table may hold.
    let mut b = bytes;
    b[44..48].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(open(b), Err(ImageError::BadHeader { .. })));
}

fn regions_with(meta: &ImageMeta, change: impl FnOnce(&mut PayloadRef)) -> Vec<u8> {
    let mut regions = meta.regions.clone();
    change(&mut regions[0].runs[0].payload);
    bincode::serde::encode_to_vec(&regions, bincode::config::standard()).unwrap()
}

#[test]
fn a_payload_reference_outside_the_payload_area_is_refused_on_open() {
    let (bytes, meta) = sample();
    let changes: [fn(&mut PayloadRef); 4] = [
        |p| p.offset += 1,             // not page-aligned
        |p| p.offset = 0,              // the header page
        |p| p.stored_len += 4096 * 64, // past the payload area
        |p| p.stored_len -= 1,         // raw, shorter than its run
    ];
    // Rebuilding with the same references gives a good image.
    let mut same = bytes.clone();
    replace_section(
        &mut same,
        SectionKind::Regions,
        &regions_with(&meta, |_| {}),
    );
    assert_eq!(open(same).unwrap().meta(), &meta);
    for (i, change) in changes.into_iter().enumerate() {
        let mut b = bytes.clone();
        replace_section(&mut b, SectionKind::Regions, &regions_with(&meta, change));
        let err = open(b).unwrap_err();
        assert!(
            matches!(err, ImageError::BadPayloadRef { .. }),
            "case {i}: {err}"
        );
    }
}

#[test]
fn read_payload_checks_the_reference_and_the_destination() {
    let (bytes, meta) = sample();
    let mut r = open(bytes).unwrap();
    let p = meta.regions[0].runs[0].payload;
    let mut short = vec![0u8; p.stored_len as usize - 1];
    let err = r.read_payload(&p, &mut short).unwrap_err();
    assert!(matches!(err, ImageError::PayloadLength { .. }), "{err}");
    let z = meta.regions[1].runs[0].payload;
    let mut long = vec![0u8; meta.regions[1].runs[0].len as usize + 1];
    let err = r.read_payload(&z, &mut long).unwrap_err();
    assert!(matches!(err, ImageError::PayloadLength { .. }), "{err}");
    let outside = PayloadRef {
        offset: 1 << 40,
        ..p
    };
    let mut dst = vec![0u8; p.stored_len as usize];
    let err = r.read_payload(&outside, &mut dst).unwrap_err();
    assert!(
        matches!(err, ImageError::PayloadOutOfBounds { .. }),
        "{err}"
    );
}

#[test]
fn a_file_that_shrinks_after_open_ended_early() {
    let (bytes, meta) = sample();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.crac");
    std::fs::write(&path, &bytes).unwrap();
    let mut r = ImageReader::open(std::fs::File::open(&path).unwrap()).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let p = meta.regions[0].runs[0].payload;
    let mut dst = vec![0u8; p.stored_len as usize];
    let err = r.read_payload(&p, &mut dst).unwrap_err();
    assert!(matches!(err, ImageError::EndedEarly { .. }), "{err}");
}

/// A file that fails every write after `budget` bytes.
#[derive(Debug)]
struct FailingFile {
    inner: Cursor<Vec<u8>>,
    budget: usize,
}

impl Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.budget {
            return Err(std::io::Error::other("disk full"));
        }
        self.budget -= buf.len();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for FailingFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn after_a_failed_write_the_writer_refuses_to_go_on() {
    let mut w = ImageWriter::new(FailingFile {
        inner: Cursor::new(Vec::new()),
        budget: 10_000,
    })
    .unwrap();
    let err = w.payload(&[1u8; 20_000]).unwrap_err();
    assert!(matches!(err, ImageError::WriteImage { .. }), "{err}");
    assert!(err.to_string().contains("check free space"), "{err}");
    let err = w.payload(&[1u8; 10]).unwrap_err();
    assert!(matches!(err, ImageError::WriterFailed), "{err}");
    let err = w.finish(&ImageMeta::default()).unwrap_err();
    assert!(matches!(err, ImageError::WriterFailed), "{err}");
}

#[test]
fn the_writer_refuses_references_it_did_not_write() {
    let mut w = ImageWriter::new(Cursor::new(Vec::new())).unwrap();
    let p = w.payload(&[5u8; 4096]).unwrap();
    let mut meta = sample_meta(&[p, p, p]);
    meta.regions[1].runs[0].len = 4096;
    meta.cuda.as_mut().unwrap().buffers[0].len = 4096;
    // A checksum that is not the payload's.
    let mut forged = meta.clone();
    forged.regions[0].runs[0].len = 4096;
    forged.regions[0].runs[0].payload.checksum ^= 1;
    let err = w.finish(&forged).unwrap_err();
    assert!(matches!(err, ImageError::BadPayloadRef { .. }), "{err}");

    // A raw run whose length is not its payload's.
    let mut w = ImageWriter::new(Cursor::new(Vec::new())).unwrap();
    let p = w.payload(&[5u8; 4096]).unwrap();
    let meta = sample_meta(&[p, p, p]);
    let err = w.finish(&meta).unwrap_err();
    assert!(
        matches!(err, ImageError::BadPayloadRef { why, .. } if why.contains("whole length")),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.crac");
    let err = ImageReader::open_path(&path).unwrap_err();
    assert!(matches!(err, ImageError::OpenImage { .. }), "{err}");
    assert!(err.to_string().contains("none.crac"), "{err}");
}
