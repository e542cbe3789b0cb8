//! Recreating the program's threads and resuming them on their saved signal frames.
//!
//! Every thread but the main one is made with a raw `clone` (`CLONE_SETTLS` with its saved fs
//! base; `CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID` on the C library's cached tid when its
//! offset was measured, so the kernel writes the new tid there and `pthread_join` keeps
//! working). The child runs only the assembly in `crac_loader::arch`: it restores its
//! sigaltstack and robust list, waits on the go word with every signal blocked, and executes
//! `rt_sigreturn` on its frame. Its start block lives in the lower heap (never freed): after
//! `rt_sigreturn` nothing refers to it.
//!
//! The main thread (this one) then sets its own tid word, tid address, robust list and
//! sigaltstack, re-raises the pending signals (delivered once the frames' masks are back), and
//! hands over to `resume_main`, which switches fs, releases the go word and returns to the
//! program through its frame. From the fs switch on no Rust code runs on this thread.

use std::sync::atomic::AtomicU32;

use crac_core::image::{ImageMeta, SigAction, ThreadRecord};
use crac_loader::arch::x86_64::{self as arch, ThreadStart};

use crate::checkpoint::procmem::ProcMem;
use crate::restore::RestoreError;
use crate::restore::threads::signals_in;
use crate::sys::process;

/// The word restarted threads wait on; 1 lets them go.
static GO: AtomicU32 = AtomicU32::new(0);

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;

/// Starts every thread of `meta` but the one run on this thread, then resumes that one.
/// Returns only on failure (before any program thread ran).
pub fn resume(meta: &ImageMeta, mem: &ProcMem) -> Result<std::convert::Infallible, RestoreError> {
    let main_at = meta.threads.iter().position(|t| t.is_main).unwrap_or(0);
    let Some(main) = meta.threads.get(main_at) else {
        return Err(RestoreError::NoThreads);
    };
    let offset = meta.process.tid_offset.map(u64::from);
    let go = GO.as_ptr() as u64;
    for t in meta.threads.iter().filter(|t| t.tid != main.tid) {
        let start: &'static mut ThreadStart = Box::leak(Box::new(ThreadStart {
            altstack_sp: t.altstack.sp,
            altstack_flags: u64::from(t.altstack.flags as u32),
            altstack_size: t.altstack.size,
            robust_head: t.robust_list.0,
            robust_len: t.robust_list.1,
            go,
            ucontext: t.ucontext,
            pad: 0,
        }));
        let mut flags = CLONE_VM
            | CLONE_FS
            | CLONE_FILES
            | CLONE_SIGHAND
            | CLONE_THREAD
            | CLONE_SYSVSEM
            | CLONE_SETTLS;
        let tid_word = match tid_word_of(mem, offset, t) {
            Some(word) => {
                flags |= CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
                word
            }
            None => 0,
        };
        let stack = start as *mut ThreadStart as u64;
        // SAFETY: `stack` is a leaked ThreadStart (never freed or touched again); the flags
        // share the address space and hold no CLONE_VFORK; the tid word is inside the
        // thread's TCB, mapped from the image; the frame at `t.ucontext` is the thread's saved
        // signal frame in mapped memory, and GO is a static.
        let tid = unsafe { arch::clone_thread(flags, stack, tid_word, tid_word, t.fs_base) };
        let tid = i32::try_from(tid).unwrap_or(-1);
        if tid <= 0 {
            return Err(RestoreError::CloneThread {
                tid: t.tid,
                source: std::io::Error::from_raw_os_error(-tid),
            });
        }
        if !t.name.is_empty() {
            let _ = std::fs::write(format!("/proc/self/task/{tid}/comm"), &t.name);
        }
        for sig in signals_in(t.pending) {
            let _ = process::tgkill(tid, sig);
        }
        tracing::debug!("thread {} is now {tid}", t.tid);
    }
    // This thread becomes `main`.
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    if let Some(word) = tid_word_of(mem, offset, main) {
        if let Err(e) = mem.write(word, &me.to_le_bytes()) {
            tracing::warn!("cannot update the main thread's cached tid: {e}");
        }
        // SAFETY: the word is in the main thread's TCB, mapped for the life of the program.
        unsafe { process::set_tid_address(word) };
    }
    if main.robust_list.0 != 0 {
        let _ = process::set_robust_list(main.robust_list.0, main.robust_list.1);
    }
    if let Err(e) = process::set_altstack(main.altstack.sp, main.altstack.flags, main.altstack.size)
    {
        tracing::warn!("cannot restore the main thread's signal stack: {e}");
    }
    for sig in signals_in(main.pending) {
        let _ = process::tgkill(me, sig);
    }
    for sig in signals_in(meta.signals.shared_pending) {
        let _ = process::kill_self(sig);
    }
    tracing::debug!("resuming the program");
    let (fs, uc) = (main.fs_base, main.ucontext);
    // SAFETY: the main thread's frame is mapped from the image and complete; GO is a static.
    // Nothing on this thread needs dropping: `meta` is leaked by the caller, and every other
    // value here is plain data.
    unsafe { arch::resume_main(fs, go, uc) }
}

/// Where thread `t`'s C library keeps its tid, if the measured offset holds for this thread
/// (it holds the thread's old tid): a thread the program made without its C library (a raw
/// `clone`) has no such word, and nothing of it is overwritten.
fn tid_word_of(mem: &ProcMem, offset: Option<u64>, t: &ThreadRecord) -> Option<u64> {
    let word = t.fs_base.checked_add(offset?)?;
    let mut now = [0u8; 4];
    mem.read(word, &mut now).ok()?;
    (i32::from_le_bytes(now) == t.tid).then_some(word)
}

/// Sets every action of `actions` (the program's, from its image); the failing signal and
/// why on error.
pub fn restore_actions(actions: &[SigAction]) -> Result<(), (i32, std::io::Error)> {
    for a in actions {
        let act = super::quiesce::KernelSigaction {
            handler: a.handler,
            flags: a.flags,
            restorer: a.restorer,
            mask: a.mask,
        };
        // SAFETY: the program's own action from its image: its handler and restorer are mapped
        // at the same addresses, and every thread that could receive the signal blocks it until
        // it runs the program's code again.
        unsafe { super::quiesce::set_action(a.signo, &act) }.map_err(|e| (a.signo, e))?;
    }
    Ok(())
}
