//! Warp collectives: `shfl.sync`, `vote.sync`, `match.sync`, `activemask`.
//!
//! They read the source of other lanes in the same step, so they work on copies of the source
//! registers. A source lane that is not executing gives whatever its register holds, as on
//! hardware (where the result is undefined).
// Lane numbers and masks are 5-bit / 32-bit values.
#![allow(clippy::cast_possible_truncation)]

use super::lanes;
use crate::ops::{AtomOp, Inst, NONE, Op, ShflMode, VoteMode};

/// Executes a collective for the executing lanes `exec`; `active` is every lane running now.
pub(crate) fn exec(i: &Inst, regs: &mut [u64], exec: u32, active: u32) {
    let d = i.d as usize * 32;
    match i.op {
        Op::Shfl(mode) => {
            let (a, b, c) = (i.a as usize * 32, i.b as usize * 32, i.c as usize * 32);
            let mut src = [0u64; 32];
            src.copy_from_slice(&regs[a..a + 32]);
            lanes(exec, |l| {
                let bv = regs[b + l] as u32;
                let cv = regs[c + l] as u32;
                let clamp = cv & 0x1f;
                let seg = (cv >> 8) & 0x1f;
                let lane = l as i64;
                let max_lane = i64::from((l as u32 & seg) | (clamp & !seg));
                let min_lane = i64::from(l as u32 & seg);
                let (j, ok) = match mode {
                    ShflMode::Up => {
                        let j = lane - i64::from(bv & 0x1f);
                        (j, j >= max_lane)
                    }
                    ShflMode::Down => {
                        let j = lane + i64::from(bv & 0x1f);
                        (j, j <= max_lane)
                    }
                    ShflMode::Bfly => {
                        let j = lane ^ i64::from(bv & 0x1f);
                        (j, j <= max_lane)
                    }
                    ShflMode::Idx => {
                        let j = min_lane | i64::from(bv & 0x1f & !seg);
                        (j, j <= max_lane)
                    }
                };
                let j = if ok && (0..32).contains(&j) {
                    j as usize
                } else {
                    l
                };
                regs[d + l] = src[j];
                if i.d2 != NONE {
                    regs[i.d2 as usize * 32 + l] = u64::from(ok);
                }
            });
        }
        Op::Vote(mode) => {
            let a = i.a as usize * 32;
            let neg = i.sat;
            let mut ballot = 0u32;
            lanes(exec, |l| {
                if (regs[a + l] != 0) != neg {
                    ballot |= 1 << l;
                }
            });
            let v = match mode {
                VoteMode::Ballot => u64::from(ballot),
                VoteMode::All => u64::from(ballot == exec),
                VoteMode::Any => u64::from(ballot != 0),
                VoteMode::Uni => u64::from(ballot == exec || ballot == 0),
            };
            lanes(exec, |l| regs[d + l] = v);
        }
        Op::Match(all) => {
            let a = i.a as usize * 32;
            let mut src = [0u64; 32];
            src.copy_from_slice(&regs[a..a + 32]);
            let bits = i.ty.bits();
            let m = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let mut same_all = true;
            lanes(exec, |l| {
                same_all &= src[l] & m == src[exec.trailing_zeros() as usize] & m
            });
            lanes(exec, |l| {
                let mut eq = 0u32;
                lanes(exec, |k| {
                    if src[k] & m == src[l] & m {
                        eq |= 1 << k;
                    }
                });
                regs[d + l] = if all {
                    if same_all { u64::from(exec) } else { 0 }
                } else {
                    u64::from(eq)
                };
                if i.d2 != NONE {
                    regs[i.d2 as usize * 32 + l] = u64::from(same_all);
                }
            });
        }
        Op::Activemask => lanes(exec, |l| regs[d + l] = u64::from(active)),
        Op::Redux(aop) => {
            let a = i.a as usize * 32;
            let signed = i.ty.is_signed();
            let mut acc: Option<u64> = None;
            lanes(exec, |l| {
                let v = regs[a + l] & 0xffff_ffff;
                acc = Some(match acc {
                    None => v,
                    Some(x) => match aop {
                        AtomOp::Add => x.wrapping_add(v) & 0xffff_ffff,
                        AtomOp::Min if signed => {
                            (x as u32 as i32).min(v as u32 as i32) as u32 as u64
                        }
                        AtomOp::Max if signed => {
                            (x as u32 as i32).max(v as u32 as i32) as u32 as u64
                        }
                        AtomOp::Min => x.min(v),
                        AtomOp::Max => x.max(v),
                        AtomOp::And => x & v,
                        AtomOp::Or => x | v,
                        _ => x ^ v,
                    },
                });
            });
            let r = acc.unwrap_or(0);
            lanes(exec, |l| regs[d + l] = r);
        }
        _ => {}
    }
}
