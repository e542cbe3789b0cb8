//! The checkpoint image: one file per checkpoint (layout in `docs/image-format.md`).
//!
//! CONTRACT (skeleton; the bodies are being written): the agent streams page payloads with
//! [`ImageWriter::payload`] (or [`ImageWriter::begin_payload`] … [`PayloadSink::finish`] for a
//! run too large to hold), then calls [`ImageWriter::finish`] with the metadata, whose
//! [`PageRun`]s carry the [`PayloadRef`]s it was given. The reader checks lengths, magic,
//! version and checksums before it trusts anything.

pub mod model;

use std::io::{self, Read, Seek, Write};

pub use model::*;

/// Why an image could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The underlying file failed.
    #[error("i/o error on the image: {0}")]
    Io(#[from] io::Error),
    /// Placeholder while the format is being written.
    #[error("the image format is not implemented yet")]
    NotImplemented,
}

/// Writes one image.
#[derive(Debug)]
pub struct ImageWriter<W: Write + Seek> {
    inner: W,
}

/// A payload being streamed; obtained from [`ImageWriter::begin_payload`].
#[derive(Debug)]
pub struct PayloadSink<'a, W: Write + Seek> {
    writer: &'a mut ImageWriter<W>,
}

impl<W: Write + Seek> ImageWriter<W> {
    /// Starts an image on `inner` (positioned at 0).
    pub fn new(inner: W) -> Result<Self, ImageError> {
        Ok(Self { inner })
    }

    /// Appends one raw, page-aligned payload.
    pub fn payload(&mut self, bytes: &[u8]) -> Result<PayloadRef, ImageError> {
        let mut sink = self.begin_payload()?;
        sink.write_all(bytes)?;
        sink.finish()
    }

    /// Starts a raw, page-aligned payload written in pieces.
    pub fn begin_payload(&mut self) -> Result<PayloadSink<'_, W>, ImageError> {
        Ok(PayloadSink { writer: self })
    }

    /// Writes the metadata and the header; returns the writer (the caller fsyncs and renames).
    pub fn finish(self, meta: &ImageMeta) -> Result<W, ImageError> {
        let _ = meta;
        let _ = &self.inner;
        Err(ImageError::NotImplemented)
    }
}

impl<W: Write + Seek> Write for PayloadSink<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.inner.flush()
    }
}

impl<W: Write + Seek> PayloadSink<'_, W> {
    /// Ends the payload and says where it is.
    pub fn finish(self) -> Result<PayloadRef, ImageError> {
        Err(ImageError::NotImplemented)
    }
}

/// Reads one image: the metadata is checked and decoded on open, payloads on demand.
#[derive(Debug)]
pub struct ImageReader<R: Read + Seek> {
    inner: R,
    meta: ImageMeta,
}

impl<R: Read + Seek> ImageReader<R> {
    /// Reads and checks the header and every metadata section.
    pub fn open(inner: R) -> Result<Self, ImageError> {
        let _ = inner;
        Err(ImageError::NotImplemented)
    }

    /// The decoded metadata.
    pub fn meta(&self) -> &ImageMeta {
        &self.meta
    }

    /// Reads one payload into `dst` (its uncompressed length) and checks its checksum.
    pub fn read_payload(&mut self, payload: &PayloadRef, dst: &mut [u8]) -> Result<(), ImageError> {
        let _ = (payload, dst, &mut self.inner);
        Err(ImageError::NotImplemented)
    }

    /// Checks every payload's checksum, reporting bytes checked so far to `progress`.
    pub fn verify_payloads(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), ImageError> {
        let _ = progress;
        Err(ImageError::NotImplemented)
    }

    /// The underlying file (for `mmap`ing raw payloads).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}
