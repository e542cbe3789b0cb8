//! Integer, bit, predicate, move, compare and select instructions.
// PTX integer semantics truncate to the operation's width by definition.
#![allow(clippy::cast_possible_truncation)]

use super::{FULL, lanes};
use crate::LaunchError;
use crate::ops::{Inst, Op};
use crate::types::{Ty, extend};

#[inline(always)]
pub(crate) fn mask_of(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `d[l] = f(a[l], b[l], c[l])` over the executing lanes.
#[inline(always)]
pub(crate) fn map3(regs: &mut [u64], i: &Inst, exec: u32, f: impl Fn(u64, u64, u64) -> u64) {
    let (d, a) = (i.d as usize * 32, i.a as usize * 32);
    let b = if i.b == crate::ops::NONE {
        a
    } else {
        i.b as usize * 32
    };
    let c = if i.c == crate::ops::NONE {
        a
    } else {
        i.c as usize * 32
    };
    if exec == FULL {
        let mut out = [0u64; 32];
        {
            let (av, bv, cv) = (&regs[a..a + 32], &regs[b..b + 32], &regs[c..c + 32]);
            for l in 0..32 {
                out[l] = f(av[l], bv[l], cv[l]);
            }
        }
        regs[d..d + 32].copy_from_slice(&out);
    } else {
        lanes(exec, |l| {
            regs[d + l] = f(regs[a + l], regs[b + l], regs[c + l])
        });
    }
}

fn bfe(a: u64, pos: u64, len: u64, bits: u32, signed: bool) -> u64 {
    let (pos, len) = ((pos & 0xff) as u32, (len & 0xff) as u32);
    let a = a & mask_of(bits);
    let msb = bits - 1;
    let sbit = signed && len != 0 && (a >> (pos + len - 1).min(msb)) & 1 == 1;
    let x = if pos >= bits { 0 } else { a >> pos };
    let n = len.min(bits.saturating_sub(pos));
    let mut v = x & mask_of(n);
    if sbit {
        v |= !mask_of(n);
    }
    v & mask_of(bits)
}

fn bfi(f: u64, b: u64, pos: u64, len: u64, bits: u32) -> u64 {
    let (pos, len) = ((pos & 0xff) as u32, (len & 0xff) as u32);
    if pos >= bits || len == 0 {
        return b & mask_of(bits);
    }
    let m = mask_of(len.min(bits - pos)) << pos;
    ((b & !m) | ((f << pos) & m)) & mask_of(bits)
}

fn prmt(a: u64, b: u64, sel: u64) -> u64 {
    let bytes = (a & 0xffff_ffff) | ((b & 0xffff_ffff) << 32);
    let mut out = 0u64;
    for i in 0..4 {
        let s = (sel >> (4 * i)) & 0xf;
        let mut byte = (bytes >> (8 * (s & 7))) & 0xff;
        if s & 8 != 0 {
            byte = if byte & 0x80 != 0 { 0xff } else { 0 };
        }
        out |= byte << (8 * i);
    }
    out
}

fn mul_hi(a: u64, b: u64, bits: u32, signed: bool) -> u64 {
    if bits == 64 {
        if signed {
            ((i128::from(a as i64) * i128::from(b as i64)) >> 64) as u64
        } else {
            ((u128::from(a) * u128::from(b)) >> 64) as u64
        }
    } else if signed {
        let p = (extend(a, bits, true) as i64).wrapping_mul(extend(b, bits, true) as i64);
        ((p >> bits) as u64) & mask_of(bits)
    } else {
        ((a & mask_of(bits)).wrapping_mul(b & mask_of(bits)) >> bits) & mask_of(bits)
    }
}

fn mul24(a: u64, b: u64, hi: bool, signed: bool) -> u64 {
    let p = (extend(a, 24, signed) as i64).wrapping_mul(extend(b, 24, signed) as i64);
    (if hi { p >> 16 } else { p }) as u64 & 0xffff_ffff
}

fn mul_wide(a: u64, b: u64, bits: u32, signed: bool) -> u64 {
    if signed {
        (extend(a, bits, true) as i64).wrapping_mul(extend(b, bits, true) as i64) as u64
    } else {
        (a & mask_of(bits)).wrapping_mul(b & mask_of(bits))
    }
}

/// Executes an integer, bit or predicate instruction (moves and compares go to `cmp`).
pub(crate) fn exec(i: &Inst, regs: &mut [u64], exec: u32) -> Result<(), LaunchError> {
    let ty = i.ty;
    let bits = ty.bits();
    let m = mask_of(bits);
    let s = ty.is_signed();
    let sx = |v: u64| extend(v, bits, true) as i64;
    if bits > 64 {
        return Err(LaunchError::Unsupported {
            instr: format!("{:?}.{:?}", i.op, i.ty).to_lowercase(),
            line: i.line,
        });
    }
    match i.op {
        Op::Mov => {
            if ty == Ty::Pred {
                map3(regs, i, exec, |a, _, _| u64::from(a != 0));
            } else {
                map3(regs, i, exec, |a, _, _| a & m);
            }
        }
        Op::Add if i.sat => map3(regs, i, exec, |a, b, _| {
            (a as u32 as i32).saturating_add(b as u32 as i32) as u32 as u64
        }),
        Op::Sub if i.sat => map3(regs, i, exec, |a, b, _| {
            (a as u32 as i32).saturating_sub(b as u32 as i32) as u32 as u64
        }),
        Op::Add => map3(regs, i, exec, |a, b, _| a.wrapping_add(b) & m),
        Op::Sub => map3(regs, i, exec, |a, b, _| a.wrapping_sub(b) & m),
        Op::MulLo => map3(regs, i, exec, |a, b, _| a.wrapping_mul(b) & m),
        Op::Mul24(hi) => map3(regs, i, exec, |a, b, _| mul24(a, b, hi, s)),
        Op::Mad24(hi) => map3(regs, i, exec, |a, b, c| {
            mul24(a, b, hi, s).wrapping_add(c) & m
        }),
        Op::Dp4a => {
            let (sa, sb) = (i.ty.is_signed(), i.ty2.is_signed());
            map3(regs, i, exec, |a, b, c| {
                let byte = |v: u64, k: u32, signed: bool| extend(v >> (8 * k), 8, signed) as i64;
                let dot: i64 = (0..4).map(|k| byte(a, k, sa) * byte(b, k, sb)).sum();
                (c as i64).wrapping_add(dot) as u64 & 0xffff_ffff
            });
        }
        Op::MulHi => map3(regs, i, exec, |a, b, _| mul_hi(a, b, bits, s)),
        Op::MulWide => map3(regs, i, exec, |a, b, _| {
            mul_wide(a, b, bits, s) & mask_of(bits * 2)
        }),
        Op::MadLo => map3(regs, i, exec, |a, b, c| {
            a.wrapping_mul(b).wrapping_add(c) & m
        }),
        Op::MadHi => map3(regs, i, exec, |a, b, c| {
            mul_hi(a, b, bits, s).wrapping_add(c) & m
        }),
        Op::MadWide => map3(regs, i, exec, |a, b, c| {
            mul_wide(a, b, bits, s).wrapping_add(c) & mask_of(bits * 2)
        }),
        Op::AddCarry(sub, cin, cout) => {
            let (d, a, b, cc) = (
                i.d as usize * 32,
                i.a as usize * 32,
                i.b as usize * 32,
                i.d2 as usize * 32,
            );
            lanes(exec, |l| {
                let (x, y) = (regs[a + l] & m, regs[b + l] & m);
                let carry = if cin { regs[cc + l] & 1 } else { 0 };
                let (r, c) = if sub {
                    let r = x.wrapping_sub(y).wrapping_sub(carry);
                    (
                        r & m,
                        u64::from(u128::from(x) < u128::from(y) + u128::from(carry)),
                    )
                } else {
                    let wide = u128::from(x) + u128::from(y) + u128::from(carry);
                    ((wide as u64) & m, u64::from(wide > u128::from(m)))
                };
                regs[d + l] = r;
                if cout {
                    regs[cc + l] = c;
                }
            });
        }
        Op::MadCarry(hi, cin, cout) => {
            let (d, a, b, c, cc) = (
                i.d as usize * 32,
                i.a as usize * 32,
                i.b as usize * 32,
                i.c as usize * 32,
                i.d2 as usize * 32,
            );
            lanes(exec, |l| {
                let p = u128::from(regs[a + l] & m) * u128::from(regs[b + l] & m);
                let part = if hi {
                    (p >> bits) as u64 & m
                } else {
                    p as u64 & m
                };
                let carry = if cin { regs[cc + l] & 1 } else { 0 };
                let wide = u128::from(part) + u128::from(regs[c + l] & m) + u128::from(carry);
                regs[d + l] = (wide as u64) & m;
                if cout {
                    regs[cc + l] = u64::from(wide > u128::from(m));
                }
            });
        }
        Op::Div => map3(regs, i, exec, |a, b, _| {
            if s {
                let (x, y) = (sx(a), sx(b));
                if y == 0 {
                    m
                } else {
                    x.wrapping_div(y) as u64 & m
                }
            } else {
                let (x, y) = (a & m, b & m);
                x.checked_div(y).unwrap_or(m)
            }
        }),
        Op::Rem => map3(regs, i, exec, |a, b, _| {
            if s {
                let (x, y) = (sx(a), sx(b));
                if y == 0 {
                    a & m
                } else {
                    x.wrapping_rem(y) as u64 & m
                }
            } else {
                let (x, y) = (a & m, b & m);
                if y == 0 { x } else { x % y }
            }
        }),
        Op::Abs => map3(regs, i, exec, |a, _, _| sx(a).wrapping_abs() as u64 & m),
        Op::Neg => map3(regs, i, exec, |a, _, _| sx(a).wrapping_neg() as u64 & m),
        Op::Min => map3(regs, i, exec, |a, b, _| {
            if s {
                sx(a).min(sx(b)) as u64 & m
            } else {
                (a & m).min(b & m)
            }
        }),
        Op::Max => map3(regs, i, exec, |a, b, _| {
            if s {
                sx(a).max(sx(b)) as u64 & m
            } else {
                (a & m).max(b & m)
            }
        }),
        Op::And => map3(regs, i, exec, |a, b, _| a & b & m),
        Op::Or => map3(regs, i, exec, |a, b, _| (a | b) & m),
        Op::Xor => map3(regs, i, exec, |a, b, _| (a ^ b) & m),
        Op::Not if ty == Ty::Pred => map3(regs, i, exec, |a, _, _| u64::from(a == 0)),
        Op::Not => map3(regs, i, exec, |a, _, _| !a & m),
        Op::CNot => map3(regs, i, exec, |a, _, _| u64::from(a & m == 0)),
        Op::Shl => map3(regs, i, exec, |a, b, _| {
            let n = b & 0xffff_ffff;
            if n >= u64::from(bits) {
                0
            } else {
                (a << n) & m
            }
        }),
        Op::Shr => map3(regs, i, exec, |a, b, _| {
            let n = (b & 0xffff_ffff).min(u64::from(bits));
            if s {
                (sx(a) >> n.min(63)) as u64 & m
            } else if n >= u64::from(bits) {
                0
            } else {
                (a & m) >> n
            }
        }),
        Op::Shf(left, clamp) => map3(regs, i, exec, |a, b, c| {
            let n = if clamp {
                (c & 0xffff_ffff).min(32)
            } else {
                c & 31
            };
            let wide = ((b & 0xffff_ffff) << 32) | (a & 0xffff_ffff);
            if left {
                ((wide << n) >> 32) & 0xffff_ffff
            } else {
                (wide >> n) & 0xffff_ffff
            }
        }),
        Op::Bfe => map3(regs, i, exec, |a, b, c| bfe(a, b, c, bits, s)),
        Op::Bmsk(clamp) => map3(regs, i, exec, |a, b, _| {
            let lim = |v: u64| {
                if clamp {
                    (v & 0xffff_ffff).min(32)
                } else {
                    v & 31
                }
            };
            let (p, w) = (lim(a), lim(b));
            let lo = (u64::MAX << p) & 0xffff_ffff;
            let hi = if p + w < 32 {
                !(u64::MAX << (p + w))
            } else {
                u64::MAX
            };
            lo & hi & 0xffff_ffff
        }),
        Op::Szext(clamp) => map3(regs, i, exec, |a, b, _| {
            let n = if clamp {
                (b & 0xffff_ffff).min(32)
            } else {
                b & 31
            } as u32;
            if n == 0 {
                0
            } else {
                extend(a, n, s) & 0xffff_ffff
            }
        }),
        Op::Bfi => {
            let e = i.e as usize * 32;
            let (d, a, b, c) = (
                i.d as usize * 32,
                i.a as usize * 32,
                i.b as usize * 32,
                i.c as usize * 32,
            );
            lanes(exec, |l| {
                regs[d + l] = bfi(regs[a + l], regs[b + l], regs[c + l], regs[e + l], bits)
            });
        }
        Op::Brev => map3(regs, i, exec, |a, _, _| {
            (a & m).reverse_bits() >> (64 - bits)
        }),
        Op::Clz => map3(regs, i, exec, |a, _, _| {
            u64::from((a & m).leading_zeros() - (64 - bits))
        }),
        Op::Popc => map3(regs, i, exec, |a, _, _| u64::from((a & m).count_ones())),
        Op::Bfind(shiftamt) => map3(regs, i, exec, |a, _, _| {
            let v = if s && sx(a) < 0 { !a & m } else { a & m };
            if v == 0 {
                0xffff_ffff
            } else {
                let pos = u64::from(63 - v.leading_zeros());
                if shiftamt {
                    u64::from(bits) - 1 - pos
                } else {
                    pos
                }
            }
        }),
        Op::Prmt => map3(regs, i, exec, prmt),
        Op::Lop3 => {
            let lut = i.aux;
            map3(regs, i, exec, |a, b, c| {
                let mut r = 0u64;
                for k in 0..8 {
                    if lut >> k & 1 == 1 {
                        let x = if k & 4 != 0 { a } else { !a };
                        let y = if k & 2 != 0 { b } else { !b };
                        let z = if k & 1 != 0 { c } else { !c };
                        r |= x & y & z;
                    }
                }
                r & m
            });
        }
        Op::Sad => map3(regs, i, exec, |a, b, c| {
            let diff = if s {
                sx(a).abs_diff(sx(b))
            } else {
                (a & m).abs_diff(b & m)
            };
            diff.wrapping_add(c) & m
        }),
        _ => return super::cmp::exec(i, regs, exec),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::cmp::compare;
    use crate::ops::Cmp;

    #[test]
    fn bit_field_functions() {
        assert_eq!(bfe(0xf0, 4, 4, 32, false), 0xf);
        assert_eq!(bfe(0xf0, 4, 4, 32, true), 0xffff_ffff);
        assert_eq!(bfe(0x70, 4, 4, 32, true), 0x7);
        assert_eq!(bfe(0x1234, 0, 0, 32, true), 0);
        assert_eq!(bfi(0xab, 0xffff_0000, 4, 8, 32), 0xffff_0ab0);
        assert_eq!(prmt(0x4433_2211, 0x8877_6655, 0x3210), 0x4433_2211);
        assert_eq!(prmt(0x4433_2211, 0x8877_6655, 0x7654), 0x8877_6655);
        assert_eq!(prmt(0x0000_8000, 0, 0x0009), 0xff);
        assert_eq!(mul_hi(0xffff_ffff, 0xffff_ffff, 32, false), 0xffff_fffe);
        assert_eq!(mul_hi(0xffff_ffff, 0xffff_ffff, 32, true), 0);
        assert_eq!(mul_wide(0xffff_ffff, 2, 32, true), (-2i64) as u64);
        assert_eq!(mul24(0xff_ffff, 2, false, false), 0x1ff_fffe);
        assert_eq!(mul24(0xff_ffff, 0xff_ffff, true, false), 0xffff_fe00);
        assert_eq!(mul24(0xff_ffff, 1, false, true), 0xffff_ffff);
        assert!(compare(Cmp::Lt, Ty::S32, 0xffff_ffff, 0));
        assert!(!compare(Cmp::Lt, Ty::U32, 0xffff_ffff, 0));
        let nan = u64::from(f32::NAN.to_bits());
        assert!(compare(Cmp::Neu, Ty::F32, nan, 0) && !compare(Cmp::Ne, Ty::F32, nan, 0));
    }
}
