//! The outer layer of an nvcc fat binary, as registration sees it: the `__fatBinC_Wrapper_t`
//! the program passes to `__cudaRegisterFatBinary`, and the fat-binary header that says how many
//! bytes to read from the wrapper's data pointer. Pure functions over bytes; the entries inside
//! are the backends' business (`crac_sim::fatbin` parses them, the driver loads them whole).
//!
//! ```text
//! __fatBinC_Wrapper_t, 24 bytes: u32 magic 0x466243b1 · u32 version · u64 data · u64 filename
//! fat-binary header, 16 bytes:   u32 magic 0xBA55ED50 · u16 version 1 · u16 header size ·
//!                                u64 size of the entries that follow
//! ```

use thiserror::Error;

/// Magic of the fat-binary header (`0xBA55ED50`).
pub const FATBIN_MAGIC: u32 = 0xBA55_ED50;
/// Magic of the `__fatBinC_Wrapper_t` struct nvcc registers (`0x466243b1`).
pub const WRAPPER_MAGIC: u32 = 0x4662_43B1;
/// Bytes of a `__fatBinC_Wrapper_t`.
pub const WRAPPER_LEN: usize = 24;
/// Bytes of the fat-binary header.
pub const HEADER_LEN: usize = 16;
/// Largest fat binary accepted (header plus entries).
pub const MAX_FATBIN_LEN: u64 = 1 << 31;

/// Why the wrapper or header is unusable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FatbinHeaderError {
    /// Fewer bytes than the structure needs.
    #[error("{what} truncated: {need} bytes needed, {have} present")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// The wrapper magic is wrong.
    #[error("not a __fatBinC_Wrapper_t (magic {0:#010x}, expected 0x466243b1)")]
    BadWrapperMagic(u32),
    /// The header magic is wrong.
    #[error("not a fat binary (magic {0:#010x}, expected 0xba55ed50)")]
    BadMagic(u32),
    /// A header version this parser does not know.
    #[error("fat binary version {0} is not supported (only version 1)")]
    UnsupportedVersion(u16),
    /// The header or total size is impossible.
    #[error("fat binary {what} is {value}, outside {min}..={max}")]
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
}

fn word<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut b = [0; N];
    b.copy_from_slice(&data[at..at + N]);
    b
}

fn need(data: &[u8], what: &'static str, len: usize) -> Result<(), FatbinHeaderError> {
    if data.len() < len {
        return Err(FatbinHeaderError::Truncated {
            what,
            need: len,
            have: data.len(),
        });
    }
    Ok(())
}

/// The data pointer of a `__fatBinC_Wrapper_t` (its first 24 bytes): where the fat binary
/// itself starts, in the registering process's address space.
pub fn wrapper_data_pointer(wrapper: &[u8]) -> Result<u64, FatbinHeaderError> {
    need(wrapper, "__fatBinC_Wrapper_t", WRAPPER_LEN)?;
    let magic = u32::from_le_bytes(word(wrapper, 0));
    if magic != WRAPPER_MAGIC {
        return Err(FatbinHeaderError::BadWrapperMagic(magic));
    }
    Ok(u64::from_le_bytes(word(wrapper, 8)))
}

/// Total length (header included) of the fat binary whose first 16 bytes are `header`: what
/// must be read from the data pointer before the entries can be parsed.
pub fn image_len(header: &[u8]) -> Result<usize, FatbinHeaderError> {
    need(header, "fat-binary header", HEADER_LEN)?;
    let magic = u32::from_le_bytes(word(header, 0));
    if magic != FATBIN_MAGIC {
        return Err(FatbinHeaderError::BadMagic(magic));
    }
    let version = u16::from_le_bytes(word(header, 4));
    if version != 1 {
        return Err(FatbinHeaderError::UnsupportedVersion(version));
    }
    let header_len = u64::from(u16::from_le_bytes(word(header, 6)));
    if !(HEADER_LEN as u64..=4096).contains(&header_len) {
        return Err(FatbinHeaderError::BadSize {
            what: "header size",
            value: header_len,
            min: HEADER_LEN as u64,
            max: 4096,
        });
    }
    let total = header_len.saturating_add(u64::from_le_bytes(word(header, 8)));
    if total > MAX_FATBIN_LEN {
        return Err(FatbinHeaderError::BadSize {
            what: "fat size",
            value: total,
            min: 0,
            max: MAX_FATBIN_LEN,
        });
    }
    usize::try_from(total).map_err(|_| FatbinHeaderError::BadSize {
        what: "fat size",
        value: total,
        min: 0,
        max: usize::MAX as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u16, header_len: u16, fat: u64) -> Vec<u8> {
        let mut h = FATBIN_MAGIC.to_le_bytes().to_vec();
        h.extend(version.to_le_bytes());
        h.extend(header_len.to_le_bytes());
        h.extend(fat.to_le_bytes());
        h
    }

    #[test]
    fn wrapper_gives_its_data_pointer() {
        let mut w = WRAPPER_MAGIC.to_le_bytes().to_vec();
        w.extend(1u32.to_le_bytes());
        w.extend(0x1234_5678u64.to_le_bytes());
        w.extend(0u64.to_le_bytes());
        assert_eq!(wrapper_data_pointer(&w), Ok(0x1234_5678));
        assert!(matches!(
            wrapper_data_pointer(&w[..20]),
            Err(FatbinHeaderError::Truncated { .. })
        ));
        w[0] ^= 1;
        assert!(matches!(
            wrapper_data_pointer(&w),
            Err(FatbinHeaderError::BadWrapperMagic(_))
        ));
    }

    #[test]
    fn header_gives_the_total_length_within_caps() {
        assert_eq!(image_len(&header(1, 16, 100)), Ok(116));
        assert_eq!(
            image_len(&header(2, 16, 100)),
            Err(FatbinHeaderError::UnsupportedVersion(2))
        );
        assert!(matches!(
            image_len(&header(1, 8, 100)),
            Err(FatbinHeaderError::BadSize { .. })
        ));
        assert!(matches!(
            image_len(&header(1, 16, u64::MAX)),
            Err(FatbinHeaderError::BadSize { .. })
        ));
        assert!(matches!(
            image_len(&[0u8; 4]),
            Err(FatbinHeaderError::Truncated { .. })
        ));
    }
}
