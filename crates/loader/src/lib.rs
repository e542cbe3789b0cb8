//! crac's launch: the lower half's start-up (ASLR re-exec, brk guard, fd moves), loading the
//! program's ELF interpreter with a fresh stack, and tracking which memory is the lower half's.
