//! One instruction's opcode, modifiers and operands → [`Inst`].

use super::mods::Mods;
use super::{FuncCtx, VarRef, perr};
use crate::ParseError;
use crate::ast::{Instr, Operand};
use crate::ops::{Addr, AtomOp, Base, BoolOp, Inst, Op};
use crate::types::{Space, Ty};

impl FuncCtx<'_> {
    /// Decodes one instruction; an opcode the executor does not implement becomes
    /// [`Op::Unsupported`], which fails the launch only if it is executed.
    pub(crate) fn instr(&mut self, i: &Instr) -> Result<Inst, ParseError> {
        let line = i.line;
        let mut parts = i.opcode.split('.');
        let base = parts.next().unwrap_or_default();
        let m = Mods {
            parts: parts.collect(),
        };
        let types = m.types();
        let ty = types.last().copied().unwrap_or(Ty::B32);
        let decoded = match self.decode_op(base, &m, &types, ty, &i.operands, line) {
            Err(e) if e.message.starts_with(super::regs::UNSUPPORTED_SPECIAL) => {
                let mut u = Inst::new(Op::Unsupported, ty, line);
                let reg = &e.message[super::regs::UNSUPPORTED_SPECIAL.len()..];
                u.aux = self.unsupported_name(format!("{} (reads {reg})", i.opcode));
                Some(u)
            }
            r => r?,
        };
        let mut inst = match decoded {
            Some(inst) => inst,
            None => {
                let mut u = Inst::new(Op::Unsupported, ty, line);
                u.aux = self.unsupported_name(i.opcode.clone());
                u
            }
        };
        if let Some((neg, p)) = &i.guard {
            inst.guard = self.reg(p, line)?;
            inst.gneg = *neg;
        }
        Ok(inst)
    }

    pub(super) fn operand(ops: &[Operand], n: usize, line: u32) -> Result<&Operand, ParseError> {
        ops.get(n)
            .ok_or_else(|| perr(line, format!("missing operand {}", n + 1)))
    }

    /// Resolves an address operand `[base+off]` (or a bare symbol) in `space`.
    /// Returns the address and the space the access really goes to.
    pub(super) fn addr(
        &mut self,
        o: &Operand,
        space: Space,
        line: u32,
    ) -> Result<(Addr, Space), ParseError> {
        let (name, off) = match o {
            Operand::Addr(n, off) => (n.as_deref(), *off),
            Operand::Name(n) => (Some(n.as_str()), 0),
            _ => return Err(perr(line, format!("expected an address, found {o:?}"))),
        };
        let Some(name) = name else {
            return Ok((
                Addr {
                    base: Base::Abs,
                    off,
                },
                space,
            ));
        };
        if let Some(r) = self.reg_lookup(name) {
            return Ok((
                Addr {
                    base: Base::Reg(r),
                    off,
                },
                space,
            ));
        }
        let (base, off, sp) = match self.var(name) {
            Some(VarRef::Global(id, sp)) => (Base::Global(id), off, sp),
            Some(VarRef::Shared(o)) => (Base::Abs, off.wrapping_add(o as i64), Space::Shared),
            Some(VarRef::DynShared) => (Base::DynShared, off, Space::Shared),
            Some(VarRef::KParam(o)) => (Base::Abs, off.wrapping_add(o as i64), Space::Param),
            Some(VarRef::Frame(o)) => (Base::Frame, off.wrapping_add(i64::from(o)), Space::Local),
            None => return Err(perr(line, format!("unknown variable or register `{name}`"))),
        };
        // A generic access through a variable's name goes to the variable's own space.
        let space = if space == Space::Generic || space == Space::Param {
            sp
        } else {
            space
        };
        Ok((Addr { base, off }, space))
    }

    #[allow(clippy::too_many_lines)]
    fn decode_op(
        &mut self,
        base: &str,
        m: &Mods<'_>,
        types: &[Ty],
        ty: Ty,
        ops: &[Operand],
        line: u32,
    ) -> Result<Option<Inst>, ParseError> {
        let op = |n: usize| Self::operand(ops, n, line);
        let mut inst = Inst::new(Op::Nop, ty, line);
        inst.rnd = m.rnd();
        inst.ftz = m.has("ftz");
        inst.sat = m.has("sat") || m.has("satfinite");
        if let Some(inst) = self.arith(base, m, ty, ops, line)? {
            return Ok(Some(inst));
        }
        if matches!(
            base,
            "bar" | "barrier" | "shfl" | "vote" | "match" | "redux"
        ) {
            return self.collective(base, m, ty, ops, inst);
        }
        match base {
            "mov" => {
                let (d, s) = (op(0)?, op(1)?);
                match (d, s) {
                    (Operand::Vector(parts), _) => {
                        inst.op = Op::Unpack;
                        self.vector(&mut inst, parts, ty, line)?;
                        inst.a = self.src(s, ty, line)?;
                    }
                    (_, Operand::Vector(parts)) => {
                        inst.op = Op::Pack;
                        inst.d = self.dst(d, line)?;
                        self.vector(&mut inst, parts, ty, line)?;
                    }
                    (_, Operand::Name(n))
                        if self.reg_lookup(n).is_none() && self.var(n).is_some() =>
                    {
                        inst.op = Op::MovAddr;
                        inst.d = self.dst(d, line)?;
                        inst.addr = self.addr(s, Space::Generic, line)?.0;
                    }
                    (_, Operand::Addr(Some(_), _)) => {
                        inst.op = Op::MovAddr;
                        inst.d = self.dst(d, line)?;
                        inst.addr = self.addr(s, Space::Generic, line)?.0;
                    }
                    (_, Operand::Name(n)) if n == "%clock" || n == "%clock64" => {
                        inst.op = Op::Clock;
                        inst.d = self.dst(d, line)?;
                    }
                    (_, Operand::Name(n))
                        if self.g.funcs.contains_key(n.as_str())
                            && self.reg_lookup(n).is_none() =>
                    {
                        let idx = self.g.funcs.get(n.as_str()).copied().unwrap_or(0);
                        inst.op = Op::MovAddr;
                        inst.d = self.dst(d, line)?;
                        inst.addr = Addr {
                            base: Base::Abs,
                            off: func_addr(idx) as i64,
                        };
                    }
                    (_, Operand::Name(n)) if n == "%globaltimer" => {
                        inst.op = Op::GlobalTimer;
                        inst.d = self.dst(d, line)?;
                    }
                    _ => {
                        inst.op = Op::Mov;
                        inst.d = self.dst(d, line)?;
                        inst.a = self.src(s, ty, line)?;
                    }
                }
            }
            "ld" | "ldu" => {
                let (a, sp) = self.addr(op(1)?, m.space(), line)?;
                inst.op = Op::Ld(sp);
                inst.addr = a;
                // For loads, `sat` marks a volatile (or ordered) load: another thread may
                // write that memory.
                inst.sat = m.has("volatile") || m.has("acquire") || m.has("relaxed");
                inst.vn = m.vec();
                match op(0)? {
                    Operand::Vector(parts) => self.vector(&mut inst, parts, ty, line)?,
                    d => inst.v[0] = self.dst(d, line)?,
                }
                self.check_vec(&inst, m, line)?;
            }
            "st" => {
                let (a, sp) = self.addr(op(0)?, m.space(), line)?;
                inst.op = Op::St(sp);
                inst.addr = a;
                inst.vn = m.vec();
                match op(1)? {
                    Operand::Vector(parts) => self.vector(&mut inst, parts, ty, line)?,
                    s => inst.v[0] = self.src(s, ty, line)?,
                }
                self.check_vec(&inst, m, line)?;
            }
            "atom" | "red" => {
                if m.vec() != 1 {
                    return Ok(None);
                }
                let Some(aop) = m.atom_op() else {
                    return Ok(None);
                };
                let is_red = base == "red";
                let k = usize::from(!is_red);
                let (a, sp) = self.addr(op(k)?, m.space(), line)?;
                inst.op = if is_red {
                    Op::Red(sp, aop)
                } else {
                    Op::Atom(sp, aop)
                };
                inst.addr = a;
                if !is_red {
                    inst.d = self.dst(op(0)?, line)?;
                }
                inst.a = self.src(op(k + 1)?, ty, line)?;
                if aop == AtomOp::Cas {
                    inst.b = self.src(op(k + 2)?, ty, line)?;
                }
                let half = matches!(ty, Ty::F16 | Ty::F16x2 | Ty::Bf16 | Ty::Bf16x2);
                let word = matches!(
                    ty,
                    Ty::U32 | Ty::S32 | Ty::B32 | Ty::U64 | Ty::S64 | Ty::B64 | Ty::F32 | Ty::F64
                );
                let supported = word || (half && aop == AtomOp::Add);
                if !supported || (ty.is_float() && !matches!(aop, AtomOp::Add | AtomOp::Exch)) {
                    return Ok(None);
                }
            }
            "cvta" => {
                let to = m.has("to");
                inst.op = Op::Cvta(m.space(), !to);
                inst.d = self.dst(op(0)?, line)?;
                let s = op(1)?;
                let is_var = match s {
                    Operand::Addr(..) => true,
                    Operand::Name(n) => self.reg_lookup(n).is_none() && self.var(n).is_some(),
                    _ => false,
                };
                if is_var {
                    // `cvta.shared.u64 %rd, var`: the variable's address, then the window.
                    inst.addr = self.addr(s, Space::Generic, line)?.0;
                } else {
                    inst.a = self.src(s, ty, line)?;
                }
            }
            "cvt" if matches!(types, [Ty::F16x2 | Ty::Bf16x2, Ty::F32]) && ops.len() == 3 => {
                inst.op = Op::CvtPack;
                inst.ty = types[0];
                inst.ty2 = Ty::F32;
                inst.d = self.dst(op(0)?, line)?;
                inst.a = self.src(op(1)?, Ty::F32, line)?;
                inst.b = self.src(op(2)?, Ty::F32, line)?;
            }
            "cvt" => {
                let [dt, st] = types else { return Ok(None) };
                inst.op = Op::Cvt;
                inst.ty = *dt;
                inst.ty2 = *st;
                inst.d = self.dst(op(0)?, line)?;
                inst.a = self.src(op(1)?, *st, line)?;
            }
            "setp" | "set" => {
                let Some(c) = m.cmp() else { return Ok(None) };
                let bop = m.boolop();
                let st = *types.last().unwrap_or(&Ty::B32);
                if matches!(st, Ty::F16x2 | Ty::Bf16x2 | Ty::B128) {
                    return Ok(None);
                }
                inst.op = if base == "setp" {
                    Op::Setp(c, bop)
                } else {
                    Op::Set(c, bop)
                };
                inst.ty = st;
                if base == "set" {
                    inst.ty = *types.first().unwrap_or(&Ty::U32);
                    inst.ty2 = st;
                }
                match op(0)? {
                    Operand::Pair(p, q) => {
                        inst.d = self.reg(p, line)?;
                        inst.d2 = self.reg(q, line)?;
                    }
                    d => inst.d = self.dst(d, line)?,
                }
                inst.a = self.src(op(1)?, st, line)?;
                inst.b = self.src(op(2)?, st, line)?;
                if bop != BoolOp::None {
                    inst.c = self.pred_src(op(3)?, line)?;
                }
            }
            "slct" => {
                let [dt, st] = types else { return Ok(None) };
                inst.op = Op::Slct;
                inst.ty = *dt;
                inst.ty2 = *st;
                inst.d = self.dst(op(0)?, line)?;
                inst.a = self.src(op(1)?, *dt, line)?;
                inst.b = self.src(op(2)?, *dt, line)?;
                inst.c = self.src(op(3)?, *st, line)?;
            }
            "brx" => {
                let Some(Operand::Name(t)) = ops.get(1) else {
                    return Err(perr(
                        line,
                        "brx.idx needs an index and a .branchtargets table",
                    ));
                };
                inst.op = Op::BrxIdx;
                inst.a = self.src(op(0)?, Ty::U32, line)?;
                inst.aux = *self
                    .tables
                    .get(t)
                    .ok_or_else(|| perr(line, format!("unknown .branchtargets table `{t}`")))?;
            }
            "bra" => {
                let Operand::Name(l) = op(0)? else {
                    return Err(perr(line, "bra needs a label"));
                };
                inst.op = Op::Bra;
                inst.aux = *self
                    .labels
                    .get(l)
                    .ok_or_else(|| perr(line, format!("unknown label `{l}`")))?;
            }
            "ret" => inst.op = Op::Ret,
            "exit" => inst.op = Op::Exit,
            "trap" | "brkpt" => inst.op = Op::Trap,
            "membar" | "fence" | "prefetch" | "prefetchu" | "pmevent" | "nanosleep"
            | "griddepcontrol" => {
                inst.op = Op::Nop;
            }
            "call" => return self.call(ops, line).map(Some),
            "lop3" if m.parts.len() == 1 => {
                inst.op = Op::Lop3;
                inst.d = self.dst(op(0)?, line)?;
                inst.a = self.src(op(1)?, ty, line)?;
                inst.b = self.src(op(2)?, ty, line)?;
                inst.c = self.src(op(3)?, ty, line)?;
                let Operand::Int(lut) = op(4)? else {
                    return Err(perr(line, "lop3 needs an immediate lookup table"));
                };
                inst.aux = u32::try_from(*lut & 0xff).unwrap_or(0);
            }
            "isspacep" => {
                inst.op = Op::IsSpace(m.space());
                inst.d = self.dst(op(0)?, line)?;
                inst.a = self.src(op(1)?, Ty::U64, line)?;
            }
            "cp" if m.has("async") && !m.has("bulk") => {
                if m.has("commit_group") || m.has("wait_group") || m.has("wait_all") {
                    inst.op = Op::Nop;
                    return Ok(Some(inst));
                }
                let (dst, _) = self.addr(op(0)?, Space::Shared, line)?;
                let (src, _) = self.addr(op(1)?, Space::Global, line)?;
                let Operand::Int(n) = op(2)? else {
                    return Ok(None);
                };
                let Base::Reg(sreg) = src.base else {
                    return Ok(None);
                };
                inst.op = Op::CpAsync;
                inst.addr = dst;
                inst.a = sreg;
                inst.e = u32::try_from(src.off).unwrap_or(0);
                inst.aux = u32::try_from(*n)
                    .ok()
                    .filter(|n| matches!(n, 4 | 8 | 16))
                    .ok_or_else(|| perr(line, "cp.async copies 4, 8 or 16 bytes"))?;
                // `cp-size, src-size`: fewer source bytes means zero fill.
                inst.b = match ops.get(3) {
                    Some(o) => self.src(o, Ty::U32, line)?,
                    None => self.konst(u64::from(inst.aux), line)?,
                };
            }
            _ => return Ok(None),
        }
        Ok(Some(inst))
    }
}

/// Address of function `idx` (see [`crate::FUNC_WINDOW`]).
pub(crate) fn func_addr(idx: u32) -> u64 {
    crate::FUNC_WINDOW + u64::from(idx) * crate::FUNC_STRIDE
}
