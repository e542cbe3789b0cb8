//! The answer to a status request: the process's threads and every mapped byte, each tagged
//! with the half it belongs to.
//!
//! Every `/proc` file is opened and moved to crac's high fd range at once (see [`open_high`]),
//! so the program never finds one of its fd numbers taken while a request is answered.
//!
//! Memory is classified by address intervals, never by maps lines: each line is cut against the
//! lower half's interval set, so a line that merged an upper and a lower mapping yields one
//! region per side. Kernel regions (`[vdso]`, `[vvar]`, …) belong to neither half.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crac_core::interval::{Interval, IntervalSet};
use crac_core::procfs::{self, MapsEntry, ProcfsError};
use crac_core::protocol::{Half, Region, StatusReport, ThreadInfo};

use crate::guard::Guarded;
use crate::lower::LowerHalf;
use crate::sys;

/// Why the status could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Reading a `/proc/self` file failed.
    #[error("cannot read {path}: {source}")]
    ReadProc {
        /// The file.
        path: &'static str,
        /// Why.
        source: io::Error,
    },
    /// `/proc/self/maps` did not parse.
    #[error(transparent)]
    Maps(#[from] ProcfsError),
}

/// Gathers the status of this process from `/proc/self` and the lower half's record.
pub fn collect(lower: &dyn LowerHalf) -> Result<StatusReport, StatusError> {
    let threads = read_threads(lower)?;
    // Read the intervals before the maps text: the agent's own allocations made meanwhile then
    // show up as program memory rather than vanish; never the other way round.
    let intervals = lower.intervals();
    let lower_tids = lower.tids();
    let maps =
        read_high(lower, Path::new("/proc/self/maps")).map_err(|source| StatusError::ReadProc {
            path: "/proc/self/maps",
            source,
        })?;
    let maps = procfs::parse_maps(&maps)?;
    Ok(build_report(
        i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        &maps,
        &intervals,
        &threads,
        &lower_tids,
    ))
}

/// Opens `path` read-only and moves the fd to crac's high range at once: the kernel gives the
/// lowest free number, which is the program's, and it must not keep it longer than that.
fn open_high(lower: &dyn LowerHalf, path: &Path) -> io::Result<Guarded<File>> {
    let low = OwnedFd::from(File::open(path)?);
    Guarded::new(File::from(lower.protect_fd(low)?))
}

/// The whole text of `path`, read through an fd in crac's range.
fn read_high(lower: &dyn LowerHalf, path: &Path) -> io::Result<String> {
    let file = open_high(lower, path)?;
    let mut text = String::new();
    (&*file).read_to_string(&mut text)?;
    Ok(text)
}

/// Every thread of this process as `(tid, name)`; threads that exit while being read are left
/// out.
fn read_threads(lower: &dyn LowerHalf) -> Result<Vec<(i32, String)>, StatusError> {
    let read_err = |source| StatusError::ReadProc {
        path: "/proc/self/task",
        source,
    };
    let task = Path::new("/proc/self/task");
    let names = open_high(lower, task)
        .and_then(|dir| sys::dir_names(dir.as_fd()))
        .map_err(read_err)?;
    let mut out = Vec::new();
    for name in names {
        let Some(tid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(comm) = read_high(lower, &task.join(&name).join("comm")) {
            out.push((tid, procfs::parse_comm(&comm).to_owned()));
        }
    }
    Ok(out)
}

/// Builds the report from parsed maps, the lower half's intervals and tids, and the threads.
pub fn build_report(
    pid: i32,
    maps: &[MapsEntry],
    lower: &IntervalSet,
    threads: &[(i32, String)],
    lower_tids: &[i32],
) -> StatusReport {
    let mut threads: Vec<ThreadInfo> = threads
        .iter()
        .map(|(tid, name)| ThreadInfo {
            tid: *tid,
            name: name.clone(),
            half: if lower_tids.contains(tid) {
                Half::Lower
            } else {
                Half::Upper
            },
        })
        .collect();
    threads.sort_by_key(|t| (t.half, t.tid));

    let mut regions = Vec::with_capacity(maps.len());
    for entry in maps {
        if entry.is_kernel() {
            regions.push(region(entry, entry.range, Half::Kernel));
            continue;
        }
        let mut parts: Vec<Region> = lower
            .intersect(&entry.range)
            .into_iter()
            .map(|iv| region(entry, iv, Half::Lower))
            .chain(
                lower
                    .subtract_from(&entry.range)
                    .into_iter()
                    .map(|iv| region(entry, iv, Half::Upper)),
            )
            .collect();
        parts.sort_by_key(|r| r.start);
        regions.extend(parts);
    }
    StatusReport {
        pid,
        crac_version: env!("CARGO_PKG_VERSION").to_owned(),
        threads,
        regions,
    }
}

fn region(entry: &MapsEntry, iv: Interval, half: Half) -> Region {
    // A cut moves a file mapping's offset with it; anonymous memory has no file offset to move.
    let offset = if entry.inode != 0 {
        entry.offset + (iv.start - entry.range.start)
    } else {
        entry.offset
    };
    Region {
        start: iv.start,
        end: iv.end,
        perms: entry.perms,
        offset,
        path: entry.path.clone(),
        half,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAPS: &str = "\
10000-30000 r-xp 00001000 fe:01 77 /bin/app
30000-40000 rw-p 00000000 00:00 0
7f000-80000 r--p 00000000 00:00 0 [vvar]
80000-82000 r-xp 00000000 00:00 0 [vdso]
";

    #[test]
    fn merged_lines_are_cut_by_interval() {
        let maps = procfs::parse_maps(MAPS).unwrap();
        // The lower half owns the middle of the file mapping, the start of the anonymous one,
        // and (wrongly, as the loader might record it) the vdso: kernel wins.
        let lower: IntervalSet = [
            Interval::new(0x18000, 0x20000),
            Interval::new(0x30000, 0x34000),
            Interval::new(0x80000, 0x82000),
        ]
        .into_iter()
        .collect();
        let threads = vec![(12, "crac-agent".to_owned()), (10, "app".to_owned())];
        let r = build_report(10, &maps, &lower, &threads, &[12]);

        let got: Vec<_> = r
            .regions
            .iter()
            .map(|x| (x.start, x.end, x.offset, x.half))
            .collect();
        assert_eq!(
            got,
            [
                (0x10000, 0x18000, 0x1000, Half::Upper),
                (0x18000, 0x20000, 0x9000, Half::Lower),
                (0x20000, 0x30000, 0x11000, Half::Upper),
                (0x30000, 0x34000, 0, Half::Lower),
                (0x34000, 0x40000, 0, Half::Upper),
                (0x7f000, 0x80000, 0, Half::Kernel),
                (0x80000, 0x82000, 0, Half::Kernel),
            ]
        );
        assert_eq!(r.total(Half::Lower), 0xc000);
        assert_eq!(r.total(Half::Upper), 0x24000);
        assert_eq!(r.total(Half::Kernel), 0x3000);
        let t: Vec<_> = r.threads.iter().map(|t| (t.tid, t.half)).collect();
        assert_eq!(t, [(10, Half::Upper), (12, Half::Lower)]);
    }

    #[test]
    fn collect_reads_this_process() {
        /// Records what each fd handed to `protect_fd` was opened on.
        #[derive(Default)]
        struct Fake(std::sync::Mutex<Vec<String>>);
        impl LowerHalf for Fake {
            fn register_current_thread(&self) {}
            fn intervals(&self) -> IntervalSet {
                IntervalSet::new()
            }
            fn tids(&self) -> Vec<i32> {
                vec![crate::sys::thread_id()]
            }
            fn protect_fd(&self, fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
                use std::os::fd::AsRawFd;
                let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                self.0
                    .lock()
                    .unwrap()
                    .push(link.unwrap().display().to_string());
                Ok(fd)
            }
        }
        let fake = Fake::default();
        let r = collect(&fake).unwrap();
        // Every /proc file the agent read went through crac's fd range.
        let pid = std::process::id();
        let protected = fake.0.lock().unwrap().clone();
        for want in [format!("/proc/{pid}/maps"), format!("/proc/{pid}/task")] {
            assert!(protected.contains(&want), "{want} not in {protected:?}");
        }
        let comms = protected.iter().filter(|p| p.ends_with("/comm")).count();
        assert_eq!(comms, r.threads.len(), "{protected:?}");
        assert!(
            r.regions
                .iter()
                .any(|x| x.path == "[stack]" && x.half == Half::Upper)
        );
        assert!(r.threads.iter().any(|t| t.half == Half::Lower));
        assert_eq!(r.total(Half::Lower), 0);
    }

    proptest! {
        #[test]
        fn every_byte_once_and_in_the_right_half(
            lines in prop::collection::vec((1u64..8, 0u64..3, any::<bool>()), 1..12),
            lower in prop::collection::vec((0u64..200, 1u64..20), 0..8),
        ) {
            let mut text = String::new();
            let mut at = 0x1000u64;
            for (len, gap, kernel) in &lines {
                at += gap * 0x1000;
                let end = at + len * 0x1000;
                let path = if *kernel { "[vdso]" } else { "/lib/x.so" };
                text.push_str(&format!("{at:x}-{end:x} r--p 00000000 00:00 1 {path}\n"));
                at = end;
            }
            let maps = procfs::parse_maps(&text).unwrap();
            let set: IntervalSet = lower
                .iter()
                .map(|(s, l)| Interval::new(s * 0x1000, (s + l) * 0x1000))
                .collect();
            let r = build_report(1, &maps, &set, &[], &[]);
            let mapped: u64 = maps.iter().map(|m| m.range.len()).sum();
            let all: u64 = [Half::Upper, Half::Lower, Half::Kernel].iter().map(|h| r.total(*h)).sum();
            prop_assert_eq!(all, mapped);
            for w in r.regions.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
            for x in &r.regions {
                prop_assert!(x.start < x.end);
                let iv = Interval::new(x.start, x.end);
                match x.half {
                    Half::Lower => prop_assert!(set.covers(&iv)),
                    Half::Upper => prop_assert!(set.intersect(&iv).is_empty()),
                    Half::Kernel => prop_assert_eq!(x.path.as_str(), "[vdso]"),
                }
            }
        }
    }
}
