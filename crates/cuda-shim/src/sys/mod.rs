//! The program's libc, as the shim uses it (always in upper mode, with the program's fs):
//! auxiliary vector, stderr, signal masks, anonymous mappings, the environment, and the next
//! `sigaction` in symbol order. Every helper leaves the program's errno as it found it.

use std::ffi::{CStr, c_int, c_void};
use std::io;

/// Keeps the program's errno across a block of libc calls.
struct ErrnoGuard(c_int);

impl ErrnoGuard {
    fn new() -> ErrnoGuard {
        // SAFETY: __errno_location returns this thread's errno slot, valid for its lifetime.
        ErrnoGuard(unsafe { *libc::__errno_location() })
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// `getauxval(kind)` (0 when absent).
pub fn getauxval(kind: u64) -> u64 {
    let _e = ErrnoGuard::new();
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(kind) }
}

/// Whether the environment variable `name` is set to `1`.
pub fn env_flag(name: &CStr) -> bool {
    let _e = ErrnoGuard::new();
    // SAFETY: `name` is NUL-terminated; getenv returns null or a NUL-terminated string that
    // stays valid until the environment changes, and it is read at once.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: non-null result of getenv, see above.
    !v.is_null() && unsafe { CStr::from_ptr(v) }.to_bytes() == b"1"
}

/// Writes `msg` to fd 2, ignoring failures (diagnostics only).
pub fn write_stderr(msg: &[u8]) {
    let _e = ErrnoGuard::new();
    let mut rest = msg;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid readable buffer of that length.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => rest = &rest[n..],
            _ => return,
        }
    }
}

/// A signal mask saved by [`block_all_signals`].
pub struct SavedMask(libc::sigset_t);

/// Blocks every signal on the calling thread; returns the previous mask.
pub fn block_all_signals() -> SavedMask {
    let _e = ErrnoGuard::new();
    // SAFETY: sigset_t is plain data; all-zero is a valid value that sigfillset overwrites.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid; pthread_sigmask only reads `all` and writes `old`.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    SavedMask(old)
}

/// Blocks every signal but `keep` on the calling thread; returns the previous mask.
pub fn block_all_signals_but(keep: c_int) -> SavedMask {
    let _e = ErrnoGuard::new();
    // SAFETY: sigset_t is plain data; all-zero is a valid value that sigfillset overwrites.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid; sigdelset with a signal number out of range only fails;
    // pthread_sigmask only reads `set` and writes `old`.
    unsafe {
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, keep);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, &mut old);
    }
    SavedMask(old)
}

/// Puts back a mask saved by [`block_all_signals`].
pub fn restore_signals(saved: &SavedMask) {
    let _e = ErrnoGuard::new();
    // SAFETY: the set is valid; pthread_sigmask only reads it.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved.0, std::ptr::null_mut()) };
}

/// Maps `len` bytes of zeroed read-write anonymous memory in the program's half.
pub fn map_anonymous(len: usize) -> io::Result<*mut c_void> {
    let _e = ErrnoGuard::new();
    // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing
    // cannot overlap anything.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p)
    }
}

/// Unmaps a mapping made by [`map_anonymous`].
///
/// # Safety
/// `[ptr, ptr + len)` must be a mapping from [`map_anonymous`] that nothing uses any more.
pub unsafe fn unmap(ptr: *mut c_void, len: usize) -> io::Result<()> {
    let _e = ErrnoGuard::new();
    // SAFETY: the caller guarantees the range is ours and unused.
    if unsafe { libc::munmap(ptr, len) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The page size.
pub fn page_size() -> usize {
    let _e = ErrnoGuard::new();
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096).max(4096)
}

/// The file this library was loaded from (as ld.so names it), if `dladdr` knows.
pub fn own_path() -> Option<std::ffi::CString> {
    let _e = ErrnoGuard::new();
    // SAFETY: Dl_info is plain data; dladdr fills it for an address inside a loaded object.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = own_path as *const c_void;
    // SAFETY: `here` is an address in this library; `info` is valid for writes.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by ld.so for the object's lifetime.
    Some(unsafe { CStr::from_ptr(info.dli_fname) }.to_owned())
}

/// Removes this library from `LD_PRELOAD`, so the program's children do not load it (they are
/// not under crac). Other entries stay in their order; an empty result unsets the variable.
pub fn remove_self_from_ld_preload() {
    let _e = ErrnoGuard::new();
    let Some(me) = own_path() else { return };
    // SAFETY: getenv returns null or a NUL-terminated string that stays valid until the
    // environment changes, which we do only after copying it.
    let value = unsafe { libc::getenv(c"LD_PRELOAD".as_ptr()) };
    if value.is_null() {
        return;
    }
    // SAFETY: non-null result of getenv, see above.
    let value = unsafe { CStr::from_ptr(value) }.to_bytes().to_vec();
    let Some(kept) = crate::preload::without(&value, me.as_bytes(), same_file) else {
        return;
    };
    if kept.is_empty() {
        // SAFETY: the name is NUL-terminated; unsetenv copies nothing we hold.
        unsafe { libc::unsetenv(c"LD_PRELOAD".as_ptr()) };
    } else if let Ok(v) = std::ffi::CString::new(kept) {
        // SAFETY: both strings are NUL-terminated; setenv copies them.
        unsafe { libc::setenv(c"LD_PRELOAD".as_ptr(), v.as_ptr(), 1) };
    }
}

/// Whether two paths name the same file (device and inode).
fn same_file(a: &[u8], b: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &[u8]| std::fs::metadata(std::ffi::OsStr::from_bytes(p)).ok();
    match (meta(a), meta(b)) {
        (Some(x), Some(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The `sigaction` that the program's libc (the next object after this library) defines.
pub fn next_sigaction() -> Option<SigactionFn> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cached = NEXT.load(Ordering::Acquire);
    let addr = if cached != 0 {
        cached
    } else {
        let _e = ErrnoGuard::new();
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only reads ld.so's tables.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"sigaction".as_ptr()) };
        let a = p as usize;
        NEXT.store(a, Ordering::Release);
        a
    };
    if addr == 0 {
        return None;
    }
    // SAFETY: `addr` is libc's `sigaction`, whose C signature is exactly SigactionFn.
    Some(unsafe { std::mem::transmute::<usize, SigactionFn>(addr) })
}

unsafe extern "C" {
    /// The program's C library's `stdout` stream.
    static mut stdout: *mut libc::FILE;
}

/// Writes `bytes` to the program's `stdout` stream with its `fwrite`, so they land in order
/// with the program's own buffered output.
pub fn write_program_stdout(bytes: &[u8]) {
    let _e = ErrnoGuard::new();
    // SAFETY: reads the pointer value of libc's `stdout` (no reference is formed); libc
    // initialises it before any constructor of a loaded library runs.
    let f = unsafe { stdout };
    if f.is_null() || bytes.is_empty() {
        return;
    }
    // SAFETY: `f` is the program's stdout FILE; `bytes` is a valid buffer of that length.
    unsafe { libc::fwrite(bytes.as_ptr().cast(), 1, bytes.len(), f) };
}

/// Registers `f` to run at `exit`, before the C library flushes its streams.
pub fn at_exit(f: extern "C" fn()) {
    let _e = ErrnoGuard::new();
    // SAFETY: `f` is a plain function with no captured state, valid for the process's life
    // (this library is never unloaded: it is preloaded).
    unsafe { libc::atexit(f) };
}

/// `crac_shim_fsmap_insert`'s type.
type FsmapInsertFn = extern "C" fn(u64, u64) -> bool;

/// Registers `lower` → `upper` with the first shim library in the program's symbol order (the
/// one whose `sigaction` the program calls), or with this one's map if none is found.
pub fn register_lower_fs(lower: u64, upper: u64) -> bool {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static FIRST: AtomicUsize = AtomicUsize::new(0);
    let mut addr = FIRST.load(Ordering::Acquire);
    if addr == 0 {
        let _e = ErrnoGuard::new();
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads ld.so's tables.
        addr =
            unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"crac_shim_fsmap_insert".as_ptr()) } as usize;
        FIRST.store(addr, Ordering::Release);
    }
    if addr == 0 {
        return crate::fsmap::insert(lower, upper);
    }
    // SAFETY: the symbol is a shim library's crac_shim_fsmap_insert, of exactly this type.
    let insert = unsafe { std::mem::transmute::<usize, FsmapInsertFn>(addr) };
    insert(lower, upper)
}

/// C `sigaction`'s type.
pub type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
