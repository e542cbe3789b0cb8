//! One block: its warps run in turns until each finishes or waits at a barrier; barriers
//! complete and release their warps; new frames get their constant and special registers.
// Warp and lane indices are bounded by 1024 threads per block.
#![allow(clippy::cast_possible_truncation)]

use super::{Env, FULL, Frame, Warp, lanes, step};
use crate::LaunchError;
use crate::decode::Func;
use crate::ops::{BarRedKind, Op, Special};

pub(crate) fn run_block(
    env: &mut Env<'_>,
    kidx: u32,
    warps: &mut [Warp],
    threads: usize,
) -> Result<(), LaunchError> {
    let k = &env.prog.funcs[kidx as usize];
    for (w, warp) in warps.iter_mut().enumerate() {
        let left = threads - w * 32;
        warp.id = w as u32;
        warp.valid = if left >= 32 { FULL } else { (1u32 << left) - 1 };
        warp.exited = 0;
        warp.at_barrier = false;
        warp.spin_hint = false;
        warp.done = false;
        warp.frames.clear();
        warp.frames.push(Frame::new(kidx, 0, 0, warp.valid));
        warp.regs.clear();
        warp.regs.resize(k.nregs as usize * 32, 0);
        init_frame(env, k, &mut warp.regs, warp.id);
    }
    env.bar_arrived = [0; 16];
    env.bar_expected = [0; 16];
    loop {
        for warp in warps.iter_mut() {
            if warp.done || warp.at_barrier {
                continue;
            }
            step::run_warp(env, warp)?;
        }
        let runnable = warps.iter().any(|w| !w.done && !w.at_barrier);
        let live = warps.iter().filter(|w| !w.done).count();
        let mut released = false;
        for id in 0..16 {
            let waiters = warps
                .iter()
                .filter(|w| w.at_barrier && w.bar_id == id)
                .count();
            // With a count, the barrier completes when that many threads arrived; without,
            // when every warp that has not exited waits at it.
            let complete = match env.bar_expected[id] {
                0 => waiters > 0 && waiters == live,
                n => env.bar_arrived[id] >= n,
            };
            if complete {
                release(env, warps, id);
                released = true;
            }
        }
        if runnable || released {
            // (A warp may also have used up its time slice spinning on another's store.)
            continue;
        }
        if let Some(w) = warps.iter().find(|w| w.at_barrier) {
            // Warps wait at barriers that can never complete: a GPU would hang here.
            let line = w
                .frames
                .last()
                .and_then(|f| env.prog.funcs[f.func as usize].insts.get(f.pc as usize))
                .map_or(0, |i| i.line);
            return Err(LaunchError::Trap { line });
        }
        return Ok(());
    }
}

/// Releases the warps waiting at barrier `id` (writing `bar.red` results).
fn release(env: &mut Env<'_>, warps: &mut [Warp], id: usize) {
    for warp in warps.iter_mut().filter(|w| w.at_barrier && w.bar_id == id) {
        warp.at_barrier = false;
        let Some(f) = warp.frames.last_mut() else {
            continue;
        };
        let func = &env.prog.funcs[f.func as usize];
        if let Some(inst) = func.insts.get(f.pc as usize)
            && let Op::BarRed(kind) = inst.op
        {
            let v = match kind {
                BarRedKind::Popc => env.bar_popc,
                BarRedKind::And => u64::from(env.bar_all),
                BarRedKind::Or => u64::from(env.bar_any),
            };
            let (d, base) = (inst.d as usize * 32, f.reg_base);
            lanes(f.mask, |l| warp.regs[base + d + l] = v);
        }
        f.advance();
    }
    env.bar_arrived[id] = 0;
    env.bar_expected[id] = 0;
    env.bar_popc = 0;
    env.bar_all = true;
    env.bar_any = false;
}

/// Fills a new frame's constant and special registers.
pub(crate) fn init_frame(env: &Env<'_>, f: &Func, regs: &mut [u64], warp: u32) {
    for &(r, v) in &f.consts {
        let r = r as usize * 32;
        regs[r..r + 32].fill(v);
    }
    let [bx, by, bz] = env.dims.block;
    let nwarps = (bx * by * bz).div_ceil(32);
    for &(r, s) in &f.specials {
        let r = r as usize * 32;
        for lane in 0..32u32 {
            let t = warp * 32 + lane;
            let v: u64 = match s {
                Special::Tid(0) => u64::from(t % bx),
                Special::Tid(1) => u64::from((t / bx) % by),
                Special::Tid(_) => u64::from(t / (bx * by)),
                Special::Ntid(d) => u64::from(env.dims.block[usize::from(d.min(2))]),
                Special::Ctaid(d) => u64::from(env.ctaid[usize::from(d.min(2))]),
                Special::Nctaid(d) => u64::from(env.dims.grid[usize::from(d.min(2))]),
                Special::LaneId => u64::from(lane),
                Special::WarpId => u64::from(warp),
                Special::NWarpId => u64::from(nwarps),
                Special::SmId | Special::GridId => 0,
                Special::NSmId => 1,
                Special::LanemaskEq => 1u64 << lane,
                Special::LanemaskLt => (1u64 << lane) - 1,
                Special::LanemaskLe => (2u64 << lane) - 1,
                Special::LanemaskGt => u64::from(!(((2u64 << lane) - 1) as u32)),
                Special::LanemaskGe => u64::from(!(((1u64 << lane) - 1) as u32)),
                Special::DynSmemSize => u64::from(env.dims.dynamic_shared),
                Special::TotalSmemSize => env.shared.len() as u64,
            };
            regs[r + lane as usize] = v;
        }
    }
}
