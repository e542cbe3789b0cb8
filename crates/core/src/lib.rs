//! crac's pure core: interval math, `/proc` parsers, the ELF reader, the control protocol and
//! the checkpoint image format. Nothing here touches the OS or raw memory: every function takes
//! bytes or text and returns values, so all of it is unit-testable and fuzzable.
#![forbid(unsafe_code)]

pub mod elf;
pub mod image;
pub mod interval;
pub mod procfs;
pub mod protocol;
