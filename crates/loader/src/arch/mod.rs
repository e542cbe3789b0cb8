//! Architecture-specific code.
pub(crate) mod x86_64;
