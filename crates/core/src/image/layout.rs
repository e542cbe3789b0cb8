//! The fixed part of an image: magic, format version, the header page and its section table.
//!
//! Every number is little-endian. The header occupies the first page of the file so that the
//! payload area after it starts page-aligned; see `docs/image-format.md` for the whole layout.

use xxhash_rust::xxh3::Xxh3Default;

use super::ImageError;

/// The page size payloads are aligned to (the file offset of every payload is a multiple).
pub const PAGE_SIZE: u64 = 4096;

/// Format major version: readers refuse any other major.
pub const FORMAT_MAJOR: u16 = 1;
/// Format minor version: readers accept any minor of their major (newer minors only add
/// sections that older readers skip).
pub const FORMAT_MINOR: u16 = 0;
/// The format version as `(major, minor)`, independent of the crate version.
pub const FORMAT_VERSION: (u16, u16) = (FORMAT_MAJOR, FORMAT_MINOR);

/// The magic of an image written on x86-64 (`"CRACIMGx"` as bytes).
pub const MAGIC_X86_64: u64 = u64::from_le_bytes(*b"CRACIMGx");
/// The magic of an image written on 64-bit Arm (`"CRACIMGa"` as bytes).
pub const MAGIC_AARCH64: u64 = u64::from_le_bytes(*b"CRACIMGa");

/// The magic this build writes and accepts.
#[cfg(target_arch = "aarch64")]
pub const MAGIC: u64 = MAGIC_AARCH64;
/// The magic this build writes and accepts.
#[cfg(not(target_arch = "aarch64"))]
pub const MAGIC: u64 = MAGIC_X86_64;

/// Bytes of the header page (the payload area starts right after it).
pub const HEADER_LEN: usize = 4096;
/// Most entries the section table may hold.
pub const MAX_SECTIONS: usize = 32;
/// Largest metadata section a reader accepts, bytes.
pub const SECTION_CAP: u64 = 1 << 30;

const HEADER_LEN_U32: u32 = 4096;
const PAGE_SIZE_U32: u32 = 4096;
const FIXED_LEN: usize = 64;
const ENTRY_LEN: usize = 32;
const CHECKSUM_AT: usize = 56;

/// The metadata sections, by the id stored in the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectionKind {
    /// [`super::ImageHeader`] and [`super::ProcessRecord`].
    Process,
    /// The thread records.
    Threads,
    /// Signal dispositions and pending signals.
    Signals,
    /// The fd records.
    Fds,
    /// The region table (with its page runs' payload references).
    Regions,
    /// The CUDA record; absent when the program used no device.
    Cuda,
}

impl SectionKind {
    /// Every kind this version knows, in file order.
    pub const ALL: [SectionKind; 6] = [
        SectionKind::Process,
        SectionKind::Threads,
        SectionKind::Signals,
        SectionKind::Fds,
        SectionKind::Regions,
        SectionKind::Cuda,
    ];

    /// The id stored in the section table.
    pub fn id(self) -> u32 {
        match self {
            SectionKind::Process => 1,
            SectionKind::Threads => 2,
            SectionKind::Signals => 3,
            SectionKind::Fds => 4,
            SectionKind::Regions => 5,
            SectionKind::Cuda => 6,
        }
    }

    /// The kind with table id `id`, if this version knows it.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }

    /// The section's name, for messages and `crac inspect`.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Process => "process",
            SectionKind::Threads => "threads",
            SectionKind::Signals => "signals",
            SectionKind::Fds => "fds",
            SectionKind::Regions => "regions",
            SectionKind::Cuda => "cuda",
        }
    }
}

/// One entry of the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    /// The section's id ([`SectionKind::id`]; unknown ids are skipped by readers).
    pub id: u32,
    /// Encoding flags (0: bincode 2, standard configuration).
    pub flags: u32,
    /// File offset of the section's first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// xxh3-64 of the section's bytes.
    pub checksum: u64,
}

/// The decoded header page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    /// Format version `(major, minor)` the image was written with.
    pub version: (u16, u16),
    /// Length of the whole image file as written.
    pub file_len: u64,
    /// First byte of the payload area (the end of the header page).
    pub payload_start: u64,
    /// One past the payload area's last byte (where the metadata sections begin).
    pub payload_end: u64,
    /// The section table.
    pub sections: Vec<SectionEntry>,
}

impl FixedHeader {
    /// Encodes the header page. The magic comes back separately, so that the writer can put it
    /// in place last. A table of more than [`MAX_SECTIONS`] entries is refused.
    pub fn encode(&self) -> Result<([u8; 8], Box<[u8; HEADER_LEN]>), ImageError> {
        if self.sections.len() > MAX_SECTIONS {
            return Err(ImageError::BadHeader {
                what: format!(
                    "{} sections, at most {MAX_SECTIONS} are allowed",
                    self.sections.len()
                ),
            });
        }
        let mut page = Box::new([0u8; HEADER_LEN]);
        let mut at = 8;
        let mut put = |bytes: &[u8]| {
            page[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.version.0.to_le_bytes());
        put(&self.version.1.to_le_bytes());
        put(&HEADER_LEN_U32.to_le_bytes());
        put(&self.file_len.to_le_bytes());
        put(&self.payload_start.to_le_bytes());
        put(&self.payload_end.to_le_bytes());
        put(&PAGE_SIZE_U32.to_le_bytes());
        put(&u32::try_from(self.sections.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes());
        // 48: reserved, 56: checksum (filled below), 64: the table.
        put(&[0u8; 16]);
        for s in &self.sections {
            put(&s.id.to_le_bytes());
            put(&s.flags.to_le_bytes());
            put(&s.offset.to_le_bytes());
            put(&s.len.to_le_bytes());
            put(&s.checksum.to_le_bytes());
        }
        let sum = header_checksum(&page[..], self.sections.len());
        page[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        Ok((MAGIC.to_le_bytes(), page))
    }

    /// Decodes and checks a header page: magic, then version, then the checksum, then that
    /// every field is in range for a file of `actual_len` bytes.
    pub fn decode(page: &[u8], actual_len: u64) -> Result<Self, ImageError> {
        if page.len() < 8 {
            return Err(ImageError::Truncated {
                section: "header",
                expected: HEADER_LEN as u64,
                got: actual_len,
            });
        }
        let magic = u64_at(page, 0);
        if magic != MAGIC {
            return Err(match arch_of(magic) {
                Some(arch) => ImageError::ForeignArch { arch },
                None => ImageError::BadMagic { found: magic },
            });
        }
        if page.len() < HEADER_LEN {
            return Err(ImageError::Truncated {
                section: "header",
                expected: HEADER_LEN as u64,
                got: actual_len,
            });
        }
        let version = (u16_at(page, 8), u16_at(page, 10));
        if version.0 != FORMAT_MAJOR {
            return Err(ImageError::UnsupportedVersion {
                major: version.0,
                minor: version.1,
            });
        }
        let count = u32_at(page, 44) as usize;
        if count > MAX_SECTIONS {
            return Err(ImageError::BadHeader {
                what: format!("{count} sections, at most {MAX_SECTIONS} are allowed"),
            });
        }
        if header_checksum(page, count) != u64_at(page, CHECKSUM_AT) {
            return Err(ImageError::ChecksumMismatch { section: "header" });
        }
        let header = FixedHeader {
            version,
            file_len: u64_at(page, 16),
            payload_start: u64_at(page, 24),
            payload_end: u64_at(page, 32),
            sections: (0..count)
                .map(|i| {
                    let e = FIXED_LEN + i * ENTRY_LEN;
                    SectionEntry {
                        id: u32_at(page, e),
                        flags: u32_at(page, e + 4),
                        offset: u64_at(page, e + 8),
                        len: u64_at(page, e + 16),
                        checksum: u64_at(page, e + 24),
                    }
                })
                .collect(),
        };
        header.check(page, actual_len)?;
        Ok(header)
    }

    fn check(&self, page: &[u8], actual_len: u64) -> Result<(), ImageError> {
        let bad = |what: String| Err(ImageError::BadHeader { what });
        let header_len = u32_at(page, 12);
        let page_size = u32_at(page, 40);
        if header_len as usize != HEADER_LEN || u64::from(page_size) != PAGE_SIZE {
            return bad(format!(
                "header length {header_len} and page size {page_size}"
            ));
        }
        if actual_len < self.file_len {
            return Err(ImageError::Truncated {
                section: "image",
                expected: self.file_len,
                got: actual_len,
            });
        }
        if self.payload_start != HEADER_LEN as u64
            || self.payload_end < self.payload_start
            || self.payload_end % PAGE_SIZE != 0
            || self.payload_end > self.file_len
        {
            return bad(format!(
                "payload area {:#x}..{:#x} in a file of {} bytes",
                self.payload_start, self.payload_end, self.file_len
            ));
        }
        for s in &self.sections {
            let end = s.offset.checked_add(s.len);
            if s.offset < self.payload_end || end.is_none_or(|end| end > self.file_len) {
                return bad(format!(
                    "section {} at {:#x} (+{}) lies outside the metadata area {:#x}..{:#x}",
                    s.id, s.offset, s.len, self.payload_end, self.file_len
                ));
            }
        }
        Ok(())
    }
}

/// The image architecture a magic stands for, if it is another build's crac magic.
fn arch_of(magic: u64) -> Option<&'static str> {
    match magic {
        MAGIC_X86_64 => Some("x86_64"),
        MAGIC_AARCH64 => Some("aarch64"),
        _ => None,
    }
}

/// xxh3-64 over the header page minus the magic and the checksum field: bytes 8..56 and the
/// `count` table entries.
fn header_checksum(page: &[u8], count: usize) -> u64 {
    let mut h = Xxh3Default::new();
    h.update(&page[8..CHECKSUM_AT]);
    h.update(&page[FIXED_LEN..FIXED_LEN + count * ENTRY_LEN]);
    h.digest()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// `n` rounded up to the next multiple of [`PAGE_SIZE`].
pub fn page_align(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FixedHeader {
        FixedHeader {
            version: FORMAT_VERSION,
            file_len: 3 * PAGE_SIZE + 100,
            payload_start: PAGE_SIZE,
            payload_end: 3 * PAGE_SIZE,
            sections: vec![SectionEntry {
                id: 1,
                flags: 0,
                offset: 3 * PAGE_SIZE,
                len: 100,
                checksum: 7,
            }],
        }
    }

    fn page(h: &FixedHeader) -> Vec<u8> {
        let (magic, page) = h.encode().unwrap();
        let mut v = page.to_vec();
        v[..8].copy_from_slice(&magic);
        v
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(FixedHeader::decode(&page(&h), h.file_len).unwrap(), h);
    }

    #[test]
    fn a_table_too_big_for_the_page_is_not_encoded() {
        let mut h = sample();
        h.sections = vec![h.sections[0]; MAX_SECTIONS + 1];
        assert!(matches!(h.encode(), Err(ImageError::BadHeader { .. })));
    }

    #[test]
    fn every_header_byte_is_checked() {
        let h = sample();
        let good = page(&h);
        for at in 0..FIXED_LEN + ENTRY_LEN {
            let mut p = good.clone();
            p[at] ^= 0x20;
            assert!(FixedHeader::decode(&p, h.file_len).is_err(), "byte {at}");
        }
    }

    #[test]
    fn a_table_entry_past_the_file_is_refused() {
        let mut h = sample();
        h.sections[0].len = 101;
        let err = FixedHeader::decode(&page(&h), h.file_len).unwrap_err();
        assert!(matches!(err, ImageError::BadHeader { .. }), "{err}");
    }
}
