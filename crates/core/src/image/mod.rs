//! The checkpoint image: one file per checkpoint (layout and version rules in
//! `docs/image-format.md`).
//!
//! The agent streams payloads with [`ImageWriter::payload`] (or [`ImageWriter::begin_payload`]
//! … [`PayloadSink::finish`] for a run too large to hold), then calls [`ImageWriter::finish`]
//! with the metadata, whose [`PageRun`]s and [`DeviceBuffer`]s carry the [`PayloadRef`]s it was
//! given. [`ImageReader::open`] checks lengths, magic, version and checksums before it trusts
//! anything; payload checksums are checked when a payload is read or by
//! [`ImageReader::verify_payloads`].

mod codec;
pub mod durable;
pub mod layout;
pub mod model;
mod payload;
mod reader;
mod refs;
pub mod summary;
mod writer;

use std::io;

pub use layout::{FORMAT_VERSION, FixedHeader, PAGE_SIZE, SectionEntry, SectionKind};
pub use model::*;
pub use reader::{ImagePeek, ImageReader, peek, read_header};
pub use refs::{PayloadOwner, PayloadUse, payload_uses};
pub use summary::{CudaSummary, ImageSummary, summary};
pub use writer::{ImageWriter, PayloadSink};

/// Why an image could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Writing to the image file failed.
    #[error("cannot write the image: {source}; check free space and permissions")]
    WriteImage {
        /// The write's error.
        source: io::Error,
    },
    /// An earlier write failed, so the file is incomplete.
    #[error("an earlier write to this image failed; discard the file and write a new image")]
    WriterFailed,
    /// A metadata section could not be encoded.
    #[error("cannot encode the image's {section} section: {source}")]
    EncodeSection {
        /// The section.
        section: &'static str,
        /// The encoder's error.
        source: bincode::error::EncodeError,
    },
    /// The image file could not be opened.
    #[error("cannot open the image {}: {source}", path.display())]
    OpenImage {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Reading the image file failed.
    #[error("cannot read the image's {what}: {source}")]
    ReadImage {
        /// What was being read.
        what: &'static str,
        /// The read's error.
        source: io::Error,
    },
    /// The file ended before a part its (checked) header promised.
    #[error("the image ended while reading its {what}; was the file changed while it was read?")]
    EndedEarly {
        /// What was being read.
        what: &'static str,
    },
    /// The file does not start with crac's magic.
    #[error("not a crac image (it starts with {found:#018x}); check the path")]
    BadMagic {
        /// The first eight bytes, little-endian.
        found: u64,
    },
    /// The file is a crac image for another architecture.
    #[error("the image was written on {arch}; restart it on a machine of that architecture")]
    ForeignArch {
        /// The image's architecture.
        arch: &'static str,
    },
    /// The image's format major version is not this crac's.
    #[error(
        "the image is in format {major}.{minor}, which this crac (format {}.x) cannot read; use the crac that wrote it",
        layout::FORMAT_MAJOR
    )]
    UnsupportedVersion {
        /// The image's major version.
        major: u16,
        /// The image's minor version.
        minor: u16,
    },
    /// The file is shorter than a part of it needs.
    #[error(
        "the image is truncated ({section} needs {expected} bytes, the file has {got}); it was not completely written or copied, use another image"
    )]
    Truncated {
        /// The part that does not fit.
        section: &'static str,
        /// Bytes it needs.
        expected: u64,
        /// Bytes there are.
        got: u64,
    },
    /// A checksum did not match: the bytes changed after they were written.
    #[error("the image's {section} is corrupt (checksum mismatch); use another image")]
    ChecksumMismatch {
        /// The header or the section.
        section: &'static str,
    },
    /// A length is over its cap.
    #[error(
        "the image's {section} section is {len} bytes, over the {cap}-byte limit; when reading, use \
         another image (this one is corrupt), when writing, the program holds more fds, threads \
         or regions than an image can"
    )]
    TooLarge {
        /// The section.
        section: &'static str,
        /// Its length.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// The header's fields do not describe a well-formed image.
    #[error("the image's header is invalid: {what}; use another image")]
    BadHeader {
        /// What is wrong.
        what: String,
    },
    /// A section every image has is missing.
    #[error("the image has no {section} section; use another image")]
    MissingSection {
        /// The section.
        section: &'static str,
    },
    /// A section appears twice in the table.
    #[error("the image's section table lists the {section} section twice; use another image")]
    DuplicateSection {
        /// The section.
        section: &'static str,
    },
    /// A section's bytes (checksum correct) do not decode.
    #[error(
        "cannot decode the image's {section} section: {source}; use another image, or the crac \
         that wrote this one"
    )]
    Decode {
        /// The section.
        section: &'static str,
        /// The decoder's error.
        source: bincode::error::DecodeError,
    },
    /// A section decoded without using all its bytes.
    #[error(
        "the image's {section} section has {extra} bytes after its contents; use another image, \
         or the crac that wrote this one"
    )]
    TrailingBytes {
        /// The section.
        section: &'static str,
        /// How many bytes were left.
        extra: u64,
    },
    /// A payload reference in the metadata is not a well-formed one.
    #[error("the {owner}'s payload at {offset:#x} (+{stored_len}) is invalid: {why}")]
    BadPayloadRef {
        /// Who refers to the payload.
        owner: PayloadOwner,
        /// The reference's offset.
        offset: u64,
        /// The reference's stored length.
        stored_len: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// [`ImageReader::read_payload`] was given a reference outside the payload area.
    #[error("the payload at {offset:#x} (+{stored_len}) lies outside the image's payload area")]
    PayloadOutOfBounds {
        /// The reference's offset.
        offset: u64,
        /// The reference's stored length.
        stored_len: u64,
    },
    /// The destination's length is not the payload's.
    #[error("the payload at {offset:#x} holds {expected} bytes, but {got} were expected")]
    PayloadLength {
        /// The payload's offset.
        offset: u64,
        /// Its length.
        expected: u64,
        /// The length asked for.
        got: u64,
    },
    /// A payload's bytes do not match its checksum.
    #[error("the payload at {offset:#x} is corrupt (checksum mismatch); use another image")]
    PayloadChecksum {
        /// The payload's offset.
        offset: u64,
    },
    /// A compressed payload does not decompress.
    #[error("the compressed payload at {offset:#x} is corrupt: {what}; use another image")]
    PayloadDecompress {
        /// The payload's offset.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}
