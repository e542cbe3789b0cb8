//! Per-thread and per-process kernel state the checkpoint reads and the restart sets: robust
//! lists, sigaltstack, the tid address, signal masks, `uname`, and facts about
//! crac's own build (its build-id, its C library).

use std::ffi::CStr;
use std::io;

use super::errno;
use crac_loader::arch::x86_64 as arch;

const SYS_GET_ROBUST_LIST: i64 = 274;
const SYS_SET_ROBUST_LIST: i64 = 273;
const SYS_SET_TID_ADDRESS: i64 = 218;
const SYS_SIGALTSTACK: i64 = 131;
const SYS_RT_SIGPROCMASK: i64 = 14;
const SYS_TGKILL: i64 = 234;
const SYS_KILL: i64 = 62;

fn arg(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `get_robust_list(tid)`: head address and length.
pub fn robust_list(tid: i32) -> io::Result<(u64, u64)> {
    let (mut head, mut len) = (0u64, 0u64);
    // SAFETY: the kernel writes one pointer and one size into the two locals.
    let rc = unsafe {
        arch::syscall4(
            SYS_GET_ROBUST_LIST,
            arg(tid),
            &raw mut head as u64,
            &raw mut len as u64,
            0,
        )
    };
    errno(rc).map(|_| (head, len))
}

/// `set_robust_list` for the calling thread (the kernel only stores the address).
pub fn set_robust_list(head: u64, len: u64) -> io::Result<()> {
    // SAFETY: the kernel only records the address; it is read when the thread exits.
    errno(unsafe { arch::syscall4(SYS_SET_ROBUST_LIST, head, len, 0, 0) }).map(drop)
}

/// `set_tid_address`: the kernel clears and futex-wakes `addr` when the calling thread exits.
///
/// # Safety
/// `addr` must stay a writable 32-bit word for as long as the thread lives.
pub unsafe fn set_tid_address(addr: u64) -> i32 {
    // SAFETY: the caller vouches for the address; the call returns the tid.
    let rc = unsafe { arch::syscall4(SYS_SET_TID_ADDRESS, addr, 0, 0, 0) };
    i32::try_from(rc).unwrap_or(0)
}

/// `sigaltstack` for the calling thread from `(sp, flags, size)`.
pub fn set_altstack(sp: u64, flags: i32, size: u64) -> io::Result<()> {
    let ss = [sp, u64::from(flags as u32), size];
    // SAFETY: the kernel reads one stack_t (24 bytes) from `ss`; the stack is only used when a
    // handler with SA_ONSTACK runs, and it is the program's own stack from its image.
    errno(unsafe { arch::syscall4(SYS_SIGALTSTACK, ss.as_ptr() as u64, 0, 0, 0) }).map(drop)
}

/// Sets the calling thread's signal mask; returns the old one.
pub fn set_sigmask(mask: u64) -> io::Result<u64> {
    let mut old = 0u64;
    // SAFETY: the kernel reads and writes one 8-byte set from/to valid locals.
    let rc = unsafe {
        arch::syscall4(
            SYS_RT_SIGPROCMASK,
            2, // SIG_SETMASK
            &raw const mask as u64,
            &raw mut old as u64,
            8,
        )
    };
    errno(rc).map(|_| old)
}

/// Sends `signo` to thread `tid` of this process.
pub fn tgkill(tid: i32, signo: i32) -> io::Result<()> {
    // SAFETY: only sends a signal.
    let rc = unsafe {
        arch::syscall4(
            SYS_TGKILL,
            u64::from(std::process::id()),
            arg(tid),
            arg(signo),
            0,
        )
    };
    errno(rc).map(drop)
}

/// Sends `signo` to this process (process-directed).
pub fn kill_self(signo: i32) -> io::Result<()> {
    // SAFETY: only sends a signal.
    let rc = unsafe { arch::syscall4(SYS_KILL, u64::from(std::process::id()), arg(signo), 0, 0) };
    errno(rc).map(drop)
}

/// `prctl(PR_SET_NAME)`.
pub fn set_name(name: &CStr) -> io::Result<()> {
    // SAFETY: PR_SET_NAME reads at most 16 bytes of a NUL-terminated string.
    if unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The current program break.
pub fn current_brk() -> u64 {
    // SAFETY: brk(0) only reports the break.
    let rc = unsafe { arch::syscall4(libc::SYS_brk, 0, 0, 0, 0) };
    u64::try_from(rc).unwrap_or(0)
}

/// `uname`: (release, machine).
pub fn uname() -> io::Result<(String, String)> {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uname fills the struct on success (checked before it is read).
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: uname returned 0, so `u` is initialised.
    let u = unsafe { u.assume_init() };
    let text = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((text(&u.release), text(&u.machine)))
}

/// The version of crac's own C library (`gnu_get_libc_version`): on a system where programs run
/// on the system glibc, the same as the program's.
pub fn libc_version() -> String {
    unsafe extern "C" {
        fn gnu_get_libc_version() -> *const libc::c_char;
    }
    // SAFETY: glibc returns a pointer to a static NUL-terminated string.
    let p = unsafe { gnu_get_libc_version() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated (glibc's contract), static lifetime.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The GNU build-id of the running crac executable (its `NT_GNU_BUILD_ID` note, read from the
/// loaded image in memory), as lower-case hex; empty when it has none.
pub fn own_build_id() -> String {
    let mut out = String::new();
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and `data`
        // is the `&mut String` given below.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<String>()) };
        let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: the loader's program header table of this object, dlpi_phnum entries.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        for ph in phdrs.iter().filter(|p| p.p_type == libc::PT_NOTE) {
            let addr = info.dlpi_addr.wrapping_add(ph.p_vaddr);
            let len = usize::try_from(ph.p_memsz.min(64 * 1024)).unwrap_or(0);
            // SAFETY: a PT_NOTE segment of a loaded object lies inside one of its mapped,
            // readable PT_LOAD segments.
            let notes = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
            if let Some(id) = crac_core::elf::notes::find_build_id(notes, ph.p_align) {
                *out = id.iter().map(|b| format!("{b:02x}")).collect();
                return 1;
            }
        }
        // The first object is the executable: stop after it either way.
        1
    }
    // SAFETY: the callback only reads the loader's tables for the duration of each call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut out).cast()) };
    out
}
