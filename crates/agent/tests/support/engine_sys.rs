//! The signal-mask calls the engine tests need.

/// Blocks signal 33 (crac's quiesce signal) in the calling thread with a raw `rt_sigprocmask`
/// system call, the one way to block it (glibc's calls refuse to); returns the old mask.
pub fn block_quiesce_signal() -> libc::sigset_t {
    let set: u64 = 1 << (33 - 1);
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: rt_sigprocmask reads 8 bytes of `set` (a local) and writes the old 8-byte kernel
    // mask into the start of `old` (a zeroed local sigset_t, larger than 8 bytes).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::from_ref(&set),
            old.as_mut_ptr(),
            8usize,
        );
        old.assume_init()
    }
}

/// Blocks every signal the C library lets a thread block (`sigfillset` + `pthread_sigmask`, as
/// libzmq's threads and many thread pools do).
pub fn block_all_libc() {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigfillset initialises a valid local set, which pthread_sigmask reads.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut());
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
