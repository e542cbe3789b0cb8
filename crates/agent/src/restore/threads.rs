//! Thread fix-ups before the program's threads are recreated (the recreation itself is
//! `sys::resume`, where the clone and the final switch live).

use crac_core::image::ThreadRecord;

use crate::checkpoint::frame;
use crate::checkpoint::procmem::ProcMem;

/// The signals set in `mask`, as numbers.
pub fn signals_in(mask: u64) -> impl Iterator<Item = i32> {
    (1..=64).filter(move |s| mask & (1u64 << (s - 1)) != 0)
}

/// Turns frames that would `restart_syscall` (a restart block does not survive) into their
/// original call.
pub fn fix_restart_blocks(mem: &ProcMem, threads: &[ThreadRecord]) {
    for t in threads {
        if let Ok(mut regs) = frame::read(mem, t.ucontext) {
            if frame::restart_block(&mut regs, t.blocked_syscall) {
                if let Err(e) = frame::write(mem, t.ucontext, &regs) {
                    tracing::warn!("thread {}: cannot reissue its system call: {e}", t.tid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_masks_list_their_signals() {
        assert_eq!(signals_in(0).count(), 0);
        assert_eq!(
            signals_in(1 | 1 << 9 | 1 << 63).collect::<Vec<_>>(),
            vec![1, 10, 64]
        );
    }
}
