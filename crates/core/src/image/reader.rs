//! Reading an image: the header page and every metadata section are checked and decoded on
//! open (lengths capped first, then magic, version, checksums); payloads are read on demand.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use ruzstd::decoding::FrameDecoder;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::{Xxh3Default, xxh3_64};

use super::layout::{FixedHeader, HEADER_LEN, SECTION_CAP, SectionEntry, SectionKind};
use super::payload::{
    ChunkHeader, ZSTD_CHUNK, ZSTD_CHUNK_HEADER, ZSTD_CHUNK_STORED_CAP, decompress_chunk,
};
use super::refs::{check_use, payload_uses};
use super::{Encoding, ImageError, ImageHeader, ImageMeta, PayloadRef, ProcessRecord, codec};

/// Bytes read at a time when checking payloads.
const VERIFY_CHUNK: usize = 8 << 20;

/// Reads one image: the metadata is checked and decoded on open, payloads on demand.
#[derive(Debug)]
pub struct ImageReader<R: Read + Seek> {
    inner: R,
    header: FixedHeader,
    meta: ImageMeta,
}

impl ImageReader<File> {
    /// Opens the image file at `path` ([`ImageReader::open`] on it).
    pub fn open_path(path: &Path) -> Result<Self, ImageError> {
        let file = File::open(path).map_err(|source| ImageError::OpenImage {
            path: path.to_owned(),
            source,
        })?;
        Self::open(file)
    }
}

impl<R: Read + Seek> ImageReader<R> {
    /// Reads and checks the header and every metadata section, and checks that every payload
    /// reference lies in the payload area (a raw one page-aligned and of its owner's length).
    pub fn open(mut inner: R) -> Result<Self, ImageError> {
        let header = read_header(&mut inner)?;
        let mut seen = Vec::new();
        for s in &header.sections {
            if let Some(kind) = SectionKind::from_id(s.id) {
                if seen.contains(&kind) {
                    return Err(ImageError::DuplicateSection {
                        section: kind.name(),
                    });
                }
                seen.push(kind);
            }
        }
        let mut section = |kind: SectionKind| -> Result<Option<Vec<u8>>, ImageError> {
            match header.sections.iter().find(|s| s.id == kind.id()) {
                Some(entry) => read_section(&mut inner, kind, entry).map(Some),
                None => Ok(None),
            }
        };
        let (img_header, process) = required(&mut section, SectionKind::Process)?;
        let meta = ImageMeta {
            header: img_header,
            process,
            threads: required(&mut section, SectionKind::Threads)?,
            signals: required(&mut section, SectionKind::Signals)?,
            fds: required(&mut section, SectionKind::Fds)?,
            regions: required(&mut section, SectionKind::Regions)?,
            cuda: match section(SectionKind::Cuda)? {
                Some(bytes) => Some(codec::decode(SectionKind::Cuda, &bytes)?),
                None => None,
            },
        };
        for u in payload_uses(&meta) {
            check_use(&u, header.payload_start, header.payload_end)?;
        }
        Ok(Self {
            inner,
            header,
            meta,
        })
    }

    /// The decoded metadata.
    pub fn meta(&self) -> &ImageMeta {
        &self.meta
    }

    /// The header page: format version, file length, payload area and section table.
    pub fn header(&self) -> &FixedHeader {
        &self.header
    }

    /// Reads one payload into `dst` (its uncompressed length) and checks its checksum.
    pub fn read_payload(&mut self, payload: &PayloadRef, dst: &mut [u8]) -> Result<(), ImageError> {
        self.check_in_area(payload)?;
        let stored_len = payload.stored_len;
        seek(&mut self.inner, payload.offset)?;
        match payload.encoding {
            Encoding::Raw => {
                if dst.len() as u64 != stored_len {
                    return Err(ImageError::PayloadLength {
                        offset: payload.offset,
                        expected: stored_len,
                        got: dst.len() as u64,
                    });
                }
                read_exact(&mut self.inner, dst, "payload")?;
            }
            Encoding::Zstd => {
                let mut frame = Vec::new();
                let mut filled = 0;
                let mut decoder = FrameDecoder::new();
                read_zstd(&mut self.inner, payload, &mut frame, |h, frame| {
                    let Some(out) = dst.get_mut(filled..filled + h.raw_len) else {
                        return Err(format!("more than the {} bytes expected", dst.len()));
                    };
                    decompress_chunk(&mut decoder, frame, out)?;
                    filled += h.raw_len;
                    Ok(())
                })?;
                if filled != dst.len() {
                    return Err(ImageError::PayloadLength {
                        offset: payload.offset,
                        expected: dst.len() as u64,
                        got: filled as u64,
                    });
                }
            }
        }
        if xxh3_64(dst) != payload.checksum {
            return Err(ImageError::PayloadChecksum {
                offset: payload.offset,
            });
        }
        Ok(())
    }

    /// Reads one payload of uncompressed length `len` in pieces (at most `chunk` bytes each when
    /// raw, one zstd chunk each when compressed), then checks the checksum of the whole: memory
    /// use stays bounded for a payload of any size (device memory). Each piece is handed to
    /// `sink` as a buffer of the piece's length, and `sink` gives back the buffer to fill next
    /// (the same one, or another it has finished with: so a consumer on another thread can
    /// work on one piece while the next is read, with no copy). `sink` has seen the bytes
    /// before a bad checksum is reported, so whatever it built must be discarded on error. A
    /// sink error stops the read and comes back as the inner `Err`.
    pub fn stream_payload<E>(
        &mut self,
        payload: &PayloadRef,
        len: u64,
        chunk: usize,
        sink: &mut dyn FnMut(Vec<u8>) -> Result<Vec<u8>, E>,
    ) -> Result<Result<(), E>, ImageError> {
        self.check_in_area(payload)?;
        seek(&mut self.inner, payload.offset)?;
        let mut h = Xxh3Default::new();
        let mut seen = 0u64;
        let mut buf = Vec::new();
        match payload.encoding {
            Encoding::Raw => {
                if len != payload.stored_len {
                    return Err(ImageError::PayloadLength {
                        offset: payload.offset,
                        expected: payload.stored_len,
                        got: len,
                    });
                }
                while seen < len {
                    let n = usize::try_from(len - seen)
                        .unwrap_or(usize::MAX)
                        .min(chunk.max(1));
                    buf.resize(n, 0);
                    read_exact(&mut self.inner, &mut buf, "payload")?;
                    h.update(&buf);
                    seen += n as u64;
                    buf = match sink(std::mem::take(&mut buf)) {
                        Ok(next) => next,
                        Err(e) => return Ok(Err(e)),
                    };
                }
            }
            Encoding::Zstd => {
                let mut frame = Vec::new();
                let mut decoder = FrameDecoder::new();
                let mut stopped = None;
                let walked = read_zstd(&mut self.inner, payload, &mut frame, |ch, f| {
                    buf.resize(ch.raw_len, 0);
                    decompress_chunk(&mut decoder, f, &mut buf)?;
                    h.update(&buf);
                    seen += ch.raw_len as u64;
                    if seen > len {
                        return Err(format!("more than the {len} bytes expected"));
                    }
                    match sink(std::mem::take(&mut buf)) {
                        Ok(next) => {
                            buf = next;
                            Ok(())
                        }
                        Err(e) => {
                            stopped = Some(e);
                            Err(String::new())
                        }
                    }
                });
                if let Some(e) = stopped {
                    return Ok(Err(e));
                }
                walked?;
                if seen != len {
                    return Err(ImageError::PayloadLength {
                        offset: payload.offset,
                        expected: len,
                        got: seen,
                    });
                }
            }
        }
        if h.digest() != payload.checksum {
            return Err(ImageError::PayloadChecksum {
                offset: payload.offset,
            });
        }
        Ok(Ok(()))
    }

    /// Checks every payload's checksum, reporting `(bytes checked, total)` of stored bytes to
    /// `progress` after each piece. Memory use is bounded (8 MiB at a time).
    pub fn verify_payloads(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), ImageError> {
        let mut refs: Vec<PayloadRef> = payload_uses(&self.meta).map(|u| *u.payload).collect();
        refs.sort_by_key(|p| p.offset);
        refs.dedup();
        let total = refs.iter().map(|p| p.stored_len).sum();
        let mut done = 0;
        let mut buf = Vec::new();
        let mut raw = Vec::new();
        let mut decoder = FrameDecoder::new();
        for p in &refs {
            seek(&mut self.inner, p.offset)?;
            let mut h = Xxh3Default::new();
            match p.encoding {
                Encoding::Raw => {
                    buf.resize(VERIFY_CHUNK, 0);
                    let mut left = p.stored_len;
                    while left > 0 {
                        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                        read_exact(&mut self.inner, &mut buf[..n], "payload")?;
                        h.update(&buf[..n]);
                        left -= n as u64;
                        done += n as u64;
                        progress(done, total);
                    }
                }
                Encoding::Zstd => {
                    raw.resize(ZSTD_CHUNK, 0);
                    read_zstd(&mut self.inner, p, &mut buf, |ch, frame| {
                        let out = &mut raw[..ch.raw_len];
                        decompress_chunk(&mut decoder, frame, out)?;
                        h.update(out);
                        done += (ZSTD_CHUNK_HEADER + ch.stored_len) as u64;
                        progress(done, total);
                        Ok(())
                    })?;
                }
            }
            if h.digest() != p.checksum {
                return Err(ImageError::PayloadChecksum { offset: p.offset });
            }
        }
        Ok(())
    }

    /// The underlying file (for `mmap`ing raw payloads).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Gives the underlying file back.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn check_in_area(&self, p: &PayloadRef) -> Result<(), ImageError> {
        let inside = p.offset.checked_add(p.stored_len).is_some_and(|end| {
            p.offset >= self.header.payload_start && end <= self.header.payload_end
        });
        if inside {
            Ok(())
        } else {
            Err(ImageError::PayloadOutOfBounds {
                offset: p.offset,
                stored_len: p.stored_len,
            })
        }
    }
}

/// Reads and checks only the header page (magic, version, checksum, and that the file is as
/// long as it says): a cheap test of whether a file is a complete image, for directory scans.
pub fn read_header<R: Read + Seek>(inner: &mut R) -> Result<FixedHeader, ImageError> {
    let actual_len = inner
        .seek(SeekFrom::End(0))
        .map_err(|source| ImageError::ReadImage {
            what: "length",
            source,
        })?;
    seek(inner, 0)?;
    let want = usize::try_from(actual_len.min(HEADER_LEN as u64)).unwrap_or(HEADER_LEN);
    let mut page = vec![0u8; want];
    read_exact(inner, &mut page, "header")?;
    FixedHeader::decode(&page, actual_len)
}

/// The header page and the process section of an image, read without the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePeek {
    /// The header page.
    pub fixed: FixedHeader,
    /// Provenance and fingerprints.
    pub header: ImageHeader,
    /// Process-wide state (program, argv, checkpoint policy, …).
    pub process: ProcessRecord,
}

/// Reads and checks the header page and the process section only: enough to pick the newest
/// image of a program in a directory, or to check its build-id, without decoding the rest.
pub fn peek<R: Read + Seek>(inner: &mut R) -> Result<ImagePeek, ImageError> {
    let fixed = read_header(inner)?;
    let kind = SectionKind::Process;
    let entry =
        fixed
            .sections
            .iter()
            .find(|s| s.id == kind.id())
            .ok_or(ImageError::MissingSection {
                section: kind.name(),
            })?;
    let bytes = read_section(inner, kind, entry)?;
    let (header, process) = codec::decode(kind, &bytes)?;
    Ok(ImagePeek {
        fixed,
        header,
        process,
    })
}

fn required<T: DeserializeOwned>(
    section: &mut impl FnMut(SectionKind) -> Result<Option<Vec<u8>>, ImageError>,
    kind: SectionKind,
) -> Result<T, ImageError> {
    match section(kind)? {
        Some(bytes) => codec::decode(kind, &bytes),
        None => Err(ImageError::MissingSection {
            section: kind.name(),
        }),
    }
}

/// Reads one section after capping its length; the header check already put it inside the
/// file.
fn read_section<R: Read + Seek>(
    inner: &mut R,
    kind: SectionKind,
    entry: &SectionEntry,
) -> Result<Vec<u8>, ImageError> {
    if entry.len > SECTION_CAP {
        return Err(ImageError::TooLarge {
            section: kind.name(),
            len: entry.len,
            cap: SECTION_CAP,
        });
    }
    if entry.flags != 0 {
        return Err(ImageError::BadHeader {
            what: format!(
                "section {} has encoding flags {:#x}",
                kind.name(),
                entry.flags
            ),
        });
    }
    let len = usize::try_from(entry.len).unwrap_or(usize::MAX);
    let mut bytes = vec![0u8; len];
    seek(inner, entry.offset)?;
    read_exact(inner, &mut bytes, kind.name())?;
    if xxh3_64(&bytes) != entry.checksum {
        return Err(ImageError::ChecksumMismatch {
            section: kind.name(),
        });
    }
    Ok(bytes)
}

/// Walks the chunks of a zstd payload (the reader is at its offset), handing each chunk's
/// header and frame to `chunk`. `frame` is scratch space.
fn read_zstd<R: Read>(
    inner: &mut R,
    p: &PayloadRef,
    frame: &mut Vec<u8>,
    mut chunk: impl FnMut(ChunkHeader, &[u8]) -> Result<(), String>,
) -> Result<(), ImageError> {
    let bad = |what: String| ImageError::PayloadDecompress {
        offset: p.offset,
        what,
    };
    frame.resize(ZSTD_CHUNK_STORED_CAP, 0);
    let mut left = p.stored_len;
    while left > 0 {
        if left < ZSTD_CHUNK_HEADER as u64 {
            return Err(bad(format!("{left} stray bytes after the last chunk")));
        }
        let mut head = [0u8; ZSTD_CHUNK_HEADER];
        read_exact(inner, &mut head, "payload")?;
        left -= ZSTD_CHUNK_HEADER as u64;
        let h = ChunkHeader::parse(head, left).map_err(bad)?;
        let f = &mut frame[..h.stored_len];
        read_exact(inner, f, "payload")?;
        left -= h.stored_len as u64;
        chunk(h, f).map_err(bad)?;
    }
    Ok(())
}

fn seek<R: Seek>(inner: &mut R, offset: u64) -> Result<(), ImageError> {
    inner
        .seek(SeekFrom::Start(offset))
        .map(drop)
        .map_err(|source| ImageError::ReadImage {
            what: "image",
            source,
        })
}

fn read_exact<R: Read>(
    inner: &mut R,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), ImageError> {
    inner.read_exact(buf).map_err(|source| {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            ImageError::EndedEarly { what }
        } else {
            ImageError::ReadImage { what, source }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::image::{CudaRecord, DeviceBuffer, ImageWriter};

    /// An image whose only payload is `bytes`, stored with `encoding`.
    fn image(bytes: &[u8], encoding: Encoding) -> (Vec<u8>, PayloadRef) {
        let mut w = ImageWriter::new(Cursor::new(Vec::new()))
            .expect("writer")
            .with_encoding(encoding);
        let payload = w.payload(bytes).expect("payload");
        let meta = ImageMeta {
            cuda: Some(CudaRecord {
                log: Vec::new(),
                buffers: vec![DeviceBuffer {
                    addr: 0x1000,
                    len: bytes.len() as u64,
                    label: "malloc".into(),
                    payload,
                }],
            }),
            ..ImageMeta::default()
        };
        (w.finish(&meta).expect("finish").into_inner(), payload)
    }

    fn stream(
        file: Vec<u8>,
        p: &PayloadRef,
        len: u64,
        chunk: usize,
    ) -> Result<Vec<u8>, ImageError> {
        let mut r = ImageReader::open(Cursor::new(file)).expect("open");
        let mut got = Vec::new();
        let mut pieces = 0;
        let inner = r.stream_payload(p, len, chunk, &mut |piece: Vec<u8>| {
            assert!(piece.len() <= chunk.max(ZSTD_CHUNK));
            pieces += 1;
            got.extend_from_slice(&piece);
            // Every other piece is read into a fresh buffer.
            Ok::<_, ()>(if pieces % 2 == 0 { Vec::new() } else { piece })
        })?;
        assert_eq!(inner, Ok(()));
        assert!(len == 0 || pieces > 0);
        Ok(got)
    }

    #[test]
    fn a_streamed_payload_is_the_payload_in_pieces() {
        let bytes: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 % 253) as u8).collect();
        for encoding in [Encoding::Raw, Encoding::Zstd] {
            let (file, p) = image(&bytes, encoding);
            let got = stream(file, &p, bytes.len() as u64, 65_536).expect("stream");
            assert!(got == bytes, "{encoding:?}");
        }
        let (file, p) = image(&[], Encoding::Raw);
        assert_eq!(stream(file, &p, 0, 4096).expect("empty"), Vec::<u8>::new());
    }

    #[test]
    fn a_damaged_or_misdescribed_payload_is_an_error_and_a_sink_error_stops_the_read() {
        let bytes = vec![5u8; 100_000];
        for encoding in [Encoding::Raw, Encoding::Zstd] {
            let (mut file, p) = image(&bytes, encoding);
            let at = usize::try_from(p.offset + p.stored_len / 2).expect("offset");
            file[at] ^= 1;
            let e = stream(file, &p, bytes.len() as u64, 4096).expect_err("damaged");
            assert!(
                matches!(
                    e,
                    ImageError::PayloadChecksum { .. } | ImageError::PayloadDecompress { .. }
                ),
                "{encoding:?}: {e}"
            );
            let (file, p) = image(&bytes, encoding);
            let e = stream(file, &p, 99_999, 4096).expect_err("wrong length");
            assert!(
                matches!(
                    e,
                    ImageError::PayloadLength { .. } | ImageError::PayloadDecompress { .. }
                ),
                "{encoding:?}: {e}"
            );
            let (file, p) = image(&bytes, encoding);
            let mut r = ImageReader::open(Cursor::new(file)).expect("open");
            let mut calls = 0;
            let inner = r
                .stream_payload(&p, 100_000, 4096, &mut |_| {
                    calls += 1;
                    Err("device full")
                })
                .expect("read");
            assert_eq!((inner, calls), (Err("device full"), 1), "{encoding:?}");
        }
    }
}
