//! crac's device-backend trait, shared by the `sim` CPU model and the real CUDA backend.
//!
//! The cudart shim in the upper half turns each CUDA runtime call into a call on a
//! [`DeviceBackend`] in the lower half. Handles are plain integers ([`handles`]), errors are one
//! enum whose variants are CUDA's error codes ([`GpuError::code`]), and every device address
//! lives in one fixed window of the address space ([`window`]) so pointers survive restart.
//!
//! Unsafe code is denied except in [`cuda`]'s FFI layer (`cuda/driver.rs`), which calls the
//! driver library loaded at run time.
#![deny(unsafe_code)]

pub mod backend;
pub mod cuda;
pub mod fatbin;
pub mod handles;
pub mod props;
pub mod window;

pub use backend::{DeviceBackend, HostFn, Result};
pub use handles::{
    Allocation, DevicePtr, Event, EventFlags, FuncAttributes, FunctionId, LaunchConfig, ModuleId,
    ParamLayout, Stream, StreamFlags, VariablePlacement, VariableRecord,
};
pub use props::DeviceProps;
pub use window::{ALLOC_ALIGN, DEVICE_WINDOW_BASE, DEVICE_WINDOW_SIZE, Window};

use thiserror::Error;

/// A failed device operation. Each variant is one `cudaError_t` value ([`GpuError::code`]);
/// the payload says what failed, for logs and for the user.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GpuError {
    /// `cudaErrorInvalidValue` (1): an argument is out of range.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// `cudaErrorMemoryAllocation` (2): device memory exhausted or the address is taken.
    #[error("cannot allocate {size} bytes of device memory: {reason}")]
    MemoryAllocation {
        /// Bytes asked for.
        size: u64,
        /// Why (out of memory, address taken, outside the window).
        reason: String,
    },
    /// `cudaErrorInitializationError` (3): the backend could not start.
    #[error("device backend failed to initialise: {0}")]
    InitializationError(String),
    /// `cudaErrorInvalidConfiguration` (9): bad grid/block shape or too much shared memory.
    #[error("invalid launch configuration: {0}")]
    InvalidConfiguration(String),
    /// `cudaErrorInvalidSymbol` (13): no module variable by that name.
    #[error("invalid device symbol {0}")]
    InvalidSymbol(String),
    /// `cudaErrorInvalidDevicePointer` (17): not the start of a live allocation.
    #[error("invalid device pointer {0:#x}")]
    InvalidDevicePointer(u64),
    /// `cudaErrorInvalidMemcpyDirection` (21): not a `cudaMemcpyKind`, or one the pointers
    /// contradict.
    #[error("invalid copy direction: {0}")]
    InvalidMemcpyDirection(String),
    /// `cudaErrorMissingConfiguration` (52): a launch popped with no configuration pushed.
    #[error("missing launch configuration: {0}")]
    MissingConfiguration(String),
    /// `cudaErrorInvalidDeviceFunction` (98): no kernel by that name or handle.
    #[error("invalid device function {0}")]
    InvalidDeviceFunction(String),
    /// `cudaErrorNoDevice` (100).
    #[error("no CUDA device is available")]
    NoDevice,
    /// `cudaErrorInvalidDevice` (101): device ordinal out of range.
    #[error("invalid device ordinal {0}")]
    InvalidDevice(u32),
    /// `cudaErrorInvalidKernelImage` (200): the fat binary is malformed.
    #[error("invalid kernel image: {0}")]
    InvalidKernelImage(String),
    /// `cudaErrorNoKernelImageForDevice` (209): nothing in the fat binary runs here.
    #[error("no kernel image for this device: {0}")]
    NoKernelImageForDevice(String),
    /// `cudaErrorInvalidPtx` (218): the PTX does not parse.
    #[error("invalid PTX: {0}")]
    InvalidPtx(String),
    /// `cudaErrorInvalidResourceHandle` (400): unknown or destroyed stream/event/module.
    #[error("invalid resource handle: {0}")]
    InvalidResourceHandle(String),
    /// `cudaErrorNotReady` (600): queried work is not finished (not a failure).
    #[error("device work not ready yet")]
    NotReady,
    /// `cudaErrorIllegalAddress` (700, sticky): a kernel or copy touched unallocated memory.
    #[error("illegal memory access: {0}; the device context is now unusable, restart the program")]
    IllegalAddress(String),
    /// `cudaErrorLaunchOutOfResources` (701): too many resources asked for a launch.
    #[error("too many resources requested for launch: {0}")]
    LaunchOutOfResources(String),
    /// `cudaErrorAssert` (710, sticky): a device-side assert failed.
    #[error("device-side assert triggered: {0}; the device context is now unusable")]
    Assert(String),
    /// `cudaErrorHostMemoryAlreadyRegistered` (712).
    #[error("host memory at {0:#x} is already registered")]
    HostMemoryAlreadyRegistered(u64),
    /// `cudaErrorHostMemoryNotRegistered` (713).
    #[error("host memory at {0:#x} is not registered")]
    HostMemoryNotRegistered(u64),
    /// `cudaErrorLaunchFailure` (719, sticky): the kernel failed while running (trap, or an
    /// instruction the backend cannot run).
    #[error("unspecified launch failure: {0}; the device context is now unusable")]
    LaunchFailure(String),
    /// `cudaErrorNotPermitted` (800).
    #[error("operation not permitted: {0}")]
    NotPermitted(String),
    /// `cudaErrorNotSupported` (801): the backend does not implement this.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// `cudaErrorUnknown` (999).
    #[error("unknown device error: {0}")]
    Unknown(String),
}

impl GpuError {
    /// The `cudaError_t` value (from NVIDIA's `driver_types.h`).
    pub fn code(&self) -> i32 {
        match self {
            GpuError::InvalidValue(_) => 1,
            GpuError::MemoryAllocation { .. } => 2,
            GpuError::InitializationError(_) => 3,
            GpuError::InvalidConfiguration(_) => 9,
            GpuError::InvalidSymbol(_) => 13,
            GpuError::InvalidDevicePointer(_) => 17,
            GpuError::InvalidMemcpyDirection(_) => 21,
            GpuError::MissingConfiguration(_) => 52,
            GpuError::InvalidDeviceFunction(_) => 98,
            GpuError::NoDevice => 100,
            GpuError::InvalidDevice(_) => 101,
            GpuError::InvalidKernelImage(_) => 200,
            GpuError::NoKernelImageForDevice(_) => 209,
            GpuError::InvalidPtx(_) => 218,
            GpuError::InvalidResourceHandle(_) => 400,
            GpuError::NotReady => 600,
            GpuError::IllegalAddress(_) => 700,
            GpuError::LaunchOutOfResources(_) => 701,
            GpuError::Assert(_) => 710,
            GpuError::HostMemoryAlreadyRegistered(_) => 712,
            GpuError::HostMemoryNotRegistered(_) => 713,
            GpuError::LaunchFailure(_) => 719,
            GpuError::NotPermitted(_) => 800,
            GpuError::NotSupported(_) => 801,
            GpuError::Unknown(_) => 999,
        }
    }

    /// CUDA's name for the code (`cudaGetErrorName`).
    pub fn name(&self) -> &'static str {
        match self {
            GpuError::InvalidValue(_) => "cudaErrorInvalidValue",
            GpuError::MemoryAllocation { .. } => "cudaErrorMemoryAllocation",
            GpuError::InitializationError(_) => "cudaErrorInitializationError",
            GpuError::InvalidConfiguration(_) => "cudaErrorInvalidConfiguration",
            GpuError::InvalidSymbol(_) => "cudaErrorInvalidSymbol",
            GpuError::InvalidDevicePointer(_) => "cudaErrorInvalidDevicePointer",
            GpuError::InvalidMemcpyDirection(_) => "cudaErrorInvalidMemcpyDirection",
            GpuError::MissingConfiguration(_) => "cudaErrorMissingConfiguration",
            GpuError::InvalidDeviceFunction(_) => "cudaErrorInvalidDeviceFunction",
            GpuError::NoDevice => "cudaErrorNoDevice",
            GpuError::InvalidDevice(_) => "cudaErrorInvalidDevice",
            GpuError::InvalidKernelImage(_) => "cudaErrorInvalidKernelImage",
            GpuError::NoKernelImageForDevice(_) => "cudaErrorNoKernelImageForDevice",
            GpuError::InvalidPtx(_) => "cudaErrorInvalidPtx",
            GpuError::InvalidResourceHandle(_) => "cudaErrorInvalidResourceHandle",
            GpuError::NotReady => "cudaErrorNotReady",
            GpuError::IllegalAddress(_) => "cudaErrorIllegalAddress",
            GpuError::LaunchOutOfResources(_) => "cudaErrorLaunchOutOfResources",
            GpuError::Assert(_) => "cudaErrorAssert",
            GpuError::HostMemoryAlreadyRegistered(_) => "cudaErrorHostMemoryAlreadyRegistered",
            GpuError::HostMemoryNotRegistered(_) => "cudaErrorHostMemoryNotRegistered",
            GpuError::LaunchFailure(_) => "cudaErrorLaunchFailure",
            GpuError::NotPermitted(_) => "cudaErrorNotPermitted",
            GpuError::NotSupported(_) => "cudaErrorNotSupported",
            GpuError::Unknown(_) => "cudaErrorUnknown",
        }
    }

    /// Whether the error poisons the device context: once raised, every later call returns it
    /// (CUDA's "sticky" errors, raised by faulting kernels).
    pub fn is_sticky(&self) -> bool {
        matches!(
            self,
            GpuError::IllegalAddress(_) | GpuError::Assert(_) | GpuError::LaunchFailure(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<GpuError> {
        let s = || String::from("x");
        vec![
            GpuError::InvalidValue(s()),
            GpuError::MemoryAllocation {
                size: 1,
                reason: s(),
            },
            GpuError::InitializationError(s()),
            GpuError::InvalidConfiguration(s()),
            GpuError::InvalidSymbol(s()),
            GpuError::InvalidDevicePointer(1),
            GpuError::InvalidMemcpyDirection(s()),
            GpuError::MissingConfiguration(s()),
            GpuError::InvalidDeviceFunction(s()),
            GpuError::NoDevice,
            GpuError::InvalidDevice(1),
            GpuError::InvalidKernelImage(s()),
            GpuError::NoKernelImageForDevice(s()),
            GpuError::InvalidPtx(s()),
            GpuError::InvalidResourceHandle(s()),
            GpuError::NotReady,
            GpuError::IllegalAddress(s()),
            GpuError::LaunchOutOfResources(s()),
            GpuError::Assert(s()),
            GpuError::HostMemoryAlreadyRegistered(1),
            GpuError::HostMemoryNotRegistered(1),
            GpuError::LaunchFailure(s()),
            GpuError::NotPermitted(s()),
            GpuError::NotSupported(s()),
            GpuError::Unknown(s()),
        ]
    }

    #[test]
    fn codes_match_driver_types_h() {
        let want = [
            ("cudaErrorInvalidValue", 1),
            ("cudaErrorMemoryAllocation", 2),
            ("cudaErrorInitializationError", 3),
            ("cudaErrorInvalidConfiguration", 9),
            ("cudaErrorInvalidSymbol", 13),
            ("cudaErrorInvalidDevicePointer", 17),
            ("cudaErrorInvalidMemcpyDirection", 21),
            ("cudaErrorMissingConfiguration", 52),
            ("cudaErrorInvalidDeviceFunction", 98),
            ("cudaErrorNoDevice", 100),
            ("cudaErrorInvalidDevice", 101),
            ("cudaErrorInvalidKernelImage", 200),
            ("cudaErrorNoKernelImageForDevice", 209),
            ("cudaErrorInvalidPtx", 218),
            ("cudaErrorInvalidResourceHandle", 400),
            ("cudaErrorNotReady", 600),
            ("cudaErrorIllegalAddress", 700),
            ("cudaErrorLaunchOutOfResources", 701),
            ("cudaErrorAssert", 710),
            ("cudaErrorHostMemoryAlreadyRegistered", 712),
            ("cudaErrorHostMemoryNotRegistered", 713),
            ("cudaErrorLaunchFailure", 719),
            ("cudaErrorNotPermitted", 800),
            ("cudaErrorNotSupported", 801),
            ("cudaErrorUnknown", 999),
        ];
        let got: Vec<_> = all().iter().map(|e| (e.name(), e.code())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn only_kernel_faults_are_sticky() {
        let sticky: Vec<_> = all()
            .into_iter()
            .filter(GpuError::is_sticky)
            .map(|e| e.code())
            .collect();
        assert_eq!(sticky, vec![700, 710, 719]);
    }

    #[test]
    fn messages_are_lower_case_without_full_stop() {
        for e in all() {
            let m = e.to_string();
            assert!(!m.ends_with('.'), "{m}");
            assert!(m.starts_with(|c: char| !c.is_uppercase()), "{m}");
        }
    }
}
