//! `cvt`: every integer/float combination, rounding modifiers, `.sat` and `.ftz`.
// Conversions narrow by definition.
#![allow(clippy::cast_possible_truncation)]

use super::float::round_to_f32;
use super::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use super::int::map3;
use crate::LaunchError;
use crate::ops::{Inst, Rnd};
use crate::types::{Ty, extend};

fn read_float(ty: Ty, v: u64) -> f64 {
    match ty {
        Ty::F64 => f64::from_bits(v),
        Ty::F32 => f64::from(f32::from_bits(v as u32)),
        Ty::Bf16 => f64::from(bf16_to_f32(v as u16)),
        _ => f64::from(f16_to_f32(v as u16)),
    }
}

fn round_int(x: f64, rnd: Rnd) -> f64 {
    match rnd {
        Rnd::Rzi | Rnd::Rz => x.trunc(),
        Rnd::Rmi | Rnd::Rm => x.floor(),
        Rnd::Rpi | Rnd::Rp => x.ceil(),
        Rnd::Rna => x.round(),
        _ => x.round_ties_even(),
    }
}

fn write_float(ty: Ty, x: f64, rnd: Rnd, ftz: bool, sat: bool) -> u64 {
    let x = if sat {
        if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
    } else {
        x
    };
    match ty {
        Ty::F64 => x.to_bits(),
        Ty::F32 => {
            let mut f = round_to_f32(x, rnd);
            if ftz && f.is_subnormal() {
                f = 0.0f32.copysign(f);
            }
            u64::from(f.to_bits())
        }
        Ty::Bf16 => u64::from(f32_to_bf16(round_to_f32(x, rnd))),
        _ => u64::from(f32_to_f16(round_to_f32(x, rnd))),
    }
}

/// Integer value of `v` read as `ty`, as i128 so every source type fits.
fn read_int(ty: Ty, v: u64) -> i128 {
    let e = extend(v, ty.bits(), ty.is_signed());
    if ty.is_signed() {
        i128::from(e as i64)
    } else {
        i128::from(e)
    }
}

fn int_range(ty: Ty) -> (i128, i128) {
    let bits = ty.bits();
    if ty.is_signed() {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    }
}

fn write_int(ty: Ty, v: i128) -> u64 {
    let bits = ty.bits();
    let m = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (v as u64) & m
}

/// Executes `cvt.rn.f16x2.f32 d, a, b` (`a` to the upper half).
pub(crate) fn pack(i: &Inst, regs: &mut [u64], exec: u32) {
    let (dt, rnd, sat) = (
        if i.ty == Ty::Bf16x2 {
            Ty::Bf16
        } else {
            Ty::F16
        },
        i.rnd,
        i.sat,
    );
    map3(regs, i, exec, |a, b, _| {
        let h = |v: u64| write_float(dt, read_float(Ty::F32, v), rnd, false, sat);
        (h(a) << 16) | h(b)
    });
}

/// Executes `cvt.dty.sty`.
pub(crate) fn exec(i: &Inst, regs: &mut [u64], exec: u32) -> Result<(), LaunchError> {
    let (dt, st, rnd, ftz, sat) = (i.ty, i.ty2, i.rnd, i.ftz, i.sat);
    if dt.size() > 8
        || st.size() > 8
        || dt == Ty::Pred
        || st == Ty::Pred
        || matches!(dt, Ty::F16x2 | Ty::Bf16x2)
    {
        return Err(LaunchError::Unsupported {
            instr: format!("cvt.{dt:?}.{st:?}").to_lowercase(),
            line: i.line,
        });
    }
    match (dt.is_float(), st.is_float()) {
        (false, false) => map3(regs, i, exec, |a, _, _| {
            let v = read_int(st, a);
            let v = if sat {
                let (lo, hi) = int_range(dt);
                v.clamp(lo, hi)
            } else {
                v
            };
            let out = write_int(dt, v);
            // Keep the value sign-extended the way the destination type reads it.
            extend(out, dt.bits(), false)
        }),
        (false, true) => map3(regs, i, exec, |a, _, _| {
            let mut x = read_float(st, a);
            if ftz && st == Ty::F32 && x.abs() < f64::from(f32::MIN_POSITIVE) {
                x = 0.0;
            }
            if x.is_nan() {
                return 0;
            }
            let (lo, hi) = int_range(dt);
            let r = round_int(x, rnd);
            let v = if r <= lo as f64 {
                lo
            } else if r >= hi as f64 {
                hi
            } else {
                r as i128
            };
            write_int(dt, v)
        }),
        (true, false) => map3(regs, i, exec, |a, _, _| {
            let v = read_int(st, a);
            let x = v as f64;
            // i64/u64 → f32 through f64 could round twice; go direct when round-to-nearest.
            if dt == Ty::F32 && matches!(rnd, Rnd::Rn | Rnd::Default) && st.bits() == 64 {
                let f = if st.is_signed() {
                    v as i64 as f32
                } else {
                    v as u64 as f32
                };
                return u64::from(f.to_bits());
            }
            write_float(dt, x, rnd, ftz, sat)
        }),
        (true, true) => map3(regs, i, exec, |a, _, _| {
            let mut x = read_float(st, a);
            if ftz && st == Ty::F32 && x.abs() < f64::from(f32::MIN_POSITIVE) {
                x = 0.0f64.copysign(x);
            }
            if matches!(rnd, Rnd::Rni | Rnd::Rzi | Rnd::Rmi | Rnd::Rpi) {
                x = round_int(x, rnd);
            }
            write_float(dt, x, rnd, ftz, sat)
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(round_int(2.5, Rnd::Rni), 2.0);
        assert_eq!(round_int(-2.5, Rnd::Rmi), -3.0);
        assert_eq!(write_int(Ty::U8, read_int(Ty::S32, 0xffff_ffff)), 0xff);
        assert_eq!(read_int(Ty::S8, 0x80), -128);
        assert_eq!(int_range(Ty::S16), (-32768, 32767));
        assert_eq!(
            write_float(Ty::F32, 1.5, Rnd::Rn, false, true),
            u64::from(1f32.to_bits())
        );
    }
}
