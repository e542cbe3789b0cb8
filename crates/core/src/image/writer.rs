//! Writing an image: a zeroed header page, the payloads streamed straight through, the
//! metadata sections, and last the header page (its magic last of all), so that a file whose
//! write stopped anywhere before the end never reads as an image.

use std::io::{self, Seek, SeekFrom, Write};

use serde::Serialize;
use xxhash_rust::xxh3::{Xxh3Default, xxh3_64};

use super::layout::{
    FORMAT_VERSION, FixedHeader, HEADER_LEN, SectionEntry, SectionKind, page_align,
};
use super::payload::{
    ZSTD_CHUNK, compress_chunk, compress_chunks, compress_parallelism, write_hashed,
};
use super::refs::{check_use, payload_uses};
use super::{Encoding, ImageError, ImageMeta, PayloadRef, codec};

static ZEROS: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// Writes one image.
///
/// Payload bytes go to the underlying writer as they come (no copy, no buffering: give it big
/// slices); the checksum of a large slice is computed on a second thread while it is written.
/// After any failed write the writer refuses to go on ([`ImageError::WriterFailed`]): discard
/// the file.
#[derive(Debug)]
pub struct ImageWriter<W: Write + Seek> {
    inner: W,
    /// The file offset the next byte goes to (the writer never seeks before `finish`).
    pos: u64,
    encoding: Encoding,
    helper_threads: bool,
    failed: bool,
    /// Every payload written, in file order, to check the metadata's references against.
    written: Vec<PayloadRef>,
}

/// A payload being streamed; obtained from [`ImageWriter::begin_payload`]. Dropping it without
/// [`PayloadSink::finish`] leaves its bytes in the file, unreferenced.
pub struct PayloadSink<'a, W: Write + Seek> {
    writer: &'a mut ImageWriter<W>,
    offset: u64,
    stored_len: u64,
    hasher: Box<Xxh3Default>,
    /// Raw bytes waiting to fill a zstd chunk, and the framed chunks (zstd only).
    pending: Vec<u8>,
    framed: Vec<Vec<u8>>,
}

impl<W: Write + Seek> ImageWriter<W> {
    /// Starts an image on `inner`: rewinds it and writes a zeroed header page.
    pub fn new(mut inner: W) -> Result<Self, ImageError> {
        inner
            .seek(SeekFrom::Start(0))
            .and_then(|_| inner.write_all(&ZEROS))
            .map_err(|source| ImageError::WriteImage { source })?;
        Ok(Self {
            inner,
            pos: HEADER_LEN as u64,
            encoding: Encoding::Raw,
            helper_threads: true,
            failed: false,
            written: Vec::new(),
        })
    }

    /// Sets the encoding of the payloads that follow ([`Encoding::Raw`] by default: raw payloads
    /// can be `mmap`ed at restart and cost no CPU to write).
    pub fn set_encoding(&mut self, encoding: Encoding) {
        self.encoding = encoding;
    }

    /// [`ImageWriter::set_encoding`], builder style.
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Whether short-lived helper threads may be used (on by default): a raw slice of 1 MiB or
    /// more is checksummed on a second thread while it is written (without it the checksum
    /// costs about 5–10% of the write time at page-cache speed), and zstd compresses up to
    /// eight 1 MiB chunks at once on machines of four CPUs or more. Turn it off where creating
    /// threads is unwelcome.
    pub fn set_helper_threads(&mut self, on: bool) {
        self.helper_threads = on;
    }

    /// Appends one payload (page-aligned in the file).
    pub fn payload(&mut self, bytes: &[u8]) -> Result<PayloadRef, ImageError> {
        let mut sink = self.begin_payload()?;
        sink.write_all(bytes)
            .map_err(|source| ImageError::WriteImage { source })?;
        sink.finish()
    }

    /// Starts a payload written in pieces through the returned sink's [`Write`] impl.
    pub fn begin_payload(&mut self) -> Result<PayloadSink<'_, W>, ImageError> {
        self.pad_to_page()?;
        let (pending, framed) = match self.encoding {
            Encoding::Raw => (Vec::new(), Vec::new()),
            Encoding::Zstd => (Vec::with_capacity(ZSTD_CHUNK), Vec::new()),
        };
        Ok(PayloadSink {
            offset: self.pos,
            writer: self,
            stored_len: 0,
            hasher: Box::new(Xxh3Default::new()),
            pending,
            framed,
        })
    }

    /// Bytes written so far (the file offset of the next byte).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Checks `meta`'s payload references against the payloads written, writes the metadata
    /// sections and then the header; returns the writer (the caller fsyncs and renames).
    pub fn finish(mut self, meta: &ImageMeta) -> Result<W, ImageError> {
        self.pad_to_page()?;
        let payload_end = self.pos;
        self.check_refs(meta)?;
        let mut sections = Vec::with_capacity(SectionKind::ALL.len());
        let process = (&meta.header, &meta.process);
        self.section(&mut sections, SectionKind::Process, &process)?;
        self.section(&mut sections, SectionKind::Threads, &meta.threads)?;
        self.section(&mut sections, SectionKind::Signals, &meta.signals)?;
        self.section(&mut sections, SectionKind::Fds, &meta.fds)?;
        self.section(&mut sections, SectionKind::Regions, &meta.regions)?;
        if let Some(cuda) = &meta.cuda {
            self.section(&mut sections, SectionKind::Cuda, cuda)?;
        }
        let header = FixedHeader {
            version: FORMAT_VERSION,
            file_len: self.pos,
            payload_start: HEADER_LEN as u64,
            payload_end,
            sections,
        };
        let (magic, page) = header.encode()?;
        let inner = &mut self.inner;
        // The page without its magic first, then the magic: until that last write lands the
        // file has no valid magic.
        inner
            .flush()
            .and_then(|()| inner.seek(SeekFrom::Start(8)))
            .and_then(|_| inner.write_all(&page[8..]))
            .and_then(|()| inner.seek(SeekFrom::Start(0)))
            .and_then(|_| inner.write_all(&magic))
            .and_then(|()| inner.seek(SeekFrom::Start(header.file_len)))
            .and_then(|_| inner.flush())
            .map_err(|source| ImageError::WriteImage { source })?;
        Ok(self.inner)
    }

    fn section<T: Serialize>(
        &mut self,
        table: &mut Vec<SectionEntry>,
        kind: SectionKind,
        value: &T,
    ) -> Result<(), ImageError> {
        let bytes = codec::encode(kind, value)?;
        let len = bytes.len() as u64;
        if len > super::layout::SECTION_CAP {
            return Err(ImageError::TooLarge {
                section: kind.name(),
                len,
                cap: super::layout::SECTION_CAP,
            });
        }
        table.push(SectionEntry {
            id: kind.id(),
            flags: 0,
            offset: self.pos,
            len,
            checksum: xxh3_64(&bytes),
        });
        self.write_raw(&bytes)
    }

    /// Every reference must be exactly a payload this writer wrote.
    fn check_refs(&self, meta: &ImageMeta) -> Result<(), ImageError> {
        for u in payload_uses(meta) {
            check_use(&u, HEADER_LEN as u64, self.pos)?;
            // `written` is in file order; only empty payloads share an offset.
            let from = self
                .written
                .partition_point(|p| p.offset < u.payload.offset);
            let found = self.written[from..]
                .iter()
                .take_while(|p| p.offset == u.payload.offset)
                .any(|p| p == u.payload);
            if !found {
                return Err(ImageError::BadPayloadRef {
                    owner: u.owner,
                    offset: u.payload.offset,
                    stored_len: u.payload.stored_len,
                    why: "no payload this writer wrote matches it",
                });
            }
        }
        Ok(())
    }

    fn pad_to_page(&mut self) -> Result<(), ImageError> {
        let pad = page_align(self.pos) - self.pos;
        // pad < PAGE_SIZE, so it fits a usize.
        let pad = usize::try_from(pad).unwrap_or(0);
        self.write_raw(&ZEROS[..pad])
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ImageError> {
        self.check_usable()?;
        let written = self.inner.write_all(bytes);
        self.record(written, bytes.len())
    }

    fn check_usable(&self) -> Result<(), ImageError> {
        if self.failed {
            return Err(ImageError::WriterFailed);
        }
        Ok(())
    }

    /// Notes the outcome of writing `len` bytes.
    fn record(&mut self, written: io::Result<()>, len: usize) -> Result<(), ImageError> {
        match written {
            Ok(()) => {
                self.pos += len as u64;
                Ok(())
            }
            Err(source) => {
                self.failed = true;
                Err(ImageError::WriteImage { source })
            }
        }
    }
}

impl<W: Write + Seek + std::fmt::Debug> std::fmt::Debug for PayloadSink<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadSink")
            .field("offset", &self.offset)
            .field("stored_len", &self.stored_len)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Seek> PayloadSink<'_, W> {
    /// Ends the payload and says where it is.
    pub fn finish(mut self) -> Result<PayloadRef, ImageError> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.write_chunk(&pending)?;
        }
        self.writer.check_usable()?;
        let payload = PayloadRef {
            offset: self.offset,
            stored_len: self.stored_len,
            encoding: self.writer.encoding,
            checksum: self.hasher.digest(),
        };
        self.writer.written.push(payload);
        Ok(payload)
    }

    fn write_stored(&mut self, buf: &[u8], hash: bool) -> Result<(), ImageError> {
        let w = &mut *self.writer;
        w.check_usable()?;
        let written = if hash {
            write_hashed(&mut w.inner, &mut self.hasher, buf, w.helper_threads)
        } else {
            w.inner.write_all(buf)
        };
        w.record(written, buf.len())?;
        self.stored_len += buf.len() as u64;
        Ok(())
    }

    /// Compresses and writes one chunk of raw bytes (already hashed).
    fn write_chunk(&mut self, raw: &[u8]) -> Result<(), ImageError> {
        let mut framed = std::mem::take(&mut self.framed);
        framed.resize_with(1, Vec::new);
        compress_chunk(raw, &mut framed[0]);
        let r = self.write_stored(&framed[0], false);
        self.framed = framed;
        r
    }

    /// Compresses and writes whole chunks of raw bytes (already hashed), several at a time.
    fn write_chunks(&mut self, raw: &[u8]) -> Result<(), ImageError> {
        let mut framed = std::mem::take(&mut self.framed);
        let r = compress_chunks(raw, &mut framed)
            .map_err(|source| ImageError::WriteImage { source })
            .and_then(|()| framed.iter().try_for_each(|f| self.write_stored(f, false)));
        self.framed = framed;
        r
    }

    fn write_zstd(&mut self, mut buf: &[u8]) -> Result<(), ImageError> {
        self.hasher.update(buf);
        // Top up a partial chunk first, so chunks stay 1 MiB.
        if !self.pending.is_empty() {
            let take = (ZSTD_CHUNK - self.pending.len()).min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.pending.len() == ZSTD_CHUNK {
                let pending = std::mem::take(&mut self.pending);
                self.write_chunk(&pending)?;
                self.pending = pending;
                self.pending.clear();
            }
        }
        // Whole chunks straight from `buf`, a batch at a time (memory: one batch of frames).
        let batch = if self.writer.helper_threads {
            compress_parallelism()
        } else {
            1
        };
        while buf.len() >= ZSTD_CHUNK {
            let n = (buf.len() / ZSTD_CHUNK).min(batch);
            let (chunks, rest) = buf.split_at(n * ZSTD_CHUNK);
            if n == 1 {
                self.write_chunk(chunks)?;
            } else {
                self.write_chunks(chunks)?;
            }
            buf = rest;
        }
        self.pending.extend_from_slice(buf);
        Ok(())
    }
}

impl<W: Write + Seek> Write for PayloadSink<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = match self.writer.encoding {
            Encoding::Raw => self.write_stored(buf, true),
            Encoding::Zstd => self.write_zstd(buf),
        };
        r.map(|()| buf.len()).map_err(|e| match e {
            ImageError::WriteImage { source } => source,
            other => io::Error::other(other),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.inner.flush()
    }
}
