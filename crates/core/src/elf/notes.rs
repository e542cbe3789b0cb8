//! ELF notes: the GNU build-id (`NT_GNU_BUILD_ID`) that names one exact build of a binary.
//! `crac --version` prints crac's, images record it, and restart compares the two.

/// Note type of the GNU build-id.
pub const NT_GNU_BUILD_ID: u32 = 3;

/// Finds the GNU build-id in the bytes of one note segment aligned to `align` (4 or 8).
/// Malformed notes end the search (`None`), never a panic.
pub fn find_build_id(notes: &[u8], align: u64) -> Option<&[u8]> {
    let pad = if align == 8 { 8 } else { 4 };
    let round = |n: usize| n.checked_add(pad - 1).map(|v| v / pad * pad);
    let word = |at: usize| -> Option<usize> {
        let b = notes.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let build_id = usize::try_from(NT_GNU_BUILD_ID).ok()?;
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let (namesz, descsz, kind) = (word(at)?, word(at + 4)?, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(round(namesz)?)?;
        let name = notes.get(name_at..name_at.checked_add(namesz)?)?;
        let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if kind == build_id && name == b"GNU\0" {
            return Some(desc);
        }
        at = desc_at.checked_add(round(descsz)?)?;
    }
    None
}

/// Lower-case hex of `bytes` (how build-ids are shown and stored).
pub fn hex(bytes: &[u8]) -> String {
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

    proptest! {
        #[test]
        fn random_notes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), eight in any::<bool>()) {
            let _ = find_build_id(&bytes, if eight { 8 } else { 4 });
        }
    }
}
