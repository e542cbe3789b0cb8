//! crac's `sim` device: a CPU model of a CUDA device with a PTX interpreter.
//!
//! [`Sim`] implements [`crac_gpu::DeviceBackend`], so the cudart shim drives it exactly as it
//! drives a real GPU:
//!
//! - **Memory** ([`memory`]): allocations are blocks at device addresses inside the device window
//!   ([`crac_gpu::Window`], by default [`crac_gpu::DEVICE_WINDOW_BASE`]), 256-byte aligned; their
//!   bytes live in ordinary lower-half Rust memory. Accesses outside every block are faults. The
//!   placement (`layout`) is kept apart from the bytes, so allocations and asynchronous
//!   submissions never wait for a running kernel.
//! - **Streams and events** (`engine`, `stream`): per-stream FIFOs run asynchronously by one
//!   worker thread, with CUDA's legacy-default-stream, non-blocking and per-thread-stream
//!   semantics; events mark points in streams and carry host-clock timestamps.
//! - **Modules** ([`fatbin`], `module`): a registered fat binary's best PTX is parsed by
//!   `crac_ptx`; its `__device__`/`__constant__` variables get device addresses and their
//!   initial values; launches (`launch`) are checked at the call and run the PTX interpreter on
//!   the worker.
//! - **Errors**: kernel faults are sticky, as on CUDA: every later call reports them.
//!
//! `printf` from kernels goes to stdout unless [`Sim::set_printf`]/[`Sim::capture_printf`] say
//! otherwise.
#![forbid(unsafe_code)]

mod engine;
pub mod fatbin;
mod launch;
mod layout;
pub mod memory;
mod module;
mod sim;
mod stream;

pub use launch::SimStats;
pub use sim::{CapturedOutput, Sim, SimOptions};
