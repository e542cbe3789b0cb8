//! Moves, compares and selects: `mov` (incl. vector pack/unpack), `setp`, `set`, `selp`,
//! `slct`, on integer and float types alike.
// Values are narrowed to the compared width by definition.
#![allow(clippy::cast_possible_truncation)]

use super::int::{map3, mask_of};
use super::lanes;
use crate::LaunchError;
use crate::ops::{BoolOp, Cmp, Inst, Op};
use crate::types::{Ty, extend};

/// Compares `a` and `b` as values of type `ty`.
#[inline(always)]
pub(crate) fn compare(cmp: Cmp, ty: Ty, a: u64, b: u64) -> bool {
    if ty.is_float() {
        let (x, y) = match ty {
            Ty::F64 => (f64::from_bits(a), f64::from_bits(b)),
            Ty::F32 => (
                f64::from(f32::from_bits(a as u32)),
                f64::from(f32::from_bits(b as u32)),
            ),
            Ty::Bf16 => (
                f64::from(super::half::bf16_to_f32(a as u16)),
                f64::from(super::half::bf16_to_f32(b as u16)),
            ),
            _ => (
                f64::from(super::half::f16_to_f32(a as u16)),
                f64::from(super::half::f16_to_f32(b as u16)),
            ),
        };
        let nan = x.is_nan() || y.is_nan();
        return match cmp {
            Cmp::Eq => x == y,
            Cmp::Ne => !nan && x != y,
            Cmp::Lt | Cmp::Lo => x < y,
            Cmp::Le | Cmp::Ls => x <= y,
            Cmp::Gt | Cmp::Hi => x > y,
            Cmp::Ge | Cmp::Hs => x >= y,
            Cmp::Equ => nan || x == y,
            Cmp::Neu => nan || x != y,
            Cmp::Ltu => nan || x < y,
            Cmp::Leu => nan || x <= y,
            Cmp::Gtu => nan || x > y,
            Cmp::Geu => nan || x >= y,
            Cmp::Num => !nan,
            Cmp::Nan => nan,
        };
    }
    let bits = ty.bits();
    let (ua, ub) = (a & mask_of(bits), b & mask_of(bits));
    let (sa, sb) = (extend(a, bits, true) as i64, extend(b, bits, true) as i64);
    let signed = ty.is_signed();
    match cmp {
        Cmp::Eq | Cmp::Equ => ua == ub,
        Cmp::Ne | Cmp::Neu => ua != ub,
        Cmp::Lo => ua < ub,
        Cmp::Ls => ua <= ub,
        Cmp::Hi => ua > ub,
        Cmp::Hs => ua >= ub,
        Cmp::Lt | Cmp::Ltu => {
            if signed {
                sa < sb
            } else {
                ua < ub
            }
        }
        Cmp::Le | Cmp::Leu => {
            if signed {
                sa <= sb
            } else {
                ua <= ub
            }
        }
        Cmp::Gt | Cmp::Gtu => {
            if signed {
                sa > sb
            } else {
                ua > ub
            }
        }
        Cmp::Ge | Cmp::Geu => {
            if signed {
                sa >= sb
            } else {
                ua >= ub
            }
        }
        Cmp::Num => true,
        Cmp::Nan => false,
    }
}

fn combine(bop: BoolOp, r: bool, c: bool) -> bool {
    match bop {
        BoolOp::None => r,
        BoolOp::And => r && c,
        BoolOp::Or => r || c,
        BoolOp::Xor => r ^ c,
    }
}

/// Executes a move, compare or select.
pub(crate) fn exec(i: &Inst, regs: &mut [u64], exec: u32) -> Result<(), LaunchError> {
    let ty = i.ty;
    let m = mask_of(ty.bits().min(64));
    match i.op {
        Op::Setp(cmp, bop) => {
            let (d, d2, a, b) = (
                i.d as usize * 32,
                i.d2,
                i.a as usize * 32,
                i.b as usize * 32,
            );
            let c = i.c as usize * 32;
            lanes(exec, |l| {
                let r = compare(cmp, ty, regs[a + l], regs[b + l]);
                let cv = bop != BoolOp::None && regs[c + l] != 0;
                regs[d + l] = u64::from(combine(bop, r, cv));
                if d2 != crate::ops::NONE {
                    regs[d2 as usize * 32 + l] = u64::from(combine(bop, !r, cv));
                }
            });
        }
        Op::Set(cmp, bop) => {
            let st = i.ty2;
            let (d, a, b, c) = (
                i.d as usize * 32,
                i.a as usize * 32,
                i.b as usize * 32,
                i.c as usize * 32,
            );
            lanes(exec, |l| {
                let r = compare(cmp, st, regs[a + l], regs[b + l]);
                let r = combine(bop, r, bop != BoolOp::None && regs[c + l] != 0);
                regs[d + l] = match (r, ty) {
                    (false, _) => 0,
                    (true, Ty::F32) => u64::from(1f32.to_bits()),
                    (true, _) => m,
                };
            });
        }
        Op::Selp => map3(regs, i, exec, |a, b, c| if c != 0 { a } else { b }),
        Op::Slct => {
            let st = i.ty2;
            map3(regs, i, exec, |a, b, c| {
                let take_a = if st == Ty::F32 {
                    f32::from_bits(c as u32) >= 0.0
                } else {
                    extend(c, 32, true) as i64 >= 0
                };
                if take_a { a } else { b }
            });
        }
        Op::Pack => {
            let pb = i.ty2.bits();
            let d = i.d as usize * 32;
            let v = i.v;
            let n = usize::from(i.vn);
            lanes(exec, |l| {
                let mut out = 0u64;
                for (k, r) in v.iter().take(n).enumerate() {
                    out |= (regs[*r as usize * 32 + l] & mask_of(pb)) << (pb as usize * k);
                }
                regs[d + l] = out;
            });
        }
        Op::Unpack => {
            let pb = i.ty2.bits();
            let a = i.a as usize * 32;
            let v = i.v;
            let n = usize::from(i.vn);
            lanes(exec, |l| {
                let src = regs[a + l];
                for (k, r) in v.iter().take(n).enumerate() {
                    regs[*r as usize * 32 + l] = (src >> (pb as usize * k)) & mask_of(pb);
                }
            });
        }
        _ => {
            return Err(LaunchError::Unsupported {
                instr: format!("{:?}.{:?}", i.op, i.ty).to_lowercase(),
                line: i.line,
            });
        }
    }
    Ok(())
}
