//! Floating-point instructions on `.f32`, `.f64`, `.f16`/`.f16x2` and `.bf16`/`.bf16x2`.
//!
//! `.f32` and `.f64` `add sub mul fma div sqrt` are correctly rounded (`.rn`; with `.rz .rm
//! .rp` too: `.f32` by computing in `f64` and rounding once, with the sum's error term where
//! the `f64` sum is not exact, `.f64` by exact error terms; a directed `.f64` `fma` may be one
//! ulp off). The `.approx` functions (`sin cos lg2 ex2 rcp rsqrt tanh`, `div.approx/full`)
//! use Rust's `f32` library functions, which are within 2 ulp (well inside PTX's stated
//! maximum errors, e.g. 2^-20.9 absolute for `sin.approx` in −π..π, 2 ulp for `ex2.approx`).
//! Half types are computed in `f32` and rounded back. `.ftz` flushes `f32` subnormal inputs and
//! results to zero; `.sat` clamps to [0, 1].
// Narrowing float casts and bit extraction are the operations themselves here.
#![allow(clippy::cast_possible_truncation)]

use super::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use super::int::map3;
use crate::LaunchError;
use crate::ops::{Inst, Op, Rnd, TestKind};
use crate::types::Ty;

#[inline(always)]
fn ftz32(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

/// Rounds `x` to `f32` in direction `rnd` (to nearest when not directed).
pub(crate) fn round_to_f32(x: f64, rnd: Rnd) -> f32 {
    let r = x as f32;
    let rd = f64::from(r);
    if rd == x || x.is_nan() {
        return r;
    }
    let toward_up = match rnd {
        Rnd::Rz => x < 0.0,
        Rnd::Rm => false,
        Rnd::Rp => true,
        _ => return r,
    };
    // `r` is the nearest; step one ulp if it lies on the wrong side of `x`.
    if toward_up && rd < x {
        next_up(r)
    } else if !toward_up && rd > x {
        next_down(r)
    } else {
        r
    }
}

/// Rounds the exact sum `a + b` of two `f64`s to `f32` in direction `rnd`. The `f64` sum alone
/// can round onto an `f32` value the exact sum only lies next to (`1 + 2^-80` is `1.0` in
/// `f64`, but `.rp` must give the next `f32` up), so its rounding error (Knuth's TwoSum)
/// decides that case.
pub(crate) fn round_sum_to_f32(a: f64, b: f64, rnd: Rnd) -> f32 {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    let r = s as f32;
    if !s.is_finite() || err == 0.0 || f64::from(r) != s {
        // Exact, or strictly between two `f32` values, on the same side as the exact sum.
        return round_to_f32(s, rnd);
    }
    let toward_up = match rnd {
        Rnd::Rz => s < 0.0,
        Rnd::Rm => false,
        Rnd::Rp => true,
        _ => return r,
    };
    match (toward_up, err > 0.0) {
        (true, true) => next_up(r),
        (false, false) => next_down(r),
        _ => r,
    }
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let b = x.to_bits();
    f32::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

fn next_down(x: f32) -> f32 {
    -next_up(-x)
}

/// One operation at the type's own rounding (round to nearest even), the same for `f32` and
/// `f64`; `None` for an operation that is not a float operation.
macro_rules! plain_op {
    ($op:expr, $a:expr, $b:expr, $c:expr) => {{
        let (a, b, c) = ($a, $b, $c);
        Some(match $op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::MulLo => a * b,
            Op::Fma => a.mul_add(b, c),
            Op::Div => a / b,
            Op::Abs => a.abs(),
            Op::Neg => -a,
            Op::Min => a.min(b),
            Op::Max => a.max(b),
            Op::Rcp => 1.0 / a,
            Op::Sqrt => a.sqrt(),
            Op::Rsqrt => 1.0 / a.sqrt(),
            Op::Sin => a.sin(),
            Op::Cos => a.cos(),
            Op::Lg2 => a.log2(),
            Op::Ex2 => a.exp2(),
            Op::Tanh => a.tanh(),
            Op::Copysign => b.copysign(a),
            _ => return None,
        })
    }};
}

/// Evaluates one `f32` operation.
#[inline(always)]
fn op32(op: Op, rnd: Rnd, a: f32, b: f32, c: f32) -> Option<f32> {
    let directed = matches!(rnd, Rnd::Rz | Rnd::Rm | Rnd::Rp);
    Some(match op {
        Op::Add if directed => round_sum_to_f32(f64::from(a), f64::from(b), rnd),
        Op::Sub if directed => round_sum_to_f32(f64::from(a), -f64::from(b), rnd),
        Op::MulLo if directed => round_to_f32(f64::from(a) * f64::from(b), rnd),
        Op::Div if directed => round_to_f32(f64::from(a) / f64::from(b), rnd),
        // An `f64` quotient or root of `f32`s never lands on an `f32` the exact value is not.
        Op::Rcp if directed => round_to_f32(1.0 / f64::from(a), rnd),
        Op::Sqrt if directed => round_to_f32(f64::from(a).sqrt(), rnd),
        // The product of two `f32`s is exact in `f64`.
        Op::Fma if directed => round_sum_to_f32(f64::from(a) * f64::from(b), f64::from(c), rnd),
        _ => return plain_op!(op, a, b, c),
    })
}

fn op64(op: Op, a: f64, b: f64, c: f64) -> Option<f64> {
    plain_op!(op, a, b, c)
}

/// Moves the round-to-nearest result `r` of `x op y` one ulp toward the rounding direction
/// when the exact result lies on that side of it (the error terms are exact: TwoSum for
/// add/sub, fma residuals for mul/div/rcp/sqrt). `fma` keeps its round-to-nearest result.
fn directed64(op: Op, rnd: Rnd, x: f64, y: f64, r: f64) -> f64 {
    if !r.is_finite() {
        // A finite result too large for `f64` rounds to infinity only away from zero; toward
        // zero it stops at the largest finite value.
        let overflowed = x.is_finite()
            && y.is_finite()
            && match op {
                Op::Add | Op::Sub | Op::MulLo => true,
                Op::Div => y != 0.0,
                _ => false,
            };
        let toward_zero = match rnd {
            Rnd::Rz => true,
            Rnd::Rm => r > 0.0,
            Rnd::Rp => r < 0.0,
            _ => false,
        };
        return if r.is_infinite() && overflowed && toward_zero {
            f64::MAX.copysign(r)
        } else {
            r
        };
    }
    // Sign of (exact - r).
    let err = match op {
        Op::Add | Op::Sub => {
            let y = if op == Op::Sub { -y } else { y };
            let bv = r - x;
            (x - (r - bv)) + (y - bv)
        }
        Op::MulLo => x.mul_add(y, -r),
        Op::Div => (-r).mul_add(y, x) * y.signum(),
        Op::Rcp => (-r).mul_add(x, 1.0) * x.signum(),
        Op::Sqrt => (-r).mul_add(r, x),
        _ => 0.0,
    };
    let up = match rnd {
        Rnd::Rp => err > 0.0,
        Rnd::Rm => false,
        _ => err > 0.0 && r < 0.0,
    };
    let down = match rnd {
        Rnd::Rm => err < 0.0,
        Rnd::Rp => false,
        _ => err < 0.0 && r > 0.0,
    };
    if up {
        next64(r, true)
    } else if down {
        next64(r, false)
    } else {
        r
    }
}

pub(crate) fn next64(x: f64, up: bool) -> f64 {
    if x == 0.0 {
        let tiny = f64::from_bits(1);
        return if up { tiny } else { -tiny };
    }
    let b = x.to_bits();
    f64::from_bits(if (x > 0.0) == up { b + 1 } else { b - 1 })
}

fn test(kind: TestKind, x: f64) -> bool {
    match kind {
        TestKind::Finite => x.is_finite(),
        TestKind::Infinite => x.is_infinite(),
        TestKind::Number => !x.is_nan(),
        TestKind::NotANumber => x.is_nan(),
        TestKind::Normal => x.is_normal(),
        TestKind::Subnormal => x.is_subnormal(),
    }
}

fn unsupported(i: &Inst) -> LaunchError {
    LaunchError::Unsupported {
        instr: format!("{:?}.{:?}", i.op, i.ty).to_lowercase(),
        line: i.line,
    }
}

/// Executes a float instruction.
pub(crate) fn exec(i: &Inst, regs: &mut [u64], exec: u32) -> Result<(), LaunchError> {
    let (op, rnd, ftz, sat) = (i.op, i.rnd, i.ftz, i.sat);
    if let Op::Testp(kind) = op {
        let ty = i.ty;
        map3(regs, i, exec, |a, _, _| {
            let x = match ty {
                Ty::F64 => f64::from_bits(a),
                _ => f64::from(f32::from_bits(a as u32)),
            };
            u64::from(test(kind, x))
        });
        return Ok(());
    }
    match i.ty {
        Ty::F32 => {
            if op32(op, rnd, 1.0, 1.0, 1.0).is_none() {
                return Err(unsupported(i));
            }
            if !ftz && !sat && !matches!(rnd, Rnd::Rz | Rnd::Rm | Rnd::Rp) {
                match op {
                    Op::Add => map3(regs, i, exec, |a, b, _| {
                        u64::from((f32::from_bits(a as u32) + f32::from_bits(b as u32)).to_bits())
                    }),
                    Op::MulLo => map3(regs, i, exec, |a, b, _| {
                        u64::from((f32::from_bits(a as u32) * f32::from_bits(b as u32)).to_bits())
                    }),
                    Op::Fma => map3(regs, i, exec, |a, b, c| {
                        let (a, b, c) = (
                            f32::from_bits(a as u32),
                            f32::from_bits(b as u32),
                            f32::from_bits(c as u32),
                        );
                        u64::from(a.mul_add(b, c).to_bits())
                    }),
                    _ => map3(regs, i, exec, |a, b, c| {
                        let r = op32(
                            op,
                            rnd,
                            f32::from_bits(a as u32),
                            f32::from_bits(b as u32),
                            f32::from_bits(c as u32),
                        );
                        u64::from(r.unwrap_or(f32::NAN).to_bits())
                    }),
                }
                return Ok(());
            }
            map3(regs, i, exec, |a, b, c| {
                let f = |v: u64| {
                    let x = f32::from_bits(v as u32);
                    if ftz { ftz32(x) } else { x }
                };
                let mut r = op32(op, rnd, f(a), f(b), f(c)).unwrap_or(f32::NAN);
                if ftz {
                    r = ftz32(r);
                }
                if sat {
                    r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
                }
                u64::from(r.to_bits())
            });
        }
        Ty::F64 => {
            if op64(op, 1.0, 1.0, 1.0).is_none() {
                return Err(unsupported(i));
            }
            map3(regs, i, exec, |a, b, c| {
                let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
                let mut r = op64(op, x, y, z).unwrap_or(f64::NAN);
                if matches!(rnd, Rnd::Rz | Rnd::Rm | Rnd::Rp) {
                    r = directed64(op, rnd, x, y, r);
                }
                if sat {
                    r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
                }
                r.to_bits()
            });
        }
        Ty::F16 | Ty::Bf16 | Ty::F16x2 | Ty::Bf16x2 => {
            if op32(op, Rnd::Rn, 1.0, 1.0, 1.0).is_none() {
                return Err(unsupported(i));
            }
            let bf = matches!(i.ty, Ty::Bf16 | Ty::Bf16x2);
            let halves = if matches!(i.ty, Ty::F16x2 | Ty::Bf16x2) {
                2
            } else {
                1
            };
            let to = move |h: u64| {
                if bf {
                    bf16_to_f32(h as u16)
                } else {
                    f16_to_f32(h as u16)
                }
            };
            let from = move |f: f32| u64::from(if bf { f32_to_bf16(f) } else { f32_to_f16(f) });
            map3(regs, i, exec, |a, b, c| {
                let mut out = 0u64;
                for k in 0..halves {
                    let sh = 16 * k;
                    let mut r = op32(op, Rnd::Rn, to(a >> sh), to(b >> sh), to(c >> sh))
                        .unwrap_or(f32::NAN);
                    if sat {
                        r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
                    }
                    out |= from(r) << sh;
                }
                out
            });
        }
        _ => return Err(unsupported(i)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directed_rounding() {
        let x = 1.0f64 + 2f64.powi(-30);
        assert_eq!(round_to_f32(x, Rnd::Rn), 1.0);
        assert_eq!(round_to_f32(x, Rnd::Rz), 1.0);
        assert_eq!(round_to_f32(x, Rnd::Rp), next_up(1.0));
        assert_eq!(round_to_f32(-x, Rnd::Rm), -next_up(1.0));
        assert_eq!(round_to_f32(-x, Rnd::Rz), -1.0);
        assert_eq!(op32(Op::Copysign, Rnd::Rn, -1.0, 2.0, 0.0), Some(-2.0));
        // Sums whose f64 value is an f32 but whose exact value is not.
        let tiny = 2f32.powi(-80);
        assert_eq!(op32(Op::Add, Rnd::Rp, 1.0, tiny, 0.0), Some(next_up(1.0)));
        // Inexact roots and reciprocals bracket the exact value.
        for (op, a, exact) in [
            (Op::Sqrt, 2.0f32, 2f64.sqrt()),
            (Op::Rcp, 3.0f32, 1.0 / 3.0),
            (Op::Rcp, -3.0f32, -1.0 / 3.0),
        ] {
            let down = op32(op, Rnd::Rm, a, 0.0, 0.0).unwrap();
            let up = op32(op, Rnd::Rp, a, 0.0, 0.0).unwrap();
            assert!(
                f64::from(down) < exact && exact < f64::from(up),
                "{op:?} {a}"
            );
            assert_eq!(next_up(down), up, "{op:?} {a}");
            let toward_zero = op32(op, Rnd::Rz, a, 0.0, 0.0).unwrap();
            assert_eq!(toward_zero, if a < 0.0 { up } else { down }, "{op:?} {a}");
        }
        let max = f64::MAX;
        assert_eq!(directed64(Op::Add, Rnd::Rz, max, max, max + max), max);
        assert_eq!(directed64(Op::MulLo, Rnd::Rm, max, 2.0, max * 2.0), max);
        assert_eq!(directed64(Op::MulLo, Rnd::Rp, max, -2.0, -max * 2.0), -max);
        assert_eq!(
            directed64(Op::Sub, Rnd::Rm, -max, max, -max - max),
            f64::NEG_INFINITY
        );
        assert_eq!(
            directed64(Op::Div, Rnd::Rz, 1.0, 0.0, 1.0 / 0.0),
            f64::INFINITY
        );
        let r = directed64(Op::Rcp, Rnd::Rp, 3.0, 0.0, 1.0 / 3.0);
        assert!(r > 1.0 / 3.0 && directed64(Op::Rcp, Rnd::Rm, 3.0, 0.0, 1.0 / 3.0) <= 1.0 / 3.0);
        assert_eq!(op32(Op::Add, Rnd::Rm, 1.0, tiny, 0.0), Some(1.0));
        assert_eq!(
            op32(Op::Add, Rnd::Rz, 1.0, -tiny, 0.0),
            Some(next_down(1.0))
        );
        assert_eq!(op32(Op::Sub, Rnd::Rm, -1.0, tiny, 0.0), Some(-next_up(1.0)));
        assert_eq!(
            op32(Op::Sub, Rnd::Rz, -1.0, -tiny, 0.0),
            Some(-next_down(1.0))
        );
        assert_eq!(op32(Op::Fma, Rnd::Rp, 1.0, 1.0, tiny), Some(next_up(1.0)));
        assert_eq!(op32(Op::Fma, Rnd::Rm, 1.0, -1.0, tiny), Some(-1.0));
        assert_eq!(
            op32(Op::Add, Rnd::Rp, f32::MAX, f32::MAX, 0.0),
            Some(f32::INFINITY)
        );
        assert_eq!(
            op32(Op::Add, Rnd::Rz, f32::MAX, f32::MAX, 0.0),
            Some(f32::MAX)
        );
        let third = 1.0f64 / 3.0;
        let (lo, hi) = (
            directed64(Op::Div, Rnd::Rm, 1.0, 3.0, third),
            directed64(Op::Div, Rnd::Rp, 1.0, 3.0, third),
        );
        assert!(lo < hi && (lo == third || hi == third));
        assert_eq!(hi.to_bits() - lo.to_bits(), 1);
        let tiny = 2f64.powi(-60);
        assert_eq!(
            directed64(Op::Add, Rnd::Rp, 1.0, tiny, 1.0),
            next64(1.0, true)
        );
        assert_eq!(directed64(Op::Add, Rnd::Rz, -1.0, -tiny, -1.0), -1.0);
        assert_eq!(
            directed64(Op::Add, Rnd::Rm, -1.0, -tiny, -1.0),
            next64(-1.0, false)
        );
        assert!(directed64(Op::Sqrt, Rnd::Rz, 2.0, 0.0, 2f64.sqrt()) <= 2f64.sqrt());
    }
}
