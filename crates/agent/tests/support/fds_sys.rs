//! The raw calls the fd tests use to build and inspect fds of every kind. Each runs in a child
//! process made for one scenario, which owns its whole fd table: placing an fd at a number
//! replaces whatever the scenario put there before, by design.

#![allow(dead_code)] // each test binary uses part of it

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// Turns a `-1`-on-error return into a result.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    (rc >= 0).then_some(rc).ok_or_else(io::Error::last_os_error)
}

/// Wraps a freshly returned fd.
fn owned(rc: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(rc)?;
    // SAFETY: the kernel just returned `fd` for a call made here; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Puts `fd` at number `n` (replacing what is there), with `FD_CLOEXEC` as asked, and closes
/// the original. The number is left for the scenario to manage by number.
pub fn put_at(fd: OwnedFd, n: RawFd, cloexec: bool) {
    if fd.as_raw_fd() == n {
        // Already there: keep the number open and set its flag.
        let n = fd.into_raw_fd();
        let flag = if cloexec { libc::FD_CLOEXEC } else { 0 };
        // SAFETY: F_SETFD changes the descriptor flag only.
        check(unsafe { libc::fcntl(n, libc::F_SETFD, flag) }).expect("F_SETFD");
        return;
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 replaces number `n`, which the scenario owns; `fd` is open for the call.
    check(unsafe { libc::dup3(fd.as_raw_fd(), n, flags) }).expect("dup3");
}

/// Closes number `n`, if open.
pub fn close(n: RawFd) {
    // SAFETY: the scenario owns every number of its fd table; closing has no memory effects.
    unsafe { libc::close(n) };
}

/// Closes every fd from 3 up: the child starts from a clean table.
pub fn close_from_3() {
    // SAFETY: close_range over numbers the child owns; it has no memory effects.
    check(unsafe { libc::close_range(3, u32::MAX, 0) }).expect("close_range");
}

/// `dup(n)` to a new number from 100 up, out of the scenarios' way.
pub fn dup(n: RawFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC only takes a free number.
    owned(unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 100) }).expect("dup")
}

/// `F_GETFL` of number `n`.
pub fn status_flags(n: RawFd) -> io::Result<i32> {
    // SAFETY: F_GETFL only reads flags.
    check(unsafe { libc::fcntl(n, libc::F_GETFL) })
}

/// `F_SETFL`.
pub fn set_status_flags(n: RawFd, flags: i32) {
    // SAFETY: F_SETFL changes status flags only.
    check(unsafe { libc::fcntl(n, libc::F_SETFL, flags) }).expect("F_SETFL");
}

/// Whether `FD_CLOEXEC` is set; `Err(EBADF)` when the number is closed.
pub fn cloexec(n: RawFd) -> io::Result<bool> {
    // SAFETY: F_GETFD only reads flags.
    Ok(check(unsafe { libc::fcntl(n, libc::F_GETFD) })? & libc::FD_CLOEXEC != 0)
}

/// The offset of number `n`.
pub fn offset(n: RawFd) -> u64 {
    // SAFETY: SEEK_CUR with 0 only reports the offset.
    let off = unsafe { libc::lseek(n, 0, libc::SEEK_CUR) };
    u64::try_from(off).expect("lseek")
}

/// Sets the offset of number `n`.
pub fn seek(n: RawFd, off: i64) {
    // SAFETY: lseek moves the description's offset only.
    assert!(unsafe { libc::lseek(n, off, libc::SEEK_SET) } >= 0, "lseek");
}

/// Reads up to `max` bytes from number `n`.
pub fn read(n: RawFd, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    // SAFETY: `buf` is valid for writes of `max` bytes.
    let got = unsafe { libc::read(n, buf.as_mut_ptr().cast(), max) };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(got);
    Ok(buf)
}

/// Writes all of `bytes` to number `n` in one call.
pub fn write(n: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for reads of its length.
    let put = unsafe { libc::write(n, bytes.as_ptr().cast(), bytes.len()) };
    usize::try_from(put).map_err(|_| io::Error::last_os_error())
}

/// A pipe: `(read end, write end)`.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two numbers pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }).expect("pipe2");
    // SAFETY: pipe2 succeeded: both are new fds owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// `eventfd(count, flags)`.
pub fn eventfd(count: u32, flags: i32) -> OwnedFd {
    // SAFETY: eventfd creates a new fd.
    owned(unsafe { libc::eventfd(count, flags | libc::EFD_CLOEXEC) }).expect("eventfd")
}

/// A new epoll instance.
pub fn epoll() -> OwnedFd {
    // SAFETY: epoll_create1 creates a new fd.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).expect("epoll_create1")
}

/// `epoll_ctl(ADD)`.
pub fn epoll_add(ep: RawFd, n: RawFd, events: u32, data: u64) {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is valid for the call.
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, n, &mut ev) }).expect("epoll_ctl");
}

/// `epoll_wait` without blocking: `(events, data)` of the ready watches, sorted by data.
pub fn epoll_ready(ep: RawFd) -> Vec<(u32, u64)> {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
    // SAFETY: `evs` has room for 16 events, the count passed.
    let n = check(unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 16, 0) }).expect("epoll_wait");
    let mut out: Vec<(u32, u64)> = evs[..usize::try_from(n).expect("count")]
        .iter()
        .map(|e| (e.events, e.u64))
        .collect();
    out.sort_by_key(|e| e.1);
    out
}

/// A timerfd armed for `value` seconds with `interval` seconds.
pub fn timerfd(value: i64, interval: i64) -> OwnedFd {
    // SAFETY: timerfd_create creates a new fd.
    let t = owned(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) })
        .expect("timerfd_create");
    let spec = libc::itimerspec {
        it_value: libc::timespec {
            tv_sec: value,
            tv_nsec: 0,
        },
        it_interval: libc::timespec {
            tv_sec: interval,
            tv_nsec: 0,
        },
    };
    // SAFETY: `spec` is valid for the call; the old value is not asked for.
    check(unsafe { libc::timerfd_settime(t.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })
        .expect("timerfd_settime");
    t
}

/// Arms timerfd number `n` for `value` ns with `interval` ns.
pub fn timer_set_ns(n: RawFd, value: i64, interval: i64) {
    let ts = |ns: i64| libc::timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    };
    let spec = libc::itimerspec {
        it_value: ts(value),
        it_interval: ts(interval),
    };
    // SAFETY: `spec` is valid for the call; the old value is not asked for.
    check(unsafe { libc::timerfd_settime(n, 0, &spec, std::ptr::null_mut()) })
        .expect("timerfd_settime");
}

/// `(value, interval)` of timerfd number `n`, in seconds (fractional).
pub fn timer_get(n: RawFd) -> (f64, f64) {
    let mut cur = libc::itimerspec {
        it_value: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    };
    // SAFETY: `cur` is valid for writes of one itimerspec.
    check(unsafe { libc::timerfd_gettime(n, &mut cur) }).expect("timerfd_gettime");
    let secs = |t: libc::timespec| t.tv_sec as f64 + t.tv_nsec as f64 / 1e9;
    (secs(cur.it_value), secs(cur.it_interval))
}

/// A signalfd for `signal`.
pub fn signalfd(signal: i32) -> OwnedFd {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset adds a valid signal to it.
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), signal);
        set.assume_init()
    };
    // SAFETY: `set` is initialised; -1 asks for a new fd.
    owned(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) }).expect("signalfd")
}

/// An inotify instance.
pub fn inotify() -> OwnedFd {
    // SAFETY: inotify_init1 creates a new fd.
    owned(unsafe { libc::inotify_init1(libc::IN_CLOEXEC) }).expect("inotify_init1")
}

/// A memfd.
pub fn memfd() -> OwnedFd {
    // SAFETY: the name is a NUL-terminated literal; memfd_create creates a new fd.
    owned(unsafe { libc::memfd_create(c"scratch".as_ptr(), libc::MFD_CLOEXEC) })
        .expect("memfd_create")
}

/// Accepts one connection on listening number `n`, retrying while it would block.
pub fn accept(n: RawFd) -> io::Result<OwnedFd> {
    for _ in 0..200 {
        // SAFETY: null address pointers ask for no peer address.
        let rc = unsafe {
            libc::accept4(
                n,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        match owned(rc) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
    Err(io::Error::from(io::ErrorKind::TimedOut))
}

/// The port a TCP socket at number `n` is bound to.
pub fn tcp_port(n: RawFd) -> u16 {
    let mut sa = libc::sockaddr_in {
        sin_family: 0,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    let mut len = libc::socklen_t::try_from(size_of::<libc::sockaddr_in>()).expect("len");
    // SAFETY: `sa` and `len` are valid for writes; `len` holds the size of `sa`.
    check(unsafe { libc::getsockname(n, (&raw mut sa).cast(), &mut len) }).expect("getsockname");
    u16::from_be(sa.sin_port)
}

/// An IPv6-only TCP listener on `[::]:0` and its port; `None` where IPv6 is not available.
pub fn tcp6_only_listener() -> Option<(OwnedFd, u16)> {
    // SAFETY: socket creates a new fd.
    let s =
        owned(unsafe { libc::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })
            .ok()?;
    let one: libc::c_int = 1;
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>()).ok()?;
    // SAFETY: `one` is valid for reads of `len` bytes.
    check(unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&raw const one).cast(),
            len,
        )
    })
    .ok()?;
    // SAFETY: all-zero is a valid sockaddr_in6 (the unspecified address, port 0).
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::sa_family_t::try_from(libc::AF_INET6).ok()?;
    let mut sa_len = libc::socklen_t::try_from(size_of::<libc::sockaddr_in6>()).ok()?;
    // SAFETY: `sa` is a valid sockaddr_in6 of `sa_len` bytes.
    check(unsafe { libc::bind(s.as_raw_fd(), (&raw const sa).cast(), sa_len) }).ok()?;
    // SAFETY: listen takes no memory.
    check(unsafe { libc::listen(s.as_raw_fd(), 16) }).ok()?;
    // SAFETY: `sa` and `sa_len` are valid for writes; `sa_len` holds the size of `sa`.
    check(unsafe { libc::getsockname(s.as_raw_fd(), (&raw mut sa).cast(), &mut sa_len) }).ok()?;
    Some((s, u16::from_be(sa.sin6_port)))
}

/// Lowers this process's privileges to `nobody` (tests of what a non-root user may not do).
pub fn become_nobody() {
    // SAFETY: setgid/setuid change credentials of this child process only.
    unsafe {
        check(libc::setgroups(0, std::ptr::null())).expect("setgroups");
        check(libc::setgid(65534)).expect("setgid");
        check(libc::setuid(65534)).expect("setuid");
    }
}

/// The effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// `(soft, hard)` of a resource limit.
pub fn rlimit(resource: u32) -> (u64, u64) {
    let mut l = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a null new limit only reads into `l`.
    check(unsafe { libc::prlimit64(0, resource, std::ptr::null(), &mut l) }).expect("prlimit");
    (l.rlim_cur, l.rlim_max)
}

/// Sets a resource limit.
pub fn set_rlimit(resource: u32, soft: u64, hard: u64) {
    let l = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `l` is valid for the call.
    check(unsafe { libc::prlimit64(0, resource, &l, std::ptr::null_mut()) }).expect("prlimit");
}

/// Sets the umask, returning the old one.
pub fn umask(m: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(m) }
}

/// `SO_PEEK_OFF` of socket number `n` (-1 when off).
pub fn peek_off(n: RawFd) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<libc::c_int>()).expect("int size");
    // SAFETY: `v` and `len` are valid for writes; `len` holds the size of `v`.
    check(unsafe {
        libc::getsockopt(
            n,
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&raw mut v).cast(),
            &mut len,
        )
    })
    .expect("SO_PEEK_OFF");
    v
}

/// Sets `SO_PEEK_OFF` of socket number `n`.
pub fn set_peek_off(n: RawFd, v: i32) {
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>()).expect("int size");
    // SAFETY: `v` is valid for reads of `len` bytes.
    check(unsafe {
        libc::setsockopt(
            n,
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&raw const v).cast(),
            len,
        )
    })
    .expect("set SO_PEEK_OFF");
}

/// `socketpair(AF_UNIX, ty)`.
pub fn socketpair(ty: i32) -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two numbers socketpair writes.
    check(unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })
        .expect("socketpair");
    // SAFETY: socketpair succeeded: both numbers are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// `send(n, bytes, MSG_NOSIGNAL)`.
pub fn send(n: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for reads of its length.
    let rc = unsafe { libc::send(n, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Sends `bytes` on socket number `n` with a duplicate of fd `pass` attached (`SCM_RIGHTS`).
pub fn send_fd(n: RawFd, pass: RawFd, bytes: &[u8]) {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // Room for one cmsghdr and one int, aligned as the kernel wants.
    let mut control = [0u64; 4];
    let fd_len = u32::try_from(size_of::<RawFd>()).expect("int size");
    // SAFETY: an all-zero msghdr is valid; the fields set below point at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    // SAFETY: `msg` describes `control`, large enough for one cmsghdr holding one int
    // (CMSG_SPACE(4) = 24 bytes of its 32); CMSG_FIRSTHDR and CMSG_DATA point inside it.
    unsafe {
        let cm = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cm).cmsg_level = libc::SOL_SOCKET;
        (*cm).cmsg_type = libc::SCM_RIGHTS;
        (*cm).cmsg_len = libc::CMSG_LEN(fd_len) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<RawFd>(), pass);
    }
    // SAFETY: `msg` points at the iovec and control buffer above, valid for reads.
    let rc = unsafe { libc::sendmsg(n, &raw const msg, libc::MSG_NOSIGNAL) };
    assert!(rc >= 0, "sendmsg: {}", io::Error::last_os_error());
}
