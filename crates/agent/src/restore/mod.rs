//! Restarting a program from an image (DESIGN.md, "The process layout" point 5): check the
//! build-id and fingerprints, reserve every saved interval, map the regions back, restore fds,
//! signal state and process state, rebuild the CUDA state ([`cuda`]) when the image holds
//! one, start the agent, recreate the threads and resume them.
//!
//! The caller (`crac_restart`) has run `startup::ensure_no_aslr` and `startup::init_lower_half`
//! and set up logging, and nothing else: this process is the same crac build with the same
//! layout the program was laid out around. Until every saved interval is reserved nothing here
//! may map memory (small allocations come from the lower arena, which exists already); the
//! agent (whose thread stack is a new mapping) starts only after the regions are in place.
//!
//! On success this never returns: the process is the program.

pub mod cuda;
mod memory;
pub mod threads;

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crac_core::image::{ImageError, ImageMeta, ImageReader};

use crate::checkpoint::machine;
use crate::checkpoint::procmem::ProcMem;
use crate::fds::{self, FdError, ProcessState};
use crate::sys;

/// How to restart.
#[derive(Clone, Debug, Default)]
pub struct RestartOptions {
    /// Read every payload into memory (checking every checksum) instead of mapping the image.
    pub eager: bool,
    /// The device backend for the program's CUDA state (`sim`, `cuda`); `None`: the one the
    /// image was taken with. Ignored, with a note, for an image without CUDA state.
    pub gpu: Option<String>,
    /// Starts a device backend by kind name: the caller owns backend choice and set-up.
    pub backend: Option<cuda::BackendFactory>,
}

/// Why a restart failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The image could not be opened.
    #[error("cannot open the image {}: {source}", path.display())]
    OpenImage {
        /// The image.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The image is damaged or not an image.
    #[error("cannot read the image {}: {source}", path.display())]
    ReadImage {
        /// The image.
        path: PathBuf,
        /// Why.
        source: ImageError,
    },
    /// Another crac build wrote the image.
    #[error(
        "the image was written by another crac build (build-id {image}, this one is {ours}); \
         restart it with the crac that wrote it"
    )]
    WrongBuild {
        /// The image's build-id.
        image: String,
        /// This crac's.
        ours: String,
    },
    /// The machine differs from the one the image was taken on.
    #[error(
        "the image cannot run on this machine: {0}; restart it on a machine like the one it was taken on"
    )]
    Incompatible(String),
    /// The vdso is elsewhere (address randomization on?).
    #[error(
        "the kernel's vdso is at {now:#x} here but was at {saved:#x} in the image, so the \
         address-space layout differs; restart on the same kernel, with a stack limit like the \
         launch's (ulimit -s; unlimited changes the layout) and address randomization allowed off"
    )]
    VdsoMoved {
        /// Where it was.
        saved: u64,
        /// Where it is.
        now: u64,
    },
    /// A saved region overlaps memory of this process.
    #[error(
        "the program's memory {start:#x}-{end:#x} ({name}) collides with {theirs} in \
         crac_restart; is this the crac build, kernel and environment the image was taken with?"
    )]
    Collision {
        /// Region start.
        start: u64,
        /// Region end.
        end: u64,
        /// Its name in the image.
        name: String,
        /// What is there now.
        theirs: String,
    },
    /// Reserving a region failed for another reason.
    #[error(
        "cannot reserve the program's memory {start:#x}-{end:#x}: {source}; an address-space \
         limit (ulimit -v) lower than the launch's, or a damaged image, does this"
    )]
    Reserve {
        /// Region start.
        start: u64,
        /// Region end.
        end: u64,
        /// Why.
        source: io::Error,
    },
    /// Mapping a region failed.
    #[error("cannot map the program's memory {start:#x}-{end:#x} ({name}): {source}")]
    MapRegion {
        /// Region start.
        start: u64,
        /// Region end.
        end: u64,
        /// Its name.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// Making a run writable to fill it failed.
    #[error("cannot fill the program's memory at {addr:#x}: {source}")]
    FillRegion {
        /// Where.
        addr: u64,
        /// Why.
        source: io::Error,
    },
    /// A payload could not be read or its checksum is wrong.
    #[error("cannot read the saved memory at {addr:#x} from the image: {source}")]
    ReadPayload {
        /// Where it goes.
        addr: u64,
        /// Why.
        source: ImageError,
    },
    /// A shared file mapping's file could not be opened.
    #[error("cannot open {path}, which the program had mapped shared: {source}")]
    OpenSharedFile {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// `/proc/self/maps` could not be read.
    #[error("cannot read /proc/self/maps: {0}")]
    ReadMaps(#[source] io::Error),
    /// `/proc/self/mem` could not be opened.
    #[error("cannot open /proc/self/mem to fix up the threads' frames: {0}")]
    ProcMem(#[source] io::Error),
    /// crac's own fds could not be moved out of the program's numbers.
    #[error("cannot move crac's own fds out of the program's fd numbers: {0}")]
    MoveCracFds(#[source] io::Error),
    /// The program's fds or process state could not be restored.
    #[error(transparent)]
    Fds(#[from] FdError),
    /// A signal action could not be set.
    #[error("cannot restore the program's action for signal {signo}: {source}")]
    SignalAction {
        /// The signal.
        signo: i32,
        /// Why.
        source: io::Error,
    },
    /// The agent could not start.
    #[error("cannot start crac's agent in the restarted process: {0}")]
    StartAgent(#[from] crate::AgentError),
    /// A thread could not be recreated.
    #[error("cannot recreate thread {tid} of the program: {source}")]
    CloneThread {
        /// Its tid in the image.
        tid: i32,
        /// Why.
        source: io::Error,
    },
    /// The image holds no thread.
    #[error("the image holds no thread to resume")]
    NoThreads,
    /// The program's CUDA state could not be rebuilt.
    #[error(transparent)]
    Device(#[from] cuda::DeviceRestoreError),
    /// The image file is another one than when the restart began.
    #[error("the image file was replaced while the program was being restarted; try again")]
    ImageReplaced,
}

/// Restarts the program saved in `image`. Returns only on failure.
pub fn restart(image: &Path, options: &RestartOptions) -> Result<Infallible, RestoreError> {
    let open_err = |source| RestoreError::OpenImage {
        path: image.to_owned(),
        source,
    };
    let file = File::open(image).map_err(open_err)?;
    let file = File::from(crac_loader::fds::move_high(OwnedFd::from(file)).map_err(open_err)?);
    let mut reader = ImageReader::open(file).map_err(|source| RestoreError::ReadImage {
        path: image.to_owned(),
        source,
    })?;
    // Leaked on purpose: the threads' records are read on the way out, which never returns.
    let meta: &'static ImageMeta = Box::leak(Box::new(reader.meta().clone()));
    check(meta)?;

    // Nothing may map memory from here until every saved interval is reserved.
    let reserved = memory::reserve_all(&meta.regions)?;
    let mm = &meta.process.mm;
    let anonymous = [mm.arg_start, mm.env_start];
    memory::map_all(
        &mut reader,
        &meta.regions,
        &reserved,
        options.eager,
        &anonymous,
    )?;
    // The mappings keep the image file. Its fd is closed now, before the program's fds take
    // their numbers; the CUDA step opens the file again and checks it is the same one.
    let identity = reader.get_ref().metadata().map(|m| (m.dev(), m.ino())).ok();
    drop(reader);
    tracing::debug!("{} regions mapped", meta.regions.len());

    let taken: Vec<i32> = meta.fds.iter().map(|f| f.fd).collect();
    crac_loader::fds::move_out_of(&taken).map_err(RestoreError::MoveCracFds)?;
    fds::restore(&meta.fds)?;
    // Opened after the program's fds are in place, so its number is none of theirs.
    let mem = ProcMem::open_plain().map_err(RestoreError::ProcMem)?;
    let mem = ProcMem::from_file(File::from(
        crac_loader::fds::move_high(mem.into_fd()).map_err(RestoreError::ProcMem)?,
    ));
    threads::fix_restart_blocks(&mem, &meta.threads);

    // Signals: block everything on this thread (it becomes the program's main thread, whose
    // frame restores its mask), then put back every action.
    let _ = sys::process::set_sigmask(u64::MAX);
    sys::resume::restore_actions(&meta.signals.actions)
        .map_err(|(signo, source)| RestoreError::SignalAction { signo, source })?;
    restore_mm(meta);
    // After the signal mask is all blocked: the backend's and the table's lower threads
    // inherit it, so no program signal is ever delivered to them.
    restore_device(image, identity, meta, options)?;

    crate::checkpoint::set_generation(meta.header.generation.saturating_add(1));
    let agent = crate::start()?;
    // The agent lives as long as the process; dropping it would remove its socket.
    std::mem::forget(agent);
    if let Err(e) = crate::trigger::arm(&meta.process.policy) {
        tracing::warn!("checkpoint triggers not armed after restart: {e}");
    }
    let state = ProcessState {
        cwd: meta.process.cwd.clone(),
        umask: meta.process.umask,
        rlimits: meta.process.rlimits.clone(),
    };
    match fds::restore_process(&state) {
        Ok(()) => {}
        Err(e @ FdError::HardLimitsLowered { .. }) => tracing::warn!("{e}"),
        Err(e) => return Err(e.into()),
    }
    sys::resume::resume(meta, &mem)
}

/// Rebuilds the CUDA state the image holds (nothing for an image without one: then `--gpu`
/// is noted and ignored, since the program never had a call table to find).
fn restore_device(
    image: &Path,
    identity: Option<(u64, u64)>,
    meta: &ImageMeta,
    options: &RestartOptions,
) -> Result<(), RestoreError> {
    let Some(record) = &meta.cuda else {
        if let Some(kind) = &options.gpu {
            tracing::warn!(
                "the image holds no CUDA state (the program was launched without --gpu); \
                 --gpu {kind} is ignored"
            );
        }
        return Ok(());
    };
    let open_err = |source| RestoreError::OpenImage {
        path: image.to_owned(),
        source,
    };
    let file = File::open(image).map_err(open_err)?;
    let file = File::from(crac_loader::fds::move_high(OwnedFd::from(file)).map_err(open_err)?);
    let again = file.metadata().map(|m| (m.dev(), m.ino())).ok();
    if identity.is_none() || again != identity {
        return Err(RestoreError::ImageReplaced);
    }
    let mut reader = ImageReader::open(file).map_err(|source| RestoreError::ReadImage {
        path: image.to_owned(),
        source,
    })?;
    let kind = cuda::backend_kind(meta, options.gpu.as_deref());
    let started = std::time::Instant::now();
    let bytes = cuda::restore(meta, record, &mut reader, &kind, options.backend)?;
    tracing::debug!(
        "CUDA state rebuilt on {kind}: {bytes} bytes of device memory in {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Refuses an image this build or machine cannot resume.
fn check(meta: &ImageMeta) -> Result<(), RestoreError> {
    let ours = machine::build_id();
    if meta.header.build_id != ours {
        return Err(RestoreError::WrongBuild {
            image: meta.header.build_id.clone(),
            ours,
        });
    }
    let text = std::fs::read_to_string("/proc/self/maps").map_err(RestoreError::ReadMaps)?;
    let maps = crac_core::procfs::parse_maps(&text)
        .map_err(|e| RestoreError::ReadMaps(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    let mem = ProcMem::open_plain().map_err(RestoreError::ProcMem)?;
    let here = machine::fingerprints(&maps, &mem);
    let saved = &meta.header.fingerprints;
    let diffs = machine::differences(saved, &here);
    if !diffs.is_empty() {
        return Err(RestoreError::Incompatible(diffs.join("; ")));
    }
    memory::check_vdso(&saved.vdso, &here.vdso)
}

/// Points the kernel's argv/environ/auxv/stack fields at the program's and names the process.
fn restore_mm(meta: &ImageMeta) {
    let m = &meta.process.mm;
    // brk: crac's own break (both halves never use it; the kernel checks it against start_brk).
    let brk = sys::process::current_brk().max(m.start_brk);
    let fields = [
        m.start_code,
        m.end_code,
        m.start_data,
        m.end_data,
        m.start_brk,
        brk,
        m.start_stack,
        m.arg_start,
        m.arg_end,
        m.env_start,
        m.env_end,
    ];
    if let Err(e) = crac_loader::set_mm_map(fields, &m.auxv) {
        tracing::warn!("cannot point /proc/self/cmdline and environ at the program: {e}");
    }
    if let Ok(name) = std::ffi::CString::new(meta.process.comm.as_bytes()) {
        let _ = sys::process::set_name(&name);
    }
}
