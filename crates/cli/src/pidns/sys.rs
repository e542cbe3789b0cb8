//! The raw system calls behind `crac_restart --same-pid`: namespaces, `fork`, `clone3` with a
//! chosen pid, mounts, waits, signal forwarding through `signalfd` and pidfds. One call per
//! helper, its return code turned into `io::Error` at once; the only `unsafe` of the module tree.

use std::ffi::{CStr, CString, c_int};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `0` for success, else the OS error.
fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The effective user and group ids of this process.
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// `unshare(flags)`.
pub fn unshare(flags: c_int) -> io::Result<()> {
    // SAFETY: unshare takes plain flags and touches no memory of ours.
    check(unsafe { libc::unshare(flags) }.into()).map(drop)
}

/// Which side of a fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The new process.
    Child,
    /// The caller, with the new process's pid (as the caller's pid namespace sees it).
    Parent(libc::pid_t),
}

/// `fork()`.
///
/// # Safety
/// The calling process must have one thread: the child then holds a consistent copy of every
/// lock and allocator, and may run any code.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees a single-threaded process (see above).
    let pid = unsafe { libc::fork() };
    match pid {
        p if p < 0 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

/// `clone3`'s argument block (`struct clone_args`, version 2 with `set_tid` and `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A fork (`clone3` without sharing flags, `SIGCHLD` on exit) whose child gets `pid` in the
/// caller's pid namespace. Needs `CAP_SYS_ADMIN` in the user namespace that owns it; `EEXIST`
/// when `pid` is taken.
///
/// # Safety
/// As [`fork`]: the calling process must have one thread.
pub unsafe fn fork_with_pid(pid: libc::pid_t) -> io::Result<Forked> {
    let set_tid = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed, and `set_tid` (one pid) outlives
    // the call; with no CLONE_VM the child gets its own copy of memory and returns here like a
    // fork's child, which the caller's single thread (its precondition) makes safe.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(rc)? {
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(libc::pid_t::try_from(p).unwrap_or(-1))),
    }
}

/// `prctl(PR_SET_PDEATHSIG, signo)`: the kernel sends `signo` to this process when its parent
/// ends.
pub fn set_parent_death_signal(signo: c_int) -> io::Result<()> {
    let arg = libc::c_ulong::try_from(signo).unwrap_or(0);
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value and touches no memory of ours.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, arg) }.into()).map(drop)
}

/// `mount(source, target, fstype, flags, NULL)`; `None` passes a null pointer.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call, and a
    // null `data` is allowed for these filesystems and flag changes.
    let rc = unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            std::ptr::null(),
        )
    };
    check(rc.into()).map(drop)
}

/// An `execve` prepared in full before a fork, so the child only makes the call.
pub struct Exec {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl Exec {
    /// `execve(path, argv, envp)` ready to run.
    pub fn new(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        let table = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let (a, e) = (table(&argv), table(&envp));
        let mut strings = argv;
        strings.extend(envp);
        Exec {
            path,
            _strings: strings,
            argv: a,
            envp: e,
        }
    }

    /// Replaces this process's program; returns only the error when that fails.
    pub fn run(&self) -> io::Error {
        // SAFETY: `path` is NUL-terminated, and `argv`/`envp` are null-terminated arrays of
        // pointers into `_strings`, which `self` owns and keeps alive across the call.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// A pipe (close-on-exec): its read end, then its write end.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: pipe2 returned two new fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `waitpid(pid, &status, 0)` (`pid` -1: any child), again after `EINTR`; the child and its raw
/// wait status.
pub fn wait(pid: libc::pid_t) -> io::Result<(libc::pid_t, c_int)> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int for the kernel to write.
        let rc = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        match check(rc.into()) {
            Ok(p) => return Ok((libc::pid_t::try_from(p).unwrap_or(-1), status)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// The set holding `signals`.
    pub fn of(signals: &[c_int]) -> Self {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; sigaddset rejects bad numbers with EINVAL, which
        // leaves the set as it was.
        unsafe {
            libc::sigemptyset(&raw mut set);
            for &s in signals {
                libc::sigaddset(&raw mut set, s);
            }
        }
        SigSet(set)
    }
}

/// `sigprocmask(how, set)`; returns the mask before.
fn sigprocmask(how: c_int, set: &SigSet) -> io::Result<SigSet> {
    let mut old = SigSet::of(&[]);
    // SAFETY: both pointers are valid sigset_t values for the duration of the call.
    let rc = unsafe { libc::sigprocmask(how, &raw const set.0, &raw mut old.0) };
    check(rc.into()).map(|_| old)
}

/// Blocks `set` (added to the mask); returns the mask before.
pub fn block(set: &SigSet) -> io::Result<SigSet> {
    sigprocmask(libc::SIG_BLOCK, set)
}

/// Makes `set` the signal mask.
pub fn set_mask(set: &SigSet) -> io::Result<()> {
    sigprocmask(libc::SIG_SETMASK, set).map(drop)
}

/// A `signalfd` (close-on-exec) reading the signals of `set`, which must be blocked.
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: `set` is a valid sigset_t; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &raw const set.0, libc::SFD_CLOEXEC) };
    check(fd.into())?;
    // SAFETY: signalfd returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal from a `signalfd`: its number and `si_code` (who sent it).
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<(c_int, c_int)> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: `info` is writable for `size` bytes.
        let rc = unsafe { libc::read(fd.as_raw_fd(), (&raw mut info).cast(), size) };
        match check(libc::c_long::try_from(rc).unwrap_or(-1)) {
            Ok(n) if usize::try_from(n).is_ok_and(|n| n == size) => break,
            Ok(_) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let signo = c_int::try_from(info.ssi_signo).unwrap_or(0);
    Ok((signo, info.ssi_code))
}

/// `poll` for input on `fds` for at most `timeout_ms` (-1: no limit), again after `EINTR`;
/// each fd's returned events (`POLLIN`, `POLLHUP`, …).
pub fn poll_in(fds: &[BorrowedFd<'_>], timeout_ms: c_int) -> io::Result<Vec<i16>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let n = libc::nfds_t::try_from(pfds.len()).unwrap_or(0);
    loop {
        // SAFETY: `pfds` holds `n` valid pollfd entries for the kernel to update.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n, timeout_ms) };
        match check(rc.into()) {
            Ok(_) => return Ok(pfds.iter().map(|p| p.revents).collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let fd = c_int::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(fd, signo, NULL, 0)`: like `kill` from us, to the process `fd` holds.
pub fn pidfd_send_signal(fd: BorrowedFd<'_>, signo: c_int) -> io::Result<()> {
    // SAFETY: a null siginfo asks for the kill(2) form; the fd is borrowed for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signo,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(rc).map(drop)
}

/// Ends this process by `signo` with its default action, as the program it supervised ended:
/// no core file of ours (the program's own was written already), the signal's action reset and
/// unblocked. Exits with 128 + `signo` if the signal does not end the process.
pub fn die_by(signo: c_int) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid rlimit; signal() with SIG_DFL installs no code of ours;
    // the mask change names one signal; getpid and kill take plain values. Failures only mean
    // the fallback exit below is taken.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &raw const no_core);
        libc::signal(signo, libc::SIG_DFL);
        let one = SigSet::of(&[signo]);
        libc::sigprocmask(libc::SIG_UNBLOCK, &raw const one.0, std::ptr::null_mut());
        libc::kill(libc::getpid(), signo);
    }
    std::process::exit(128 + signo)
}
