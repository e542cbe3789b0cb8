//! Step 3 and 4 of a checkpoint: capturing threads, signals, process state and fds of the
//! stopped program, then streaming its device memory (under `--gpu`), planning and streaming
//! its memory and committing the image.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crac_core::image::{CudaRecord, ImageHeader, ImageMeta, ImageWriter, ProcessRecord, durable};

use super::cuda::{self, DeviceHold};
use super::procmem::ProcMem;
use super::{
    CheckpointError, CheckpointOutcome, CheckpointRequest, GENERATION, Progress, machine, memory,
    process, quiesce, regions, threads,
};
use crate::fds;
use crate::lower::LowerHalf;

/// Everything captured before the fds and memory.
struct Captured {
    pid: i32,
    threads: Vec<crac_core::image::ThreadRecord>,
    tid_offset: Option<u32>,
    signals: crac_core::image::SignalRecord,
    mm: crac_core::image::MmRecord,
    program: String,
    argv: Vec<String>,
    comm: String,
    state: fds::ProcessState,
}

/// Captures everything and writes the image to `file` (at `PATH.tmp`), then commits it under
/// `request.path`. On failure after the fd capture, what it took is put back.
pub(super) fn write_image(
    request: &CheckpointRequest,
    lower: &dyn LowerHalf,
    stopped: &quiesce::Stopped,
    mem: &ProcMem,
    device: Option<&DeviceHold>,
    file: File,
    progress: &mut dyn FnMut(Progress),
) -> Result<(CheckpointOutcome, fds::FdCapture), CheckpointError> {
    let file = lower
        .protect_fd(file.into())
        .map(File::from)
        .map_err(CheckpointError::ProtectFd)?;
    let image_fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    crac_loader::fds::register(image_fd);
    let captured = capture(lower, stopped, mem)?;
    let reply = request
        .agent_reply
        .as_ref()
        .map(|(fd, frame)| (*fd, frame.as_slice()));
    let is_crac = |fd: i32| fd == image_fd || crac_loader::fds::is_crac_fd(fd);
    let fd_capture = fds::capture(&is_crac, reply)?;
    let ctx = Ctx {
        request,
        lower,
        stopped,
        mem,
        device,
    };
    match write_memory(&ctx, file, captured, &fd_capture, progress) {
        Ok(outcome) => Ok((outcome, fd_capture)),
        Err(e) => {
            if let Err(e) = fd_capture.resume() {
                tracing::warn!("after the failed checkpoint: {e}");
            }
            Err(e)
        }
    }
}

fn read_err(what: &'static str) -> impl Fn(io::Error) -> CheckpointError {
    move |source| CheckpointError::ReadProc { what, source }
}

/// Threads, signals and process state.
fn capture(
    lower: &dyn LowerHalf,
    stopped: &quiesce::Stopped,
    mem: &ProcMem,
) -> Result<Captured, CheckpointError> {
    // A thread stopped inside crac (through the call table) runs on a TCB and code of crac's,
    // which are not saved: it could not resume from the image.
    let lower_now = lower.intervals();
    if let Some(t) = stopped
        .threads
        .iter()
        .find(|t| lower_now.contains(t.parked.fs_base))
    {
        return Err(CheckpointError::ThreadInCrac { tid: t.parked.tid });
    }
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    let mut threads: Vec<_> = stopped
        .threads
        .iter()
        .map(|t| threads::record(t, pid))
        .collect();
    threads.sort_by_key(|t| (!t.is_main, t.tid));
    let mm = process::mm().map_err(read_err("mm fields (/proc/self/stat, auxv)"))?;
    let (program, argv) = process::program_and_argv(&mm, mem);
    Ok(Captured {
        pid,
        threads,
        tid_offset: threads::measure_tid_offset(mem, &stopped.threads),
        signals: process::signals(&stopped.program_action).map_err(read_err("signal state"))?,
        mm,
        program,
        argv,
        comm: std::fs::read_to_string("/proc/self/comm")
            .map(|s| s.trim_end_matches('\n').to_string())
            .unwrap_or_default(),
        state: fds::capture_process()?,
    })
}

/// What the write needs to know.
struct Ctx<'a> {
    request: &'a CheckpointRequest,
    lower: &'a dyn LowerHalf,
    stopped: &'a quiesce::Stopped,
    mem: &'a ProcMem,
    device: Option<&'a DeviceHold>,
}

/// Plans and writes the memory, then the metadata, and commits the image.
fn write_memory(
    ctx: &Ctx<'_>,
    file: File,
    c: Captured,
    fd_capture: &fds::FdCapture,
    progress: &mut dyn FnMut(Progress),
) -> Result<CheckpointOutcome, CheckpointError> {
    let Ctx {
        request,
        lower,
        stopped,
        mem,
        device,
    } = *ctx;
    // Memory last: everything above allocated in the lower arena only.
    let intervals = lower.intervals();
    let maps_text =
        std::fs::read_to_string("/proc/self/maps").map_err(read_err("/proc/self/maps"))?;
    let maps = crac_core::procfs::parse_maps(&maps_text)?;
    let pagemap = File::open("/proc/self/pagemap").map_err(read_err("/proc/self/pagemap"))?;
    let plans = regions::plan(
        &maps,
        &intervals,
        &mut |iv| regions::present_runs(&pagemap, iv),
        &mut |path| std::fs::metadata(path).ok().map(|m| m.len()),
    )
    .map_err(read_err("/proc/self/pagemap"))?;
    drop(pagemap);
    let memory_bytes = memory::total(&plans);
    let device_bytes = device.map_or(0, DeviceHold::bytes);
    let mut fingerprints = machine::fingerprints(&maps, mem);
    if let Some(d) = device {
        fingerprints.device = Some(d.fingerprint()?);
    }
    let proof = stopped
        .proof()
        .ok_or(CheckpointError::ThreadsKeepStarting)?;
    let direct = crate::sys::memory::StoppedMemory::new(proof, &maps);

    let write_started = Instant::now();
    let mut writer = ImageWriter::new(file).map_err(CheckpointError::Image)?;
    let total = memory_bytes + device_bytes;
    let cuda = match device {
        Some(d) => {
            let buffers = cuda::write_buffers(
                &mut writer,
                d.runtime.backend(),
                &d.snapshot.buffers,
                cuda::STAGING,
                &mut |done| progress(Progress { done, total }),
            )?;
            Some(CudaRecord {
                log: d.snapshot.log.clone(),
                buffers,
            })
        }
        None => None,
    };
    let device_write = write_started.elapsed();
    let regions = memory::write(&mut writer, plans, &direct, mem, &mut |p| {
        progress(Progress {
            done: device_bytes + p.done,
            total,
        });
    })?;
    let meta = ImageMeta {
        header: ImageHeader {
            build_id: machine::build_id(),
            crac_version: env!("CARGO_PKG_VERSION").to_string(),
            created_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            generation: GENERATION.load(Ordering::Relaxed),
            fingerprints,
        },
        process: ProcessRecord {
            pid: c.pid,
            comm: c.comm,
            program: c.program,
            argv: c.argv,
            cwd: c.state.cwd,
            umask: c.state.umask,
            rlimits: c.state.rlimits,
            mm: c.mm,
            tid_offset: c.tid_offset,
            policy: request.policy.clone(),
        },
        threads: c.threads,
        signals: c.signals,
        fds: fd_capture.records.clone(),
        regions,
        cuda,
    };
    let file = writer.finish(&meta).map_err(CheckpointError::Image)?;
    let image_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    durable::commit(file, &durable::tmp_path(&request.path), &request.path)?;
    Ok(CheckpointOutcome {
        path: request.path.clone(),
        image_bytes,
        memory_bytes,
        pause: Duration::ZERO,
        write: write_started.elapsed(),
        device_bytes,
        drain: Duration::ZERO,
        device_write,
    })
}
