//! Encoding of the metadata sections: bincode 2 (standard configuration: little-endian,
//! variable-length integers) over the serde derives of [`super::model`].
//!
//! Decoding runs under a byte limit chosen from the section's length, so a length field inside a
//! section (a string's, a byte vector's) can never make the decoder allocate more than a few
//! times the section's own size; sequences of records grow only as their elements are actually
//! decoded from the (already length-capped and checksummed) bytes.

use bincode::config;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ImageError;
use super::layout::SectionKind;

/// Encodes one section's value.
pub(crate) fn encode<T: Serialize>(kind: SectionKind, value: &T) -> Result<Vec<u8>, ImageError> {
    bincode::serde::encode_to_vec(value, config::standard()).map_err(|source| {
        ImageError::EncodeSection {
            section: kind.name(),
            source,
        }
    })
}

/// Decodes one section's value; every byte of `bytes` must be used.
pub(crate) fn decode<T: DeserializeOwned>(
    kind: SectionKind,
    bytes: &[u8],
) -> Result<T, ImageError> {
    // The limit counts every byte read plus every string and byte-vector length claimed; four
    // times the section's length leaves room for both in any well-formed section.
    let need = bytes.len().saturating_mul(4);
    let decoded = if need <= 1 << 16 {
        decode_limited::<T, { 1 << 16 }>(bytes)
    } else if need <= 1 << 20 {
        decode_limited::<T, { 1 << 20 }>(bytes)
    } else if need <= 1 << 24 {
        decode_limited::<T, { 1 << 24 }>(bytes)
    } else if need <= 1 << 28 {
        decode_limited::<T, { 1 << 28 }>(bytes)
    } else {
        decode_limited::<T, { 1 << 32 }>(bytes)
    };
    let (value, used) = decoded.map_err(|source| ImageError::Decode {
        section: kind.name(),
        source,
    })?;
    if used != bytes.len() {
        return Err(ImageError::TrailingBytes {
            section: kind.name(),
            extra: (bytes.len() - used) as u64,
        });
    }
    Ok(value)
}

fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, config::standard().with_limit::<LIMIT>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{FdKind, FdRecord};

    #[test]
    fn a_huge_byte_vector_length_is_refused_without_allocating_it() {
        let fds = vec![FdRecord {
            fd: 3,
            cloexec: false,
            description: 0,
            kind: FdKind::AgentReply { reply: vec![1; 8] },
        }];
        let mut bytes = encode(SectionKind::Fds, &fds).unwrap();
        // The byte vector's length is its varint just before the 8 data bytes: make it 2^60.
        let at = bytes.len() - 9;
        assert_eq!(bytes[at], 8);
        bytes.splice(at..=at, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        let err = decode::<Vec<FdRecord>>(SectionKind::Fds, &bytes).unwrap_err();
        assert!(
            matches!(err, ImageError::Decode { section: "fds", .. }),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(
            SectionKind::Threads,
            &Vec::<crate::image::ThreadRecord>::new(),
        )
        .unwrap();
        bytes.push(0);
        let err = decode::<Vec<crate::image::ThreadRecord>>(SectionKind::Threads, &bytes);
        assert!(matches!(
            err,
            Err(ImageError::TrailingBytes { extra: 1, .. })
        ));
    }
}
