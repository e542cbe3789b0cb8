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

impl ReplayError {
    /// A log whose bytes do not decode: what the decoder found, said in words (its own text is
    /// a debug dump).
    pub(crate) fn undecodable(e: &bincode::error::DecodeError) -> Self {
        use bincode::error::DecodeError as D;
        let reason = match e {
            D::UnexpectedEnd { .. } | D::Io { .. } => "it ends early",
            D::LimitExceeded => "a length in it is larger than the log",
            D::UnexpectedVariant { .. } | D::EmptyEnum { .. } => "it has an unknown entry kind",
            // serde's own errors: an enum's index out of range is the common one.
            D::OtherString(s) if s.contains("variant") => "it has an unknown entry kind",
            D::Utf8 { .. } | D::InvalidCharEncoding(_) => "a name in it is not valid UTF-8",
            D::InvalidBooleanValue(_) => "a yes/no field in it holds another value",
            D::InvalidIntegerType { .. }
            | D::NonZeroTypeIsZero { .. }
            | D::OutsideUsizeRange(_) => "a number in it is out of range",
            _ => "its contents do not decode",
        };
        ReplayError::CorruptLog {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::log::{Entry, LogFile, decode, encode};

    /// A log of one allocation, and the offset of that entry's kind (what follows a log of
    /// none: the entry count is its last byte).
    fn one_allocation() -> (Vec<u8>, usize) {
        let mut file = LogFile {
            backend: "sim".into(),
            ..LogFile::default()
        };
        let kind_at = encode(&file).expect("encode").len();
        file.entries.push(Entry::Allocation {
            addr: 0x7e00_0000_0000,
            size: 4096,
            pitch: None,
        });
        (encode(&file).expect("encode"), kind_at)
    }

    fn damaged(bytes: &[u8]) -> String {
        decode(bytes).expect_err("damaged").to_string()
    }

    fn assert_sentence(text: &str, says: &str) {
        assert!(text.contains("CUDA log is damaged"), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(
            !text.contains('{') && !text.contains("additional") && !text.contains("String"),
            "no debug dump: {text}"
        );
    }

    #[test]
    fn a_cut_log_is_said_to_end_early() {
        let (bytes, _) = one_allocation();
        for len in [13, bytes.len() / 2, bytes.len() - 1] {
            assert_sentence(&damaged(&bytes[..len]), "it ends early");
        }
    }

    #[test]
    fn an_entry_of_an_unknown_kind_is_named_so() {
        let (mut bytes, kind_at) = one_allocation();
        assert_eq!(bytes[kind_at], 0, "an allocation is the first kind");
        bytes[kind_at] = 200;
        assert_sentence(&damaged(&bytes), "it has an unknown entry kind");
    }

    #[test]
    fn a_name_that_is_not_utf8_is_named_so() {
        let (mut bytes, _) = one_allocation();
        // The backend name "sim" follows the 12-byte head and its length byte.
        assert_eq!(&bytes[13..16], b"sim");
        bytes[14] = 0xff;
        assert_sentence(&damaged(&bytes), "not valid UTF-8");
    }
}
