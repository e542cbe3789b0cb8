//! Writing the image. [`begin`] runs before the program's threads are stopped: it creates the
//! image and streams the device memory into it (under `--gpu`). [`write_image`] runs once they
//! are stopped: it captures threads, signals, process state and fds, plans and streams the
//! program's memory and commits the image.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crac_core::image::{
    CudaRecord, DeviceFingerprint, ImageError, ImageHeader, ImageMeta, ImageWriter, ProcessRecord,
    durable,
};
use crac_core::procfs::MapsEntry;

use super::cuda::{self, DeviceHold};
use super::procmem::ProcMem;
use super::{
    CheckpointError, CheckpointOutcome, CheckpointRequest, GENERATION, Progress, machine, memory,
    process, quiesce, regions, threads,
};
use crate::fds;
use crate::lower::LowerHalf;

/// An image being written, its device memory already in: what [`begin`] hands to
/// [`write_image`].
pub(super) struct Begun {
    writer: ImageWriter<File>,
    /// The image's fd (crac's, not the program's).
    image_fd: i32,
    /// The CUDA section, payloads written (`None` without `--gpu`).
    cuda: Option<CudaRecord>,
    /// The device the CUDA section comes from.
    device: Option<DeviceFingerprint>,
    /// Device memory written, bytes.
    device_bytes: u64,
    /// How long writing it took.
    device_write: Duration,
}

/// Before the program's threads are stopped: starts the image on `file` (at `PATH.tmp`) and
/// streams the device memory `device` holds into it. The program goes on running meanwhile,
/// but nothing it does can change device memory: its CUDA calls wait at the closed gate and
/// the device is drained. `progress` counts the device bytes against an estimate of the
/// memory to come.
pub(super) fn begin(
    lower: &dyn LowerHalf,
    device: Option<&DeviceHold>,
    file: File,
    progress: &mut dyn FnMut(Progress),
) -> Result<Begun, CheckpointError> {
    let file = lower
        .protect_fd(file.into())
        .map(File::from)
        .map_err(CheckpointError::ProtectFd)?;
    let image_fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    crac_loader::fds::register(image_fd);
    // Under `--gpu`, a second fd of the image, out of the program's way too, to flush the
    // device payloads.
    let flusher = match device {
        Some(_) => Some(
            file.try_clone()
                .and_then(|f| lower.protect_fd(f.into()))
                .map(File::from)
                .map_err(CheckpointError::ProtectFd)?,
        ),
        None => None,
    };
    let started = Instant::now();
    let mut writer = ImageWriter::new(file).map_err(CheckpointError::Image)?;
    let (Some(d), Some(flusher)) = (device, flusher) else {
        return Ok(Begun {
            writer,
            image_fd,
            cuda: None,
            device: None,
            device_bytes: 0,
            device_write: Duration::ZERO,
        });
    };
    let device_bytes = d.bytes();
    // Only for the progress total: the program's memory as it is now (it still runs).
    let estimate = plan_memory(lower).map_or(0, |(_, plans)| memory::total(&plans));
    let total = device_bytes + estimate;
    let fingerprint = d.fingerprint()?;
    let buffers = cuda::write_buffers(
        &mut writer,
        d.runtime.backend(),
        &d.snapshot.buffers,
        cuda::STAGING,
        &mut |done| progress(Progress { done, total }),
    )?;
    // The device payloads reach the disk now, while the program runs: the commit's fsync,
    // inside the pause, then has only the program's memory and the metadata to flush.
    flusher
        .sync_data()
        .map_err(|source| CheckpointError::Image(ImageError::WriteImage { source }))?;
    drop(flusher);
    Ok(Begun {
        writer,
        image_fd,
        cuda: Some(CudaRecord {
            log: d.snapshot.log.clone(),
            buffers,
        }),
        device: Some(fingerprint),
        device_bytes,
        device_write: started.elapsed(),
    })
}

/// The mappings of `/proc/self/maps` and the plan of the program memory to save (the lower
/// half left out).
fn plan_memory(
    lower: &dyn LowerHalf,
) -> Result<(Vec<MapsEntry>, Vec<regions::Plan>), CheckpointError> {
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
    Ok((maps, plans))
}

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

/// With the program stopped: captures everything, writes it and the memory after the device
/// memory [`begin`] wrote, then commits the image under `request.path`. On failure after the
/// fd capture, what it took is put back.
pub(super) fn write_image(
    request: &CheckpointRequest,
    lower: &dyn LowerHalf,
    begun: Begun,
    stopped: &quiesce::Stopped,
    mem: &ProcMem,
    progress: &mut dyn FnMut(Progress),
) -> Result<(CheckpointOutcome, fds::FdCapture), CheckpointError> {
    let captured = capture(lower, stopped, mem)?;
    let reply = request
        .agent_reply
        .as_ref()
        .map(|(fd, frame)| (*fd, frame.as_slice()));
    let image_fd = begun.image_fd;
    let is_crac = |fd: i32| fd == image_fd || crac_loader::fds::is_crac_fd(fd);
    let fd_capture = fds::capture(&is_crac, reply)?;
    let ctx = Ctx {
        request,
        lower,
        stopped,
        mem,
    };
    match write_memory(&ctx, begun, captured, &fd_capture, progress) {
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
}

/// Plans and writes the memory, then the metadata, and commits the image.
fn write_memory(
    ctx: &Ctx<'_>,
    begun: Begun,
    c: Captured,
    fd_capture: &fds::FdCapture,
    progress: &mut dyn FnMut(Progress),
) -> Result<CheckpointOutcome, CheckpointError> {
    let Ctx {
        request,
        lower,
        stopped,
        mem,
    } = *ctx;
    let Begun {
        mut writer,
        cuda,
        device,
        device_bytes,
        device_write,
        ..
    } = begun;
    // Memory last: everything above allocated in the lower arena only.
    let (maps, plans) = plan_memory(lower)?;
    let memory_bytes = memory::total(&plans);
    let mut fingerprints = machine::fingerprints(&maps, mem);
    fingerprints.device = device;
    let proof = stopped
        .proof()
        .ok_or(CheckpointError::ThreadsKeepStarting)?;
    let direct = crate::sys::memory::StoppedMemory::new(proof, &maps);

    let write_started = Instant::now();
    let total = memory_bytes + device_bytes;
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
        write: device_write + write_started.elapsed(),
        device_bytes,
        drain: Duration::ZERO,
        device_write,
    })
}
