//! The jump into the program: switch to its stack and enter its interpreter (or itself).
//!
//! This is the last thing crac does on the main thread. At this point the signal state is the
//! program's and the stack pointer is about to leave every Rust frame behind: nothing after the
//! `asm!` may run Rust code, and the code leading up to it must not allocate, panic or touch
//! thread-locals (the caller has already dropped everything it owned).

use std::arch::asm;

/// Sets `rsp` to `sp` (which points at `argc`), clears `rdx` (no `rtld_fini` for the program's
/// `_start` to register), `rbp` (outermost frame) and the argument registers, and jumps to
/// `entry`.
///
/// # Safety
/// `entry` must be the entry point of a mapped program or interpreter and `sp` a 16-byte
/// aligned pointer to a complete initial stack (argc, argv, envp, auxv) in a mapping that
/// stays alive. Never returns; the calling thread's Rust frames are abandoned, not unwound.
pub(crate) unsafe fn enter(entry: u64, sp: u64) -> ! {
    // SAFETY: the caller guarantees `entry` and `sp` as documented; after the `mov` to rsp no
    // Rust code runs on this thread again, so clobbering every register is fine.
    unsafe {
        asm!(
            "mov rsp, {sp}",
            "xor edx, edx",
            "xor ebp, ebp",
            "xor esi, esi",
            "xor edi, edi",
            "cld",
            "jmp rax",
            sp = in(reg) sp,
            in("rax") entry,
            options(noreturn)
        )
    }
}
