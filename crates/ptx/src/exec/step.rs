//! The warp loop: fetch, guard, dispatch by instruction family, schedule the next PC.
// Clock values wrap like the hardware counters do.
#![allow(clippy::cast_possible_truncation)]

use super::{Env, Warp, call, collective, cvt, float, int, mem};
use crate::LaunchError;
use crate::ops::{NONE, Op};

/// Why the inner loop stopped running the current frame.
enum Next {
    /// The warp reached `bar.sync`.
    Barrier,
    /// Lanes executed `ret` (`false`) or `exit` (`true`).
    Leave(u32, bool),
    /// Lanes execute the `call` at this PC.
    Call(u32, u32),
    /// The warp used up its time slice.
    Yield,
}

/// Counts a warp at the barrier `inst` names; returns the barrier id.
fn arrive(env: &mut Env<'_>, inst: &crate::ops::Inst, regs: &[u64], exec: u32) -> usize {
    let lane = exec.trailing_zeros() as usize;
    let id = (regs[inst.a as usize * 32 + lane] & 15) as usize;
    env.bar_arrived[id] += 32;
    if inst.b != NONE {
        env.bar_expected[id] = regs[inst.b as usize * 32 + lane] as u32;
    }
    id
}

/// Runs `warp` until it finishes or waits at a barrier.
pub(crate) fn run_warp(env: &mut Env<'_>, warp: &mut Warp) -> Result<(), LaunchError> {
    let prog = env.prog;
    let mut slice_left = super::TIME_SLICE;
    'frames: loop {
        let Some(fr) = warp.frames.last_mut() else {
            warp.done = true;
            return Ok(());
        };
        if fr.finished() {
            call::pop_frame(env, warp)?;
            continue 'frames;
        }
        let func = &prog.funcs[fr.func as usize];
        let insts = &func.insts[..];
        let nregs = func.nregs as usize * 32;
        let regs = &mut warp.regs[fr.reg_base..fr.reg_base + nregs];
        let mut warp_insts = 0u64;
        let budget = env.budget;
        let slice = slice_left;
        let mut thread_insts = 0u64;
        let result = loop {
            let Some(inst) = insts.get(fr.pc as usize) else {
                break Err(LaunchError::Trap {
                    line: func.insts.last().map_or(0, |i| i.line),
                });
            };
            let mut exec = fr.mask;
            warp_insts += 1;
            if warp_insts > budget {
                break Err(LaunchError::Trap { line: inst.line });
            }
            if warp_insts > slice {
                warp_insts -= 1;
                break Ok(Next::Yield);
            }
            thread_insts += u64::from(exec.count_ones());
            if inst.guard != NONE {
                let g = inst.guard as usize * 32;
                let mut bits = 0u32;
                for (l, v) in regs[g..g + 32].iter().enumerate() {
                    bits |= u32::from(*v != 0) << l;
                }
                if inst.gneg {
                    bits = !bits;
                }
                exec &= bits;
            }
            // Lanes that ran ahead of waiting lanes (see `Frame::branch`) let them catch up
            // before anything that needs the whole warp together.
            if fr.next_wait < fr.pc
                && matches!(
                    inst.op,
                    Op::Bar
                        | Op::BarRed(_)
                        | Op::Shfl(_)
                        | Op::Vote(_)
                        | Op::Match(_)
                        | Op::Activemask
                        | Op::Redux(_)
                )
            {
                warp_insts -= 1;
                thread_insts -= u64::from(fr.mask.count_ones());
                fr.reschedule();
                continue;
            }
            match inst.op {
                Op::Bra => {
                    let spinning = warp.spin_hint;
                    if inst.aux <= fr.pc {
                        warp.spin_hint = false;
                    }
                    fr.branch(exec, inst.aux, spinning);
                    continue;
                }
                Op::BrxIdx if exec != 0 => {
                    let table = &func.tables[inst.aux as usize];
                    let a = inst.a as usize * 32;
                    let mut targets = [0u32; 32];
                    let mut bad = false;
                    super::lanes(exec, |l| match table.get(regs[a + l] as usize) {
                        Some(&t) => targets[l] = t,
                        None => bad = true,
                    });
                    if bad {
                        break Err(LaunchError::Trap { line: inst.line });
                    }
                    fr.scatter(exec, &targets);
                    continue;
                }
                Op::Bar | Op::BarRed(_) | Op::Ret | Op::Exit | Op::Call if exec == 0 => {
                    fr.advance();
                    continue;
                }
                Op::Bar => {
                    warp.bar_id = arrive(env, inst, regs, exec);
                    break Ok(Next::Barrier);
                }
                Op::BarArrive if exec != 0 => {
                    arrive(env, inst, regs, exec);
                    fr.advance();
                    continue;
                }
                Op::BarRed(_) => {
                    warp.bar_id = arrive(env, inst, regs, exec);
                    let c = inst.c as usize * 32;
                    let mut on = 0u32;
                    super::lanes(exec, |l| {
                        on |= u32::from((regs[c + l] != 0) != inst.sat) << l
                    });
                    env.bar_popc += u64::from(on.count_ones());
                    env.bar_all &= on == exec;
                    env.bar_any |= on != 0;
                    break Ok(Next::Barrier);
                }
                Op::Ret => break Ok(Next::Leave(exec, false)),
                Op::Exit => break Ok(Next::Leave(exec, true)),
                Op::Call => break Ok(Next::Call(fr.pc, exec)),
                _ => {}
            }
            if exec != 0 {
                if matches!(inst.op, Op::Atom(..) | Op::Red(..))
                    || (matches!(inst.op, Op::Ld(_)) && inst.sat)
                {
                    warp.spin_hint = true;
                }
                let r = match inst.op {
                    Op::Cvt => cvt::exec(inst, regs, exec),
                    Op::Ld(_)
                    | Op::St(_)
                    | Op::Atom(..)
                    | Op::Red(..)
                    | Op::MovAddr
                    | Op::Cvta(..)
                    | Op::IsSpace(_)
                    | Op::CpAsync => mem::exec(env, inst, regs, exec, warp.id, fr.local_base),
                    Op::CvtPack => {
                        cvt::pack(inst, regs, exec);
                        Ok(())
                    }
                    Op::Shfl(_) | Op::Vote(_) | Op::Match(_) | Op::Activemask | Op::Redux(_) => {
                        collective::exec(inst, regs, exec, fr.mask);
                        Ok(())
                    }
                    Op::Printf => call::printf(env, inst, regs, exec, warp.id, fr.local_base),
                    Op::AssertFail => call::assert_fail(env, inst, exec, warp.id, fr.local_base),
                    Op::Clock | Op::GlobalTimer => {
                        let ns = env.start.elapsed().as_nanos() as u64;
                        let d = inst.d as usize * 32;
                        super::lanes(exec, |l| regs[d + l] = ns);
                        Ok(())
                    }
                    Op::Nop => Ok(()),
                    Op::Trap => Err(LaunchError::Trap { line: inst.line }),
                    Op::Unsupported => Err(LaunchError::Unsupported {
                        instr: prog
                            .names
                            .get(inst.aux as usize)
                            .cloned()
                            .unwrap_or_default(),
                        line: inst.line,
                    }),
                    _ if inst.ty.is_float()
                        && !matches!(
                            inst.op,
                            Op::Setp(..)
                                | Op::Set(..)
                                | Op::Selp
                                | Op::Slct
                                | Op::Mov
                                | Op::Pack
                                | Op::Unpack
                        ) =>
                    {
                        float::exec(inst, regs, exec)
                    }
                    _ => int::exec(inst, regs, exec),
                };
                if let Err(e) = r {
                    break Err(e);
                }
            }
            fr.advance();
        };
        env.budget = env.budget.saturating_sub(warp_insts);
        slice_left = slice_left.saturating_sub(warp_insts);
        env.stats.warp_instructions += warp_insts;
        env.stats.thread_instructions += thread_insts;
        match result? {
            Next::Barrier => {
                warp.at_barrier = true;
                return Ok(());
            }
            Next::Yield => return Ok(()),
            Next::Leave(exec, is_exit) => {
                let exiting = is_exit || warp.frames.len() == 1;
                if exiting {
                    warp.exited |= exec;
                }
                if let Some(f) = warp.frames.last_mut() {
                    if !exiting {
                        f.returned |= exec;
                    }
                    f.leave(exec);
                }
            }
            Next::Call(pc, exec) => call::push_frame(env, warp, pc, exec)?,
        }
    }
}
