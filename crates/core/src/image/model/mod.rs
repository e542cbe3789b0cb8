//! What a checkpoint image holds, as plain data: the records the agent captures and the restorer
//! reads back. Encoding, checksums and layout are `image`'s business (see `docs/image-format.md`);
//! these types only say *what* is saved.
//!
//! Addresses and sizes are `u64`, fds and tids `i32`, signal sets `u64` bit masks (bit `n - 1`
//! for signal `n`), as the kernel uses them.

mod fds;

use serde::{Deserialize, Serialize};

pub use fds::{EpollWatch, FdKind, FdRecord};

/// Everything in an image except the page payloads, which the region table points into.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Who made the image and on what: checked before anything is restored.
    pub header: ImageHeader,
    /// Process-wide state.
    pub process: ProcessRecord,
    /// The program's threads; exactly one has `is_main`.
    pub threads: Vec<ThreadRecord>,
    /// Signal dispositions and process-wide pending signals.
    pub signals: SignalRecord,
    /// The program's open fds (crac's own never appear here).
    pub fds: Vec<FdRecord>,
    /// The program's memory, sorted by address, non-overlapping.
    pub regions: Vec<RegionRecord>,
    /// The CUDA section (device memory, the replay log), opaque to the CPU side; `None` for a
    /// program that never used a device.
    pub cuda: Option<CudaRecord>,
}

/// Provenance and compatibility: a restart refuses an image whose build-id or fingerprints do
/// not match the running crac and machine, naming what differs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHeader {
    /// The crac build that wrote the image (GNU build-id of the `crac` executable, hex).
    pub build_id: String,
    /// crac's version string, for people.
    pub crac_version: String,
    /// When the image was written, seconds since the Unix epoch.
    pub created_unix: u64,
    /// How many restarts preceded this image (0 for a process started by `crac_launch`).
    pub generation: u32,
    /// The machine the image was taken on.
    pub fingerprints: Fingerprints,
}

/// Facts about the machine that a restart depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -m`.
    pub machine: String,
    /// XSAVE area size the kernel uses for signal frames (CPUID 0xD), bytes.
    pub xsave_size: u32,
    /// XCR0: the state components saved in signal frames.
    pub xsave_features: u64,
    /// The C library the program runs on (`gnu_get_libc_version` of the program's libc, or
    /// empty when unknown).
    pub libc_version: String,
    /// Where the kernel's vdso and vvar were, and a hash of the vdso's bytes.
    pub vdso: VdsoRecord,
    /// The device the CUDA state came from, when there was one.
    pub device: Option<DeviceFingerprint>,
}

/// The vdso (and vvar pages) of the checkpointed process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VdsoRecord {
    /// `[vdso]` start address.
    pub vdso_start: u64,
    /// `[vdso]` end address.
    pub vdso_end: u64,
    /// Start of the `[vvar]`/`[vvar_vclock]` pages (0 if absent).
    pub vvar_start: u64,
    /// End of the vvar pages.
    pub vvar_end: u64,
    /// A hash of the vdso's bytes: equal hashes mean equal symbol offsets.
    pub hash: u64,
}

/// The device backend and device an image's CUDA state was taken on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFingerprint {
    /// `sim` or `cuda`.
    pub backend: String,
    /// Device name as the backend reports it.
    pub name: String,
    /// Compute capability, `major * 10 + minor`.
    pub compute_capability: u32,
    /// Driver version as `cudaDriverGetVersion` reports it (0 for `sim`).
    pub driver_version: i32,
}

/// Process-wide state other than signals, fds and memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The pid at checkpoint time (the restarted process has a new one).
    pub pid: i32,
    /// `comm` (what `ps` shows).
    pub comm: String,
    /// The program as the user named it to `crac_launch` (resolved path).
    pub program: String,
    /// The program's argv, for people (`crac inspect`); the real argv lives in saved memory.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// File-mode creation mask.
    pub umask: u32,
    /// Resource limits (`RLIMIT_*` number, soft, hard; `u64::MAX` = unlimited).
    pub rlimits: Vec<Rlimit>,
    /// The kernel's `mm` fields that `PR_SET_MM_MAP` restores (cmdline, environ, auxv, brk).
    pub mm: MmRecord,
    /// Offset of the thread id inside the C library's thread descriptor (`struct pthread` for
    /// glibc), measured at checkpoint time from the live threads; `None` when no offset held for
    /// every thread (a non-glibc program): then the cached tids are left alone.
    pub tid_offset: Option<u32>,
    /// Checkpoint settings carried across restarts (directory, period, rotation, signal).
    pub policy: CheckpointPolicy,
}

/// One resource limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_*` number.
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The `prctl(PR_SET_MM_MAP)` fields (`struct prctl_mm_map`, minus the exe fd).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MmRecord {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxiliary vector as `(type, value)` words, `AT_NULL` included.
    pub auxv: Vec<u64>,
}

/// Checkpoint settings given to `crac_launch`, kept so a restarted process goes on with them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointPolicy {
    /// Where triggered and periodic images go (absolute).
    pub dir: String,
    /// Seconds between periodic checkpoints, if any.
    pub interval_secs: Option<u64>,
    /// How many images to keep in `dir` (older ones are removed after a good write).
    pub keep: Option<u32>,
    /// The signal that triggers a checkpoint (`--ckpt-signal`), if any.
    pub signal: Option<i32>,
    /// Stop the program after a signal-triggered checkpoint succeeds.
    pub exit_after_ckpt: bool,
}

/// One program thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRecord {
    /// Thread id at checkpoint time.
    pub tid: i32,
    /// The thread whose tid was the pid; restart runs it on the restarted process's main thread.
    pub is_main: bool,
    /// Thread name (`/proc/self/task/TID/comm`).
    pub name: String,
    /// The fs base (the thread pointer) the thread ran with.
    pub fs_base: u64,
    /// Address of the `ucontext_t` the kernel pushed when the quiesce signal arrived; the
    /// thread resumes with `rt_sigreturn` on it. It lies in saved memory (the thread's stack).
    pub ucontext: u64,
    /// The thread's alternate signal stack (`ss_sp`, `ss_size`, `ss_flags`).
    pub altstack: AltStack,
    /// Signals pending for this thread only (bit mask).
    pub pending: u64,
    /// `get_robust_list`: head address and length.
    pub robust_list: (u64, u64),
    /// The system call the thread was blocked in when it was stopped (from
    /// `/proc/self/task/TID/syscall`), so a call the kernel would only resume through its lost
    /// restart block (`nanosleep`, timed `futex`, …) is re-issued after restart.
    pub blocked_syscall: Option<i64>,
}

/// `stack_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub flags: i32,
}

/// Signal dispositions and pending process-wide signals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// The program's action for every signal 1..=64 except SIGKILL and SIGSTOP.
    pub actions: Vec<SigAction>,
    /// Signals pending for the whole process (bit mask).
    pub shared_pending: u64,
}

/// One `struct sigaction` as the kernel stores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    /// Signal number.
    pub signo: i32,
    /// `SIG_DFL` (0), `SIG_IGN` (1) or the handler's address.
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

/// One region of the program's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRecord {
    /// First byte (page-aligned).
    pub start: u64,
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// How the region was mapped.
    pub kind: RegionKind,
    /// The `/proc/self/maps` name (file path, `[heap]`, `[stack]`, empty), for people.
    pub name: String,
    /// The pages with contents. Pages of the region not covered by a run are zero (anonymous)
    /// or as in the backing file (`SharedFile`).
    pub runs: Vec<PageRun>,
}

/// How a region was mapped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionKind {
    /// Private memory (anonymous, or a private file mapping whose contents are saved).
    #[default]
    Private,
    /// `MAP_SHARED|MAP_ANONYMOUS` (or a memfd): contents saved, restored shared.
    SharedAnon,
    /// A shared mapping of a file: mapped again from the file, contents not saved.
    SharedFile {
        /// Absolute path.
        path: String,
        /// File offset of `start`.
        offset: u64,
    },
}

/// Consecutive pages saved in one payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRun {
    /// Address of the first page.
    pub addr: u64,
    /// Length in bytes (a multiple of the page size).
    pub len: u64,
    /// Where the payload is in the image file (page-aligned when raw).
    pub payload: PayloadRef,
}

/// Where a payload is and how to check it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadRef {
    /// Offset of the payload in the image file.
    pub offset: u64,
    /// Bytes stored in the file (equals the run's length when raw).
    pub stored_len: u64,
    /// How it is stored.
    pub encoding: Encoding,
    /// Checksum of the uncompressed bytes (xxh3-64).
    pub checksum: u64,
}

/// Payload encodings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// The bytes as they were in memory; page-aligned in the file, so restart can `mmap` them.
    #[default]
    Raw,
    /// zstd frames.
    Zstd,
}

/// The CUDA state of the program (filled by the CUDA-aware checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CudaRecord {
    /// The replay log and object table, encoded by `crac-replay`.
    pub log: Vec<u8>,
    /// Device memory: one entry per allocation or variable, payloads in the image's payload
    /// area like memory runs.
    pub buffers: Vec<DeviceBuffer>,
}

/// One device allocation or `__device__`/`__constant__` variable's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBuffer {
    /// Device address.
    pub addr: u64,
    /// Size in bytes.
    pub len: u64,
    /// What it is, for people (`malloc`, `variable NAME`).
    pub label: String,
    /// The contents.
    pub payload: PayloadRef,
}
