//! crac's `sim` device: a CPU model of a CUDA device with a PTX interpreter.
#![forbid(unsafe_code)]

pub mod fatbin;
pub mod memory;
