//! Streaming the planned regions into the image: each run of pages becomes one payload, written
//! straight from the program's memory in big slices (no second copy), or through a bounded
//! buffer from `/proc/self/mem` for memory that cannot be read directly.

use std::io::{Seek, Write};

use crac_core::image::{ImageWriter, PageRun, RegionRecord};

use super::procmem::ProcMem;
use super::regions::{PAGE, Plan, Source};
use super::{CheckpointError, Progress};
use crate::sys::memory::StoppedMemory;

/// Bytes handed to the writer at a time (and the progress step).
const SLICE: u64 = 64 << 20;
/// The bounce buffer for memory read through `/proc/self/mem`.
const BOUNCE: u64 = 8 << 20;

/// Total bytes the plans save.
pub fn total(plans: &[Plan]) -> u64 {
    plans
        .iter()
        .flat_map(|p| p.saves.iter())
        .map(|iv| iv.len())
        .sum()
}

/// Writes every planned run and returns the region records with their runs.
pub fn write<W: Write + Seek>(
    writer: &mut ImageWriter<W>,
    plans: Vec<Plan>,
    direct: &StoppedMemory<'_>,
    mem: &ProcMem,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<RegionRecord>, CheckpointError> {
    let mut p = Progress {
        done: 0,
        total: total(&plans),
    };
    progress(p);
    let mut bounce = Vec::new();
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut record = plan.record;
        for iv in &plan.saves {
            let mut sink = writer.begin_payload().map_err(CheckpointError::Image)?;
            let mut at = iv.start;
            while at < iv.end {
                let step = match plan.source {
                    Source::Direct => SLICE,
                    Source::ProcMem => BOUNCE,
                };
                let len = (iv.end - at).min(step);
                let written = match plan.source {
                    Source::Direct => match direct.bytes(at, len) {
                        Some(bytes) => sink.write_all(bytes),
                        None => {
                            bounce.resize(usize::try_from(len).unwrap_or(0), 0);
                            read_through(mem, at, &mut bounce);
                            sink.write_all(&bounce)
                        }
                    },
                    Source::ProcMem => {
                        bounce.resize(usize::try_from(len).unwrap_or(0), 0);
                        read_through(mem, at, &mut bounce);
                        sink.write_all(&bounce)
                    }
                };
                written.map_err(|source| CheckpointError::WriteMemory { addr: at, source })?;
                at += len;
                p.done += len;
                progress(p);
            }
            let payload = sink.finish().map_err(CheckpointError::Image)?;
            record.runs.push(PageRun {
                addr: iv.start,
                len: iv.len(),
                payload,
            });
        }
        out.push(record);
    }
    Ok(out)
}

/// Reads `buf.len()` bytes at `addr` through `/proc/self/mem`; pages that cannot be read (a
/// file mapping past the end of its file) are saved as zeros, as the program would fault on
/// them anyway.
fn read_through(mem: &ProcMem, addr: u64, buf: &mut [u8]) {
    if mem.read(addr, buf).is_ok() {
        return;
    }
    for (i, page) in buf
        .chunks_mut(usize::try_from(PAGE).unwrap_or(4096))
        .enumerate()
    {
        if mem.read(addr + i as u64 * PAGE, page).is_err() {
            page.fill(0);
        }
    }
}
