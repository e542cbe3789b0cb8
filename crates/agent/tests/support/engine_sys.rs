//! The signal-mask calls the engine tests need.

/// Blocks SIGRTMAX (crac's quiesce signal) in the calling thread; returns the old mask.
pub fn block_sigrtmax() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigemptyset/sigaddset initialise a valid local set; pthread_sigmask reads it and
    // writes the old mask into another local (zeroed, so initialised either way).
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGRTMAX());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), old.as_mut_ptr());
        old.assume_init()
    }
}

/// Sets the calling thread's signal mask back to `old`.
pub fn restore_mask(old: libc::sigset_t) {
    // SAFETY: sets the calling thread's mask from a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
}

/// Unblocks every signal in the calling thread.
pub fn unblock_all() {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigemptyset initialises a valid local set, which pthread_sigmask reads.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut());
    }
}

/// Maps `len` bytes of anonymous memory with a raw system call, so the loader's tracking
/// `mmap` does not record it as crac's: in this test it plays the program's memory.
pub fn program_memory(len: usize) -> &'static mut [u8] {
    // SAFETY: a fresh private anonymous mapping at an address the kernel picks replaces
    // nothing; it is never unmapped, so the 'static slice stays valid, and nobody else holds it.
    unsafe {
        let p = libc::syscall(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0usize,
        );
        assert!(p > 0, "mmap failed");
        std::slice::from_raw_parts_mut(usize::try_from(p).expect("address") as *mut u8, len)
    }
}
