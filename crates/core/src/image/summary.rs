//! What `crac inspect` shows about an image, as numbers (the CLI renders them).

use std::collections::BTreeMap;

use super::refs::payload_uses;
use super::{Encoding, FdKind, ImageMeta};

/// Counts and sizes of an image's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSummary {
    /// Program threads.
    pub threads: usize,
    /// Memory regions.
    pub regions: usize,
    /// Bytes of address space the regions span.
    pub region_bytes: u64,
    /// Page runs (saved pieces of regions).
    pub runs: usize,
    /// Uncompressed bytes of every payload (page runs and device buffers).
    pub saved_bytes: u64,
    /// Bytes the payloads take in the file.
    pub stored_bytes: u64,
    /// Payloads stored zstd-compressed.
    pub compressed_payloads: usize,
    /// Open fds.
    pub fds: usize,
    /// fds by kind name (`file`, `pipe`, …), sorted by name.
    pub fd_kinds: BTreeMap<&'static str, usize>,
    /// Signals with a handler or ignored (not `SIG_DFL`).
    pub signal_actions: usize,
    /// The CUDA part, when the program used a device.
    pub cuda: Option<CudaSummary>,
}

/// The CUDA part of an [`ImageSummary`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CudaSummary {
    /// Device allocations and variables saved.
    pub buffers: usize,
    /// Their total size.
    pub buffer_bytes: u64,
    /// Size of the replay log.
    pub log_bytes: u64,
}

/// The short name of an fd kind, as `crac inspect` shows it.
pub fn fd_kind_name(kind: &FdKind) -> &'static str {
    match kind {
        FdKind::Stdio => "stdio",
        FdKind::File { .. } => "file",
        FdKind::Pipe { .. } => "pipe",
        FdKind::Device { .. } => "device",
        FdKind::EventFd { .. } => "eventfd",
        FdKind::Epoll { .. } => "epoll",
        FdKind::TimerFd { .. } => "timerfd",
        FdKind::SignalFd { .. } => "signalfd",
        FdKind::ListenSocket { .. } => "listening socket",
        FdKind::DeadSocket { .. } => "socket",
        FdKind::AgentReply { .. } => "crac reply",
        FdKind::SocketPair { .. } => "socketpair",
    }
}

/// Summarises `meta`.
pub fn summary(meta: &ImageMeta) -> ImageSummary {
    let mut s = ImageSummary {
        threads: meta.threads.len(),
        regions: meta.regions.len(),
        region_bytes: meta
            .regions
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .fold(0, u64::saturating_add),
        runs: meta.regions.iter().map(|r| r.runs.len()).sum(),
        fds: meta.fds.len(),
        signal_actions: meta
            .signals
            .actions
            .iter()
            .filter(|a| a.handler != 0)
            .count(),
        cuda: meta.cuda.as_ref().map(|c| CudaSummary {
            buffers: c.buffers.len(),
            buffer_bytes: c.buffers.iter().map(|b| b.len).fold(0, u64::saturating_add),
            log_bytes: c.log.len() as u64,
        }),
        ..ImageSummary::default()
    };
    for fd in &meta.fds {
        *s.fd_kinds.entry(fd_kind_name(&fd.kind)).or_default() += 1;
    }
    for u in payload_uses(meta) {
        s.saved_bytes = s.saved_bytes.saturating_add(u.len);
        s.stored_bytes = s.stored_bytes.saturating_add(u.payload.stored_len);
        if u.payload.encoding == Encoding::Zstd {
            s.compressed_payloads += 1;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{FdRecord, PageRun, PayloadRef, RegionRecord};

    #[test]
    fn counts_what_the_image_holds() {
        let meta = ImageMeta {
            fds: vec![
                FdRecord {
                    fd: 0,
                    cloexec: false,
                    description: 0,
                    kind: FdKind::Stdio,
                },
                FdRecord {
                    fd: 1,
                    cloexec: false,
                    description: 0,
                    kind: FdKind::Stdio,
                },
            ],
            regions: vec![RegionRecord {
                start: 0x1000,
                end: 0x5000,
                runs: vec![PageRun {
                    addr: 0x2000,
                    len: 0x2000,
                    payload: PayloadRef {
                        offset: 4096,
                        stored_len: 100,
                        encoding: Encoding::Zstd,
                        checksum: 1,
                    },
                }],
                ..RegionRecord::default()
            }],
            ..ImageMeta::default()
        };
        let s = summary(&meta);
        assert_eq!(s.region_bytes, 0x4000);
        assert_eq!((s.runs, s.saved_bytes, s.stored_bytes), (1, 0x2000, 100));
        assert_eq!(s.compressed_payloads, 1);
        assert_eq!(s.fd_kinds.get("stdio"), Some(&2));
        assert_eq!(s.cuda, None);
    }
}
