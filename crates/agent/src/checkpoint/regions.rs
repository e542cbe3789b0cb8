//! Which memory a checkpoint saves, and how: every byte of `/proc/self/maps` that is not the
//! lower half's (cut by address intervals, never by whole lines) and not the kernel's, with the
//! pages that need saving.
//!
//! - Private anonymous memory: only pages the program ever touched (present or swapped in
//!   `/proc/self/pagemap`); the rest is zero. Runs closer than [`MERGE_GAP`] pages are merged
//!   so a sparse heap does not become thousands of payloads (and mappings at restart).
//! - Private file mappings: every page (it may differ from the file); straight from memory when
//!   the file covers the whole mapping, else through `/proc/self/mem`, so a page past the end
//!   of a shrunk file is an error, not a `SIGBUS` in the agent.
//! - Shared file mappings: nothing (mapped from the file again).
//! - Shared anonymous memory (and memfd, SysV shm, deleted files): every page, restored shared.
//! - `PROT_NONE` memory: only touched pages (guard pages and reservations have none).
//! - `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]` and `/dev/nvidia*`: never.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crac_core::image::{RegionKind, RegionRecord};
use crac_core::interval::{Interval, IntervalSet};
use crac_core::procfs::MapsEntry;

/// Page size.
pub const PAGE: u64 = 4096;
/// Untouched pages between two touched runs that are saved anyway to keep the runs few.
pub const MERGE_GAP: u64 = 8;
/// pagemap bits: page present, page swapped.
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;

/// How a region's bytes are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Straight from memory (readable private or shared anonymous memory).
    Direct,
    /// Through `/proc/self/mem`.
    ProcMem,
}

/// One region to save.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The record, without runs yet.
    pub record: RegionRecord,
    /// The byte ranges to save, page-aligned, in order.
    pub saves: Vec<Interval>,
    /// How to read them.
    pub source: Source,
}

fn prot(e: &MapsEntry) -> u32 {
    let mut p = 0;
    if e.perms.read {
        p |= 1;
    }
    if e.perms.write {
        p |= 2;
    }
    if e.perms.exec {
        p |= 4;
    }
    p
}

/// A shared mapping that can be mapped again from its file (not deleted, not a memfd, SysV
/// segment or `/dev/zero`).
fn is_remappable_file(e: &MapsEntry) -> bool {
    e.inode != 0
        && e.path.starts_with('/')
        && !e.path.ends_with(" (deleted)")
        && !e.path.starts_with("/memfd:")
        && !e.path.starts_with("/SYSV")
        && !e.path.starts_with("/dev/zero")
}

/// Whether the region is never saved.
fn skipped(e: &MapsEntry) -> bool {
    e.is_kernel() || e.path.starts_with("/dev/nvidia")
}

/// Plans the regions to save. `present` returns the touched pages of an interval (as runs),
/// `file_size` the size of a mapped file (`None` when unknown).
pub fn plan(
    maps: &[MapsEntry],
    lower: &IntervalSet,
    present: &mut dyn FnMut(Interval) -> io::Result<Vec<Interval>>,
    file_size: &mut dyn FnMut(&str) -> Option<u64>,
) -> io::Result<Vec<Plan>> {
    let mut out = Vec::new();
    for e in maps.iter().filter(|e| !skipped(e)) {
        for piece in lower.subtract_from(&e.range) {
            // Fail safe: a page the lower half owns only part of is saved whole (maps lines
            // are page-aligned, so the rounded piece stays inside its line).
            let piece = Interval::new(piece.start / PAGE * PAGE, piece.end.div_ceil(PAGE) * PAGE);
            let offset = e.offset + (piece.start - e.range.start);
            let prot = prot(e);
            let anon = e.inode == 0;
            let (kind, saves, source) = if e.perms.shared && is_remappable_file(e) {
                let kind = RegionKind::SharedFile {
                    path: e.path.clone(),
                    offset,
                };
                (kind, Vec::new(), Source::Direct)
            } else if e.perms.shared {
                let source = if e.perms.read {
                    Source::Direct
                } else {
                    Source::ProcMem
                };
                (RegionKind::SharedAnon, vec![piece], source)
            } else if anon && e.perms.read {
                (RegionKind::Private, present(piece)?, Source::Direct)
            } else if prot == 0 || anon {
                (RegionKind::Private, present(piece)?, Source::ProcMem)
            } else {
                let covered = e.perms.read
                    && file_size(&e.path).is_some_and(|size| offset + piece.len() <= size);
                let source = if covered {
                    Source::Direct
                } else {
                    Source::ProcMem
                };
                (RegionKind::Private, vec![piece], source)
            };
            out.push(Plan {
                record: RegionRecord {
                    start: piece.start,
                    end: piece.end,
                    prot,
                    kind,
                    name: e.path.clone(),
                    runs: Vec::new(),
                },
                saves,
                source,
            });
        }
    }
    Ok(out)
}

/// Touched-page runs from pagemap entries of the pages from `start` on, merging runs separated
/// by at most `max_gap` untouched pages.
pub fn runs_from_pagemap(start: u64, entries: &[u64], max_gap: u64) -> Vec<Interval> {
    let mut runs: Vec<Interval> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e & (PM_PRESENT | PM_SWAPPED) == 0 {
            continue;
        }
        let addr = start + i as u64 * PAGE;
        match runs.last_mut() {
            Some(last) if addr - last.end <= max_gap * PAGE => last.end = addr + PAGE,
            _ => runs.push(Interval::new(addr, addr + PAGE)),
        }
    }
    runs
}

/// Reads `/proc/self/pagemap` for `iv` and returns its touched runs.
pub fn present_runs(pagemap: &File, iv: Interval) -> io::Result<Vec<Interval>> {
    const CHUNK: u64 = 1 << 16; // pages per read (512 KiB of entries)
    let mut runs: Vec<Interval> = Vec::new();
    let mut buf = vec![0u8; usize::try_from(CHUNK * 8).unwrap_or(1 << 19)];
    let mut at = iv.start;
    while at < iv.end {
        // Rounded up: a partial last page is looked up too, and the loop always advances.
        let pages = (iv.end - at).div_ceil(PAGE).min(CHUNK);
        let bytes = &mut buf[..usize::try_from(pages * 8).unwrap_or(0)];
        pagemap.read_exact_at(bytes, at / PAGE * 8)?;
        let entries: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        for r in runs_from_pagemap(at, &entries, MERGE_GAP) {
            match runs.last_mut() {
                Some(last) if r.start - last.end <= MERGE_GAP * PAGE => last.end = r.end,
                _ => runs.push(r),
            }
        }
        at += pages * PAGE;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::procfs::parse_maps;

    const P: u64 = PAGE;

    fn maps(text: &str) -> Vec<MapsEntry> {
        parse_maps(text).unwrap()
    }

    /// Every page of anonymous memory counts as touched except those listed.
    fn all_but(untouched: Vec<u64>) -> impl FnMut(Interval) -> io::Result<Vec<Interval>> {
        move |iv| {
            let entries: Vec<u64> = (iv.start..iv.end)
                .step_by(4096)
                .map(|a| {
                    if untouched.contains(&a) {
                        0
                    } else {
                        PM_PRESENT
                    }
                })
                .collect();
            Ok(runs_from_pagemap(iv.start, &entries, 0))
        }
    }

    fn no_files(_: &str) -> Option<u64> {
        None
    }

    #[test]
    fn private_file_memory_is_read_directly_only_where_the_file_covers_it() {
        let m = maps(
            "10000-12000 r--p 00001000 08:01 77 /usr/lib/libx.so\n\
             12000-14000 rw-p 00002000 08:01 78 /data/short.bin\n",
        );
        let mut sizes = |p: &str| match p {
            "/usr/lib/libx.so" => Some(0x3000),
            _ => Some(0x3000),
        };
        let plans = plan(&m, &IntervalSet::new(), &mut all_but(vec![]), &mut sizes).unwrap();
        assert_eq!(plans[0].source, Source::Direct, "0x1000 + 0x2000 <= 0x3000");
        assert_eq!(plans[1].source, Source::ProcMem, "0x2000 + 0x2000 > 0x3000");
    }

    #[test]
    fn a_page_the_lower_half_owns_only_part_of_is_saved_whole() {
        let m = maps("10000-14000 rw-p 00000000 00:00 0\n");
        let mut lower = IntervalSet::new();
        lower.insert(Interval::new(0x10000, 0x11800));
        let plans = plan(&m, &lower, &mut all_but(vec![]), &mut no_files).unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].record.start, 0x11000);
        assert_eq!(plans[0].saves, vec![Interval::new(0x11000, 0x14000)]);
    }

    #[test]
    fn lower_memory_is_cut_out_of_a_merged_line() {
        let m = maps("10000-20000 rw-p 00000000 00:00 0 \n");
        let mut lower = IntervalSet::new();
        lower.insert(Interval::new(0x14000, 0x18000));
        let plans = plan(&m, &lower, &mut all_but(vec![0x11000]), &mut no_files).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(
            (plans[0].record.start, plans[0].record.end),
            (0x10000, 0x14000)
        );
        assert_eq!(
            plans[0].saves,
            vec![
                Interval::new(0x10000, 0x11000),
                Interval::new(0x12000, 0x14000)
            ]
        );
        assert_eq!(plans[0].source, Source::Direct);
        assert_eq!(
            (plans[1].record.start, plans[1].record.end),
            (0x18000, 0x20000)
        );
    }

    #[test]
    fn kernel_and_device_regions_are_never_saved() {
        let m = maps(
            "7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0 [vvar]\n\
             7ffff7fc5000-7ffff7fc7000 r-xp 00000000 00:00 0 [vdso]\n\
             7ffff0000000-7ffff0001000 rw-s 00000000 00:05 12 /dev/nvidiactl\n\
             ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n",
        );
        let plans = plan(&m, &IntervalSet::new(), &mut all_but(vec![]), &mut no_files).unwrap();
        assert!(plans.is_empty(), "{plans:?}");
    }

    #[test]
    fn files_shared_anonymous_and_prot_none_regions() {
        let m = maps(
            "10000-12000 r-xp 00001000 08:01 77 /usr/lib/libx.so\n\
             12000-13000 rw-s 00002000 08:01 78 /data/shared.bin\n\
             13000-15000 rw-s 00000000 00:01 99 /dev/zero (deleted)\n\
             15000-17000 ---p 00000000 00:00 0 \n\
             17000-18000 rw-s 00000000 08:01 79 /data/gone (deleted)\n",
        );
        let plans = plan(
            &m,
            &IntervalSet::new(),
            &mut all_but(vec![0x15000, 0x16000]),
            &mut no_files,
        )
        .unwrap();
        assert_eq!(plans[0].record.kind, RegionKind::Private);
        assert_eq!(
            plans[0].saves,
            vec![Interval::new(0x10000, 0x12000)],
            "all pages"
        );
        assert_eq!(plans[0].source, Source::ProcMem);
        assert_eq!(plans[0].record.prot, 5);
        assert_eq!(
            plans[1].record.kind,
            RegionKind::SharedFile {
                path: "/data/shared.bin".into(),
                offset: 0x2000
            }
        );
        assert!(plans[1].saves.is_empty());
        assert_eq!(plans[2].record.kind, RegionKind::SharedAnon);
        assert_eq!(plans[2].saves, vec![Interval::new(0x13000, 0x15000)]);
        assert!(
            plans[3].saves.is_empty(),
            "an untouched PROT_NONE reservation has no runs"
        );
        assert_eq!(plans[3].source, Source::ProcMem);
        assert_eq!(
            plans[4].record.kind,
            RegionKind::SharedAnon,
            "deleted file: contents"
        );
    }

    #[test]
    fn a_shared_file_cut_by_lower_memory_keeps_its_file_offset() {
        let m = maps("10000-14000 rw-s 00010000 08:01 78 /data/shared.bin\n");
        let mut lower = IntervalSet::new();
        lower.insert(Interval::new(0x10000, 0x11000));
        let plans = plan(&m, &lower, &mut all_but(vec![]), &mut no_files).unwrap();
        assert_eq!(
            plans[0].record.kind,
            RegionKind::SharedFile {
                path: "/data/shared.bin".into(),
                offset: 0x11000
            }
        );
    }

    #[test]
    fn pagemap_runs_merge_small_gaps() {
        let e = |v: &[u64]| v.iter().map(|x| x * PM_PRESENT).collect::<Vec<u64>>();
        let entries = e(&[1, 1, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            runs_from_pagemap(0x1000, &entries, 0),
            vec![
                Interval::new(0x1000, 0x3000),
                Interval::new(0x4000, 0x5000),
                Interval::new(0x8000, 0x9000)
            ]
        );
        assert_eq!(
            runs_from_pagemap(0x1000, &entries, 3),
            vec![Interval::new(0x1000, 0x9000)]
        );
        let swapped = [0, PM_SWAPPED, 0];
        assert_eq!(
            runs_from_pagemap(0, &swapped, 0),
            vec![Interval::new(P, 2 * P)]
        );
        assert!(runs_from_pagemap(0, &[0, 0], 8).is_empty());
    }

    #[test]
    fn present_runs_see_touched_pages_of_real_memory() {
        let mut v = vec![0u8; 64 * 4096];
        let base = (v.as_ptr() as u64).next_multiple_of(P);
        let off = usize::try_from(base - v.as_ptr() as u64).unwrap();
        v[off + 20 * 4096] = 1;
        let pagemap = File::open("/proc/self/pagemap").unwrap();
        let runs = present_runs(&pagemap, Interval::new(base, base + 32 * P)).unwrap();
        assert!(runs.iter().any(|r| r.contains(base + 20 * P)), "{runs:?}");
    }
}
