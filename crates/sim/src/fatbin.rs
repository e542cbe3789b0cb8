//! Fat binaries as nvcc embeds them: parse, decompress, and pick the PTX to run.
//!
//! Layout (little-endian throughout), as nvcc 13 writes it and `cuobjdump` reads it:
//!
//! ```text
//! __fatBinC_Wrapper_t (in .nvFatBinSegment, 24 bytes)
//!   u32 magic 0x466243b1 · u32 version · u64 data pointer · u64 filename/prelinked pointer
//! fat binary (at the data pointer, in .nv_fatbin)
//!   header, 16 bytes: u32 magic 0xBA55ED50 · u16 version 1 · u16 header size · u64 fat size
//!   fat size bytes of entries, each:
//!     u16 kind (1 PTX, 2 ELF cubin) · u16 version · u32 header size · u64 payload size
//!     u32 compressed size · u32 (unknown) · u16 PTX minor · u16 PTX major · u32 sm arch
//!     u32 name offset · u32 name length · u64 flags · u64 zero · u64 decompressed size
//!     … rest of the entry header, then the payload
//! ```
//!
//! Entry flags: `0x1` 64-bit, `0x10` Linux, `0x2000` LZ4 block compression (nvcc
//! `-compress-mode=speed`), `0x8000` zstd (the default for PTX since CUDA 12.8). Every length is
//! checked against the input and the caps below before anything is allocated.

use std::io::Read;

use thiserror::Error;

use crac_gpu::fatbin::FatbinHeaderError;
pub use crac_gpu::fatbin::{FATBIN_MAGIC, HEADER_LEN, MAX_FATBIN_LEN, WRAPPER_MAGIC};

/// Largest decompressed payload accepted.
pub const MAX_DECOMPRESSED_LEN: u64 = 1 << 30;

const ENTRY_MIN_HEADER: usize = 64;
const FLAG_LZ4: u64 = 0x2000;
const FLAG_ZSTD: u64 = 0x8000;

/// Why a fat binary could not be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FatbinError {
    /// Fewer bytes than a structure needs.
    #[error("fat binary truncated: {what} needs {need} bytes at offset {offset}, {have} present")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes it needs.
        need: u64,
        /// Bytes present from `offset`.
        have: u64,
    },
    /// The header magic is wrong: not a fat binary.
    #[error("not a fat binary (magic {0:#010x}, expected 0xba55ed50)")]
    BadMagic(u32),
    /// The wrapper magic is wrong.
    #[error("not a __fatBinC_Wrapper_t (magic {0:#010x}, expected 0x466243b1)")]
    BadWrapperMagic(u32),
    /// A header version this parser does not know.
    #[error("fat binary version {0} is not supported (only version 1)")]
    UnsupportedVersion(u16),
    /// A size field is impossible (too small or over a cap).
    #[error("fat binary field {what} is {value}, outside {min}..={max}")]
    BadSize {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A compressed payload does not decompress.
    #[error("fat binary entry at offset {offset}: {method} payload does not decompress: {reason}")]
    Decompress {
        /// Entry offset.
        offset: u64,
        /// `zstd` or `lz4`.
        method: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// An entry uses a compression this parser does not know.
    #[error("fat binary entry at offset {offset} has unknown compression flags {flags:#x}")]
    UnknownCompression {
        /// Entry offset.
        offset: u64,
        /// The entry's flags.
        flags: u64,
    },
    /// The fat binary carries only cubins.
    #[error(
        "fat binary has no PTX (only {archs} cubins); rebuild with `-gencode \
         arch=compute_{sm},code=compute_{sm}` or add PTX"
    )]
    NoPtx {
        /// The cubins' architectures, as `sm_75, sm_80`.
        archs: String,
        /// The architecture to suggest.
        sm: u32,
    },
    /// The PTX payload is not UTF-8 text.
    #[error("PTX of fat binary entry at offset {0} is not UTF-8 text")]
    PtxNotText(u64),
}

/// What an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// PTX text.
    Ptx,
    /// An ELF cubin.
    Cubin,
    /// A kind this parser does not know (kept, never run).
    Other(u16),
}

/// How an entry's payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Raw.
    None,
    /// LZ4 block format (flag `0x2000`).
    Lz4,
    /// A zstd frame (flag `0x8000`).
    Zstd,
}

/// One entry of a fat binary, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Offset of the entry header from the fat-binary header.
    pub offset: u64,
    /// What it holds.
    pub kind: EntryKind,
    /// Target architecture, e.g. 75 for `compute_75`/`sm_75`.
    pub arch: u32,
    /// PTX ISA version (major, minor) for PTX entries.
    pub ptx_version: (u16, u16),
    /// Raw flags.
    pub flags: u64,
    /// How the payload is stored.
    pub compression: Compression,
    /// Size after decompression, as the header states (0 when uncompressed).
    pub decompressed_len: u64,
    /// The stored payload (compressed bytes only, when compressed).
    pub payload: &'a [u8],
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(b)
}

fn need(data: &[u8], what: &'static str, offset: usize, len: u64) -> Result<(), FatbinError> {
    let have = data.len().saturating_sub(offset) as u64;
    if have < len {
        return Err(FatbinError::Truncated {
            what,
            offset: offset as u64,
            need: len,
            have,
        });
    }
    Ok(())
}

fn bounded(what: &'static str, value: u64, min: u64, max: u64) -> Result<usize, FatbinError> {
    if value < min || value > max {
        return Err(FatbinError::BadSize {
            what,
            value,
            min,
            max,
        });
    }
    usize::try_from(value).map_err(|_| FatbinError::BadSize {
        what,
        value,
        min,
        max: usize::MAX as u64,
    })
}

/// The data pointer of a `__fatBinC_Wrapper_t` (the first 24 bytes of `wrapper`): where the
/// fat binary itself starts, in the registering process's address space.
pub fn wrapper_data_pointer(wrapper: &[u8]) -> Result<u64, FatbinError> {
    crac_gpu::fatbin::wrapper_data_pointer(wrapper).map_err(FatbinError::from)
}

/// Total length of the fat binary whose first 16 bytes are `header`: what the shim must read
/// from the data pointer before calling [`parse`].
pub fn image_len(header: &[u8]) -> Result<usize, FatbinError> {
    crac_gpu::fatbin::image_len(header).map_err(FatbinError::from)
}

impl From<FatbinHeaderError> for FatbinError {
    fn from(e: FatbinHeaderError) -> FatbinError {
        match e {
            FatbinHeaderError::Truncated { what, need, have } => FatbinError::Truncated {
                what,
                offset: 0,
                need: need as u64,
                have: have as u64,
            },
            FatbinHeaderError::BadWrapperMagic(m) => FatbinError::BadWrapperMagic(m),
            FatbinHeaderError::BadMagic(m) => FatbinError::BadMagic(m),
            FatbinHeaderError::UnsupportedVersion(v) => FatbinError::UnsupportedVersion(v),
            FatbinHeaderError::BadSize {
                what,
                value,
                min,
                max,
            } => FatbinError::BadSize {
                what,
                value,
                min,
                max,
            },
        }
    }
}

/// The entries of the fat binary at the start of `data` (trailing bytes are ignored).
pub fn parse(data: &[u8]) -> Result<Vec<Entry<'_>>, FatbinError> {
    let total = image_len(data)?;
    need(data, "fat binary", 0, total as u64)?;
    let mut at = usize::from(u16_at(data, 6));
    let mut entries = Vec::new();
    while at < total {
        need(&data[..total], "entry header", at, ENTRY_MIN_HEADER as u64)?;
        let header_len = bounded(
            "entry header size",
            u64::from(u32_at(data, at + 4)),
            ENTRY_MIN_HEADER as u64,
            4096,
        )?;
        need(&data[..total], "entry header", at, header_len as u64)?;
        let size = u64_at(data, at + 8);
        let body = at + header_len;
        need(&data[..total], "entry payload", body, size)?;
        let size = bounded("entry size", size, 0, MAX_FATBIN_LEN)?;
        let flags = u64_at(data, at + 0x28);
        let compressed_len = u64::from(u32_at(data, at + 0x10));
        let decompressed_len = u64_at(data, at + 0x38);
        let compression = match flags & (FLAG_LZ4 | FLAG_ZSTD) {
            0 => Compression::None,
            FLAG_LZ4 => Compression::Lz4,
            FLAG_ZSTD => Compression::Zstd,
            _ => {
                return Err(FatbinError::UnknownCompression {
                    offset: at as u64,
                    flags,
                });
            }
        };
        let stored = if compression == Compression::None {
            size
        } else {
            bounded("compressed size", compressed_len, 1, size as u64)?
        };
        let kind = match u16_at(data, at) {
            1 => EntryKind::Ptx,
            2 => EntryKind::Cubin,
            k => EntryKind::Other(k),
        };
        entries.push(Entry {
            offset: at as u64,
            kind,
            arch: u32_at(data, at + 0x1c),
            ptx_version: (u16_at(data, at + 0x1a), u16_at(data, at + 0x18)),
            flags,
            compression,
            decompressed_len,
            payload: &data[body..body + stored],
        });
        at = body + size;
    }
    Ok(entries)
}

impl Entry<'_> {
    /// The payload, decompressed if it is stored compressed.
    pub fn contents(&self) -> Result<Vec<u8>, FatbinError> {
        let fail = |method, reason: String| FatbinError::Decompress {
            offset: self.offset,
            method,
            reason,
        };
        match self.compression {
            Compression::None => Ok(self.payload.to_vec()),
            Compression::Zstd => {
                let want = bounded(
                    "decompressed size",
                    self.decompressed_len,
                    0,
                    MAX_DECOMPRESSED_LEN,
                )?;
                let mut decoder = ruzstd::decoding::StreamingDecoder::new(self.payload)
                    .map_err(|e| fail("zstd", e.to_string()))?;
                let mut out = Vec::new();
                (&mut decoder)
                    .take(want as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| fail("zstd", e.to_string()))?;
                if out.len() != want {
                    return Err(fail(
                        "zstd",
                        format!("gave {} bytes, header says {want}", out.len()),
                    ));
                }
                Ok(out)
            }
            Compression::Lz4 => {
                let want = bounded(
                    "decompressed size",
                    self.decompressed_len,
                    0,
                    MAX_DECOMPRESSED_LEN,
                )?;
                lz4_block(self.payload, want).map_err(|reason| fail("lz4", reason))
            }
        }
    }

    /// The PTX text of a PTX entry (up to its first NUL: payloads are NUL-padded).
    pub fn ptx_text(&self) -> Result<String, FatbinError> {
        let mut bytes = self.contents()?;
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        String::from_utf8(bytes).map_err(|_| FatbinError::PtxNotText(self.offset))
    }
}

/// Decodes one LZ4 block (no frame) into exactly `want` bytes.
fn lz4_block(src: &[u8], want: usize) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(want.min(src.len().saturating_mul(255)));
    let mut i = 0;
    let byte = |i: usize| src.get(i).copied().ok_or("input ends inside a sequence");
    let length = |i: &mut usize, base: usize| -> Result<usize, String> {
        let mut len = base;
        if base == 15 {
            loop {
                let b = byte(*i)?;
                *i += 1;
                len = len.checked_add(usize::from(b)).ok_or("length overflows")?;
                if b != 255 {
                    break;
                }
            }
        }
        Ok(len)
    };
    while i < src.len() {
        let token = byte(i)?;
        i += 1;
        let literals = length(&mut i, usize::from(token >> 4))?;
        let end = i.checked_add(literals).filter(|&e| e <= src.len());
        let end = end.ok_or("literal run past the end of the input")?;
        if out.len() + literals > want {
            return Err(format!("output exceeds the stated {want} bytes"));
        }
        out.extend_from_slice(&src[i..end]);
        i = end;
        if i == src.len() {
            break;
        }
        let offset = usize::from(byte(i)?) | usize::from(byte(i + 1)?) << 8;
        i += 2;
        if offset == 0 || offset > out.len() {
            return Err(format!("match offset {offset} outside the output"));
        }
        let len = length(&mut i, usize::from(token & 15))? + 4;
        if out.len() + len > want {
            return Err(format!("output exceeds the stated {want} bytes"));
        }
        let from = out.len() - offset;
        for k in 0..len {
            out.push(out[from + k]);
        }
    }
    if out.len() != want {
        return Err(format!("gave {} bytes, header says {want}", out.len()));
    }
    Ok(out)
}

/// The PTX entry to run on a device of compute capability `sm` (e.g. 80): the highest PTX
/// architecture not above `sm`, else the highest there is.
pub fn select_ptx<'a>(entries: &[Entry<'a>], sm: u32) -> Result<Entry<'a>, FatbinError> {
    let ptx = entries.iter().filter(|e| e.kind == EntryKind::Ptx);
    let fitting = ptx.clone().filter(|e| e.arch <= sm).max_by_key(|e| e.arch);
    if let Some(best) = fitting.or_else(|| ptx.max_by_key(|e| e.arch)) {
        return Ok(*best);
    }
    let mut archs: Vec<u32> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Cubin)
        .map(|e| e.arch)
        .collect();
    archs.sort_unstable();
    archs.dedup();
    let suggest = archs.iter().copied().filter(|&a| a <= sm).max();
    let names: Vec<String> = archs.iter().map(|a| format!("sm_{a}")).collect();
    Err(FatbinError::NoPtx {
        archs: if names.is_empty() {
            "no".into()
        } else {
            names.join(", ")
        },
        sm: suggest.unwrap_or(sm),
    })
}

/// Parses `data`, picks the PTX for `sm` and returns its text with its architecture.
pub fn ptx_for(data: &[u8], sm: u32) -> Result<(String, u32), FatbinError> {
    let entries = parse(data)?;
    let entry = select_ptx(&entries, sm)?;
    Ok((entry.ptx_text()?, entry.arch))
}

#[cfg(test)]
pub(crate) mod tests {
    //! Fixtures in `tests/fixtures/fatbin_*.bin` are nvcc 13.0 builds of this kernel:
    //!
    //! ```cuda
    //! __device__ int counter = 5;
    //! __constant__ float coef[4] = {1, 2, 3, 4};
    //! __global__ void add(int *a, int n) {
    //!   int i = blockIdx.x * blockDim.x + threadIdx.x;
    //!   if (i < n) a[i] += counter + (int)coef[i % 4];
    //! }
    //! ```
    //!
    //! `nvcc -fatbin` with `-gencode arch=compute_75,code=compute_75` (`ptx_zstd`), plus
    //! `--no-compress` (`ptx_plain`), plus `-compress-mode=speed` (`ptx_lz4`);
    //! `arch=compute_75,code=sm_75` (`cubin_only`); and compute_75, compute_86, compute_90 PTX
    //! with an sm_80 cubin (`multi`).
    use super::*;
    use proptest::prelude::*;

    /// The bytes of `tests/fixtures/fatbin_<name>.bin`.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/fatbin_{name}.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn all_three_storage_forms_give_the_same_ptx() {
        let (plain, arch) = ptx_for(&fixture("ptx_plain"), 80).unwrap();
        assert_eq!(arch, 75);
        assert!(plain.contains(".entry _Z3addPii("), "{plain}");
        assert!(
            plain.contains(".global .align 4 .u32 counter = 5;"),
            "{plain}"
        );
        for name in ["ptx_zstd", "ptx_lz4"] {
            let data = fixture(name);
            let entries = parse(&data).unwrap();
            assert_eq!(entries.len(), 1);
            assert_ne!(entries[0].compression, Compression::None, "{name}");
            assert_eq!(entries[0].ptx_version, (9, 0));
            let (text, _) = ptx_for(&data, 80).unwrap();
            assert_eq!(text, plain, "{name}");
        }
    }

    #[test]
    fn cubin_only_says_how_to_rebuild() {
        let data = fixture("cubin_only");
        let entries = parse(&data).unwrap();
        assert_eq!(entries[0].kind, EntryKind::Cubin);
        assert_eq!(&entries[0].payload[..4], b"\x7fELF");
        let err = ptx_for(&data, 80).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fat binary has no PTX (only sm_75 cubins); rebuild with `-gencode \
             arch=compute_75,code=compute_75` or add PTX"
        );
    }

    #[test]
    fn best_ptx_is_the_highest_arch_not_above_the_device() {
        let data = fixture("multi");
        let entries = parse(&data).unwrap();
        let archs: Vec<_> = entries.iter().map(|e| (e.kind, e.arch)).collect();
        assert!(archs.contains(&(EntryKind::Cubin, 80)), "{archs:?}");
        for (sm, want) in [
            (75, 75),
            (80, 75),
            (86, 86),
            (89, 86),
            (90, 90),
            (120, 90),
            (70, 90),
        ] {
            assert_eq!(select_ptx(&entries, sm).unwrap().arch, want, "sm_{sm}");
        }
        let (text, _) = ptx_for(&data, 86).unwrap();
        assert!(text.contains(".target sm_86"), "{text}");
    }

    #[test]
    fn header_errors_are_specific() {
        let data = fixture("ptx_plain");
        assert_eq!(image_len(&data).unwrap(), data.len());
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert!(matches!(parse(&bad), Err(FatbinError::BadMagic(_))));
        let mut bad = data.clone();
        bad[4] = 2;
        assert_eq!(parse(&bad), Err(FatbinError::UnsupportedVersion(2)));
        assert!(matches!(
            parse(&data[..data.len() - 1]),
            Err(FatbinError::Truncated { .. })
        ));
        let mut bad = data.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&bad), Err(FatbinError::BadSize { .. })));
        let mut bad = data;
        bad[0x38] |= 0x40; // neither known compression bit: still raw
        bad[0x39] |= 0xa0; // both compression bits
        assert!(matches!(
            parse(&bad),
            Err(FatbinError::UnknownCompression { .. })
        ));
    }

    #[test]
    fn every_prefix_is_an_error_not_a_panic() {
        for name in ["ptx_zstd", "ptx_lz4", "multi"] {
            let data = fixture(name);
            for len in 0..data.len() {
                assert!(ptx_for(&data[..len], 80).is_err(), "{name} prefix {len}");
            }
        }
    }

    #[test]
    fn wrapper_gives_the_data_pointer() {
        let mut w = Vec::new();
        w.extend_from_slice(&WRAPPER_MAGIC.to_le_bytes());
        w.extend_from_slice(&1u32.to_le_bytes());
        w.extend_from_slice(&0x5555_1234u64.to_le_bytes());
        w.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(wrapper_data_pointer(&w), Ok(0x5555_1234));
        w[0] = 0;
        assert!(matches!(
            wrapper_data_pointer(&w),
            Err(FatbinError::BadWrapperMagic(_))
        ));
        assert!(wrapper_data_pointer(&w[..23]).is_err());
    }

    #[test]
    fn lz4_decodes_overlapping_matches_and_rejects_bad_offsets() {
        // "a" then a match of 7 at offset 1, then literal "b".
        let block = [0x13, b'a', 1, 0, 0x10, b'b'];
        assert_eq!(lz4_block(&block, 9).unwrap(), b"aaaaaaaab");
        assert!(lz4_block(&block, 8).is_err());
        assert!(lz4_block(&[0x13, b'a', 2, 0, 0x10, b'b'], 9).is_err());
        assert!(lz4_block(&[0xf0, 255], 300).is_err());
    }

    fn mutate(data: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
        let mut out = data.to_vec();
        for &(at, v) in edits {
            if !out.is_empty() {
                let i = at % out.len();
                out[i] = v;
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ptx_for(&data, 80);
            let mut with_magic = FATBIN_MAGIC.to_le_bytes().to_vec();
            with_magic.extend_from_slice(&data);
            let _ = ptx_for(&with_magic, 80);
        }

        #[test]
        fn mutated_fixtures_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let name = ["ptx_zstd", "ptx_lz4", "ptx_plain", "multi"][which];
            let data = mutate(&fixture(name), &edits);
            if let Ok(entries) = parse(&data) {
                for e in &entries {
                    if let Ok(bytes) = e.contents() {
                        prop_assert!(bytes.len() as u64 <= MAX_DECOMPRESSED_LEN);
                    }
                }
            }
            let _ = ptx_for(&data, 80);
        }

        #[test]
        fn random_lz4_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..256),
            want in 0usize..4096,
        ) {
            if let Ok(out) = lz4_block(&data, want) {
                prop_assert_eq!(out.len(), want);
            }
        }
    }
}
