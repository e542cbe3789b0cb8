//! All of crac's x86-64 assembly: the jump into the program, raw system calls for code that runs
//! without a usable libc (no TLS, so no `errno`), the instructions Rust has no safe wrapper for
//! (`rdfsbase`, `xgetbv`), the signal restorer of crac's own handlers, and the thread-restart
//! trampolines.
//!
//! The jump and the trampolines are the last thing crac does on a thread. Once they run, the
//! stack pointer leaves every Rust frame behind: nothing after them runs Rust code, and the code
//! leading up to them must not allocate, panic or touch thread-locals.
//!
//! The raw system-call helpers return the kernel's value as is (`-errno` on failure) and touch
//! nothing but registers: they are safe to call from a signal handler running on a program
//! thread with the program's fs base.

use std::arch::{asm, global_asm};

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

/// A system call with up to six arguments, issued with the `syscall` instruction; returns the
/// kernel's result (negative errno on failure). No libc, no `errno`, no TLS.
///
/// # Safety
/// The call's own contract: pointers among the arguments must be valid for what the kernel
/// reads or writes through them, and calls that change memory or the thread (mmap, exit,
/// rt_sigreturn) must be safe for the caller.
#[inline(always)]
pub unsafe fn syscall6(nr: i64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> i64 {
    let ret: i64;
    // SAFETY: the caller vouches for the arguments; the kernel clobbers rcx and r11 only.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

/// [`syscall6`] with four arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall4(nr: i64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    // SAFETY: forwarded; the caller vouches for the arguments.
    unsafe { syscall6(nr, a1, a2, a3, a4, 0, 0) }
}

/// The fs base of the calling thread with `rdfsbase`.
///
/// # Safety
/// The kernel must have enabled FSGSBASE for user space (`HWCAP2_FSGSBASE` in the auxv), or the
/// instruction raises SIGILL.
#[inline(always)]
pub unsafe fn rdfsbase() -> u64 {
    let v: u64;
    // SAFETY: the caller checked HWCAP2_FSGSBASE; the instruction only reads a register.
    unsafe { asm!("rdfsbase {}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// XCR0, the state components the kernel saves in signal frames (`xgetbv` with ecx = 0).
pub fn xcr0() -> u64 {
    // CPUID.1:ECX bit 27 (OSXSAVE) says xgetbv may be executed.
    let leaf1 = std::arch::x86_64::__cpuid(1);
    if leaf1.ecx & (1 << 27) == 0 {
        return 0;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: OSXSAVE is set (checked above), so xgetbv with ecx = 0 is allowed in user mode.
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The size of the XSAVE area for the features enabled in XCR0 (CPUID 0xD, sub-leaf 0, EBX).
pub fn xsave_size() -> u32 {
    // Leaf 0 gives the highest leaf.
    let max = std::arch::x86_64::__cpuid(0).eax;
    if max < 0xd {
        return 0;
    }
    // Leaf 0xD exists (checked above).
    std::arch::x86_64::__cpuid_count(0xd, 0).ebx
}

global_asm!(
    // The `sa_restorer` of crac's own signal handlers: the kernel returns here from the
    // handler and rt_sigreturn restores the interrupted context.
    ".pushsection .text.crac_sigrestorer,\"ax\",@progbits",
    ".globl crac_sigrestorer",
    ".hidden crac_sigrestorer",
    ".type crac_sigrestorer,@function",
    "crac_sigrestorer:",
    "    mov eax, 15",
    "    syscall",
    "    ud2",
    ".size crac_sigrestorer, . - crac_sigrestorer",
    ".popsection",
    //
    // clone(flags=rdi, stack=rsi, ptid=rdx, ctid=rcx, tls=r8) -> tid (or -errno) in the parent.
    // The child starts on `stack`, which holds a `ThreadStart` block, and never returns: it
    // sets its sigaltstack and robust list, waits until the go word is non-zero, and resumes
    // its saved context with rt_sigreturn on the frame.
    ".pushsection .text.crac_clone_thread,\"ax\",@progbits",
    ".globl crac_clone_thread",
    ".hidden crac_clone_thread",
    ".type crac_clone_thread,@function",
    "crac_clone_thread:",
    "    mov r10, rcx",
    "    mov eax, 56",
    "    syscall",
    "    test rax, rax",
    "    jz 1f",
    "    ret",
    "1:",
    // child: rsp points at the ThreadStart block
    "    mov rdi, rsp", // &block.altstack (a stack_t)
    "    xor esi, esi",
    "    mov eax, 131", // sigaltstack
    "    syscall",
    "    mov rdi, [rsp + 24]", // robust list head
    "    test rdi, rdi",
    "    jz 2f",
    "    mov rsi, [rsp + 32]",
    "    mov eax, 273", // set_robust_list
    "    syscall",
    "2:",
    "    mov r12, [rsp + 40]", // &go
    "3:",
    "    mov eax, dword ptr [r12]",
    "    test eax, eax",
    "    jnz 4f",
    "    mov rdi, r12",
    "    mov esi, 128", // FUTEX_WAIT_PRIVATE
    "    xor edx, edx",
    "    xor r10d, r10d",
    "    mov eax, 202",
    "    syscall",
    "    jmp 3b",
    "4:",
    "    mov rsp, [rsp + 48]", // the saved ucontext
    "    mov eax, 15",         // rt_sigreturn
    "    syscall",
    "    ud2",
    ".size crac_clone_thread, . - crac_clone_thread",
    ".popsection",
);

unsafe extern "C" {
    fn crac_sigrestorer();
    fn crac_clone_thread(flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64;
}

/// The address to put in `sa_restorer` (with `SA_RESTORER`) for crac's own signal handlers.
pub fn sigrestorer() -> u64 {
    crac_sigrestorer as *const () as usize as u64
}

/// What a restarted thread reads from its start stack (the layout the assembly expects).
/// Aligned to 16 so that any `ThreadStart` value (a boxed one included) meets
/// [`clone_thread`]'s alignment requirement by its type.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadStart {
    /// `stack_t`: `ss_sp`.
    pub altstack_sp: u64,
    /// `stack_t`: `ss_flags` (an `int`, padded).
    pub altstack_flags: u64,
    /// `stack_t`: `ss_size`.
    pub altstack_size: u64,
    /// `set_robust_list` head (0: none).
    pub robust_head: u64,
    /// `set_robust_list` length.
    pub robust_len: u64,
    /// Address of the 32-bit go word the thread waits on until it is non-zero.
    pub go: u64,
    /// Address of the saved `ucontext_t` to `rt_sigreturn` on.
    pub ucontext: u64,
    /// Padding to 16 bytes.
    pub pad: u64,
}

// The layout `crac_clone_thread` reads (`[rsp + 24]` … `[rsp + 48]`).
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ThreadStart>() == 64 && align_of::<ThreadStart>() == 16);
    assert!(offset_of!(ThreadStart, robust_head) == 24);
    assert!(offset_of!(ThreadStart, robust_len) == 32);
    assert!(offset_of!(ThreadStart, go) == 40);
    assert!(offset_of!(ThreadStart, ucontext) == 48);
};

/// Creates a thread with `clone` that waits for the go word and then resumes the saved context
/// `start.ucontext` (see [`ThreadStart`]). Returns its tid or `-errno`.
///
/// # Safety
/// `stack` must point at a `ThreadStart` in memory that stays untouched until the thread has
/// resumed, 16-byte aligned; `flags` must include `CLONE_VM` (the child runs in this address
/// space) and must not include `CLONE_VFORK`; `ptid`/`ctid` must be valid for the kernel's
/// writes when the matching flags are given; `tls` becomes the child's fs base; the saved
/// context must be a complete signal frame in mapped memory, with the go word staying mapped.
pub unsafe fn clone_thread(flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
    // SAFETY: the caller guarantees the contract above; the child never returns into Rust.
    unsafe { crac_clone_thread(flags, stack, ptid, ctid, tls) }
}

/// The restarted main thread's last steps: set the fs base to `fs` (`arch_prctl`), store 1
/// into the go word and wake every thread waiting on it, then `rt_sigreturn` on `ucontext`.
///
/// # Safety
/// `ucontext` must be a complete saved signal frame in mapped memory and `go` a mapped 32-bit
/// word. Never returns: every Rust frame on this thread is abandoned, so the caller must not
/// hold anything that needs dropping, nor any lock.
pub unsafe fn resume_main(fs: u64, go: u64, ucontext: u64) -> ! {
    // SAFETY: as documented; after the fs switch no Rust code runs on this thread.
    unsafe {
        asm!(
            "mov r12, rsi",
            "mov r13, rdx",
            "mov rsi, rdi",
            "mov edi, 0x1002", // ARCH_SET_FS
            "mov eax, 158",    // arch_prctl
            "syscall",
            "mov dword ptr [r12], 1",
            "mov rdi, r12",
            "mov esi, 129",     // FUTEX_WAKE_PRIVATE
            "mov edx, 0x7fffffff",
            "mov eax, 202",
            "syscall",
            "mov rsp, r13",
            "mov eax, 15",     // rt_sigreturn
            "syscall",
            "ud2",
            in("rdi") fs,
            in("rsi") go,
            in("rdx") ucontext,
            options(noreturn)
        )
    }
}
