//! crac's `libcudart` shim: the upper half's CUDA runtime.
//!
//! Linked by `scripts/link-shim.sh` into `libcudart.so.12` and `libcudart.so.13`, with
//! NVIDIA's SONAMEs and symbol versions, and preloaded by `crac_launch --gpu`. It exports every
//! function NVIDIA's runtime exports; the implemented ones ([`exports`]) cross to crac's lower
//! half through the call table of `crac_abi` ([`switch`]), the rest name themselves once on
//! stderr and return `cudaErrorNotSupported`. It also interposes `sigaction`/`signal` so a
//! signal that lands while a thread is in the lower half runs the program's handler with the
//! program's fs.
//!
//! Only `arch/`, `sys/`, `switch.rs` and `exports/` hold unsafe code.

pub mod arch;
pub mod errors;
pub mod exports;
pub mod fsmap;
pub mod layout;
pub mod preload;
pub mod state;
pub mod switch;
pub mod sys;

pub use exports::generated::IMPLEMENTED;
