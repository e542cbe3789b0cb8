//! Writing then reading images gives back exactly what was written.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::io::Cursor;

use common::*;
use crac_core::image::*;
use proptest::prelude::*;

/// Payload specs and a metadata strategy built on the references writing them produces
/// (writing is deterministic, so `write_image` reproduces them).
fn image_case() -> impl Strategy<Value = (Vec<PayloadSpec>, ImageMeta)> {
    payload_specs(6, 3 * 4096 + 100).prop_flat_map(|specs| {
        let (_, refs) = {
            let mut got = Vec::new();
            write_image(&specs, |r| {
                got = r.to_vec();
                ImageMeta::default()
            });
            ((), got)
        };
        let lens = specs.iter().map(|(b, _)| b.len() as u64).collect();
        let specs2 = specs.clone();
        meta_for(refs, lens).prop_map(move |meta| (specs2.clone(), meta))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn meta_and_payloads_round_trip((specs, meta) in image_case()) {
        let (bytes, written) = write_image(&specs, |_| meta.clone());
        prop_assert_eq!(&written, &meta);
        let mut r = ImageReader::open(Cursor::new(bytes)).unwrap();
        prop_assert_eq!(r.meta(), &meta);
        let uses: Vec<(u64, PayloadRef)> =
            payload_uses(&meta).map(|u| (u.len, *u.payload)).collect();
        for (len, p) in uses {
            let spec = specs.iter().zip(payload_refs(&specs)).find(|(_, q)| *q == p);
            let (spec, _) = spec.expect("every reference is a written payload");
            let mut dst = vec![0u8; len as usize];
            r.read_payload(&p, &mut dst).unwrap();
            prop_assert_eq!(&dst, &spec.0);
            if p.encoding == Encoding::Raw {
                prop_assert_eq!(p.offset % PAGE_SIZE, 0);
                prop_assert_eq!(p.stored_len, len);
            }
        }
        let mut last = (0, 0);
        r.verify_payloads(&mut |done, total| last = (done, total)).unwrap();
        prop_assert_eq!(last.0, last.1);
    }
}

/// The references writing `specs` produces.
fn payload_refs(specs: &[PayloadSpec]) -> Vec<PayloadRef> {
    let mut got = Vec::new();
    write_image(specs, |r| {
        got = r.to_vec();
        ImageMeta::default()
    });
    got
}

#[test]
fn raw_payloads_start_on_pages_and_are_stored_verbatim() {
    let specs = vec![
        (pattern(5000, 1), Encoding::Raw),
        (pattern(4096, 3), Encoding::Raw),
        (Vec::new(), Encoding::Raw),
        (pattern(1, 5), Encoding::Raw),
    ];
    let (bytes, meta) = write_image(&specs, |refs| {
        let mut m = sample_meta(&[refs[0], refs[1], refs[3]]);
        m.regions[0].runs[0].len = 5000;
        m.regions[1].runs[0].len = 4096;
        m.cuda.as_mut().unwrap().buffers[0].len = 1;
        m
    });
    let offsets: Vec<u64> = payload_uses(&meta).map(|u| u.payload.offset).collect();
    assert_eq!(offsets, [4096, 3 * 4096, 4 * 4096]);
    for u in payload_uses(&meta) {
        let at = u.payload.offset as usize;
        let spec = specs.iter().find(|(b, _)| b.len() as u64 == u.len).unwrap();
        assert_eq!(&bytes[at..at + u.len as usize], &spec.0[..]);
    }
    ImageReader::open(Cursor::new(bytes)).unwrap();
}

#[test]
fn zstd_shrinks_compressible_payloads_and_reads_back() {
    let big = pattern(3 << 20, 4);
    let specs = vec![
        (big.clone(), Encoding::Zstd),
        (pattern(8192, 2), Encoding::Raw),
    ];
    let (bytes, meta) = write_image(&specs, |refs| {
        let mut m = sample_meta(&[refs[1], refs[1], refs[0]]);
        m.regions[1].runs.clear();
        m.cuda.as_mut().unwrap().buffers[0].len = big.len() as u64;
        m
    });
    assert!(bytes.len() < big.len() / 4, "{} bytes", bytes.len());
    let mut r = ImageReader::open(Cursor::new(bytes)).unwrap();
    let p = meta.cuda.as_ref().unwrap().buffers[0].payload;
    assert_eq!(p.encoding, Encoding::Zstd);
    let mut dst = vec![0u8; big.len()];
    r.read_payload(&p, &mut dst).unwrap();
    assert!(dst == big);
    r.verify_payloads(&mut |_, _| {}).unwrap();
}

#[test]
fn an_image_without_cuda_reads_back_none() {
    let (bytes, meta) = write_image(&[], |_| ImageMeta::default());
    assert_eq!(meta.cuda, None);
    let r = ImageReader::open(Cursor::new(bytes)).unwrap();
    assert_eq!(r.meta(), &ImageMeta::default());
    assert_eq!(r.header().version, FORMAT_VERSION);
}

#[test]
fn peek_reads_the_header_and_process_section_only() {
    let (mut bytes, meta) = write_image(&sample_payloads(), sample_meta);
    // Damage the regions section: peek does not look at it, open does.
    let h = read_header(&mut Cursor::new(&bytes)).unwrap();
    let regions = h
        .sections
        .iter()
        .find(|s| s.id == SectionKind::Regions.id())
        .unwrap();
    bytes[regions.offset as usize] ^= 1;
    let p = peek(&mut Cursor::new(&bytes)).unwrap();
    assert_eq!(p.header, meta.header);
    assert_eq!(p.process, meta.process);
    assert_eq!(p.fixed.version, FORMAT_VERSION);
    assert!(ImageReader::open(Cursor::new(bytes)).is_err());
}

#[test]
fn a_durable_image_file_round_trips() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app-1.crac");
    let (file, tmp) = durable::create_tmp(&target).unwrap();
    let mut w = ImageWriter::new(file).unwrap();
    let payloads: Vec<PayloadRef> = sample_payloads()
        .iter()
        .map(|(bytes, enc)| {
            w.set_encoding(*enc);
            w.payload(bytes).unwrap()
        })
        .collect();
    let meta = sample_meta(&payloads);
    let file = w.finish(&meta).unwrap();
    // Before the commit there is no image under the final name.
    assert!(!target.exists());
    durable::commit(file, &tmp, &target).unwrap();
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut r = ImageReader::open_path(&target).unwrap();
    assert_eq!(r.meta(), &meta);
    r.verify_payloads(&mut |_, _| {}).unwrap();
    let p = peek(&mut std::fs::File::open(&target).unwrap()).unwrap();
    assert_eq!(p.header.build_id, meta.header.build_id);
}

#[test]
fn zstd_output_does_not_depend_on_slices_or_threads() {
    let big = pattern((5 << 20) + 12345, 8);
    let write = |threads: bool, piece: usize| {
        let mut w = ImageWriter::new(Cursor::new(Vec::new()))
            .unwrap()
            .with_encoding(Encoding::Zstd);
        w.set_helper_threads(threads);
        let mut sink = w.begin_payload().unwrap();
        for p in big.chunks(piece) {
            std::io::Write::write_all(&mut sink, p).unwrap();
        }
        let p = sink.finish().unwrap();
        let mut meta = sample_meta(&[p, p, p]);
        meta.regions[0].runs.clear();
        meta.regions[1].runs[0].len = big.len() as u64;
        meta.cuda.as_mut().unwrap().buffers.clear();
        (w.finish(&meta).unwrap().into_inner(), p)
    };
    let (whole, p) = write(true, big.len());
    let (pieces, _) = write(false, 300_001);
    assert!(whole == pieces, "the same payload compressed differently");
    let mut r = ImageReader::open(Cursor::new(whole)).unwrap();
    let mut dst = vec![0u8; big.len()];
    r.read_payload(&p, &mut dst).unwrap();
    assert!(dst == big);
}
