//! The loader's system calls: one small helper per call, turning the return code into an
//! `io::Error` at once. Everything raw (addresses, `MAP_FIXED`) is behind `unsafe fn`.
//!
//! Mapping calls here go straight to the kernel with `syscall(2)`, never through the `mmap`
//! symbol: this executable exports its own `mmap` (see [`exports`]), which records what it maps
//! as lower half, and the loader must not record the program's mappings or recurse into the
//! allocator while it holds the allocator's lock.

pub(crate) mod arena;
pub(crate) mod exports;
pub(crate) mod load;
pub(crate) mod mm;
pub(crate) mod objects;
pub(crate) mod signals;
pub(crate) mod stdfds;
pub(crate) mod table;
pub(crate) mod threads;

use std::ffi::CStr;
use std::io;

/// Page size on x86-64 Linux.
pub(crate) const PAGE: usize = 4096;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Raw `mmap(2)` without recording.
///
/// # Safety
/// With `MAP_FIXED` in `flags` the caller must own `[addr, addr + len)`: whatever was mapped
/// there is replaced.
pub(crate) unsafe fn mmap_raw(
    addr: usize,
    len: usize,
    prot: i32,
    flags: i32,
    fd: i32,
    offset: u64,
) -> io::Result<usize> {
    // SAFETY: a plain system call; the caller vouches for MAP_FIXED targets (see # Safety).
    let ret = unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, offset) };
    check(ret)
        .and_then(|v| usize::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW)))
}

/// Maps fresh anonymous memory wherever the kernel likes.
pub(crate) fn mmap_anon(len: usize, prot: i32, extra_flags: i32) -> io::Result<usize> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags;
    // SAFETY: no MAP_FIXED is passed (callers give only NORESERVE/STACK-like flags), so no
    // existing mapping can be replaced.
    unsafe { mmap_raw(0, len, prot, flags & !libc::MAP_FIXED, -1, 0) }
}

/// Raw `munmap(2)` without unrecording.
///
/// # Safety
/// Nothing may still use `[addr, addr + len)`.
pub(crate) unsafe fn munmap_raw(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: plain system call; the caller vouches the range is unused.
    check(unsafe { libc::syscall(libc::SYS_munmap, addr, len) }).map(drop)
}

/// Raw `mprotect(2)`.
///
/// # Safety
/// Lowering protection of memory something still uses makes it fault.
pub(crate) unsafe fn mprotect(addr: usize, len: usize, prot: i32) -> io::Result<()> {
    // SAFETY: plain system call; the caller vouches for the range.
    check(unsafe { libc::syscall(libc::SYS_mprotect, addr, len, prot) }).map(drop)
}

/// `madvise(MADV_DONTNEED)`: drops the pages' contents (they read back as zero).
///
/// # Safety
/// The range's contents are lost.
pub(crate) unsafe fn discard(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: plain system call; the caller vouches the contents are dead.
    check(unsafe { libc::syscall(libc::SYS_madvise, addr, len, libc::MADV_DONTNEED) }).map(drop)
}

/// `personality(2)`: sets the persona when `set` is `Some`, returns the previous one.
pub(crate) fn personality(set: Option<u32>) -> io::Result<u32> {
    let arg = set.map_or(0xffff_ffff_u64, u64::from);
    // SAFETY: personality only changes flags the kernel reads at the next exec/mmap layout.
    let ret = check(unsafe { libc::syscall(libc::SYS_personality, arg) })?;
    Ok(u32::try_from(ret).unwrap_or(0))
}

/// The current program break (`brk(0)`).
pub(crate) fn current_brk() -> usize {
    // SAFETY: brk(0) never changes the break, it only reports it.
    let ret = unsafe { libc::syscall(libc::SYS_brk, 0usize) };
    usize::try_from(ret).unwrap_or(0)
}

/// `prctl(PR_SET_NAME)`: the name `ps` shows (the kernel keeps 15 bytes).
pub(crate) fn set_comm(name: &CStr) -> io::Result<()> {
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a valid NUL-terminated string.
    check(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) }.into()).map(drop)
}

/// The calling thread's kernel tid.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// `[low, high)` of the calling thread's stack block, guard included (`pthread_getattr_np`).
pub(crate) fn current_stack() -> io::Result<(usize, usize)> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initialises `attr` on success for the calling thread.
    let rc = unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size = 0usize;
    let mut guard = 0usize;
    // SAFETY: attr was initialised above; the out-pointers are valid locals; destroy is called
    // once on the initialised attr.
    let rc = unsafe {
        let a = attr.as_mut_ptr();
        let r1 = libc::pthread_attr_getstack(a, &mut addr, &mut size);
        let r2 = libc::pthread_attr_getguardsize(a, &mut guard);
        libc::pthread_attr_destroy(a);
        if r1 != 0 { r1 } else { r2 }
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let low = (addr as usize).saturating_sub(guard);
    Ok((low, addr as usize + size))
}

/// Writes `bytes` at `addr`.
///
/// # Safety
/// `[addr, addr + bytes.len())` must be mapped writable and used by nothing else.
pub(crate) unsafe fn write_at(addr: usize, bytes: &[u8]) {
    // SAFETY: the caller guarantees the destination is writable, exclusively ours, and it
    // cannot overlap `bytes` (which lives in our heap or stack, not in that mapping).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
}

/// Zeroes `[addr, addr + len)`.
///
/// # Safety
/// The range must be mapped writable and used by nothing else.
pub(crate) unsafe fn zero_at(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is writable and exclusively ours.
    unsafe { std::ptr::write_bytes(addr as *mut u8, 0, len) };
}

/// Page-rounding helpers.
pub(crate) fn page_down(x: u64) -> u64 {
    x & !(PAGE as u64 - 1)
}

/// Rounds up to a page boundary (saturating at the top of the address space).
pub(crate) fn page_up(x: u64) -> u64 {
    x.saturating_add(PAGE as u64 - 1) & !(PAGE as u64 - 1)
}

/// Maps a PROT_NONE guard at exactly `addr` without replacing anything (`EEXIST` if taken).
pub(crate) fn map_guard(addr: usize, len: usize) -> io::Result<()> {
    let flags =
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let got = unsafe { mmap_raw(addr, len, libc::PROT_NONE, flags, -1, 0) }?;
    if got != addr {
        // A kernel without MAP_FIXED_NOREPLACE treats it as a hint: undo and report.
        // SAFETY: `got` is the mapping just made, used by nothing.
        unsafe { munmap_raw(got, len) }?;
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(())
}

/// Registers the heap's fork handlers.
pub(crate) fn register_atfork() -> io::Result<()> {
    // SAFETY: the handlers are plain extern "C" functions that only touch an atomic lock.
    let rc = unsafe {
        libc::pthread_atfork(
            Some(arena::atfork_prepare),
            Some(arena::atfork_release),
            Some(arena::atfork_release),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// `execve(2)`; returns only on failure.
pub(crate) fn execve(
    path: &CStr,
    argv: &[std::ffi::CString],
    env: &[std::ffi::CString],
) -> io::Error {
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    env_p.push(std::ptr::null());
    // SAFETY: both arrays are NUL-terminated arrays of pointers to live C strings.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), env_p.as_ptr()) };
    io::Error::last_os_error()
}
