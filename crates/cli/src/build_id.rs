//! The GNU build-id of an ELF file (the `NT_GNU_BUILD_ID` note), which identifies this exact
//! crac build: `crac --version` prints it, and restart will compare it with the image's.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;
use crac_core::elf::{self, EHDR_SIZE};

/// `p_type` of a note segment.
const PT_NOTE: u32 = 4;
/// Note type of the GNU build-id.
const NT_GNU_BUILD_ID: u32 = 3;
/// Largest note segment read (build-id notes are a few dozen bytes).
const MAX_NOTES: u64 = 64 * 1024;

/// The build-id of the ELF file at `path`, as lower-case hex, if it has one.
pub fn of_file(path: &Path) -> anyhow::Result<Option<String>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let read = |offset: u64, len: usize| -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    };
    let context = || format!("cannot read the ELF headers of {}", path.display());
    let header =
        elf::parse_header(&read(0, EHDR_SIZE).with_context(context)?).with_context(context)?;
    let (offset, len) = header.phdr_table();
    let phdrs = elf::parse_program_headers(&read(offset, len).with_context(context)?, &header)
        .with_context(context)?;
    for ph in phdrs.iter().filter(|p| p.kind == PT_NOTE) {
        let len = usize::try_from(ph.filesz.min(MAX_NOTES)).unwrap_or(0);
        let notes = read(ph.offset, len).with_context(context)?;
        if let Some(id) = find_build_id(&notes, ph.align) {
            return Ok(Some(hex(id)));
        }
    }
    Ok(None)
}

/// Finds the GNU build-id in the bytes of one note segment aligned to `align` (4 or 8).
pub fn find_build_id(notes: &[u8], align: u64) -> Option<&[u8]> {
    let pad = if align == 8 { 8 } else { 4 };
    let round = |n: usize| n.checked_add(pad - 1).map(|v| v / pad * pad);
    let word = |at: usize| -> Option<usize> {
        let b = notes.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let (namesz, descsz, kind) = (word(at)?, word(at + 4)?, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(round(namesz)?)?;
        let desc_end = desc_at.checked_add(descsz)?;
        let name = notes.get(name_at..name_at.checked_add(namesz)?)?;
        let desc = notes.get(desc_at..desc_end)?;
        if kind == NT_GNU_BUILD_ID as usize && name == b"GNU\0" {
            return Some(desc);
        }
        at = desc_at.checked_add(round(descsz)?)?;
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&u32::try_from(name.len()).unwrap().to_le_bytes());
        v.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v.extend_from_slice(desc);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v
    }

    #[test]
    fn finds_the_gnu_note_among_others() {
        let mut seg = note(b"GNU\0", 1, &[0, 0, 0, 0, 3, 2, 0, 0]);
        seg.extend(note(b"Go\0", 3, b"zz"));
        seg.extend(note(
            b"GNU\0",
            NT_GNU_BUILD_ID,
            &[0xde, 0xad, 0xbe, 0xef, 1],
        ));
        assert_eq!(
            find_build_id(&seg, 4),
            Some(&[0xde, 0xad, 0xbe, 0xef, 1][..])
        );
        assert_eq!(find_build_id(&seg[..seg.len() - 8], 4), None);
        assert_eq!(hex(&[0xab, 1]), "ab01");
    }

    #[test]
    fn reads_a_real_binary() {
        // Debian builds its binaries with build-ids; crac's own test binary has one too when the
        // toolchain's linker adds it, so accept None there but not an error.
        let id = of_file(Path::new("/bin/sh")).unwrap();
        assert!(id.is_some_and(|s| s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit())));
        assert!(of_file(&std::env::current_exe().unwrap()).is_ok());
        assert!(of_file(Path::new("/proc/self/status")).is_err());
    }

    proptest! {
        #[test]
        fn random_notes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), eight in any::<bool>()) {
            let _ = find_build_id(&bytes, if eight { 8 } else { 4 });
        }
    }
}
