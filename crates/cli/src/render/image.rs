//! An image's contents as text (`crac inspect IMAGE`) and as JSON (`--json`).

use std::fmt::Write;

use crac_core::image::{
    FdKind, FixedHeader, ImageMeta, ImageSummary, RegionKind, SectionKind, summary,
};

use super::size;

/// The image at `path` as text.
pub fn text(path: &str, header: &FixedHeader, meta: &ImageMeta) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_text(&mut out, path, header, meta);
    out
}

/// The image as JSON: `path`, `format`, `file_bytes`, `summary`, `cuda` (the CUDA section
/// decoded, or `null`) and the whole `meta`.
pub fn json(path: &str, header: &FixedHeader, meta: &ImageMeta) -> serde_json::Value {
    let s = summary(meta);
    serde_json::json!({
        "path": path,
        "format": format!("{}.{}", header.version.0, header.version.1),
        "file_bytes": header.file_len,
        "sections": header.sections.iter().map(|e| serde_json::json!({
            "name": section_name(e.id),
            "offset": e.offset,
            "bytes": e.len,
            "checksum": format!("{:016x}", e.checksum),
        })).collect::<Vec<_>>(),
        "summary": summary_json(&s),
        "cuda": super::cuda::json(meta),
        "meta": meta,
    })
}

fn summary_json(s: &ImageSummary) -> serde_json::Value {
    serde_json::json!({
        "threads": s.threads,
        "regions": s.regions,
        "region_bytes": s.region_bytes,
        "runs": s.runs,
        "saved_bytes": s.saved_bytes,
        "stored_bytes": s.stored_bytes,
        "compressed_payloads": s.compressed_payloads,
        "fds": s.fds,
        "fd_kinds": s.fd_kinds,
        "signal_actions": s.signal_actions,
        "cuda": s.cuda.as_ref().map(|c| serde_json::json!({
            "buffers": c.buffers,
            "buffer_bytes": c.buffer_bytes,
            "log_bytes": c.log_bytes,
        })),
    })
}

fn section_name(id: u32) -> String {
    SectionKind::from_id(id).map_or_else(|| format!("unknown ({id})"), |k| k.name().to_owned())
}

fn write_text(
    out: &mut String,
    path: &str,
    header: &FixedHeader,
    meta: &ImageMeta,
) -> std::fmt::Result {
    let s = summary(meta);
    let h = &meta.header;
    let p = &meta.process;
    writeln!(out, "image {path}")?;
    writeln!(
        out,
        "  format {}.{}, {} in the file ({} of memory saved, {} stored{})",
        header.version.0,
        header.version.1,
        size(header.file_len),
        size(s.saved_bytes),
        size(s.stored_bytes),
        if s.compressed_payloads > 0 {
            format!(", {} payloads zstd-compressed", s.compressed_payloads)
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "  written {} by crac {} (build-id {}), generation {}",
        utc(h.created_unix),
        h.crac_version,
        if h.build_id.is_empty() {
            "none"
        } else {
            &h.build_id
        },
        h.generation
    )?;
    writeln!(
        out,
        "program {} (pid {}, comm {:?})",
        p.program, p.pid, p.comm
    )?;
    writeln!(out, "  argv: {}", p.argv.join(" "))?;
    writeln!(out, "  cwd {}, umask {:04o}", p.cwd, p.umask)?;
    let pol = &p.policy;
    let mut policy = vec![format!(
        "dir {}",
        if pol.dir.is_empty() { "-" } else { &pol.dir }
    )];
    if let Some(i) = pol.interval_secs {
        policy.push(format!("every {i} s"));
    }
    if let Some(k) = pol.keep {
        policy.push(format!("keep {k}"));
    }
    if let Some(sig) = pol.signal {
        policy.push(format!(
            "on signal {}{}",
            signal_name(sig),
            if pol.exit_after_ckpt {
                " then exit"
            } else {
                ""
            }
        ));
    }
    writeln!(out, "  checkpoints: {}", policy.join(", "))?;
    let f = &h.fingerprints;
    writeln!(
        out,
        "machine: kernel {} {}, xsave {} bytes (features {:#x}), libc {}",
        f.kernel_release,
        f.machine,
        f.xsave_size,
        f.xsave_features,
        if f.libc_version.is_empty() {
            "unknown"
        } else {
            &f.libc_version
        }
    )?;
    writeln!(
        out,
        "  vdso {:#x}-{:#x}, vvar {:#x}-{:#x}, vdso hash {:016x}",
        f.vdso.vdso_start, f.vdso.vdso_end, f.vdso.vvar_start, f.vdso.vvar_end, f.vdso.hash
    )?;
    if let Some(d) = &f.device {
        writeln!(
            out,
            "  device: {} backend, {} (compute {}.{}), driver {}",
            d.backend,
            d.name,
            d.compute_capability / 10,
            d.compute_capability % 10,
            d.driver_version
        )?;
    }
    writeln!(out, "threads ({}):", meta.threads.len())?;
    for t in &meta.threads {
        writeln!(
            out,
            "  {:>7} {:<16} {}fs {:#x}{}",
            t.tid,
            format!("{:?}", t.name),
            if t.is_main { "main, " } else { "" },
            t.fs_base,
            t.blocked_syscall
                .map(|n| format!(", stopped in system call {n}"))
                .unwrap_or_default()
        )?;
    }
    let handled: Vec<_> = meta
        .signals
        .actions
        .iter()
        .filter(|a| a.handler != 0)
        .collect();
    writeln!(out, "signals ({} not default):", handled.len())?;
    for a in handled {
        let what = match a.handler {
            1 => "ignored".to_owned(),
            addr => format!("handler {addr:#x}"),
        };
        writeln!(
            out,
            "  {:<10} {what}, flags {:#x}, mask {:#x}",
            signal_name(a.signo),
            a.flags,
            a.mask
        )?;
    }
    writeln!(out, "fds ({}):", meta.fds.len())?;
    for fd in &meta.fds {
        writeln!(
            out,
            "  {:>4} {}{}",
            fd.fd,
            fd_text(&fd.kind),
            if fd.cloexec { " (cloexec)" } else { "" }
        )?;
    }
    writeln!(
        out,
        "regions ({}, {} of address space, {} saved in {} runs):",
        s.regions,
        size(s.region_bytes),
        size(s.saved_bytes),
        s.runs
    )?;
    for r in &meta.regions {
        let saved: u64 = r.runs.iter().map(|x| x.len).sum();
        let kind = match &r.kind {
            RegionKind::Private => "private".to_owned(),
            RegionKind::SharedAnon => "shared".to_owned(),
            RegionKind::SharedFile { path, offset } => format!("shared file {path}@{offset:#x}"),
        };
        writeln!(
            out,
            "  {:#014x}-{:#014x} {} {:<8} {:>10} saved in {:>3} runs  {}{}",
            r.start,
            r.end,
            prot(r.prot),
            kind,
            size(saved),
            r.runs.len(),
            r.name,
            checksums(r)
        )?;
    }
    super::cuda::write_text(out, meta)?;
    writeln!(out, "sections:")?;
    for e in &header.sections {
        writeln!(
            out,
            "  {:<8} at {:>10}, {:>10}, checksum {:016x}",
            section_name(e.id),
            e.offset,
            size(e.len),
            e.checksum
        )?;
    }
    Ok(())
}

/// The first run's checksum (and how many more), so two images can be compared by eye.
fn checksums(r: &crac_core::image::RegionRecord) -> String {
    match r.runs.as_slice() {
        [] => String::new(),
        [one] => format!(" (checksum {:016x})", one.payload.checksum),
        [first, rest @ ..] => format!(
            " (checksums {:016x} and {} more)",
            first.payload.checksum,
            rest.len()
        ),
    }
}

fn prot(p: u32) -> String {
    let bit = |b: u32, c: char| if p & b != 0 { c } else { '-' };
    [bit(1, 'r'), bit(2, 'w'), bit(4, 'x')].iter().collect()
}

fn fd_text(kind: &FdKind) -> String {
    match kind {
        FdKind::Stdio => "stdio (crac_restart's own at restart)".to_owned(),
        FdKind::File {
            path,
            flags,
            offset,
            size: len,
        } => format!("file {path} (flags 0{flags:o}, offset {offset}, size {len})"),
        FdKind::Pipe {
            pipe_id,
            read_end,
            data,
            peer_outside,
            ..
        } => format!(
            "pipe {pipe_id} {} end{}{}",
            if *read_end { "read" } else { "write" },
            if data.is_empty() {
                String::new()
            } else {
                format!(", {} bytes in flight", data.len())
            },
            if *peer_outside {
                ", other end outside"
            } else {
                ""
            }
        ),
        FdKind::Device { path, flags } => format!("device {path} (flags 0{flags:o})"),
        FdKind::EventFd { count, .. } => format!("eventfd (count {count})"),
        FdKind::Epoll { watches } => format!("epoll ({} watched)", watches.len()),
        FdKind::TimerFd {
            value_ns,
            interval_ns,
            ..
        } => format!("timerfd ({value_ns} ns left, interval {interval_ns} ns)"),
        FdKind::SignalFd { mask, .. } => format!("signalfd (mask {mask:#x})"),
        FdKind::ListenSocket { domain, .. } => format!("listening socket (domain {domain})"),
        FdKind::DeadSocket { domain, .. } => {
            format!("socket (domain {domain}; comes back with its peer gone)")
        }
        FdKind::AgentReply { .. } => "crac_checkpoint() connection".to_owned(),
        FdKind::SocketPair { pair_id, data, .. } => format!(
            "socketpair {pair_id} end{}",
            if data.is_empty() {
                String::new()
            } else {
                format!(", {} bytes queued", data.len())
            }
        ),
    }
}

/// `SIGUSR1` for 10, `SIGRTMIN+2` for 36, `signal 99` otherwise.
pub fn signal_name(n: i32) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    match n {
        1..=31 => usize::try_from(n - 1)
            .ok()
            .and_then(|i| NAMES.get(i))
            .map_or_else(|| format!("signal {n}"), |s| format!("SIG{s}")),
        34 => "SIGRTMIN".to_owned(),
        35..=64 => format!("SIGRTMIN+{}", n - 34),
        _ => format!("signal {n}"),
    }
}

/// `secs` since the Unix epoch as a UTC date and time (`2026-11-25 02:28:30 UTC`), by the
/// civil-from-days algorithm (proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_573_710), "2026-11-25 02:28:30 UTC");
    }
    use crac_core::image::{FdRecord, PageRun, PayloadRef, RegionRecord, ThreadRecord};

    #[test]
    fn an_image_reads_well() {
        let meta = ImageMeta {
            threads: vec![ThreadRecord {
                tid: 7,
                is_main: true,
                name: "app".into(),
                ..ThreadRecord::default()
            }],
            fds: vec![FdRecord {
                fd: 3,
                cloexec: false,
                description: 0,
                kind: FdKind::File {
                    path: "/tmp/out".into(),
                    flags: 0o2001,
                    offset: 12,
                    size: 12,
                },
            }],
            regions: vec![RegionRecord {
                start: 0x1000,
                end: 0x3000,
                prot: 3,
                name: "[heap]".into(),
                runs: vec![PageRun {
                    addr: 0x1000,
                    len: 0x1000,
                    payload: PayloadRef {
                        checksum: 0xabc,
                        ..PayloadRef::default()
                    },
                }],
                ..RegionRecord::default()
            }],
            ..ImageMeta::default()
        };
        let header = FixedHeader {
            version: (1, 0),
            file_len: 8192,
            payload_start: 4096,
            payload_end: 8192,
            sections: Vec::new(),
        };
        let t = text("/d/app-7-0001.crac", &header, &meta);
        assert!(t.contains("image /d/app-7-0001.crac\n"), "{t}");
        assert!(
            t.contains("threads (1):\n        7 \"app\"            main"),
            "{t}"
        );
        assert!(
            t.contains("3 file /tmp/out (flags 02001, offset 12, size 12)"),
            "{t}"
        );
        assert!(t.contains("rw- private"), "{t}");
        assert!(t.contains("(checksum 0000000000000abc)"), "{t}");
        let j = json("/d/x.crac", &header, &meta);
        assert_eq!(j["summary"]["threads"], 1);
        assert_eq!(j["meta"]["threads"][0]["tid"], 7);
        assert_eq!(j["format"], "1.0");
        assert_eq!(signal_name(10), "SIGUSR1");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(0), "signal 0");
    }
}
