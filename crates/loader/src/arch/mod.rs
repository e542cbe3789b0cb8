//! Architecture-specific code: every piece of assembly crac has (the agent's quiesce handler and
//! thread restarter use the raw system calls and trampolines from here).
pub mod x86_64;
