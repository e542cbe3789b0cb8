//! A call frame's scheduling state: min-PC divergence and reconvergence (see the module
//! doc of `exec`).

use super::lanes;

/// Backward branches a spinning lane group takes before lanes ahead of it get a turn.
pub(crate) const SPIN_SWITCH: u32 = 64;

/// One call frame of a warp.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    pub func: u32,
    pub reg_base: usize,
    pub local_base: u32,
    pub pc: u32,
    /// Lanes executing at `pc`.
    pub mask: u32,
    /// Lanes waiting at `pcs[lane]`.
    pub waiting: u32,
    pub pcs: [u32; 32],
    /// Smallest PC among waiting lanes (`u32::MAX` when none).
    pub next_wait: u32,
    /// Lanes that executed `ret` in this frame.
    pub returned: u32,
    /// Index of the `call` instruction in the caller (for results).
    pub call_inst: u32,
    /// Backward branches taken while other lanes waited (see [`Frame::branch`]).
    pub spins: u32,
}

impl Frame {
    pub(crate) fn new(func: u32, reg_base: usize, local_base: u32, mask: u32) -> Frame {
        Frame {
            func,
            reg_base,
            local_base,
            pc: 0,
            mask,
            waiting: 0,
            pcs: [0; 32],
            next_wait: u32::MAX,
            returned: 0,
            call_inst: 0,
            spins: 0,
        }
    }

    /// The executing lanes move on to the next instruction.
    #[inline(always)]
    pub(crate) fn advance(&mut self) {
        self.pc += 1;
        if self.pc == self.next_wait {
            self.merge();
        }
    }

    fn merge(&mut self) {
        let mut next = u32::MAX;
        lanes(self.waiting, |l| {
            if self.pcs[l] == self.pc {
                self.mask |= 1 << l;
                self.waiting &= !(1 << l);
            } else {
                next = next.min(self.pcs[l]);
            }
        });
        self.next_wait = next;
    }

    /// Moves lanes `lanes` to wait at `pc`.
    fn park(&mut self, parked: u32, pc: u32) {
        self.set_pcs(parked, pc);
        self.mask &= !parked;
    }

    /// Sets the pc of every lane in `waiting_lanes` to `pc` and marks them waiting.
    pub(crate) fn set_pcs(&mut self, waiting_lanes: u32, pc: u32) {
        lanes(waiting_lanes, |l| self.pcs[l] = pc);
        self.waiting |= waiting_lanes;
    }

    /// Picks the lanes with the lowest PC to run next (none if the frame is finished).
    pub(crate) fn reschedule(&mut self) {
        if self.mask != 0 {
            let (mask, pc) = (self.mask, self.pc);
            self.park(mask, pc);
        }
        if self.waiting == 0 {
            self.next_wait = u32::MAX;
            return;
        }
        let mut min = u32::MAX;
        lanes(self.waiting, |l| min = min.min(self.pcs[l]));
        self.pc = min;
        self.merge();
    }

    /// Branch: lanes `taken` go to `target`, the other executing lanes fall through.
    ///
    /// Forward progress: min-PC order alone would let lanes spinning in a loop (on a lock
    /// another lane of the warp holds) starve the lanes ahead of them forever. So after
    /// [`SPIN_SWITCH`] backward branches taken while lanes wait further on, the lanes just
    /// ahead run until their next branch, as sm_70+ independent thread scheduling allows.
    /// Only loops that touched memory other threads write (atomics, volatile loads: `spinning`)
    /// count, so ordinary loops with lane-dependent trip counts still reconverge in order.
    pub(crate) fn branch(&mut self, taken: u32, target: u32, spinning: bool) {
        if spinning && target <= self.pc && taken != 0 && self.waiting != 0 {
            self.spins += 1;
            if self.spins >= SPIN_SWITCH {
                self.spins = 0;
                self.branch_in_order(taken, target);
                self.run_ahead();
                return;
            }
        }
        self.branch_in_order(taken, target);
    }

    fn branch_in_order(&mut self, taken: u32, target: u32) {
        let fall = self.mask & !taken;
        if fall == 0 {
            self.pc = target;
            if self.waiting != 0 && target >= self.next_wait {
                self.reschedule();
            }
        } else if taken == 0 {
            self.advance();
        } else {
            let next = self.pc + 1;
            self.park(taken, target);
            self.park(fall, next);
            self.reschedule();
        }
    }

    /// Parks the running lanes and runs the waiting lanes with the lowest PC above theirs.
    fn run_ahead(&mut self) {
        let cur = self.pc;
        let mut best = u32::MAX;
        lanes(self.waiting, |l| {
            if self.pcs[l] > cur {
                best = best.min(self.pcs[l]);
            }
        });
        if best == u32::MAX {
            return;
        }
        let mask = self.mask;
        self.park(mask, cur);
        self.pc = best;
        self.merge();
    }

    /// Indirect branch: each lane of `lanes` goes to `targets[lane]`; the other executing
    /// lanes fall through.
    pub(crate) fn scatter(&mut self, lanes: u32, targets: &[u32; 32]) {
        let fall = self.mask & !lanes;
        let next = self.pc + 1;
        let mut m = lanes;
        while m != 0 {
            let l = m.trailing_zeros() as usize;
            m &= m - 1;
            self.park(1 << l, targets[l]);
        }
        self.park(fall, next);
        self.reschedule();
    }

    /// Lanes `lanes` leave this frame (`ret`/`exit`); the rest move on.
    pub(crate) fn leave(&mut self, lanes: u32) {
        self.mask &= !lanes;
        if self.mask == 0 {
            self.reschedule();
        } else {
            self.advance();
        }
    }

    pub(crate) fn finished(&self) -> bool {
        self.mask == 0 && self.waiting == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergent_branch_runs_lowest_pc_first_and_reconverges() {
        let mut f = Frame::new(0, 0, 0, u32::MAX);
        f.pc = 10;
        // Even lanes jump forward to 20, odd lanes fall through to 11.
        f.branch(0x5555_5555, 20, false);
        assert_eq!((f.pc, f.mask), (11, 0xaaaa_aaaa));
        for _ in 11..20 {
            f.advance();
        }
        assert_eq!((f.pc, f.mask, f.waiting), (20, u32::MAX, 0));
    }

    #[test]
    fn loop_with_lane_dependent_trip_count() {
        let mut f = Frame::new(0, 0, 0, 0b1111);
        f.pc = 5;
        // Lanes 0-1 leave the loop (fall through to 6), lanes 2-3 loop back to 3.
        f.branch(0b1100, 3, false);
        assert_eq!((f.pc, f.mask), (3, 0b1100));
        f.advance();
        f.advance();
        // Back at the loop branch: everyone left now exits.
        f.branch(0, 3, false);
        assert_eq!((f.pc, f.mask, f.waiting), (6, 0b1111, 0));
    }

    #[test]
    fn leaving_lanes_and_uniform_jumps_past_waiters() {
        let mut f = Frame::new(0, 0, 0, 0b11);
        f.pc = 1;
        f.branch(0b01, 9, false);
        assert_eq!((f.pc, f.mask), (2, 0b10));
        // Lane 1 jumps beyond lane 0's PC: lane 0 must run first.
        f.branch(0b10, 12, false);
        assert_eq!((f.pc, f.mask), (9, 0b01));
        f.leave(0b01);
        assert_eq!((f.pc, f.mask), (12, 0b10));
        f.leave(0b10);
        assert!(f.finished());
    }

    #[test]
    fn spinning_lanes_let_the_lanes_ahead_run() {
        let mut f = Frame::new(0, 0, 0, 0b11);
        f.pc = 4;
        // Lane 0 won the lock and left the loop (to 5); lane 1 spins back to 2.
        f.branch(0b10, 2, true);
        assert_eq!((f.pc, f.mask), (2, 0b10));
        for _ in 1..SPIN_SWITCH {
            f.pc = 4;
            f.branch(0b10, 2, true);
            assert_eq!(f.mask, 0b10);
        }
        f.pc = 4;
        f.branch(0b10, 2, true);
        assert_eq!((f.pc, f.mask), (5, 0b01), "the lock holder runs");
        // Without the hint, an ordinary loop keeps min-PC order.
        let mut g = Frame::new(0, 0, 0, 0b11);
        g.pc = 4;
        for _ in 0..2 * SPIN_SWITCH {
            g.pc = 4;
            g.branch(0b10, 2, false);
            assert_eq!(g.mask, 0b10);
        }
    }
}
