//! The records of the stopped threads: what the handler saw, plus name, pending signals and
//! robust list from the kernel, and the offset of the cached thread id in the C library's thread
//! descriptor, measured on the live threads.

use crac_core::image::{AltStack, ThreadRecord};

use super::frame;
use super::procmem::ProcMem;
use super::quiesce::{QUIESCE_SIGNAL, StoppedThread};
use crate::sys;

/// How far into the thread descriptor the tid is looked for.
const TCB_SCAN: usize = 0x1000;
/// The offset glibc (2.36 and many releases around it) uses on x86-64.
const GLIBC_TID_OFFSET: u32 = 0x2d0;

/// A `Sig*:` bit mask from a `status` file.
pub fn status_mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// The record of one stopped thread.
pub fn record(t: &StoppedThread, pid: i32) -> ThreadRecord {
    let tid = t.parked.tid;
    let dir = format!("/proc/self/task/{tid}");
    let name = std::fs::read_to_string(format!("{dir}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_default();
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let (sp, flags, size) = t.parked.altstack;
    ThreadRecord {
        tid,
        is_main: tid == pid,
        name,
        fs_base: t.parked.fs_base,
        ucontext: t.parked.ucontext,
        altstack: AltStack { sp, size, flags },
        // A queued extra instance of crac's quiesce signal is not the program's: re-raised
        // at restart it would meet the program's action for it (by default, termination).
        pending: status_mask(&status, "SigPnd:") & !(1u64 << (QUIESCE_SIGNAL - 1)),
        robust_list: sys::process::robust_list(tid).unwrap_or((0, 0)),
        blocked_syscall: t.blocked,
    }
}

/// Rewrites the frames of threads the quiesce signal knocked out of a sleep or wait, so they
/// issue the call again (now, if the program goes on, and after a restart). Returns how many.
pub fn reissue_interrupted(mem: &ProcMem, threads: &[StoppedThread]) -> usize {
    let mut n = 0;
    for t in threads.iter().filter(|t| t.blocked.is_some()) {
        let uc = t.parked.ucontext;
        let Ok(mut regs) = frame::read(mem, uc) else {
            continue;
        };
        let mut code = [0u8; 2];
        if regs.rip < 2 || mem.read(regs.rip - 2, &mut code).is_err() {
            continue;
        }
        if frame::reissue(&mut regs, t.blocked, code) && frame::write(mem, uc, &regs).is_ok() {
            n += 1;
        }
    }
    n
}

/// The offsets in the first [`TCB_SCAN`] bytes at `fs_base` that hold the thread's own tid, for
/// every thread: `(tid, bytes at its fs base)`. glibc's choice (0x2d0) wins when it is among
/// them, else the lowest; `None` when no offset holds for all.
pub fn choose_tid_offset(threads: &[(i32, Vec<u8>)]) -> Option<u32> {
    if threads.is_empty() {
        return None;
    }
    let holds = |off: usize| {
        threads.iter().all(|(tid, bytes)| {
            bytes
                .get(off..off + 4)
                .is_some_and(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) == *tid)
        })
    };
    let candidates: Vec<u32> = (0..TCB_SCAN)
        .step_by(4)
        .filter(|off| holds(*off))
        .filter_map(|off| u32::try_from(off).ok())
        .collect();
    if candidates.contains(&GLIBC_TID_OFFSET) {
        Some(GLIBC_TID_OFFSET)
    } else {
        candidates.first().copied()
    }
}

/// Measures the tid offset on the stopped threads (their TCBs read through `mem`). Threads
/// without a readable TCB (a raw `clone` with no TLS) are left out; the restorer checks the
/// offset on each thread again before it writes there.
pub fn measure_tid_offset(mem: &ProcMem, threads: &[StoppedThread]) -> Option<u32> {
    let mut samples = Vec::new();
    for t in threads.iter().filter(|t| t.parked.fs_base != 0) {
        let mut bytes = vec![0u8; TCB_SCAN];
        if mem.read(t.parked.fs_base, &mut bytes).is_ok() {
            samples.push((t.parked.tid, bytes));
        }
    }
    choose_tid_offset(&samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcb(tid: i32, at: &[usize]) -> (i32, Vec<u8>) {
        let mut b = vec![0u8; TCB_SCAN];
        for off in at {
            b[*off..*off + 4].copy_from_slice(&tid.to_le_bytes());
        }
        (tid, b)
    }

    #[test]
    fn the_offset_that_holds_for_every_thread_is_chosen() {
        assert_eq!(
            choose_tid_offset(&[tcb(100, &[0x40, 0x100]), tcb(101, &[0x100])]),
            Some(0x100)
        );
        assert_eq!(
            choose_tid_offset(&[tcb(100, &[0x40, 0x2d0]), tcb(101, &[0x40, 0x2d0])]),
            Some(0x2d0),
            "glibc's offset preferred"
        );
        assert_eq!(
            choose_tid_offset(&[tcb(100, &[0x40]), tcb(101, &[0x44])]),
            None
        );
        assert_eq!(choose_tid_offset(&[]), None);
    }

    #[test]
    fn status_masks_parse() {
        let s = "Name:\tx\nSigPnd:\t0000000000000100\nShdPnd:\t0000000000004000\n";
        assert_eq!(status_mask(s, "SigPnd:"), 0x100);
        assert_eq!(status_mask(s, "ShdPnd:"), 0x4000);
        assert_eq!(status_mask(s, "SigBlk:"), 0);
    }
}
