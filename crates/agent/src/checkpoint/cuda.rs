//! The device side of a checkpoint of a program launched with `--gpu` (DESIGN.md, "CUDA"):
//! hold the program's CUDA calls at the call table's gate, drain the device, take the replay
//! log, and stream every allocation and module variable into the image's CUDA section.
//!
//! The order, before the program's threads are stopped:
//! 1. close the gate ([`crac_loader::table::close_gate`]): calls already inside the lower half
//!    finish, new ones wait in the upper half (where the quiesce signal can stop them);
//! 2. synchronize every stream (queued kernels, copies and host callbacks all run);
//! 3. pause the host-callback thread (it leaves the lower half and waits at the gate too);
//! 4. take the snapshot: the compacted log and the device regions to save.
//!
//! Then, still before the threads are stopped (nothing they do can change device memory while
//! the gate is closed), [`write_buffers`] streams the regions through two staging buffers: a
//! reader thread fills one from the device while the other is written to the image. The gate reopens when the [`DeviceHold`] is dropped, success or failure, unless a
//! checkpoint-and-exit keeps it closed for good.

use std::io::{Seek, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crac_core::image::{DeviceBuffer, DeviceFingerprint, ImageError, ImageWriter};
use crac_gpu::{DeviceBackend, GpuError};
use crac_loader::table::{Gate, GateError};
use crac_replay::{DeviceRegion, ReplayError, Runtime, Snapshot};

/// How long calls already inside crac may take to return, and the device to drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of device memory staged at a time (two such buffers at most).
pub const STAGING: usize = 64 << 20;

/// Why the device side of a checkpoint failed (the program goes on).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Calls did not leave the lower half in time.
    #[error(
        "a CUDA call of the program did not return within {} s, so the checkpoint was \
         abandoned: {source}",
        DRAIN_TIMEOUT.as_secs()
    )]
    CallsDidNotReturn {
        /// What the gate says.
        source: GateError,
    },
    /// The gate could not be closed for another reason.
    #[error("cannot hold the program's CUDA calls for the checkpoint: {source}")]
    CloseGate {
        /// Why, as the gate says.
        source: GateError,
    },
    /// The device could not be synchronized.
    #[error(
        "cannot wait for the program's device work to finish: {0}; the checkpoint was \
         abandoned and the program goes on"
    )]
    Synchronize(#[source] GpuError),
    /// The device's queued work did not finish in time.
    #[error(
        "the program's device work (kernels, copies, host callbacks) did not finish within {} s; \
         the checkpoint was abandoned and the program goes on; checkpoint between long kernels",
        DRAIN_TIMEOUT.as_secs()
    )]
    DrainTimeout,
    /// The host-callback thread did not leave the lower half.
    #[error(
        "a CUDA host callback of the program did not return within {} s, so the checkpoint \
         was abandoned and the program goes on: {source}",
        DRAIN_TIMEOUT.as_secs()
    )]
    PauseCallbacks {
        /// Why, as the gate says.
        source: GateError,
    },
    /// The replay log could not be taken.
    #[error("cannot record the program's CUDA state: {0}")]
    Snapshot(#[source] ReplayError),
    /// The device's properties could not be read.
    #[error("cannot read the device's properties: {0}")]
    Props(#[source] GpuError),
    /// Device memory could not be read.
    #[error("cannot read device memory at {addr:#x} ({label}): {source}")]
    ReadDevice {
        /// Where.
        addr: u64,
        /// What it is.
        label: String,
        /// Why.
        source: GpuError,
    },
    /// Device memory could not be written to the image.
    #[error("cannot write device memory at {addr:#x} to the image: {source}")]
    WriteImage {
        /// Where.
        addr: u64,
        /// Why.
        source: ImageError,
    },
    /// A helper thread (device drain, device reader) could not be started.
    #[error("cannot start a thread to drain or read the device: {0}")]
    Thread(#[source] std::io::Error),
}

/// The program's CUDA calls held and the device drained, for the length of one checkpoint.
pub struct DeviceHold {
    /// Reopens on drop.
    gate: Gate,
    /// The process's runtime.
    pub runtime: &'static Runtime,
    /// What to save.
    pub snapshot: Snapshot,
    /// How long closing the gate and draining the device took.
    pub drain: Duration,
}

impl std::fmt::Debug for DeviceHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHold")
            .field("regions", &self.snapshot.buffers.len())
            .field("log_bytes", &self.snapshot.log.len())
            .field("drain", &self.drain)
            .finish_non_exhaustive()
    }
}

impl DeviceHold {
    /// Closes the gate, drains the device and takes the snapshot; `None` for a program
    /// launched without `--gpu`. On failure the gate is open again.
    pub fn take() -> Result<Option<DeviceHold>, DeviceError> {
        let Some(runtime) = crac_loader::table::runtime() else {
            return Ok(None);
        };
        let started = Instant::now();
        let gate =
            crac_loader::table::close_gate(DRAIN_TIMEOUT).map_err(|source| match source {
                GateError::Drain { .. } => DeviceError::CallsDidNotReturn { source },
                source => DeviceError::CloseGate { source },
            })?;
        drain(runtime, DRAIN_TIMEOUT)?;
        gate.pause_callbacks(DRAIN_TIMEOUT)
            .map_err(|source| DeviceError::PauseCallbacks { source })?;
        let snapshot = runtime.snapshot().map_err(DeviceError::Snapshot)?;
        Ok(Some(DeviceHold {
            gate,
            runtime,
            snapshot,
            drain: started.elapsed(),
        }))
    }

    /// Bytes of device memory the snapshot saves.
    pub fn bytes(&self) -> u64 {
        self.snapshot.buffers.iter().map(|b| b.len).sum()
    }

    /// The device the state comes from.
    pub fn fingerprint(&self) -> Result<DeviceFingerprint, DeviceError> {
        fingerprint(self.runtime.backend())
    }

    /// For a checkpoint-and-exit: the program's CUDA calls never go on.
    pub fn keep_closed(self) {
        self.gate.keep_closed();
    }
}

/// Waits up to `timeout` for every stream of `runtime` to finish its work. The wait runs on a
/// thread of its own, so a kernel that never ends cannot hold the agent: on timeout that
/// thread is left to finish the wait alone (the runtime lives as long as the process) and the
/// checkpoint gives up.
fn drain(runtime: &'static Runtime, timeout: Duration) -> Result<(), DeviceError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("crac-drain".into())
        .spawn(move || {
            let _ = tx.send(runtime.synchronize_all());
        })
        .map_err(DeviceError::Thread)?;
    match rx.recv_timeout(timeout) {
        Ok(done) => done.map_err(DeviceError::Synchronize),
        Err(_) => Err(DeviceError::DrainTimeout),
    }
}

/// The fingerprint of `backend`'s device 0.
pub fn fingerprint(backend: &dyn DeviceBackend) -> Result<DeviceFingerprint, DeviceError> {
    let props = backend.device_props(0).map_err(DeviceError::Props)?;
    Ok(DeviceFingerprint {
        backend: backend.name().to_owned(),
        name: props.name.clone(),
        compute_capability: props.sm(),
        driver_version: backend
            .driver_version()
            .ok()
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0),
    })
}

/// One staged piece of device memory, or why it could not be read.
type Staged = Result<Vec<u8>, DeviceError>;

/// Streams every region of `regions` from `backend` into `writer`, one payload per region,
/// `staging` bytes at a time (a reader thread fills one buffer while the other is written);
/// `progress` hears the bytes written after each piece. Returns the image's records.
pub fn write_buffers<W: Write + Seek>(
    writer: &mut ImageWriter<W>,
    backend: &dyn DeviceBackend,
    regions: &[DeviceRegion],
    staging: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<DeviceBuffer>, DeviceError> {
    let staging = staging.max(1);
    // Full buffers go to the writer; empty ones come back to the reader. Two in all.
    let (full_tx, full_rx) = mpsc::sync_channel::<Staged>(1);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    for _ in 0..2 {
        // Cannot fail: the receiver is alive and there is room for two.
        let _ = empty_tx.send(Vec::new());
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("crac-device-read".into())
            .spawn_scoped(scope, move || {
                read_all(backend, regions, staging, &empty_rx, &full_tx)
            })
            .map_err(DeviceError::Thread)?;
        let written = write_all(writer, regions, staging, &full_rx, &empty_tx, progress);
        // Unblocks a reader waiting for an empty buffer when the writer stopped early.
        drop(full_rx);
        drop(empty_tx);
        written
    })
}

/// The reader thread: fills buffers in region and chunk order until done or told to stop (a
/// closed channel).
fn read_all(
    backend: &dyn DeviceBackend,
    regions: &[DeviceRegion],
    staging: usize,
    empty: &mpsc::Receiver<Vec<u8>>,
    full: &mpsc::SyncSender<Staged>,
) {
    for r in regions {
        for (at, len) in pieces(r.len, staging) {
            let Ok(mut buf) = empty.recv() else { return };
            buf.resize(len, 0);
            let addr = r.addr + at;
            let staged = match backend.read_device(crac_gpu::DevicePtr(addr), &mut buf) {
                Ok(()) => Ok(buf),
                Err(source) => Err(DeviceError::ReadDevice {
                    addr,
                    label: r.label.clone(),
                    source,
                }),
            };
            let failed = staged.is_err();
            if full.send(staged).is_err() || failed {
                return;
            }
        }
    }
}

/// The writer's side: one payload per region, its pieces in order.
fn write_all<W: Write + Seek>(
    writer: &mut ImageWriter<W>,
    regions: &[DeviceRegion],
    staging: usize,
    full: &mpsc::Receiver<Staged>,
    empty: &mpsc::SyncSender<Vec<u8>>,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<DeviceBuffer>, DeviceError> {
    let mut out = Vec::with_capacity(regions.len());
    let mut done = 0u64;
    for r in regions {
        let image_err = |source| DeviceError::WriteImage {
            addr: r.addr,
            source,
        };
        let mut sink = writer.begin_payload().map_err(image_err)?;
        for (at, _) in pieces(r.len, staging) {
            let buf = match full.recv() {
                Ok(staged) => staged?,
                // The reader ended early: it only does so after sending its error.
                Err(_) => {
                    return Err(DeviceError::ReadDevice {
                        addr: r.addr + at,
                        label: r.label.clone(),
                        source: GpuError::Unknown("the reader thread stopped".into()),
                    });
                }
            };
            sink.write_all(&buf)
                .map_err(|source| image_err(ImageError::WriteImage { source }))?;
            done += buf.len() as u64;
            progress(done);
            let _ = empty.send(buf);
        }
        let payload = sink.finish().map_err(image_err)?;
        out.push(DeviceBuffer {
            addr: r.addr,
            len: r.len,
            label: r.label.clone(),
            payload,
        });
    }
    Ok(out)
}

/// `(offset, length)` of each piece of `len` bytes cut in `staging`-byte pieces (none for 0).
fn pieces(len: u64, staging: usize) -> impl Iterator<Item = (u64, usize)> {
    let step = staging as u64;
    (0..len.div_ceil(step)).map(move |i| {
        let at = i * step;
        // At most `staging`, which is a usize.
        (at, usize::try_from((len - at).min(step)).unwrap_or(staging))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::image::{ImageMeta, ImageReader};
    use crac_gpu::Stream;

    #[test]
    fn pieces_cover_a_length_exactly() {
        assert_eq!(pieces(0, 4).count(), 0);
        assert_eq!(pieces(4, 4).collect::<Vec<_>>(), vec![(0, 4)]);
        assert_eq!(
            pieces(10, 4).collect::<Vec<_>>(),
            vec![(0, 4), (4, 4), (8, 2)]
        );
    }

    fn pattern(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                u8::try_from(i % 251)
                    .expect("below 251")
                    .wrapping_mul(31)
                    .wrapping_add(seed)
            })
            .collect()
    }

    #[test]
    fn device_memory_streams_into_payloads_that_read_back() {
        let sim = crac_sim::Sim::new(64 << 20);
        let sizes = [0usize, 1, 4096, 10_000, 3 << 20];
        let mut regions = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let ptr = sim.malloc(len as u64).expect("malloc");
            if len > 0 {
                sim.memcpy_htod_sync(
                    ptr,
                    &pattern(u8::try_from(i).expect("few"), len),
                    Stream::NULL,
                )
                .expect("fill");
            }
            regions.push(DeviceRegion {
                addr: ptr.0,
                len: len as u64,
                label: format!("malloc {i}"),
            });
        }
        let file = tempfile::tempfile().expect("tempfile");
        let mut writer = ImageWriter::new(file).expect("writer");
        let mut seen = Vec::new();
        // A small staging size, so regions take several pieces and both buffers turn over.
        let buffers = write_buffers(&mut writer, &sim, &regions, 4096 + 7, &mut |d| seen.push(d))
            .expect("write");
        let total: u64 = sizes.iter().map(|&s| s as u64).sum();
        assert_eq!(seen.last().copied(), Some(total));
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress grows");
        let meta = ImageMeta {
            cuda: Some(crac_core::image::CudaRecord {
                log: vec![1, 2, 3],
                buffers,
            }),
            ..ImageMeta::default()
        };
        let file = writer.finish(&meta).expect("finish");
        let mut reader = ImageReader::open(file).expect("open");
        let cuda = reader.meta().cuda.clone().expect("cuda");
        for (i, b) in cuda.buffers.iter().enumerate() {
            assert_eq!((b.addr, b.len), (regions[i].addr, regions[i].len));
            assert_eq!(b.label, regions[i].label);
            let mut got = vec![0u8; sizes[i]];
            reader.read_payload(&b.payload, &mut got).expect("read");
            assert_eq!(
                got,
                pattern(u8::try_from(i).expect("few"), sizes[i]),
                "region {i}"
            );
        }
    }

    #[test]
    fn a_drain_that_does_not_finish_in_time_gives_up_and_a_later_one_succeeds() {
        let runtime: &'static Runtime = Box::leak(Box::new(Runtime::new(Box::new(
            crac_sim::Sim::new(1 << 20),
        ))));
        let (tx, rx) = mpsc::channel();
        runtime
            .backend()
            .launch_host_func(
                Stream::LEGACY,
                Box::new(move |_| {
                    let _ = rx.recv_timeout(Duration::from_secs(10));
                }),
            )
            .expect("queue a host function");
        let e = drain(runtime, Duration::from_millis(50)).expect_err("still busy");
        assert!(matches!(e, DeviceError::DrainTimeout), "{e}");
        assert!(e.to_string().contains("did not finish within 30 s"), "{e}");
        tx.send(()).expect("release the host function");
        drain(runtime, Duration::from_secs(10)).expect("drained");
    }

    #[test]
    fn an_unreadable_region_fails_naming_it() {
        let sim = crac_sim::Sim::new(1 << 20);
        let ptr = sim.malloc(8192).expect("malloc");
        let regions = [
            DeviceRegion {
                addr: ptr.0,
                len: 8192,
                label: "malloc".into(),
            },
            DeviceRegion {
                // Past every allocation.
                addr: ptr.0 + (512 << 20),
                len: 100,
                label: "variable missing".into(),
            },
        ];
        let file = tempfile::tempfile().expect("tempfile");
        let mut writer = ImageWriter::new(file).expect("writer");
        let e =
            write_buffers(&mut writer, &sim, &regions, 1024, &mut |_| {}).expect_err("unreadable");
        let text = e.to_string();
        assert!(
            text.contains("variable missing") && text.contains("cannot read device memory"),
            "{text}"
        );
    }
}
