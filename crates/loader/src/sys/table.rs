//! The call table's entry points and the program memory they read (see `table.rs`), the fork
//! check whose byte the table publishes, and the lower half's futex for the API gate.
//!
//! These run on the program's threads, with the fs base of the calling thread's own parked
//! lower thread (the shim switched to it), on the program's stack. They may allocate, lock and
//! use thread-locals (all of those are the lower half's, through that fs base), but they must
//! never unwind into the shim: every path returns a `cudaError_t`.

use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crac_abi::{MAX_ARGS, Table};
use crac_replay::{HostFault, HostMemory};

/// Stack of a parked lower thread: it only sleeps; the code that borrows its TCB runs on the
/// borrowing thread's own stack.
const PARKED_STACK: usize = 64 << 10;

/// `cudaErrorUnknown`.
const UNKNOWN: u32 = 999;
/// `cudaErrorNotReady`.
const NOT_READY: u32 = 600;
/// `cudaErrorInitializationError`: what CUDA answers in a child forked from a CUDA process.
const INITIALIZATION_ERROR: u32 = 3;
/// `MADV_WIPEONFORK` (Linux 4.14).
const MADV_WIPEONFORK: libc::c_long = 18;

/// Address of a page that holds 1 in the process that installed the table and reads 0 in a
/// child it forks (`MADV_WIPEONFORK`); 0 when not armed. A forked child has none of the lower
/// half's threads (the sim worker, the parked TCB owners) and may hold locks they held at the
/// fork, so its CUDA calls must fail at once, as CUDA's do, instead of waiting forever.
static FORK_PAGE: AtomicUsize = AtomicUsize::new(0);

/// Arms the fork check (see [`FORK_PAGE`]); once per process.
pub(crate) fn arm_fork_check() -> io::Result<()> {
    if FORK_PAGE.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    let page = super::mmap_anon(super::PAGE, libc::PROT_READ | libc::PROT_WRITE, 0)?;
    crate::lower::record_mapped(page as u64, (page + super::PAGE) as u64);
    // SAFETY: madvise on the page just mapped, which nothing else uses.
    super::check(unsafe { libc::syscall(libc::SYS_madvise, page, super::PAGE, MADV_WIPEONFORK) })?;
    // SAFETY: the page is mapped read-write, page-aligned and ours for the process's life.
    unsafe { AtomicU8::from_ptr(page as *mut u8) }.store(1, Ordering::Release);
    FORK_PAGE.store(page, Ordering::Release);
    Ok(())
}

/// Whether this process is a fork of the one that armed the check.
fn forked() -> bool {
    let page = FORK_PAGE.load(Ordering::Acquire);
    // SAFETY: a non-zero FORK_PAGE is a page mapped read-write for the process's life
    // (a forked child inherits the mapping, zeroed).
    page != 0 && unsafe { AtomicU8::from_ptr(page as *mut u8) }.load(Ordering::Acquire) == 0
}

/// Starts a lower thread that sleeps forever and returns its fs base (its thread control
/// block, which is what `pthread_self` returns on x86-64 glibc).
///
/// Two rules keep the borrowed TCB sound. The thread must have finished its own start-up
/// before anyone borrows its TCB (std sets the thread's `thread::current` there; an upper
/// thread calling `thread::current()` first would make the child abort), so this waits for
/// it. And it must sleep without `thread::park`: the borrower's blocking waits (channels)
/// park on the same `Thread`, and a wake-up must never go to the sleeper instead.
pub(crate) fn park_lower_thread() -> io::Result<u64> {
    park_lower_thread_tid().map(|(tcb, _)| tcb)
}

/// [`park_lower_thread`], also returning the thread's kernel tid.
fn park_lower_thread_tid() -> io::Result<(u64, i32)> {
    let started = Arc::new(Barrier::new(2));
    let tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let (child, child_tid) = (Arc::clone(&started), Arc::clone(&tid));
    let handle = std::thread::Builder::new()
        .name("crac-lower-tcb".into())
        .stack_size(PARKED_STACK)
        .spawn(move || {
            // SAFETY: gettid has no preconditions.
            child_tid.store(unsafe { libc::gettid() }, Ordering::Release);
            child.wait();
            drop((child, child_tid));
            loop {
                std::thread::sleep(Duration::from_secs(1 << 30));
            }
        })?;
    started.wait();
    let tcb: u64 = handle.as_pthread_t();
    // Detach: the thread runs (sleeps) for the life of the process.
    drop(handle);
    Ok((tcb, tid.load(Ordering::Acquire)))
}

/// Maps `[base, base + size)` `PROT_NONE`, `MAP_NORESERVE`, without replacing anything, and
/// records it as lower half.
pub(crate) fn reserve(base: u64, size: u64) -> io::Result<()> {
    let (b, n) = (
        usize::try_from(base).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        usize::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
    );
    super::map_guard(b, n)?;
    crate::lower::record_mapped(base, base.saturating_add(size));
    Ok(())
}

/// `Table::new_lower_thread`: a parked lower thread for the calling upper thread; 0 on failure.
extern "C" fn new_lower_thread() -> u64 {
    std::panic::catch_unwind(park_lower_thread)
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0)
}

/// `Table::cuda`: one CUDA operation.
///
/// # Safety
/// `args` must point at [`MAX_ARGS`] readable words (the shim's argument array).
unsafe extern "C" fn cuda(op: u32, args: *const u64) -> u32 {
    if forked() {
        return INITIALIZATION_ERROR;
    }
    let Some(rt) = crate::table::RUNTIME.get() else {
        return UNKNOWN;
    };
    // A paused gate: the host-callback thread must leave the lower half, so it is told
    // "nothing yet" (cudaErrorNotReady) and waits at the gate in the upper half.
    if op == crac_abi::Op::HostCallbackNext as u32 && crate::table::callbacks_paused() {
        return NOT_READY;
    }
    if args.is_null() {
        return 1;
    }
    let mut words = [0u64; MAX_ARGS];
    // SAFETY: the caller passes MAX_ARGS readable words (this function's contract), and
    // `words` is a distinct local array of that length.
    unsafe { std::ptr::copy_nonoverlapping(args, words.as_mut_ptr(), MAX_ARGS) };
    // Runtime::call catches panics itself; this catch covers the table glue.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.call(op, &words, &ProgramMemory)
    }))
    .unwrap_or(UNKNOWN)
}

/// The table as `install` publishes it, for lower-half `generation`.
pub(crate) fn table(bootstrap_fs: u64, generation: u64) -> Table {
    Table {
        magic: crac_abi::TABLE_MAGIC,
        version: crac_abi::TABLE_VERSION,
        size: u32::try_from(std::mem::size_of::<Table>()).unwrap_or(u32::MAX),
        bootstrap_fs,
        bootstrap_lock: std::sync::atomic::AtomicU32::new(0),
        new_lower_thread,
        cuda,
        op_count: u32::try_from(crac_abi::Op::ALL.len()).unwrap_or(0),
        generation: AtomicU64::new(generation),
        gate: std::sync::atomic::AtomicU32::new(0),
        in_flight: AtomicU64::new(crac_abi::tagged(generation)),
        callbacks_in_lower: AtomicU64::new(crac_abi::tagged(generation)),
        fork_byte: AtomicU64::new(FORK_PAGE.load(Ordering::Acquire) as u64),
    }
}

/// The gate's futex, for the lower half's side (the closer) and for tests that play the
/// shim's side on lower threads. Lower code: libc's `syscall` is fine here.
pub(crate) struct LowerFutex;

impl crac_abi::gate::Futex for LowerFutex {
    fn wait(&self, addr: usize, expected: u32, timeout: Option<Duration>) {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(t.subsec_nanos()),
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
        // SAFETY: FUTEX_WAIT only reads the 32-bit word at `addr` (a gate word of a live table,
        // the trait's contract) and the timespec, a live local or null; it fails with EFAULT
        // rather than touching a bad address. Early returns (EINTR, EAGAIN) are the caller's
        // to loop on.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                addr,
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                ts_ptr,
            )
        };
    }

    fn wake_all(&self, addr: usize) {
        // SAFETY: FUTEX_WAKE reads nothing but the address as a key.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                addr,
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
            )
        };
    }

    fn forked(&self, fork_byte: u64) -> bool {
        fork_byte == FORK_PAGE.load(Ordering::Acquire) as u64 && forked()
    }
}

/// The program's memory, at the addresses the program passed as CUDA arguments.
///
/// This is the one place crac dereferences them. Like NVIDIA's runtime it trusts the program
/// for pointers into its own memory; what it can tell is wrong it refuses: null, a range that
/// wraps, and device addresses (the device window is reserved `PROT_NONE`, so touching it
/// would fault instead of failing the call).
pub(crate) struct ProgramMemory;

impl ProgramMemory {
    fn check(addr: u64, len: u64) -> Result<usize, HostFault> {
        let end = addr.checked_add(len);
        if addr < 4096 || end.is_none() {
            return Err(HostFault::Null { addr, len });
        }
        let w = crac_gpu::Window::DEFAULT;
        if end.is_some_and(|e| e > w.base) && addr < w.end() {
            return Err(HostFault::NotHost { addr, len });
        }
        usize::try_from(len).map_err(|_| HostFault::NotHost { addr, len })
    }
}

impl HostMemory for ProgramMemory {
    fn with_bytes(&self, addr: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), HostFault> {
        if len == 0 {
            f(&[]);
            return Ok(());
        }
        let n = Self::check(addr, len)?;
        // SAFETY: the program passed `addr` as a CUDA argument naming `len` bytes of its own
        // memory, readable for the duration of the call (the CUDA API's contract, which
        // NVIDIA's runtime relies on the same way); null, wrapping and device-window ranges
        // were refused above.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, n) };
        f(bytes);
        Ok(())
    }

    fn with_bytes_mut(
        &self,
        addr: u64,
        len: u64,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), HostFault> {
        if len == 0 {
            f(&mut []);
            return Ok(());
        }
        let n = Self::check(addr, len)?;
        // SAFETY: as in `with_bytes`, and the program hands these bytes to the call to be
        // written (an out-parameter or a copy destination), so nothing else writes them
        // while the call runs unless the program races itself, as with NVIDIA's runtime.
        let bytes = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, n) };
        f(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's fs base.
    fn fs_base() -> u64 {
        let mut fs = 0u64;
        // SAFETY: ARCH_GET_FS writes one u64 to a valid local.
        let rc = unsafe { libc::syscall(libc::SYS_arch_prctl, 0x1003, &mut fs as *mut u64) };
        assert_eq!(rc, 0);
        fs
    }

    #[test]
    fn a_parked_thread_is_lower_and_its_tcb_is_its_fs_base() {
        // pthread_self() is the fs base on x86-64 glibc: what park_lower_thread relies on.
        // SAFETY: pthread_self has no preconditions.
        assert_eq!(unsafe { libc::pthread_self() } as u64, fs_base());
        let (tcb, tid) = park_lower_thread_tid().expect("park");
        assert_ne!(tcb, 0);
        assert_ne!(tcb, fs_base());
        // By its own tid: counting lower threads races with other tests' threads ending.
        assert!(
            crate::lower::lower_tids().contains(&tid),
            "thread {tid} registered as lower"
        );
        assert_ne!(new_lower_thread(), 0);
    }

    #[test]
    fn a_forked_child_is_told_apart_without_a_system_call() {
        arm_fork_check().expect("arm");
        assert!(!forked());
        // SAFETY: the child only reads an atomic and calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: ends the child without running the parent's destructors or atexit.
            unsafe { libc::_exit(if forked() { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked, into a valid local.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        assert!(!forked(), "the parent is not a fork");
    }

    /// Program memory for the tests, in the test binary's data: a stack or heap address can
    /// fall inside the device window (which unit tests do not reserve) and be refused.
    static PROGRAM: std::sync::Mutex<[u8; 4]> = std::sync::Mutex::new([1, 2, 3, 4]);

    #[test]
    fn program_memory_refuses_what_it_can_tell_is_wrong() {
        let mut local = PROGRAM.lock().expect("program memory");
        let addr = local.as_mut_ptr() as u64;
        assert!(addr < crac_gpu::Window::DEFAULT.base, "{addr:#x}");
        let mut seen = Vec::new();
        ProgramMemory
            .with_bytes(addr, 4, &mut |b| seen.extend_from_slice(b))
            .expect("read");
        assert_eq!(seen, [1, 2, 3, 4]);
        ProgramMemory.write(addr, &[9, 9]).expect("write");
        assert_eq!(local[..2], [9, 9]);
        assert!(ProgramMemory.read(0, &mut [0u8; 1]).is_err());
        assert!(ProgramMemory.read(u64::MAX - 1, &mut [0u8; 4]).is_err());
        let w = crac_gpu::Window::DEFAULT.base;
        assert!(ProgramMemory.read(w + 16, &mut [0u8; 4]).is_err());
        assert!(ProgramMemory.read(w - 2, &mut [0u8; 4]).is_err());
        ProgramMemory
            .with_bytes(0, 0, &mut |b| assert!(b.is_empty()))
            .expect("empty ranges are fine anywhere");
    }
}
