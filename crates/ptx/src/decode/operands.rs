//! Operand resolution shared by the opcode decoders: vectors, predicates, `call` sites.

use super::mods::Mods;
use super::{CallInfo, FuncCtx, VarRef, perr};
use crate::ParseError;
use crate::ast::Operand;
use crate::ops::{Inst, Op};
use crate::types::Ty;

impl FuncCtx<'_> {
    pub(super) fn check_vec(&self, inst: &Inst, m: &Mods<'_>, line: u32) -> Result<(), ParseError> {
        if inst.vn != m.vec() {
            return Err(perr(
                line,
                format!(
                    "vector access needs {} registers, found {}",
                    m.vec(),
                    inst.vn
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn pred_src(&mut self, o: &Operand, line: u32) -> Result<u32, ParseError> {
        match o {
            Operand::Not(_) => Err(perr(line, "not supported yet: negated predicate operand")),
            o => self.src(o, Ty::Pred, line),
        }
    }

    pub(super) fn vector(
        &mut self,
        inst: &mut Inst,
        parts: &[Operand],
        ty: Ty,
        line: u32,
    ) -> Result<(), ParseError> {
        if parts.is_empty() || parts.len() > 4 {
            return Err(perr(line, "vector operands have 1 to 4 elements"));
        }
        inst.vn = u8::try_from(parts.len()).unwrap_or(4);
        for (k, p) in parts.iter().enumerate() {
            inst.v[k] = self.src(p, ty, line)?;
        }
        if matches!(inst.op, Op::Pack | Op::Unpack) {
            let part_bits = ty.bits() / u32::from(inst.vn);
            inst.ty2 = match part_bits {
                8 => Ty::B8,
                16 => Ty::B16,
                32 => Ty::B32,
                64 => Ty::B64,
                _ => return Err(perr(line, "bad vector split")),
            };
        }
        Ok(())
    }

    pub(super) fn call(&mut self, ops: &[Operand], line: u32) -> Result<Inst, ParseError> {
        let mut it = ops.iter().peekable();
        let rets = match it.peek() {
            Some(Operand::List(l)) => {
                it.next();
                l.clone()
            }
            _ => Vec::new(),
        };
        let target = match it.next() {
            Some(Operand::Name(n)) => n.clone(),
            _ => return Err(perr(line, "call needs a target")),
        };
        let args = match it.next() {
            Some(Operand::List(l)) => l.clone(),
            _ => Vec::new(),
        };
        let mut inst = Inst::new(Op::Call, Ty::B32, line);
        let through_reg = self.reg_lookup(&target);
        if let Some(r) = through_reg {
            inst.a = r;
        }
        let Some(callee) = through_reg
            .map(|_| super::INDIRECT)
            .or_else(|| self.g.funcs.get(&target).copied())
        else {
            inst.op = Op::Unsupported;
            inst.aux =
                self.unsupported_name(format!("call {target} (not a function of this module)"));
            return Ok(inst);
        };
        let slot = |cx: &Self, o: &Operand| -> Result<(u32, u32), ParseError> {
            match o {
                Operand::Name(n) => match cx.var(n) {
                    Some(VarRef::Frame(off)) => Ok((off, 0)),
                    _ => Err(perr(
                        line,
                        format!("call argument `{n}` is not a .param variable"),
                    )),
                },
                _ => Err(perr(line, "call arguments must be .param variables")),
            }
        };
        let mut info = CallInfo {
            callee,
            args: Vec::new(),
            rets: Vec::new(),
        };
        for a in &args {
            info.args.push(slot(self, a)?);
        }
        for r in &rets {
            info.rets.push(slot(self, r)?);
        }
        inst.aux = u32::try_from(self.prog.calls.len()).unwrap_or(u32::MAX);
        self.prog.calls.push(info);
        if target == "vprintf" {
            inst.op = Op::Printf;
        } else if target == "__assertfail" {
            inst.op = Op::AssertFail;
        }
        Ok(inst)
    }
}
