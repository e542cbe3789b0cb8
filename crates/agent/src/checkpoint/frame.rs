//! The saved signal frame of a stopped thread: the registers it resumes with, and the fix-ups
//! that keep an interrupted system call from failing because of crac.
//!
//! When the quiesce signal interrupts a thread blocked in a call the kernel can only resume
//! through its restart block or not at all with a handler present (`nanosleep`, timed `futex`,
//! `poll`, `epoll_wait`, …), the kernel makes the call return `EINTR` before it runs crac's
//! handler. The program did not ask for that: [`reissue`] rewrites the frame so the thread
//! issues the call again when it resumes (with the remaining time for relative sleeps, which the
//! kernel wrote to the remainder argument). A frame whose `rax` is `restart_syscall` (from a
//! stop without a handler) would fail after a restart, where the restart block is lost:
//! [`restart_block`] turns it into the original call.

use std::io;

use super::procmem::ProcMem;

/// Offset of `uc_mcontext.gregs` in `ucontext_t` (x86-64).
const GREGS: u64 = 40;
/// `gregs` indices.
const REG_R10: u64 = 2;
const REG_RDI: u64 = 8;
const REG_RSI: u64 = 9;
const REG_RDX: u64 = 12;
const REG_RAX: u64 = 13;
const REG_RIP: u64 = 16;

const NR_POLL: i64 = 7;
const NR_SELECT: i64 = 23;
const NR_PAUSE: i64 = 34;
const NR_NANOSLEEP: i64 = 35;
const NR_RT_SIGTIMEDWAIT: i64 = 128;
const NR_RT_SIGSUSPEND: i64 = 130;
const NR_FUTEX: i64 = 202;
const NR_RESTART_SYSCALL: i64 = 219;
const NR_CLOCK_NANOSLEEP: i64 = 230;
const NR_EPOLL_WAIT: i64 = 232;
const NR_PSELECT6: i64 = 270;
const NR_PPOLL: i64 = 271;
const NR_EPOLL_PWAIT: i64 = 281;
const NR_EPOLL_PWAIT2: i64 = 441;
const TIMER_ABSTIME: u64 = 1;
const EINTR: i64 = 4;

/// Calls that a handled signal turns into `EINTR` and that are safe to issue again.
const REISSUE: [i64; 13] = [
    NR_POLL,
    NR_SELECT,
    NR_PAUSE,
    NR_NANOSLEEP,
    NR_RT_SIGTIMEDWAIT,
    NR_RT_SIGSUSPEND,
    NR_FUTEX,
    NR_CLOCK_NANOSLEEP,
    NR_EPOLL_WAIT,
    NR_PSELECT6,
    NR_PPOLL,
    NR_EPOLL_PWAIT,
    NR_EPOLL_PWAIT2,
];

/// The registers the fix-ups read and change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// `rax` (return value, or the call number to issue).
    pub rax: u64,
    /// `rip`.
    pub rip: u64,
    /// First argument.
    pub rdi: u64,
    /// Second argument.
    pub rsi: u64,
    /// Third argument.
    pub rdx: u64,
    /// Fourth argument.
    pub r10: u64,
}

const FIELDS: [u64; 6] = [REG_RAX, REG_RIP, REG_RDI, REG_RSI, REG_RDX, REG_R10];

impl Regs {
    fn get(&self) -> [u64; 6] {
        [self.rax, self.rip, self.rdi, self.rsi, self.rdx, self.r10]
    }

    fn set(v: [u64; 6]) -> Self {
        Self {
            rax: v[0],
            rip: v[1],
            rdi: v[2],
            rsi: v[3],
            rdx: v[4],
            r10: v[5],
        }
    }
}

/// Reads the registers of the frame at `ucontext`.
pub fn read(mem: &ProcMem, ucontext: u64) -> io::Result<Regs> {
    let mut v = [0u64; 6];
    for (slot, idx) in v.iter_mut().zip(FIELDS) {
        *slot = mem.read_u64(ucontext + GREGS + idx * 8)?;
    }
    Ok(Regs::set(v))
}

/// Writes the registers back into the frame at `ucontext`.
pub fn write(mem: &ProcMem, ucontext: u64, regs: &Regs) -> io::Result<()> {
    for (v, idx) in regs.get().into_iter().zip(FIELDS) {
        mem.write_u64(ucontext + GREGS + idx * 8, v)?;
    }
    Ok(())
}

/// Points a relative sleep's request at the remainder the kernel wrote back.
fn use_remainder(nr: i64, regs: &mut Regs) {
    match nr {
        NR_NANOSLEEP if regs.rsi != 0 => regs.rdi = regs.rsi,
        NR_CLOCK_NANOSLEEP if regs.rsi & TIMER_ABSTIME == 0 && regs.r10 != 0 => {
            regs.rdx = regs.r10;
        }
        _ => {}
    }
}

/// The thread was blocked in `blocked` and the frame says the call returned `EINTR` from the
/// `syscall` instruction just before `rip` (`code_before_rip`): make it issue the call again.
/// Returns whether the frame changed.
pub fn reissue(regs: &mut Regs, blocked: Option<i64>, code_before_rip: [u8; 2]) -> bool {
    let Some(nr) = blocked.filter(|nr| REISSUE.contains(nr)) else {
        return false;
    };
    if regs.rax != (-EINTR) as u64 || code_before_rip != [0x0f, 0x05] {
        return false;
    }
    regs.rax = nr as u64;
    regs.rip -= 2;
    use_remainder(nr, regs);
    true
}

/// A frame about to `restart_syscall` (its restart block does not survive a restart): issue the
/// original call instead. Returns whether the frame changed.
pub fn restart_block(regs: &mut Regs, blocked: Option<i64>) -> bool {
    let Some(nr) = blocked.filter(|nr| *nr >= 0 && *nr != NR_RESTART_SYSCALL) else {
        return false;
    };
    if regs.rax != NR_RESTART_SYSCALL as u64 {
        return false;
    }
    regs.rax = nr as u64;
    use_remainder(nr, regs);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSCALL: [u8; 2] = [0x0f, 0x05];

    fn eintr() -> Regs {
        Regs {
            rax: (-EINTR) as u64,
            rip: 0x1002,
            rdi: 0x10,
            rsi: 0x20,
            rdx: 0x30,
            r10: 0x40,
        }
    }

    #[test]
    fn an_interrupted_nanosleep_resumes_with_its_remainder() {
        let mut r = eintr();
        assert!(reissue(&mut r, Some(NR_NANOSLEEP), SYSCALL));
        assert_eq!((r.rax, r.rip, r.rdi), (35, 0x1000, 0x20));
    }

    #[test]
    fn relative_clock_nanosleep_uses_the_remainder_absolute_keeps_its_deadline() {
        let mut r = eintr();
        r.rsi = 0; // relative
        assert!(reissue(&mut r, Some(NR_CLOCK_NANOSLEEP), SYSCALL));
        assert_eq!((r.rax, r.rdx), (230, 0x40));
        let mut r = eintr();
        r.rsi = TIMER_ABSTIME;
        assert!(reissue(&mut r, Some(NR_CLOCK_NANOSLEEP), SYSCALL));
        assert_eq!(r.rdx, 0x30);
        let mut r = eintr();
        r.rsi = 0;
        r.r10 = 0; // no remainder pointer: sleeps again from the start
        assert!(reissue(&mut r, Some(NR_CLOCK_NANOSLEEP), SYSCALL));
        assert_eq!(r.rdx, 0x30);
    }

    #[test]
    fn only_eintr_right_after_a_syscall_in_a_known_call_is_touched() {
        let mut r = eintr();
        assert!(
            !reissue(&mut r, Some(0), SYSCALL),
            "read restarts by itself"
        );
        assert!(!reissue(&mut r, None, SYSCALL), "not blocked");
        assert!(
            !reissue(&mut r, Some(NR_FUTEX), [0x90, 0x90]),
            "not after syscall"
        );
        r.rax = 0;
        assert!(
            !reissue(&mut r, Some(NR_FUTEX), SYSCALL),
            "returned normally"
        );
        assert_eq!(r.rip, 0x1002);
        let mut r = eintr();
        assert!(reissue(&mut r, Some(NR_EPOLL_WAIT), SYSCALL));
        assert_eq!((r.rax, r.rdi), (232, 0x10), "arguments kept");
    }

    #[test]
    fn restart_syscall_becomes_the_original_call() {
        let mut r = Regs {
            rax: 219,
            rip: 0x1000,
            rdi: 0x10,
            rsi: 0x20,
            ..Regs::default()
        };
        assert!(restart_block(&mut r, Some(NR_NANOSLEEP)));
        assert_eq!((r.rax, r.rip, r.rdi), (35, 0x1000, 0x20));
        let mut r = Regs {
            rax: 219,
            ..Regs::default()
        };
        assert!(!restart_block(&mut r, None));
        assert!(!restart_block(&mut r, Some(219)));
        r.rax = 1;
        assert!(!restart_block(&mut r, Some(NR_NANOSLEEP)));
    }
}
