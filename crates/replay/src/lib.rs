//! crac's lower-half CUDA runtime, its call log, and replay into a fresh device backend.
//!
//! - [`runtime::Runtime`]: every operation the upper-half shim sends across the call table
//!   (`crac_abi::ops`), implemented over a [`crac_gpu::DeviceBackend`] (the `sim` CPU model or
//!   the real CUDA backend). Its state is what a restart must rebuild and nothing more:
//!   registrations (fat binaries, kernels by host stub, variables by host shadow), device
//!   allocations, virtual stream and event handles, registered host memory, device settings.
//!   No per-launch state is kept.
//! - [`log`]: that state as a compacted, versioned log — one entry per live object — which
//!   [`Runtime::snapshot`] writes at a checkpoint (with the list of device memory to save) and
//!   [`Runtime::restore`] replays into a fresh backend, checking every device address.
//! - [`handles`]: virtual handles, the stable values the program holds.
//! - [`host`]: the seam to the program's memory; the one implementation over real addresses
//!   lives in the `crac` executable's loader, so this crate stays free of unsafe code.
#![forbid(unsafe_code)]

mod describe;
pub mod handles;
pub mod host;
pub mod log;
mod restore;
pub mod runtime;
mod snapshot;

pub use describe::{LogSummary, ObjectSummary, describe};
pub use host::{BufferMemory, HostFault, HostMemory};
pub use runtime::{DevicePrintf, Runtime};
pub use snapshot::{DeviceRegion, Snapshot};

use crac_gpu::GpuError;
use thiserror::Error;

/// A checkpoint's log could not be written, read or replayed.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The log's bytes are not a log this build can trust.
    #[error("the image's CUDA log is damaged ({reason}); restart from another image")]
    CorruptLog {
        /// What is wrong.
        reason: String,
    },
    /// The log has another format version.
    #[error(
        "the image's CUDA log has format version {found}, this crac reads version \
         {supported}; restart it with the crac that wrote it"
    )]
    LogVersion {
        /// The log's version.
        found: u32,
        /// This build's.
        supported: u32,
    },
    /// The log could not be encoded (a crac bug).
    #[error("cannot encode the CUDA log: {source}")]
    EncodeLog {
        /// Why.
        source: bincode::error::EncodeError,
    },
    /// A device query a checkpoint needs failed.
    #[error("cannot {what} for the checkpoint: {source}")]
    Query {
        /// What was asked.
        what: &'static str,
        /// The device's error.
        source: GpuError,
    },
    /// The runtime's allocation table and the backend's disagree (a crac bug).
    #[error(
        "the device holds {backend} allocations but crac tracked {tracked} (first difference \
         at {first:#x}); the checkpoint is refused, please report this bug"
    )]
    AllocationsDiffer {
        /// How many the backend has.
        backend: usize,
        /// How many the runtime tracked.
        tracked: usize,
        /// The first address in one list and not the other.
        first: u64,
    },
    /// Re-creating an object at restart failed.
    #[error("cannot re-create {object} on the {backend} device: {source}")]
    Recreate {
        /// The object (`allocation 0x… of N bytes`, `stream 0x…`).
        object: String,
        /// The backend's name.
        backend: &'static str,
        /// The device's error.
        source: GpuError,
    },
    /// A module that was loaded cannot be loaded on this backend.
    #[error("cannot load {object} on the {backend} device: {source}{hint}")]
    LoadModule {
        /// The fat binary (`fat binary 0x… (wrapper 0x…)`).
        object: String,
        /// The backend's name.
        backend: &'static str,
        /// The device's error.
        source: GpuError,
        /// What the user can do (empty when nothing).
        hint: String,
    },
    /// An object came back at another device address than it had: the program holds the old
    /// one, so the restart cannot go on.
    #[error(
        "{object} was at device address {saved:#x} but is at {found} after replay; the \
         program holds the old address, so it cannot be resumed"
    )]
    AddressMismatch {
        /// The object.
        object: String,
        /// Where it was.
        saved: u64,
        /// Where it is now (`0x…`, or `nowhere`).
        found: String,
    },
    /// A value of the log names something the restarted runtime already holds (a damaged
    /// log that passed the checks, or a crac bug).
    #[error("cannot put {object} back: {reason}")]
    Rebind {
        /// The object.
        object: String,
        /// Why.
        reason: String,
    },
}
