//! crac's lower-half CUDA runtime and the pieces the CUDA call log is built from.
//!
//! - [`runtime::Runtime`]: every operation the upper-half shim sends across the call table
//!   (`crac_abi::ops`), implemented over a [`crac_gpu::DeviceBackend`] (the `sim` CPU model or
//!   the real CUDA backend). Its state is what a restart must rebuild and nothing more:
//!   registrations (fat binaries, kernels by host stub, variables by host shadow), virtual
//!   stream and event handles, registered host memory. No per-launch state is kept.
//! - [`handles`]: virtual handles, the stable values the program holds.
//! - [`host`]: the seam to the program's memory; the one implementation over real addresses
//!   lives in the `crac` executable's loader, so this crate stays free of unsafe code.
#![forbid(unsafe_code)]

pub mod handles;
pub mod host;
pub mod runtime;

pub use host::{BufferMemory, HostFault, HostMemory};
pub use runtime::{DevicePrintf, Runtime};
