//! Restarting a program's CUDA state (DESIGN.md, "CUDA"): after the program's memory and fds
//! are back and before its threads resume, start a fresh device backend (chosen by the caller's
//! factory), rebuild the runtime from the replay log (every allocation and variable at its
//! saved address, handles re-bound under their old values, pinned memory re-registered), copy
//! device memory back from the image (each payload checksummed), and install the runtime
//! behind a call table at the same address as before, with a new generation so the shim's
//! threads take new lower-half TCBs.
//!
//! Any failure is an error naming what failed; the threads never resume over half a device.

use std::fs::File;
use std::sync::{Arc, mpsc};

use crac_core::image::{CudaRecord, ImageError, ImageMeta, ImageReader};
use crac_gpu::{DeviceBackend, DevicePtr, GpuError};
use crac_replay::{DevicePrintf, ReplayError, Runtime};

/// Starts a device backend of the kind named (`sim`, `cuda`): the caller (the CLI) owns the
/// choice and the set-up (the `sim` device window is reserved there). The error is a sentence
/// for the user.
pub type BackendFactory = fn(&str) -> Result<(Box<dyn DeviceBackend>, Arc<DevicePrintf>), String>;

/// Bytes of device memory read from the image and written to the device at a time.
pub const CHUNK: usize = 64 << 20;

/// Why the program's CUDA state could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum DeviceRestoreError {
    /// The image holds CUDA state but the restart was given no way to start a backend.
    #[error(
        "the image holds CUDA state but this restart cannot start a device backend; restart \
         it with crac_restart"
    )]
    NoFactory,
    /// The backend could not be started.
    #[error("cannot start the {kind} device backend for the program's CUDA state: {why}")]
    StartBackend {
        /// The backend asked for.
        kind: String,
        /// Why (from the backend).
        why: String,
    },
    /// The log could not be replayed.
    #[error("cannot rebuild the program's CUDA state on the {kind} backend: {source}")]
    Replay {
        /// The backend.
        kind: String,
        /// Why.
        source: ReplayError,
    },
    /// A device buffer's payload could not be read or is damaged.
    #[error("cannot read the saved device memory at {addr:#x} ({label}) from the image: {source}")]
    ReadPayload {
        /// Device address.
        addr: u64,
        /// What it is.
        label: String,
        /// Why.
        source: ImageError,
    },
    /// Device memory could not be written.
    #[error("cannot write the saved device memory at {addr:#x} ({label}) back: {source}")]
    WriteDevice {
        /// Device address.
        addr: u64,
        /// What it is.
        label: String,
        /// Why.
        source: GpuError,
    },
    /// The writer thread could not be started.
    #[error("cannot start a thread to write device memory: {0}")]
    Thread(#[source] std::io::Error),
    /// The call table could not be installed.
    #[error("cannot install the CUDA call table: {0}")]
    Install(#[source] crac_loader::table::TableError),
    /// The program was not launched with a call table (its auxv has none).
    #[error(
        "the image holds CUDA state but the program's auxiliary vector names no crac call \
         table; the image is damaged"
    )]
    NoTableInAuxv,
    /// The new table is not where the program looks for it.
    #[error(
        "the CUDA call table is at {now:#x} in this crac but the program looks for it at \
         {saved:#x}; restart with the crac build the image was taken with"
    )]
    TableMoved {
        /// Where the program's auxv says.
        saved: u64,
        /// Where it is now.
        now: u64,
    },
}

/// The backend kind to use: the one asked for, else the image's.
pub fn backend_kind(meta: &ImageMeta, asked: Option<&str>) -> String {
    match asked {
        Some(k) => k.to_owned(),
        None => meta
            .header
            .fingerprints
            .device
            .as_ref()
            .map_or_else(|| "sim".to_owned(), |d| d.backend.clone()),
    }
}

/// The table address in an auxv of `(type, value)` words.
pub fn table_in_auxv(auxv: &[u64]) -> Option<u64> {
    auxv.chunks_exact(2)
        .take_while(|p| p[0] != 0)
        .find(|p| p[0] == crac_abi::AT_CRAC_TABLE)
        .map(|p| p[1])
}

/// Restores `cuda` (the image's CUDA section) on a backend of `kind` from `factory`, reading
/// device memory through `reader`, and installs the call table; returns the device bytes
/// written.
pub fn restore(
    meta: &ImageMeta,
    cuda: &CudaRecord,
    reader: &mut ImageReader<File>,
    kind: &str,
    factory: Option<BackendFactory>,
) -> Result<u64, DeviceRestoreError> {
    let saved_table =
        table_in_auxv(&meta.process.mm.auxv).ok_or(DeviceRestoreError::NoTableInAuxv)?;
    let factory = factory.ok_or(DeviceRestoreError::NoFactory)?;
    let (backend, printf) = factory(kind).map_err(|why| DeviceRestoreError::StartBackend {
        kind: kind.to_owned(),
        why,
    })?;
    let runtime = Runtime::restore(
        backend,
        printf,
        &cuda.log,
        crac_loader::table::host_memory(),
    )
    .map_err(|source| DeviceRestoreError::Replay {
        kind: kind.to_owned(),
        source,
    })?;
    let bytes = write_back(cuda, reader, runtime.backend(), CHUNK)?;
    let generation = u64::from(meta.header.generation) + 1;
    let now =
        crac_loader::table::reinstall(runtime, generation).map_err(DeviceRestoreError::Install)?;
    if now != saved_table {
        return Err(DeviceRestoreError::TableMoved {
            saved: saved_table,
            now,
        });
    }
    Ok(bytes)
}

/// Copies every device buffer of `cuda` from the image to `backend`, checking each payload's
/// checksum, `chunk` bytes at a time. Two staging buffers turn over between this thread,
/// which reads (and hashes) the next piece, and a writer thread, which copies the previous one
/// to the device.
pub fn write_back(
    cuda: &CudaRecord,
    reader: &mut ImageReader<File>,
    backend: &dyn DeviceBackend,
    chunk: usize,
) -> Result<u64, DeviceRestoreError> {
    let (full_tx, full_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(1);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    // Cannot fail: the receiver is alive and there is room for it.
    let _ = empty_tx.send(Vec::new());
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("crac-device-write".into())
            .spawn_scoped(scope, move || -> Result<(), (u64, GpuError)> {
                for (addr, piece) in full_rx {
                    backend
                        .write_device(DevicePtr(addr), &piece)
                        .map_err(|e| (addr, e))?;
                    // The reader may have finished: then nobody needs the buffer back.
                    let _ = empty_tx.send(piece);
                }
                Ok(())
            })
            .map_err(DeviceRestoreError::Thread)?;
        let read = read_all(cuda, reader, chunk, &full_tx, &empty_rx);
        drop(full_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err((0, GpuError::Unknown("the writer thread panicked".into()))));
        // A write error first: it is why the reader's hand-off failed, if it did.
        if let Err((addr, source)) = written {
            return Err(DeviceRestoreError::WriteDevice {
                addr,
                label: label_at(cuda, addr),
                source,
            });
        }
        read
    })
}

/// The reader's side of [`write_back`]: every payload, piece by piece, to the writer.
fn read_all(
    cuda: &CudaRecord,
    reader: &mut ImageReader<File>,
    chunk: usize,
    full: &mpsc::SyncSender<(u64, Vec<u8>)>,
    empty: &mpsc::Receiver<Vec<u8>>,
) -> Result<u64, DeviceRestoreError> {
    let mut total = 0;
    for b in &cuda.buffers {
        let mut at = b.addr;
        let read = reader
            .stream_payload(&b.payload, b.len, chunk, &mut |piece: Vec<u8>| {
                let len = piece.len() as u64;
                full.send((at, piece)).map_err(drop)?;
                at += len;
                // The buffer to fill next: the spare one, then each one the writer is done
                // with (a writer that stopped gives none back: its error is reported).
                Ok::<_, ()>(empty.recv().unwrap_or_default())
            })
            .map_err(|source| DeviceRestoreError::ReadPayload {
                addr: b.addr,
                label: b.label.clone(),
                source,
            })?;
        if read.is_err() {
            // The writer stopped; its error is reported by the caller.
            return Ok(total);
        }
        total += b.len;
    }
    Ok(total)
}

/// The label of the buffer holding device address `addr`.
fn label_at(cuda: &CudaRecord, addr: u64) -> String {
    cuda.buffers
        .iter()
        .find(|b| b.addr <= addr && addr < b.addr.saturating_add(b.len.max(1)))
        .map_or_else(|| "device memory".to_owned(), |b| b.label.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::image::{DeviceBuffer, DeviceFingerprint, ImageWriter};
    use crac_gpu::Stream;

    #[test]
    fn the_table_address_comes_from_the_auxv() {
        let auxv = [6, 4096, crac_abi::AT_CRAC_TABLE, 0x1234_5000, 0, 0];
        assert_eq!(table_in_auxv(&auxv), Some(0x1234_5000));
        assert_eq!(table_in_auxv(&[6, 4096, 0, 0]), None);
        // Nothing is read past AT_NULL.
        assert_eq!(table_in_auxv(&[0, 0, crac_abi::AT_CRAC_TABLE, 1]), None);
    }

    #[test]
    fn the_backend_is_the_asked_one_else_the_images() {
        let mut meta = ImageMeta::default();
        assert_eq!(backend_kind(&meta, None), "sim");
        meta.header.fingerprints.device = Some(DeviceFingerprint {
            backend: "cuda".into(),
            ..DeviceFingerprint::default()
        });
        assert_eq!(backend_kind(&meta, None), "cuda");
        assert_eq!(backend_kind(&meta, Some("sim")), "sim");
    }

    /// An image file holding one device buffer of `bytes` for `addr`.
    fn image_with(addr: u64, bytes: &[u8]) -> ImageReader<File> {
        let mut w = ImageWriter::new(tempfile::tempfile().expect("tempfile")).expect("writer");
        let payload = w.payload(bytes).expect("payload");
        let meta = ImageMeta {
            cuda: Some(CudaRecord {
                log: Vec::new(),
                buffers: vec![DeviceBuffer {
                    addr,
                    len: bytes.len() as u64,
                    label: "malloc".into(),
                    payload,
                }],
            }),
            ..ImageMeta::default()
        };
        let file = w.finish(&meta).expect("finish");
        ImageReader::open(file).expect("open")
    }

    #[test]
    fn device_memory_is_written_back_and_a_damaged_payload_is_refused() {
        let sim = crac_sim::Sim::new(16 << 20);
        let ptr = sim.malloc(3 << 20).expect("malloc");
        let bytes: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut reader = image_with(ptr.0, &bytes);
        let cuda = reader.meta().cuda.clone().expect("cuda");
        // Small pieces, so both staging buffers turn over many times.
        assert_eq!(
            write_back(&cuda, &mut reader, &sim, 4096 + 3).expect("write back"),
            bytes.len() as u64
        );
        let mut got = vec![0u8; bytes.len()];
        sim.memcpy_dtoh(&mut got, ptr, Stream::NULL).expect("read");
        assert!(got == bytes, "device memory differs");

        // Flip one byte of the payload in the file.
        let mut file = reader.into_inner();
        let offset = cuda.buffers[0].payload.offset + 12345;
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, offset).expect("read byte");
        file.write_all_at(&[b[0] ^ 0x40], offset).expect("flip");
        std::io::Seek::rewind(&mut file).expect("rewind");
        let mut reader = ImageReader::open(file).expect("open");
        let e = write_back(&cuda, &mut reader, &sim, CHUNK).expect_err("damaged");
        let text = e.to_string();
        assert!(
            text.contains("checksum") && text.contains(&format!("{:#x}", ptr.0)),
            "{text}"
        );
    }

    #[test]
    fn a_buffer_outside_the_device_is_refused_naming_it() {
        let sim = crac_sim::Sim::new(1 << 20);
        let mut reader = image_with(0x10, &[1, 2, 3]);
        let cuda = reader.meta().cuda.clone().expect("cuda");
        let e = write_back(&cuda, &mut reader, &sim, 1).expect_err("no such memory");
        assert!(
            e.to_string()
                .starts_with("cannot write the saved device memory at 0x10"),
            "{e}"
        );
    }
}
