//! The payload references an [`ImageMeta`] holds, and the rules they obey in a well-formed
//! image (checked by the writer before the header goes in, and by the reader on open, so the
//! restorer can `mmap` a raw payload on the strength of its reference alone).

use super::layout::PAGE_SIZE;
use super::{Encoding, ImageError, ImageMeta, PayloadRef};

/// Who refers to a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadOwner {
    /// The page run starting at this address.
    Run(u64),
    /// The device buffer at this device address.
    DeviceBuffer(u64),
}

impl std::fmt::Display for PayloadOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadOwner::Run(addr) => write!(f, "page run at {addr:#x}"),
            PayloadOwner::DeviceBuffer(addr) => write!(f, "device buffer at {addr:#x}"),
        }
    }
}

/// One payload reference with its owner and the uncompressed length it must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadUse<'a> {
    /// Who refers to it.
    pub owner: PayloadOwner,
    /// The uncompressed length (the run's or buffer's `len`).
    pub len: u64,
    /// The reference.
    pub payload: &'a PayloadRef,
}

/// Every payload reference in `meta`: page runs in region order, then device buffers.
pub fn payload_uses(meta: &ImageMeta) -> impl Iterator<Item = PayloadUse<'_>> {
    let runs = meta
        .regions
        .iter()
        .flat_map(|r| &r.runs)
        .map(|run| PayloadUse {
            owner: PayloadOwner::Run(run.addr),
            len: run.len,
            payload: &run.payload,
        });
    let buffers = meta
        .cuda
        .iter()
        .flat_map(|c| &c.buffers)
        .map(|b| PayloadUse {
            owner: PayloadOwner::DeviceBuffer(b.addr),
            len: b.len,
            payload: &b.payload,
        });
    runs.chain(buffers)
}

/// Checks that `u` lies page-aligned inside the payload area `start..end` and that a raw
/// payload stores exactly its owner's length.
pub(crate) fn check_use(u: &PayloadUse<'_>, start: u64, end: u64) -> Result<(), ImageError> {
    let p = u.payload;
    let bad = |why: &'static str| {
        Err(ImageError::BadPayloadRef {
            owner: u.owner,
            offset: p.offset,
            stored_len: p.stored_len,
            why,
        })
    };
    if p.offset % PAGE_SIZE != 0 {
        return bad("its offset is not page-aligned");
    }
    let in_area = p
        .offset
        .checked_add(p.stored_len)
        .is_some_and(|stop| p.offset >= start && stop <= end);
    if !in_area {
        return bad("it lies outside the payload area");
    }
    match p.encoding {
        Encoding::Raw if p.stored_len != u.len => bad("a raw payload must store its whole length"),
        Encoding::Zstd if (p.stored_len == 0) != (u.len == 0) => {
            bad("a compressed payload is empty exactly when its contents are")
        }
        _ => Ok(()),
    }
}
