//! Tests of the ELF reader: hand-built and real headers, each error, and proptest "fuzz"
//! cases (random, mutated and truncated headers give `Ok` or `Err`, never a panic, and what
//! is accepted is what the loader can map).

#![allow(clippy::cast_possible_truncation)]

use super::*;
use proptest::prelude::*;

/// A minimal valid x86-64 ET_DYN image: header, two phdrs (PT_INTERP, PT_LOAD), path.
fn sample() -> Vec<u8> {
    let mut b = vec![0u8; 0x200];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&3u16.to_le_bytes());
    b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    b[24..32].copy_from_slice(&0x1040u64.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&2u16.to_le_bytes());
    let mut put = |at: usize, ph: [u64; 6], kind: u32, flags: u32| {
        b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        for (i, v) in ph.iter().enumerate() {
            let o = at + 8 + i * 8;
            b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
    };
    // offset, vaddr, paddr, filesz, memsz, align
    put(64, [0x100, 0x100, 0x100, 28, 28, 1], PT_INTERP, PF_R);
    put(120, [0, 0, 0, 0x200, 0x3000, 0x1000], PT_LOAD, PF_R | PF_X);
    b[0x100..0x100 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
    b
}

#[test]
fn sample_parses() {
    let b = sample();
    let elf = Elf::parse(&b).expect("sample is valid");
    assert_eq!(elf.header.kind, ElfType::Dyn);
    assert_eq!(elf.header.entry, 0x1040);
    assert_eq!(elf.span(), (0, 0x3000));
    assert_eq!(elf.phdr_vaddr(), Some(64));
    assert!(elf.exec_stack());
    let ip = elf.interp().expect("has PT_INTERP");
    let range = &b[ip.offset as usize..(ip.offset + ip.filesz) as usize];
    assert_eq!(interp_path(range), Ok(&b"/lib64/ld-linux-x86-64.so.2"[..]));
}

#[test]
fn each_failure_has_its_own_error() {
    let b = sample();
    let with = |at: usize, v: &[u8]| {
        let mut c = b.clone();
        c[at..at + v.len()].copy_from_slice(v);
        Elf::parse(&c)
    };
    assert_eq!(with(0, b"\x7fELG"), Err(ElfError::BadMagic));
    assert_eq!(with(4, &[1]), Err(ElfError::Not64Bit));
    assert_eq!(with(5, &[2]), Err(ElfError::BigEndian));
    assert_eq!(with(5, &[9]), Err(ElfError::BadIdent));
    let e = with(18, &183u16.to_le_bytes()).expect_err("aarch64");
    assert_eq!(e.to_string(), "x86-64 needed, found aarch64");
    assert_eq!(
        with(16, &1u16.to_le_bytes()),
        Err(ElfError::NotExecutable(1))
    );
    assert!(matches!(
        with(54, &32u16.to_le_bytes()),
        Err(ElfError::BadPhdrTable(_))
    ));
    assert!(matches!(
        with(56, &0u16.to_le_bytes()),
        Err(ElfError::BadPhdrTable(_))
    ));
    assert!(matches!(
        with(32, &0x1f0u64.to_le_bytes()),
        Err(ElfError::Truncated { .. })
    ));
    assert!(matches!(
        Elf::parse(&b[..40]),
        Err(ElfError::Truncated { .. })
    ));
    // filesz > memsz in the load segment
    assert!(matches!(
        with(120 + 32, &0x4000u64.to_le_bytes()),
        Err(ElfError::BadSegment { index: 1, .. })
    ));
    // vaddr and offset not congruent
    assert!(matches!(
        with(120 + 16, &0x10u64.to_le_bytes()),
        Err(ElfError::BadSegment { index: 1, .. })
    ));
    // no PT_LOAD at all
    assert_eq!(
        with(120, &PT_GNU_STACK.to_le_bytes()),
        Err(ElfError::NoLoad)
    );
    assert!(interp_path(b"/lib/ld.so").is_err());
    assert!(interp_path(b"\0").is_err());
    assert!(interp_path(b"/a\0b\0").is_err());
}

#[test]
fn real_binaries_parse() {
    for path in ["/bin/true", "/bin/sh", "/usr/bin/env"] {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let elf = Elf::parse(&bytes).expect(path);
        assert!(elf.interp().is_some(), "{path} is dynamic");
        assert!(elf.phdr_vaddr().is_some());
        let (lo, hi) = elf.span();
        assert!(lo < hi && lo % PAGE_SIZE == 0 && hi % PAGE_SIZE == 0);
    }
}

/// `sample` with a third header, PT_PHDR, describing the table at offset/address 64.
fn sample_with_phdr() -> Vec<u8> {
    let mut b = sample();
    b[56..58].copy_from_slice(&3u16.to_le_bytes());
    let at = 64 + 2 * PHDR_SIZE;
    b[at..at + 4].copy_from_slice(&PT_PHDR.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&PF_R.to_le_bytes());
    for (i, v) in [64u64, 64, 64, 168, 168, 8].iter().enumerate() {
        let o = at + 8 + i * 8;
        b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn segments_must_lie_inside_the_file() {
    let b = sample();
    let elf = Elf::parse(&b).expect("valid");
    assert_eq!(elf.check_file(0x200), Ok(()));
    let e = elf.check_file(0x1ff).expect_err("load past end");
    assert!(
        matches!(
            e,
            ElfError::PastEndOfFile {
                index: 1,
                end: 0x200,
                len: 0x1ff,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("only 511 bytes"), "{e}");
    // The interpreter path running past the end is caught too (index 0 comes first).
    assert!(matches!(
        elf.check_file(0x110),
        Err(ElfError::PastEndOfFile { index: 0, .. })
    ));
    // A bss-only segment (no file bytes) may have any offset.
    let mut bss = b.clone();
    set_u64(&mut bss, 120 + 32, 0);
    set_u64(&mut bss, 120 + 8, 0x10_0000);
    set_u64(&mut bss, 120 + 16, 0x10_0000);
    let elf = Elf::parse(&bss).expect("valid");
    assert_eq!(elf.check_file(0x200), Ok(()));
    let mut huge = b.clone();
    set_u64(&mut huge, 120 + 8, u64::MAX - 0x1ff); // offset + filesz overflows
    set_u64(&mut huge, 120 + 16, u64::MAX - 0x1ff);
    assert!(Elf::parse(&huge).is_err());
}

#[test]
fn interp_and_alignment_are_checked() {
    let b = sample();
    let mut empty = b.clone();
    set_u64(&mut empty, 64 + 32, 1);
    let elf = Elf::parse(&empty).expect("headers parse");
    assert!(matches!(elf.check_file(0x200), Err(ElfError::BadInterp(_))));
    let mut align = b.clone();
    set_u64(&mut align, 120 + 48, 1 << 31);
    assert!(matches!(
        Elf::parse(&align),
        Err(ElfError::BadSegment { index: 1, .. })
    ));
    let mut skew = b.clone();
    set_u64(&mut skew, 120 + 48, 0x20_0000);
    set_u64(&mut skew, 120 + 16, 0x1000); // congruent modulo the page, not p_align
    set_u64(&mut skew, 120 + 24, 0x1000);
    let e = Elf::parse(&skew).expect_err("skewed");
    assert!(e.to_string().contains("segment alignment"), "{e}");
}

#[test]
fn pt_phdr_must_describe_the_mapped_table() {
    let b = sample_with_phdr();
    let elf = Elf::parse(&b).expect("valid");
    assert_eq!(elf.check_file(0x200), Ok(()));
    assert_eq!(elf.phdr_vaddr(), Some(64));
    let at = 64 + 2 * PHDR_SIZE;
    let mut moved = b.clone();
    set_u64(&mut moved, at + 16, 0x80); // p_vaddr not where the load puts the table
    let e = Elf::parse(&moved)
        .expect("parses")
        .check_file(0x200)
        .expect_err("inconsistent");
    assert!(matches!(e, ElfError::BadSegment { index: 2, .. }), "{e}");
    let mut other = b.clone();
    set_u64(&mut other, at + 8, 0); // p_offset not e_phoff
    assert!(
        Elf::parse(&other)
            .expect("parses")
            .check_file(0x200)
            .is_err()
    );
    let mut small = b.clone();
    set_u64(&mut small, at + 32, 56); // p_filesz smaller than the table
    assert!(
        Elf::parse(&small)
            .expect("parses")
            .check_file(0x200)
            .is_err()
    );
    let mut outside = b.clone();
    set_u64(&mut outside, 120 + 32, 100); // the load no longer holds the whole table
    set_u64(&mut outside, 120 + 40, 100);
    assert!(matches!(
        Elf::parse(&outside).expect("parses").check_file(0x200),
        Err(ElfError::BadSegment { index: 2, .. })
    ));
}

#[test]
fn real_binaries_pass_and_their_halves_do_not() {
    for path in ["/bin/true", "/bin/sh"] {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let elf = Elf::parse(&bytes).expect(path);
        assert_eq!(elf.check_file(bytes.len() as u64), Ok(()), "{path}");
        assert!(matches!(
            elf.check_file(4096),
            Err(ElfError::PastEndOfFile { .. })
        ));
    }
}

/// What the loader relies on once `parse` and `check_file` accepted a file of `len` bytes.
fn assert_loadable(elf: &Elf, bytes: &[u8], len: u64) -> Result<(), TestCaseError> {
    let mut prev_end: Option<u64> = None;
    for p in elf.loads() {
        prop_assert!(p.filesz <= p.memsz);
        prop_assert!(p.filesz == 0 || p.offset + p.filesz <= len);
        prop_assert!(p.align == 0 || p.align.is_power_of_two());
        prop_assert_eq!(p.vaddr % PAGE_SIZE, p.offset % PAGE_SIZE);
        let start = p.vaddr - p.vaddr % PAGE_SIZE;
        if let Some(prev) = prev_end {
            prop_assert!(start >= prev - prev % PAGE_SIZE, "overlap or out of order");
        }
        prev_end = Some(p.vaddr.checked_add(p.memsz).expect("no overflow"));
    }
    if let Some(ip) = elf.interp() {
        prop_assert!(ip.offset + ip.filesz <= len);
        prop_assert!(ip.filesz >= 2 && ip.filesz <= MAX_INTERP_LEN);
        let s = ip.offset.min(bytes.len() as u64) as usize;
        let e = (ip.offset + ip.filesz).min(bytes.len() as u64) as usize;
        let _ = interp_path(&bytes[s..e]);
    }
    if elf.phdrs.iter().any(|p| p.kind == PT_PHDR) {
        let at = elf.phdr_vaddr().expect("PT_PHDR");
        let (off, tlen) = elf.header.phdr_table();
        prop_assert!(elf.loads().any(|p| p.offset <= off
            && off + tlen as u64 <= p.offset + p.filesz
            && p.vaddr + (off - p.offset) == at));
    }
    Ok(())
}

/// A program header for the random tables below, with values near the interesting edges.
fn any_phdr() -> impl Strategy<Value = (u32, [u64; 5])> {
    let kind = prop_oneof![Just(PT_LOAD), Just(PT_INTERP), Just(PT_PHDR), any::<u32>()];
    let val = prop_oneof![
        0u64..0x400,
        Just(0x1000u64),
        (0u64..16).prop_map(|k| k * PAGE_SIZE),
        Just(u64::MAX),
        Just(u64::MAX - PAGE_SIZE + 1),
        any::<u64>(),
    ];
    (
        kind,
        [val.clone(), val.clone(), val.clone(), val.clone(), val],
    )
}

fn real_prefix() -> Vec<u8> {
    let mut b = std::fs::read("/bin/true").unwrap_or_else(|_| sample());
    b.truncate(4096);
    b
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Elf::parse(&bytes);
        let _ = interp_path(&bytes);
    }

    #[test]
    fn random_after_magic_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut b = b"\x7fELF\x02\x01\x01".to_vec();
        b.extend(bytes);
        let _ = Elf::parse(&b);
    }

    #[test]
    fn mutated_real_headers_never_panic(
        muts in prop::collection::vec((0usize..1024, any::<u8>()), 1..16),
        cut in 0usize..4096,
    ) {
        let mut b = real_prefix();
        for (at, v) in muts {
            if at < b.len() {
                b[at] = v;
            }
        }
        b.truncate(cut.max(1));
        if let Ok(elf) = Elf::parse(&b) {
            let (lo, hi) = elf.span();
            prop_assert!(lo <= hi);
            let _ = elf.phdr_vaddr();
        }
    }

    #[test]
    fn accepted_files_are_loadable(
        muts in prop::collection::vec((0usize..0x200, any::<u8>()), 0..6),
        len in 0u64..0x300,
    ) {
        let mut b = sample_with_phdr();
        for (at, v) in muts {
            b[at] = v;
        }
        if let Ok(elf) = Elf::parse(&b) {
            if elf.check_file(len).is_ok() {
                assert_loadable(&elf, &b, len)?;
            }
        }
    }

    #[test]
    fn random_tables_are_loadable_or_refused(
        phdrs in prop::collection::vec(any_phdr(), 1..6),
        len in prop_oneof![0u64..0x2000, any::<u64>()],
    ) {
        let mut b = sample();
        b.resize(0x400, 0);
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, (kind, [offset, vaddr, filesz, memsz, align])) in phdrs.iter().enumerate() {
            let at = 64 + i * PHDR_SIZE;
            b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            b[at + 4..at + 8].copy_from_slice(&PF_R.to_le_bytes());
            for (j, v) in [*offset, *vaddr, *vaddr, *filesz, *memsz, *align].iter().enumerate() {
                set_u64(&mut b, at + 8 + j * 8, *v);
            }
        }
        if let Ok(elf) = Elf::parse(&b) {
            let _ = elf.span();
            if elf.check_file(len).is_ok() {
                assert_loadable(&elf, &b, len)?;
            }
        }
    }

    #[test]
    fn truncated_real_binaries_are_refused_or_loadable(cut in 64usize..65536) {
        let Ok(full) = std::fs::read("/bin/true") else {
            return Ok(());
        };
        let whole = Elf::parse(&full).expect("/bin/true parses");
        let need = whole
            .phdrs
            .iter()
            .filter(|p| p.kind == PT_INTERP || p.kind == PT_LOAD)
            .map(|p| p.offset + p.filesz)
            .max()
            .unwrap_or(0);
        let b = &full[..cut.min(full.len())];
        if let Ok(elf) = Elf::parse(b) {
            let ok = elf.check_file(b.len() as u64).is_ok();
            prop_assert_eq!(ok, b.len() as u64 >= need, "cut at {}", cut);
            if ok {
                assert_loadable(&elf, b, b.len() as u64)?;
            }
        }
    }

    #[test]
    fn mutated_sample_never_panics(muts in prop::collection::vec((0usize..0x200, any::<u8>()), 1..8)) {
        let mut b = sample();
        for (at, v) in muts {
            b[at] = v;
        }
        if let Ok(elf) = Elf::parse(&b) {
            let _ = elf.span();
            if let Some(ip) = elf.interp() {
                let s = ip.offset.min(b.len() as u64) as usize;
                let e = ip.offset.saturating_add(ip.filesz).min(b.len() as u64) as usize;
                let _ = interp_path(&b[s..e.max(s)]);
            }
        }
    }
}
