//! Fuzzing the image reader with proptest (there is no nightly toolchain for cargo-fuzz):
//! random files, and real images mutated (bytes flipped, inserted, removed, cut) — with and
//! without their checksums fixed up, so the decoders behind the checksums see garbage too.
//! Every outcome must be `Ok` or `Err`: never a panic, a hang, or an allocation past the caps.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::io::Cursor;
use std::sync::OnceLock;

use common::*;
use crac_core::image::*;
use proptest::prelude::*;

/// The sample image with its zstd run grown to two chunks, built once.
fn base() -> &'static (Vec<u8>, ImageMeta) {
    static BASE: OnceLock<(Vec<u8>, ImageMeta)> = OnceLock::new();
    BASE.get_or_init(|| {
        let big = (1 << 20) + 5 * 4096;
        let mut specs = sample_payloads();
        specs[1] = (pattern(big, 6), Encoding::Zstd);
        write_image(&specs, |refs| {
            let mut meta = sample_meta(refs);
            meta.regions[1].runs[0].len = big as u64;
            meta
        })
    })
}

/// Opens `bytes` and, if that works, reads every payload and verifies them all.
fn exercise(bytes: Vec<u8>) {
    let Ok(mut r) = ImageReader::open(Cursor::new(bytes)) else {
        return;
    };
    let uses: Vec<(u64, PayloadRef)> = payload_uses(r.meta())
        .map(|u| (u.len, *u.payload))
        .collect();
    for (len, p) in uses {
        // A forged length could be anything: only read what a test can hold.
        if len <= 1 << 24 {
            let mut dst = vec![0u8; len as usize];
            let _ = r.read_payload(&p, &mut dst);
        }
    }
    let _ = r.verify_payloads(&mut |_, _| {});
    let _ = summary(r.meta());
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Cut(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (
            any::<usize>(),
            prop_oneof![Just(0u8), Just(0xff), Just(0x80), any::<u8>()]
        )
            .prop_map(|(at, x)| Mutation::Set(at, x)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Cut),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation, from: usize) {
    if bytes.len() <= from {
        return;
    }
    let span = bytes.len() - from;
    match m {
        Mutation::Flip(at, x) => bytes[from + at % span] ^= x,
        Mutation::Set(at, x) => bytes[from + at % span] = *x,
        Mutation::Insert(at, b) => {
            let at = from + at % span;
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Remove(at, n) => {
            let at = from + at % span;
            let end = (at + n).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Cut(at) => bytes.truncate(from + at % span),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..10_000)) {
        exercise(bytes);
    }

    #[test]
    fn files_with_our_magic_and_random_rest_never_panic(
        rest in proptest::collection::vec(any::<u8>(), 0..10_000),
    ) {
        let mut bytes = crac_core::image::layout::MAGIC.to_le_bytes().to_vec();
        bytes.extend_from_slice(&rest);
        exercise(bytes);
    }

    #[test]
    fn mutated_images_never_panic(ms in proptest::collection::vec(mutation(), 1..6)) {
        let mut bytes = base().0.clone();
        for m in &ms {
            apply(&mut bytes, m, 0);
        }
        exercise(bytes);
    }

    #[test]
    fn mutated_payloads_never_panic_or_read_wrong(ms in proptest::collection::vec(mutation(), 1..6)) {
        // Only the payload area changes (in place), so the metadata still opens: every
        // payload must then either read back exactly or fail.
        let (orig, meta) = base();
        let h = read_header(&mut Cursor::new(orig)).unwrap();
        let mut area = orig[4096..h.payload_end as usize].to_vec();
        for m in &ms {
            let len = area.len();
            apply(&mut area, m, 0);
            area.resize(len, 0);
        }
        let mut bytes = orig.clone();
        bytes[4096..h.payload_end as usize].copy_from_slice(&area);
        let mut r = ImageReader::open(Cursor::new(bytes)).unwrap();
        let mut good = ImageReader::open(Cursor::new(orig.clone())).unwrap();
        for u in payload_uses(meta) {
            let mut dst = vec![0u8; u.len as usize];
            if r.read_payload(u.payload, &mut dst).is_ok() {
                let mut want = vec![0u8; u.len as usize];
                good.read_payload(u.payload, &mut want).unwrap();
                prop_assert!(dst == want, "{} read back wrong", u.owner);
            }
        }
        let _ = r.verify_payloads(&mut |_, _| {});
    }

    #[test]
    fn mutated_sections_with_fixed_checksums_never_panic(
        which in 0..6usize,
        ms in proptest::collection::vec(mutation(), 1..6),
    ) {
        let (orig, _) = base();
        let h = read_header(&mut Cursor::new(orig)).unwrap();
        let mut bodies: Vec<Vec<u8>> = h
            .sections
            .iter()
            .map(|s| orig[s.offset as usize..(s.offset + s.len) as usize].to_vec())
            .collect();
        let which = which % bodies.len();
        for m in &ms {
            apply(&mut bodies[which], m, 0);
        }
        exercise(relay_sections(orig, &h, bodies));
    }

    #[test]
    fn mutated_headers_with_fixed_checksums_never_panic(
        fields in proptest::collection::vec((0..6usize, any::<u64>()), 1..4),
    ) {
        let (orig, _) = base();
        let mut h = read_header(&mut Cursor::new(orig)).unwrap();
        for (field, v) in fields {
            let small = v % (orig.len() as u64 * 2);
            match field {
                0 => h.file_len = small,
                1 => h.payload_end = small,
                2 => h.sections[(v % 6) as usize].offset = small,
                3 => h.sections[(v % 6) as usize].len = if v % 2 == 0 { small } else { v },
                4 => h.sections[(v % 6) as usize].id = (v % 8) as u32,
                _ => h.version.1 = v as u16,
            }
        }
        let mut bytes = orig.clone();
        let (magic, page) = h.encode().unwrap();
        bytes[..4096].copy_from_slice(&page[..]);
        bytes[..8].copy_from_slice(&magic);
        exercise(bytes);
    }
}

/// Runs the fuzz tests above again in a child limited to 256 MiB of address space, so that an
/// allocation sized by a forged length (which a roomy test machine might grant) aborts it.
#[test]
fn fuzzing_fits_in_256_mib_of_address_space() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    if std::env::var_os("CRAC_FUZZ_UNDER_LIMIT").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new("prlimit")
        .arg(format!("--as={}", 256u64 << 20))
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args(["never_panic", "--test-threads=1"])
        .env("CRAC_FUZZ_UNDER_LIMIT", "1")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("prlimit (util-linux) is needed to run the fuzz tests under a memory limit");
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the fuzz tests under a memory limit hung");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}:\n{text}");
    assert!(text.contains("test result: ok. 6 passed"), "{text}");
}
