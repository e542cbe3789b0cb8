//! `crac`: transparent checkpoint-restart for CUDA programs on Linux.
fn main() {}
