//! Loads, stores, atomics and address arithmetic over the state spaces.
// Addresses inside shared/local/param memory are 32-bit offsets by definition.
#![allow(clippy::cast_possible_truncation)]

use super::{Env, LOCAL_WINDOW, PARAM_WINDOW, SHARED_WINDOW, WINDOW_SIZE, lanes, try_lanes};
use crate::ops::{AtomOp, Base, Inst, Op};
use crate::types::{Space, Ty, extend};
use crate::{Fault, LaunchError};

/// Where one access goes after generic addresses are resolved.
#[derive(Clone, Copy)]
enum Target {
    Device(u64),
    Shared(usize),
    Local(usize),
    Param(usize),
}

impl Env<'_> {
    /// Resolves `addr` in `space` for thread `tid` into a concrete target of `len` bytes.
    fn target(&self, space: Space, addr: u64, len: usize, tid: usize) -> Result<Target, Fault> {
        let fault = |a: u64| Fault {
            addr: a,
            len: len as u64,
        };
        let (space, off, shown) = match space {
            Space::Global | Space::Const => return Ok(Target::Device(addr)),
            Space::Generic => {
                if addr.wrapping_sub(SHARED_WINDOW) < WINDOW_SIZE {
                    (Space::Shared, addr - SHARED_WINDOW, addr)
                } else if addr.wrapping_sub(LOCAL_WINDOW) < WINDOW_SIZE {
                    (Space::Local, addr - LOCAL_WINDOW, addr)
                } else if addr.wrapping_sub(PARAM_WINDOW) < WINDOW_SIZE {
                    (Space::Param, addr - PARAM_WINDOW, addr)
                } else {
                    return Ok(Target::Device(addr));
                }
            }
            Space::Shared => (
                Space::Shared,
                addr & 0xffff_ffff,
                SHARED_WINDOW + (addr & 0xffff_ffff),
            ),
            Space::Local => (
                Space::Local,
                addr & 0xffff_ffff,
                LOCAL_WINDOW + (addr & 0xffff_ffff),
            ),
            Space::Param => (
                Space::Param,
                addr & 0xffff_ffff,
                PARAM_WINDOW + (addr & 0xffff_ffff),
            ),
        };
        let end = off.checked_add(len as u64).ok_or(fault(shown))?;
        match space {
            Space::Shared if end <= self.shared.len() as u64 => Ok(Target::Shared(off as usize)),
            Space::Local if end <= self.stride => {
                Ok(Target::Local(tid * self.stride as usize + off as usize))
            }
            Space::Param if end <= self.params.len() as u64 => Ok(Target::Param(off as usize)),
            _ => Err(fault(shown)),
        }
    }

    fn read(&mut self, t: Target, buf: &mut [u8]) -> Result<(), Fault> {
        let n = buf.len();
        match t {
            Target::Device(a) => self.mem.read(a, buf),
            Target::Shared(o) => {
                buf.copy_from_slice(&self.shared[o..o + n]);
                Ok(())
            }
            Target::Local(o) => {
                buf.copy_from_slice(&self.local[o..o + n]);
                Ok(())
            }
            Target::Param(o) => {
                buf.copy_from_slice(&self.params[o..o + n]);
                Ok(())
            }
        }
    }

    fn write(&mut self, t: Target, data: &[u8], shown: u64) -> Result<(), Fault> {
        let n = data.len();
        match t {
            Target::Device(a) => self.mem.write(a, data),
            Target::Shared(o) => {
                self.shared[o..o + n].copy_from_slice(data);
                Ok(())
            }
            Target::Local(o) => {
                self.local[o..o + n].copy_from_slice(data);
                Ok(())
            }
            Target::Param(_) => Err(Fault {
                addr: shown,
                len: n as u64,
            }),
        }
    }

    /// Reads `len` (≤ 8) bytes little-endian.
    pub(crate) fn load(
        &mut self,
        space: Space,
        addr: u64,
        len: usize,
        tid: usize,
    ) -> Result<u64, Fault> {
        let t = self.target(space, addr, len, tid)?;
        let host = match t {
            Target::Shared(_) => &self.shared[..],
            Target::Local(_) => &self.local[..],
            Target::Param(_) => self.params,
            Target::Device(_) => {
                let mut b = [0u8; 8];
                self.read(t, &mut b[..len])?;
                return Ok(u64::from_le_bytes(b));
            }
        };
        let o = match t {
            Target::Shared(o) | Target::Local(o) | Target::Param(o) => o,
            Target::Device(_) => 0,
        };
        // `target` checked the bounds; fixed-size reads avoid a memcpy call per lane.
        Ok(read_le(host, o, len))
    }

    /// Writes the low `len` (≤ 8) bytes of `v`.
    pub(crate) fn store(
        &mut self,
        space: Space,
        addr: u64,
        len: usize,
        tid: usize,
        v: u64,
    ) -> Result<(), Fault> {
        let t = self.target(space, addr, len, tid)?;
        match t {
            Target::Shared(o) => write_le(&mut self.shared, o, len, v),
            Target::Local(o) => write_le(&mut self.local, o, len, v),
            _ => return self.write(t, &v.to_le_bytes()[..len], addr),
        }
        Ok(())
    }

    /// Base address of an address operand for one lane.
    #[inline(always)]
    fn base(&self, base: Base, regs: &[u64], lane: usize, local_base: u32) -> u64 {
        match base {
            Base::Reg(r) => regs[r as usize * 32 + lane],
            Base::Abs => 0,
            Base::Global(id) => self.gaddr[id as usize],
            Base::DynShared => self.dyn_base,
            Base::Frame => u64::from(local_base),
        }
    }
}

#[inline(always)]
fn read_le(b: &[u8], o: usize, len: usize) -> u64 {
    let fixed = |n: usize| b.get(o..o + n);
    match len {
        1 => fixed(1).map_or(0, |x| u64::from(x[0])),
        2 => fixed(2)
            .and_then(|x| x.try_into().ok())
            .map_or(0, |x| u64::from(u16::from_le_bytes(x))),
        4 => fixed(4)
            .and_then(|x| x.try_into().ok())
            .map_or(0, |x| u64::from(u32::from_le_bytes(x))),
        _ => fixed(8)
            .and_then(|x| x.try_into().ok())
            .map_or(0, u64::from_le_bytes),
    }
}

#[inline(always)]
fn write_le(b: &mut [u8], o: usize, len: usize, v: u64) {
    let bytes = v.to_le_bytes();
    match len {
        1 => b[o] = bytes[0],
        2 => b[o..o + 2].copy_from_slice(&bytes[..2]),
        4 => b[o..o + 4].copy_from_slice(&bytes[..4]),
        _ => b[o..o + 8].copy_from_slice(&bytes),
    }
}

fn atom_apply(op: AtomOp, ty: Ty, old: u64, a: u64, b: u64) -> u64 {
    let bits = ty.bits();
    let m = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let (o, x) = (old & m, a & m);
    let sx = |v: u64| extend(v, bits, true) as i64;
    match op {
        AtomOp::Add => match ty {
            Ty::F16 | Ty::F16x2 | Ty::Bf16 | Ty::Bf16x2 => {
                let bf = matches!(ty, Ty::Bf16 | Ty::Bf16x2);
                let to = |h: u16| {
                    if bf {
                        super::half::bf16_to_f32(h)
                    } else {
                        super::half::f16_to_f32(h)
                    }
                };
                let from = |f: f32| {
                    if bf {
                        super::half::f32_to_bf16(f)
                    } else {
                        super::half::f32_to_f16(f)
                    }
                };
                let mut out = 0u64;
                for k in 0..u64::from(bits / 16) {
                    let sh = 16 * k;
                    let sum = to((o >> sh) as u16) + to((x >> sh) as u16);
                    out |= u64::from(from(sum)) << sh;
                }
                out
            }
            Ty::F32 => u64::from((f32::from_bits(o as u32) + f32::from_bits(x as u32)).to_bits()),
            Ty::F64 => (f64::from_bits(o) + f64::from_bits(x)).to_bits(),
            _ => o.wrapping_add(x) & m,
        },
        AtomOp::Min if ty.is_signed() => sx(o).min(sx(x)) as u64 & m,
        AtomOp::Max if ty.is_signed() => sx(o).max(sx(x)) as u64 & m,
        AtomOp::Min => o.min(x),
        AtomOp::Max => o.max(x),
        AtomOp::Inc => {
            if o >= x {
                0
            } else {
                o + 1
            }
        }
        AtomOp::Dec => {
            if o == 0 || o > x {
                x
            } else {
                o - 1
            }
        }
        AtomOp::And => o & x,
        AtomOp::Or => o | x,
        AtomOp::Xor => o ^ x,
        AtomOp::Exch => x,
        AtomOp::Cas => {
            if o == x {
                b & m
            } else {
                o
            }
        }
    }
}

/// Executes a memory or address instruction for the executing lanes.
pub(crate) fn exec(
    env: &mut Env<'_>,
    i: &Inst,
    regs: &mut [u64],
    exec: u32,
    warp: u32,
    local_base: u32,
) -> Result<(), LaunchError> {
    let tid0 = warp as usize * 32;
    let fault = |f: Fault| LaunchError::IllegalAddress {
        fault: f,
        line: i.line,
    };
    let off = i.addr.off as u64;
    match i.op {
        Op::MovAddr => {
            let d = i.d as usize * 32;
            lanes(exec, |l| {
                regs[d + l] = env.base(i.addr.base, regs, l, local_base).wrapping_add(off)
            });
        }
        Op::Cvta(space, to_generic) => {
            let win = match space {
                Space::Shared => SHARED_WINDOW,
                Space::Local => LOCAL_WINDOW,
                Space::Param => PARAM_WINDOW,
                _ => 0,
            };
            let (d, a) = (i.d as usize * 32, i.a as usize * 32);
            let m = if i.ty.bits() >= 64 {
                u64::MAX
            } else {
                0xffff_ffff
            };
            let var = (i.a == crate::ops::NONE)
                .then(|| env.base(i.addr.base, regs, 0, local_base).wrapping_add(off));
            lanes(exec, |l| {
                let v = var.unwrap_or_else(|| regs[a + l]);
                regs[d + l] = if to_generic {
                    v.wrapping_add(win)
                } else {
                    v.wrapping_sub(win)
                } & m;
            });
        }
        Op::Ld(space) => {
            let size = i.ty.size() as usize;
            if size > 8 {
                return Err(LaunchError::Unsupported {
                    instr: "ld.b128".into(),
                    line: i.line,
                });
            }
            let (signed, bits) = (i.ty.is_signed(), i.ty.bits());
            let n = usize::from(i.vn);
            try_lanes(exec, |l| {
                let a = env.base(i.addr.base, regs, l, local_base).wrapping_add(off);
                for k in 0..n {
                    let v = env
                        .load(space, a.wrapping_add((k * size) as u64), size, tid0 + l)
                        .map_err(fault)?;
                    regs[i.v[k] as usize * 32 + l] = extend(v, bits, signed);
                }
                Ok(())
            })?;
        }
        Op::St(space) => {
            let size = i.ty.size() as usize;
            if size > 8 {
                return Err(LaunchError::Unsupported {
                    instr: "st.b128".into(),
                    line: i.line,
                });
            }
            let n = usize::from(i.vn);
            try_lanes(exec, |l| {
                let a = env.base(i.addr.base, regs, l, local_base).wrapping_add(off);
                for k in 0..n {
                    let v = regs[i.v[k] as usize * 32 + l];
                    env.store(space, a.wrapping_add((k * size) as u64), size, tid0 + l, v)
                        .map_err(fault)?;
                }
                Ok(())
            })?;
        }
        Op::Atom(space, aop) | Op::Red(space, aop) => {
            let size = i.ty.size() as usize;
            let is_atom = matches!(i.op, Op::Atom(..));
            let (d, a, b) = (i.d as usize * 32, i.a as usize * 32, i.b as usize * 32);
            try_lanes(exec, |l| {
                let addr = env.base(i.addr.base, regs, l, local_base).wrapping_add(off);
                let old = env.load(space, addr, size, tid0 + l).map_err(fault)?;
                let bv = if aop == AtomOp::Cas { regs[b + l] } else { 0 };
                let new = atom_apply(aop, i.ty, old, regs[a + l], bv);
                env.store(space, addr, size, tid0 + l, new).map_err(fault)?;
                if is_atom {
                    regs[d + l] = old;
                }
                Ok(())
            })?;
        }
        Op::IsSpace(space) => {
            let (d, a) = (i.d as usize * 32, i.a as usize * 32);
            lanes(exec, |l| {
                let v = regs[a + l];
                let in_win = |w: u64| v.wrapping_sub(w) < WINDOW_SIZE;
                let r = match space {
                    Space::Shared => in_win(SHARED_WINDOW),
                    Space::Local => in_win(LOCAL_WINDOW),
                    Space::Param => in_win(PARAM_WINDOW),
                    _ => !in_win(SHARED_WINDOW) && !in_win(LOCAL_WINDOW) && !in_win(PARAM_WINDOW),
                };
                regs[d + l] = u64::from(r);
            });
        }
        Op::CpAsync => {
            let (a, b) = (i.a as usize * 32, i.b as usize * 32);
            let n = i.aux as usize;
            try_lanes(exec, |l| {
                let dst = env.base(i.addr.base, regs, l, local_base).wrapping_add(off);
                let src = regs[a + l].wrapping_add(u64::from(i.e));
                let valid = (regs[b + l] as usize).min(n);
                for k in (0..n).step_by(4) {
                    let v = if k < valid {
                        let take = (valid - k).min(4);
                        env.load(Space::Generic, src + k as u64, take, tid0 + l)
                            .map_err(fault)?
                    } else {
                        0
                    };
                    env.store(Space::Shared, dst + k as u64, 4, tid0 + l, v)
                        .map_err(fault)?;
                }
                Ok(())
            })?;
        }
        _ => unreachable_op(i)?,
    }
    Ok(())
}

fn unreachable_op(i: &Inst) -> Result<(), LaunchError> {
    Err(LaunchError::Unsupported {
        instr: format!("{:?}", i.op).to_lowercase(),
        line: i.line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomics() {
        assert_eq!(atom_apply(AtomOp::Inc, Ty::U32, 7, 7, 0), 0);
        assert_eq!(atom_apply(AtomOp::Inc, Ty::U32, 3, 7, 0), 4);
        assert_eq!(atom_apply(AtomOp::Dec, Ty::U32, 0, 5, 0), 5);
        assert_eq!(atom_apply(AtomOp::Dec, Ty::U32, 3, 5, 0), 2);
        assert_eq!(
            atom_apply(AtomOp::Min, Ty::S32, 1, 0xffff_ffff, 0),
            0xffff_ffff
        );
        assert_eq!(atom_apply(AtomOp::Cas, Ty::U32, 0, 0, 9), 9);
        assert_eq!(atom_apply(AtomOp::Cas, Ty::U32, 1, 0, 9), 1);
        // f16x2: (1.0, 2.0) + (0.5, 0.25) = (1.5, 2.25)
        assert_eq!(
            atom_apply(AtomOp::Add, Ty::F16x2, 0x4000_3c00, 0x3400_3800, 0),
            0x4080_3e00
        );
    }
}
