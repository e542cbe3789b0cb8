//! Putting the program's memory back: reserve every saved interval first (before anything else
//! in `crac_restart` can map there), then replace the reservations with the regions.
//!
//! Raw payloads are `mmap`ed `MAP_PRIVATE` straight from the image (restart time does not grow
//! with memory size; pages are read on first touch), the rest of a private region is anonymous
//! zero memory. A region with very many runs, a payload that is compressed or not page-aligned,
//! `--eager`, and a file mapping the kernel refuses (an image on a `noexec` file system holding
//! executable pages) are read in instead, checksums checked. Every mapping is made with raw
//! system calls, so none is recorded as lower half.

use std::fs::File;
use std::os::fd::AsRawFd;

use crac_core::image::{Encoding, ImageReader, PageRun, RegionKind, RegionRecord, VdsoRecord};
use crac_core::procfs;

use super::RestoreError;
use crate::sys::memory::{self as mm, Backing, Reservation};

/// More runs than this in one region are read rather than mapped one by one (the kernel limits
/// a process to about 65530 mappings).
const MAX_MAPPED_RUNS: usize = 64;
const PROT_READ_WRITE: i32 = libc::PROT_READ | libc::PROT_WRITE;

fn prot(r: &RegionRecord) -> i32 {
    i32::try_from(r.prot & 7).unwrap_or(0)
}

/// What is mapped over `[start, end)` in this process, as maps lines.
fn in_the_way(start: u64, end: u64) -> String {
    let Ok(text) = std::fs::read_to_string("/proc/self/maps") else {
        return "something (cannot read /proc/self/maps)".into();
    };
    let Ok(entries) = procfs::parse_maps(&text) else {
        return "something (cannot parse /proc/self/maps)".into();
    };
    let hits: Vec<String> = entries
        .iter()
        .filter(|e| e.range.start < end && start < e.range.end)
        .map(|e| {
            let name = if e.path.is_empty() {
                "anonymous memory"
            } else {
                &e.path
            };
            format!("{:#x}-{:#x} {name}", e.range.start, e.range.end)
        })
        .collect();
    if hits.is_empty() {
        "something".into()
    } else {
        hits.join(", ")
    }
}

/// Reserves every region's interval (PROT_NONE, replacing nothing).
pub fn reserve_all(regions: &[RegionRecord]) -> Result<Vec<Reservation>, RestoreError> {
    let mut out = Vec::with_capacity(regions.len());
    for r in regions {
        // An inverted range is refused as the kernel refuses a bad one, never a panic.
        let reserved = match r.end.checked_sub(r.start) {
            Some(len) => mm::reserve(r.start, len),
            None => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
        };
        match reserved {
            Ok(res) => out.push(res),
            Err(source) if source.raw_os_error() == Some(libc::EEXIST) => {
                return Err(RestoreError::Collision {
                    start: r.start,
                    end: r.end,
                    name: r.name.clone(),
                    theirs: in_the_way(r.start, r.end),
                });
            }
            Err(source) => {
                return Err(RestoreError::Reserve {
                    start: r.start,
                    end: r.end,
                    source,
                });
            }
        }
    }
    Ok(out)
}

fn mappable(run: &PageRun) -> bool {
    run.payload.encoding == Encoding::Raw
        && run.payload.offset % 4096 == 0
        && run.payload.stored_len == run.len
}

/// Maps every region over its reservation (`reserved[i]` is `regions[i]`'s). Regions holding
/// an address of `anonymous` are read in, never mapped from the image: the kernel reads the
/// program's argv and environment for `/proc/PID/cmdline` and `environ` only from anonymous
/// memory.
pub fn map_all(
    reader: &mut ImageReader<File>,
    regions: &[RegionRecord],
    reserved: &[Reservation],
    eager: bool,
    anonymous: &[u64],
) -> Result<(), RestoreError> {
    for (r, res) in regions.iter().zip(reserved) {
        let read_in = eager || anonymous.iter().any(|a| r.start <= *a && *a < r.end);
        map_region(reader, r, res, read_in)?;
    }
    Ok(())
}

fn map_err(r: &RegionRecord) -> impl Fn(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::MapRegion {
        start: r.start,
        end: r.end,
        name: r.name.clone(),
        source,
    }
}

fn map_region(
    reader: &mut ImageReader<File>,
    r: &RegionRecord,
    res: &Reservation,
    eager: bool,
) -> Result<(), RestoreError> {
    // Reserved already, so the range is not inverted.
    let len = r.end.saturating_sub(r.start);
    match &r.kind {
        RegionKind::SharedFile { path, offset } => {
            let writable = r.prot & 2 != 0;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(writable)
                .open(path)
                .map_err(|source| RestoreError::OpenSharedFile {
                    path: path.clone(),
                    source,
                })?;
            let backing = Backing::File {
                fd: file.as_raw_fd(),
                offset: *offset,
                shared: true,
            };
            res.map(r.start, len, prot(r), backing).map_err(map_err(r))
        }
        RegionKind::SharedAnon => {
            let memfd = mm::memfd(len).map_err(map_err(r))?;
            let backing = Backing::File {
                fd: memfd.as_raw_fd(),
                offset: 0,
                shared: true,
            };
            res.map(r.start, len, PROT_READ_WRITE, backing)
                .map_err(map_err(r))?;
            for run in &r.runs {
                read_run(reader, res, run)?;
            }
            res.protect(r.start, len, prot(r)).map_err(map_err(r))
        }
        RegionKind::Private => {
            let lazy = !eager && r.runs.len() <= MAX_MAPPED_RUNS && r.runs.iter().all(mappable);
            res.map(r.start, len, prot(r), Backing::Anon)
                .map_err(map_err(r))?;
            let fd = reader.get_ref().as_raw_fd();
            for run in &r.runs {
                let backing = Backing::File {
                    fd,
                    offset: run.payload.offset,
                    shared: false,
                };
                // A refused file mapping (an image on a noexec file system) is read in.
                if !lazy || res.map(run.addr, run.len, prot(r), backing).is_err() {
                    read_run(reader, res, run)?;
                    res.protect(run.addr, run.len, prot(r))
                        .map_err(map_err(r))?;
                }
            }
            Ok(())
        }
    }
}

/// Reads one run's payload into its pages, checking its checksum.
fn read_run(
    reader: &mut ImageReader<File>,
    res: &Reservation,
    run: &PageRun,
) -> Result<(), RestoreError> {
    let read = res
        .fill(run.addr, run.len, |dst| {
            reader.read_payload(&run.payload, dst)
        })
        .map_err(|source| RestoreError::FillRegion {
            addr: run.addr,
            source,
        })?;
    read.map_err(|source| RestoreError::ReadPayload {
        addr: run.addr,
        source,
    })
}

/// Checks that this process's vdso is where the image's was. It is, with address
/// randomization off on the same kernel. Moving it is not an option: crac's own C library
/// looked up its vdso functions at start-up and would jump to the old address afterwards.
pub fn check_vdso(saved: &VdsoRecord, now: &VdsoRecord) -> Result<(), RestoreError> {
    if saved.vdso_start == 0 || saved.vdso_start == now.vdso_start {
        return Ok(());
    }
    Err(RestoreError::VdsoMoved {
        saved: saved.vdso_start,
        now: now.vdso_start,
    })
}
