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

/// Calls the `cuda` entry of the call table at `table` (as `crac_loader::table::install`
/// returned it) with operation `op` and `args`.
pub fn call_table(table: u64, op: u32, args: &[u64; crac_abi::MAX_ARGS]) -> u32 {
    // SAFETY: `table` is the address `install` returned: a `Table` in static memory, filled
    // once and never freed or moved.
    let table = unsafe { &*(usize::try_from(table).expect("address") as *const crac_abi::Table) };
    // SAFETY: `args` holds MAX_ARGS words, and every pointer among them names memory of the
    // caller that outlives the call; the calling thread is a lower-half thread, so no fs
    // switch is needed.
    unsafe { (table.cuda)(op, args.as_ptr()) }
}
