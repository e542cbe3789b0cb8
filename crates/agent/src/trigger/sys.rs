//! The raw side of the triggers: the `--ckpt-signal` handler, installing it, the wake pipe and
//! waiting on two fds. Every `unsafe` of the trigger module is here.
//!
//! [`on_signal`] is lower-half code that runs on one of the *program's* threads, with the
//! program's fs base (its TLS), inside whatever the program was doing. It therefore must not:
//! allocate, panic, take a lock, touch a thread-local, call into libc (whose `errno` is a
//! thread-local and whose functions may take locks), or change `errno`. It only stores to an
//! atomic, checks with a raw `fstat` that the wake fd still is crac's pipe, and writes one byte
//! to it, each through a `syscall` instruction issued here in inline assembly (no libc wrapper,
//! so no `errno`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// Set by the handler, taken by the agent thread.
static PENDING: AtomicBool = AtomicBool::new(false);
/// The write end of the wake pipe, or -1.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Device and inode of the wake pipe: the handler writes only while `WAKE_FD` still refers to
/// it (the program may have closed the number and reused it for a file of its own).
static WAKE_DEV: AtomicU64 = AtomicU64::new(0);
static WAKE_INO: AtomicU64 = AtomicU64::new(0);

/// Whether the checkpoint signal arrived since the last call (and clears it).
pub fn take_pending() -> bool {
    PENDING.swap(false, Ordering::AcqRel)
}

/// Marks the signal as arrived, as the handler does (tests and the agent's own wake-ups).
#[cfg(test)]
pub fn set_pending() {
    PENDING.store(true, Ordering::Release);
}

/// Tells the handler where to write: `fd` (the wake pipe's write end, whose identity is
/// `dev`/`ino`).
pub fn publish_wake_fd(fd: RawFd, dev: u64, ino: u64) {
    WAKE_DEV.store(dev, Ordering::Relaxed);
    WAKE_INO.store(ino, Ordering::Relaxed);
    WAKE_FD.store(fd, Ordering::Release);
}

/// One raw system call with three arguments; returns the kernel's result (negative errno on
/// failure).
///
/// # Safety
///
/// The call must be one whose pointer arguments are valid for what the kernel does with them.
#[inline(always)]
unsafe fn syscall3(nr: i64, a: u64, b: u64, c: u64) -> i64 {
    let ret: i64;
    // SAFETY: the caller guarantees the arguments are valid for system call `nr`; `syscall`
    // clobbers only rax (the result), rcx and r11, which are declared; it touches no stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The `--ckpt-signal` handler. See the module doc for what it must not do.
extern "C" fn on_signal(_signo: i32) {
    PENDING.store(true, Ordering::Release);
    let fd = WAKE_FD.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes one `struct stat` into `st`, a local of that type on this stack.
    let rc = unsafe { syscall3(libc::SYS_fstat, fd as u64, st.as_mut_ptr() as u64, 0) };
    if rc != 0 {
        return;
    }
    // SAFETY: fstat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    if st.st_dev != WAKE_DEV.load(Ordering::Relaxed)
        || st.st_ino != WAKE_INO.load(Ordering::Relaxed)
    {
        return;
    }
    let byte = 1u8;
    // SAFETY: writes one byte from a local; the pipe is non-blocking, so a full pipe only gives
    // EAGAIN (the agent wakes for the bytes already in it), and no result is acted upon.
    let _ = unsafe { syscall3(libc::SYS_write, fd as u64, &byte as *const u8 as u64, 1) };
}

/// Installs [`on_signal`] for `signo` (`SA_RESTART`, so the program's interrupted system calls
/// go on; `SA_ONSTACK`, so a program running on its alternate stack keeps to it).
pub fn install_handler(signo: i32) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is valid (no flags, empty mask).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_signal as extern "C" fn(i32) as usize;
    act.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `act` is a valid sigaction whose handler is async-signal-safe (module doc); the old
    // action is not asked for.
    if unsafe { libc::sigaction(signo, &act, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the whole process at once with `status` (`exit_group`): no atexit handlers of either
/// half run and no stdio buffer is flushed, as after a signal; the image is already durable.
pub fn exit_process(status: i32) -> ! {
    // SAFETY: exit_group takes an integer and does not return.
    unsafe { libc::syscall(libc::SYS_exit_group, libc::c_long::from(status)) };
    // SAFETY: exit_group never returns; this is unreachable.
    unsafe { std::hint::unreachable_unchecked() }
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both numbers are new fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Device and inode of the file `fd` refers to.
pub fn identity(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat fills one stat struct at a valid pointer; a bad fd only fails.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so `st` is filled.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// Reads and discards whatever is in the non-blocking pipe `fd`.
pub fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads at most `buf.len()` bytes into a local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}

/// Writes one byte to the non-blocking pipe `fd` (a full pipe already wakes its reader).
pub fn poke(fd: &OwnedFd) {
    let byte = 1u8;
    // SAFETY: writes one byte from a local to an fd we own; the result does not matter.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&byte as *const u8).cast(), 1) };
}

/// What [`wait_two`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// `poll` events of the first fd (0 when none or on timeout).
    pub first: i16,
    /// `poll` events of the second fd.
    pub second: i16,
}

/// Waits until `first` or `second` (-1: none) is readable or invalid, or `timeout_ms` pass.
pub fn wait_two(first: RawFd, second: RawFd, timeout_ms: i32) -> io::Result<Ready> {
    let mut pfds = [
        libc::pollfd {
            fd: first,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: second,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds for the duration of the call; a negative fd is ignored by poll.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), 2, timeout_ms) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Ready {
        first: pfds[0].revents,
        second: pfds[1].revents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_wakes_the_pipe() {
        if !crac_test_support::in_fresh_process("trigger::sys::tests::the_handler_wakes_the_pipe") {
            return; // the scenario ran in a fresh process
        }
        let (r, w) = pipe().unwrap();
        let (dev, ino) = identity(w.as_raw_fd()).unwrap();
        publish_wake_fd(w.as_raw_fd(), dev, ino);
        install_handler(libc::SIGURG).unwrap();
        // This thread may have been started with signals blocked (the loader's exported
        // pthread_create blocks them for crac's own threads): let SIGURG through.
        // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask changes only this
        // test thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGURG);
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
        let _ = take_pending();
        // SAFETY: raise delivers SIGURG to this thread, whose handler was just installed.
        assert_eq!(unsafe { libc::raise(libc::SIGURG) }, 0);
        assert!(take_pending());
        let ready = wait_two(r.as_raw_fd(), -1, 1000).unwrap();
        assert_ne!(ready.first & libc::POLLIN, 0);
        drain(r.as_raw_fd());
        assert_eq!(wait_two(r.as_raw_fd(), -1, 0).unwrap().first, 0);
        // A wake fd number that now names another file is left alone.
        publish_wake_fd(w.as_raw_fd(), dev, ino + 1);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGURG) }, 0);
        assert!(take_pending());
        assert_eq!(wait_two(r.as_raw_fd(), -1, 0).unwrap().first, 0);
        publish_wake_fd(-1, 0, 0);
    }
}
