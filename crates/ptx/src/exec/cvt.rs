//! `cvt`: every integer/float combination, rounding modifiers, `.sat` and `.ftz`.
// Conversions narrow by definition.
#![allow(clippy::cast_possible_truncation)]

use super::float::{next64, round_sum_to_f32, round_to_f32};
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
        _ => u64::from(round_to_half(x, rnd, ty == Ty::Bf16)),
    }
}

/// Rounds `x` to `f16` (or `bf16`) bits in direction `rnd`, through `f32` without rounding
/// twice: to nearest via `f32` rounded to odd (exact enough, as `f32` keeps more than two
/// extra bits), directed by rounding to `f32` and then to the half type the same way.
fn round_to_half(x: f64, rnd: Rnd, bf: bool) -> u16 {
    let to_half = |f: f32| if bf { f32_to_bf16(f) } else { f32_to_f16(f) };
    let directed = matches!(rnd, Rnd::Rz | Rnd::Rm | Rnd::Rp);
    if !directed {
        let f = round_to_f32(x, Rnd::Rz);
        let odd = if x.is_finite() && f64::from(f) != x {
            f32::from_bits(f.to_bits() | 1)
        } else {
            f
        };
        return to_half(odd);
    }
    let f = round_to_f32(x, rnd);
    let h = to_half(f);
    let back = if bf { bf16_to_f32(h) } else { f16_to_f32(h) };
    if f.is_nan() || back == f {
        return h;
    }
    let up = match rnd {
        Rnd::Rp => true,
        Rnd::Rm => false,
        _ => f < 0.0,
    };
    match (up, back < f) {
        (true, true) => half_step(h, true),
        (false, false) => half_step(h, false),
        _ => h,
    }
}

/// The next half-precision value up or down from `h` (sign-magnitude bits, either format).
fn half_step(h: u16, up: bool) -> u16 {
    let (sign, mag) = (h & 0x8000, h & 0x7fff);
    let away = (sign == 0) == up;
    match (away, mag) {
        (true, _) => sign | (mag + 1),
        // Through zero to the smallest value of the other sign.
        (false, 0) => (sign ^ 0x8000) | 1,
        (false, _) => sign | (mag - 1),
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

/// Converts the integer `v` (of type `st`) to the float type `dt`. A 64-bit integer need not
/// fit `f64` exactly, so it is split into the nearest `f64` and its exact remainder, and the
/// directed roundings go by the remainder's sign rather than rounding twice.
fn int_to_float(dt: Ty, st: Ty, v: i128, rnd: Rnd, ftz: bool, sat: bool) -> u64 {
    let x = v as f64;
    if st.bits() < 64 || sat || !matches!(dt, Ty::F32 | Ty::F64) {
        return write_float(dt, x, rnd, ftz, sat);
    }
    // |v - x| ≤ 2^11 for any 64-bit integer, so the remainder is exact.
    let rest = (v - x as i128) as f64;
    let up = match rnd {
        Rnd::Rp => true,
        Rnd::Rm => false,
        Rnd::Rz => x < 0.0,
        _ if dt == Ty::F32 => {
            // Rust's integer to `f32` conversion rounds once, to nearest even.
            let f = if st.is_signed() {
                v as i64 as f32
            } else {
                v as u64 as f32
            };
            return u64::from(f.to_bits());
        }
        _ => return x.to_bits(),
    };
    if dt == Ty::F32 {
        return u64::from(round_sum_to_f32(x, rest, rnd).to_bits());
    }
    let stepped = match (up, rest > 0.0, rest < 0.0) {
        (true, true, _) => next64(x, true),
        (false, _, true) => next64(x, false),
        _ => x,
    };
    stepped.to_bits()
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
            int_to_float(dt, st, read_int(st, a), rnd, ftz, sat)
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

    #[test]
    fn halves_round_once_and_in_every_direction() {
        let h = |x: f64, rnd| write_float(Ty::F16, x, rnd, false, false);
        // Just above the midpoint between 1 and the next f16: f32 would round it onto the
        // midpoint, and ties-to-even would then give 1.
        assert_eq!(h(1.0 + 2f64.powi(-11) + 2f64.powi(-40), Rnd::Rn), 0x3c01);
        assert_eq!(h(1.0 + 2f64.powi(-11), Rnd::Rn), 0x3c00);
        let x = 1.0 + 2f64.powi(-12);
        assert_eq!(h(x, Rnd::Rp), 0x3c01);
        assert_eq!(h(x, Rnd::Rz), 0x3c00);
        assert_eq!(h(-x, Rnd::Rm), 0xbc01);
        assert_eq!(h(-x, Rnd::Rz), 0xbc00);
        assert_eq!(h(-x, Rnd::Rp), 0xbc00);
        assert_eq!(h(70000.0, Rnd::Rn), 0x7c00);
        assert_eq!(h(70000.0, Rnd::Rz), 0x7bff);
        assert_eq!(h(-70000.0, Rnd::Rp), 0xfbff);
        assert_eq!(h(1e-30, Rnd::Rp), 0x0001);
        assert_eq!(h(-1e-30, Rnd::Rp), 0x8000);
        assert_eq!(h(0.0, Rnd::Rm), 0x0000);
        assert_eq!(h(f64::NAN, Rnd::Rz) & 0x7c00, 0x7c00);
        let b = |x: f64, rnd| write_float(Ty::Bf16, x, rnd, false, false);
        assert_eq!(b(1.0 + 2f64.powi(-9), Rnd::Rp), 0x3f81);
        assert_eq!(b(1.0 + 2f64.powi(-9), Rnd::Rn), 0x3f80);
        assert_eq!(b(-(1.0 + 2f64.powi(-9)), Rnd::Rm), 0xbf81);
    }

    #[test]
    fn wide_integers_round_once_in_every_direction() {
        let max = i128::from(u64::MAX);
        let f32_of = |rnd| int_to_float(Ty::F32, Ty::U64, max, rnd, false, false);
        // u64::MAX lies between 2^64 - 2^40 (the largest f32 below 2^64) and 2^64.
        assert_eq!(f32_of(Rnd::Rz), u64::from(0x5f7f_ffff_u32));
        assert_eq!(f32_of(Rnd::Rm), u64::from(0x5f7f_ffff_u32));
        assert_eq!(f32_of(Rnd::Rp), u64::from(0x5f80_0000_u32));
        assert_eq!(f32_of(Rnd::Rn), u64::from(0x5f80_0000_u32));
        let f64_of = |v, st, rnd| f64::from_bits(int_to_float(Ty::F64, st, v, rnd, false, false));
        let below = f64::from_bits(0x43ef_ffff_ffff_ffff);
        assert_eq!(f64_of(max, Ty::U64, Rnd::Rz), below);
        assert_eq!(f64_of(max, Ty::U64, Rnd::Rn), 2f64.powi(64));
        let odd = (1i128 << 53) + 1;
        assert_eq!(f64_of(odd, Ty::S64, Rnd::Rp), 2f64.powi(53) + 2.0);
        assert_eq!(f64_of(odd, Ty::S64, Rnd::Rm), 2f64.powi(53));
        assert_eq!(f64_of(-odd, Ty::S64, Rnd::Rz), -(2f64.powi(53)));
        assert_eq!(f64_of(-odd, Ty::S64, Rnd::Rm), -(2f64.powi(53) + 2.0));
        assert_eq!(
            f64_of(i128::from(i64::MIN), Ty::S64, Rnd::Rz),
            -(2f64.powi(63))
        );
    }
}
