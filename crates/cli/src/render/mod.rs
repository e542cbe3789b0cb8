//! Text for people: the status report (`crac_ckpt --status PID`) here, an image's contents
//! (`crac inspect`) in [`image`], its CUDA section in [`cuda`].

pub mod cuda;
pub mod image;

use std::fmt::Write;

use crac_core::protocol::{Half, StatusReport};

/// Bytes in binary units: `512 B`, `160 KiB`, `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 1024u64;
    let mut name = UNITS[0];
    for next in &UNITS[1..] {
        if bytes < unit * 1024 {
            break;
        }
        unit *= 1024;
        name = next;
    }
    if bytes % unit == 0 {
        format!("{} {name}", bytes / unit)
    } else {
        // Rounded to one decimal; u64 to f64 loses nothing that one decimal shows.
        #[allow(clippy::cast_precision_loss, reason = "one decimal is shown")]
        let value = bytes as f64 / unit as f64;
        format!("{value:.1} {name}")
    }
}

fn half_title(half: Half) -> &'static str {
    match half {
        Half::Upper => "program memory (upper half, saved in a checkpoint)",
        Half::Lower => "crac memory (lower half, never saved)",
        Half::Kernel => "kernel memory (vdso, vvar, vsyscall; never saved)",
    }
}

fn half_word(half: Half) -> &'static str {
    match half {
        Half::Upper => "program",
        Half::Lower => "crac",
        Half::Kernel => "kernel",
    }
}

/// Bytes of `half` mapped without any access (`---p`): reserved address space and guards.
fn reserved(r: &StatusReport, half: Half) -> u64 {
    r.regions
        .iter()
        .filter(|x| x.half == half && !(x.perms.read || x.perms.write || x.perms.exec))
        .map(|x| x.len())
        .sum()
}

/// The whole report as text.
pub fn status(report: &StatusReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_status(&mut out, report);
    out
}

fn write_status(out: &mut String, r: &StatusReport) -> std::fmt::Result {
    let count = |h: Half| r.threads.iter().filter(|t| t.half == h).count();
    let reserved_all = reserved(r, Half::Upper) + reserved(r, Half::Lower);
    writeln!(
        out,
        "process {} under crac {}: {} threads ({} program, {} crac), {} program memory, {} crac memory{}",
        r.pid,
        r.crac_version,
        r.threads.len(),
        count(Half::Upper),
        count(Half::Lower),
        size(r.total(Half::Upper) - reserved(r, Half::Upper)),
        size(r.total(Half::Lower) - reserved(r, Half::Lower)),
        if reserved_all > 0 {
            format!(" (plus {} reserved without access)", size(reserved_all))
        } else {
            String::new()
        },
    )?;
    writeln!(out, "\nthreads\n  {:<8} {:<8} NAME", "TID", "HALF")?;
    for t in &r.threads {
        writeln!(out, "  {:<8} {:<8} {}", t.tid, half_word(t.half), t.name)?;
    }
    for half in [Half::Upper, Half::Lower, Half::Kernel] {
        let regions: Vec<_> = r.regions.iter().filter(|x| x.half == half).collect();
        writeln!(out, "\n{}", half_title(half))?;
        for x in &regions {
            let sep = if x.path.is_empty() { "" } else { " " };
            writeln!(
                out,
                "  {:#014x}-{:#014x} {:>10} {}{sep}{}",
                x.start,
                x.end,
                size(x.len()),
                x.perms,
                x.path
            )?;
        }
        let n = regions.len();
        let plural = if n == 1 { "" } else { "s" };
        write!(
            out,
            "  total {} in {n} interval{plural}",
            size(r.total(half))
        )?;
        match reserved(r, half) {
            0 => writeln!(out)?,
            res => writeln!(out, ", {} of it reserved without access (---p)", size(res))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::procfs::Perms;
    use crac_core::protocol::{Region, ThreadInfo};

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(160 * 1024), "160 KiB");
        assert_eq!(size(1536 * 1024), "1.5 MiB");
        assert_eq!(size(3 << 30), "3 GiB");
        assert_eq!(size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn text_lists_each_half_with_totals() {
        let region = |start, end, half, path: &str| Region {
            start,
            end,
            perms: Perms::parse(if path.is_empty() { "---p" } else { "r-xp" }).unwrap(),
            offset: 0,
            path: path.into(),
            half,
        };
        let r = StatusReport {
            pid: 7,
            crac_version: "0.1.0".into(),
            threads: vec![
                ThreadInfo {
                    tid: 7,
                    name: "app".into(),
                    half: Half::Upper,
                },
                ThreadInfo {
                    tid: 9,
                    name: "crac-agent".into(),
                    half: Half::Lower,
                },
            ],
            regions: vec![
                region(
                    0x7fff_f7d8_0000,
                    0x7fff_f7da_8000,
                    Half::Upper,
                    "/usr/lib/libc.so.6",
                ),
                region(0x40_0000, 0x40_1000, Half::Lower, "/usr/bin/crac"),
                region(0x40_1000, 0x50_1000, Half::Lower, ""),
                region(0x7fff_f7fc_5000, 0x7fff_f7fc_7000, Half::Kernel, "[vdso]"),
            ],
        };
        let text = status(&r);
        assert!(text.starts_with("process 7 under crac 0.1.0: 2 threads (1 program, 1 crac), 160 KiB program memory, 4 KiB crac memory (plus 1 MiB reserved without access)\n"), "{text}");
        assert!(
            text.contains("  0x7ffff7d80000-0x7ffff7da8000    160 KiB r-xp /usr/lib/libc.so.6\n"),
            "{text}"
        );
        assert!(text.contains("  9        crac     crac-agent\n"), "{text}");
        assert!(text.contains("crac memory (lower half, never saved)\n  0x000000400000-0x000000401000      4 KiB r-xp /usr/bin/crac\n  0x000000401000-0x000000501000      1 MiB ---p\n  total 1.0 MiB in 2 intervals, 1 MiB of it reserved without access (---p)\n"), "{text}");
        assert!(text.contains("  total 8 KiB in 1 interval\n"), "{text}");
    }
}
