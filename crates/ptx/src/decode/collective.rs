//! Barriers and warp collectives: `bar`/`barrier` (incl. `bar.red`), `shfl`, `vote`,
//! `match`, `redux`.

use super::mods::Mods;
use super::{FuncCtx, perr};
use crate::ParseError;
use crate::ast::Operand;
use crate::ops::{AtomOp, BarRedKind, Inst, Op, ShflMode, VoteMode};
use crate::types::Ty;

impl FuncCtx<'_> {
    /// Decodes a barrier or collective; `None` when this form is not supported.
    pub(super) fn collective(
        &mut self,
        base: &str,
        m: &Mods<'_>,
        ty: Ty,
        ops: &[Operand],
        mut inst: Inst,
    ) -> Result<Option<Inst>, ParseError> {
        let line = inst.line;
        let op = |n: usize| Self::operand(ops, n, line);
        match base {
            "bar" | "barrier" => {
                if m.has("red") {
                    let Some(kind) = m.pick(&[
                        ("popc", BarRedKind::Popc),
                        ("and", BarRedKind::And),
                        ("or", BarRedKind::Or),
                    ]) else {
                        return Ok(None);
                    };
                    inst.op = Op::BarRed(kind);
                    inst.d = self.dst(op(0)?, line)?;
                    let (p, neg) = match ops.last() {
                        Some(Operand::Not(p)) => (p.as_str(), true),
                        Some(Operand::Name(p)) => (p.as_str(), false),
                        _ => return Err(perr(line, "bar.red needs a predicate")),
                    };
                    inst.c = self.reg(p, line)?;
                    inst.sat = neg;
                    // `bar.red.op d, id{, count}, p`
                    inst.a = self.src(op(1)?, Ty::U32, line)?;
                    if ops.len() == 4 {
                        inst.b = self.src(op(2)?, Ty::U32, line)?;
                    }
                } else if m.has("warp") {
                    inst.op = Op::Nop;
                } else if m.has("arrive") || m.has("sync") || m.parts.is_empty() || m.has("aligned")
                {
                    // `bar.sync id{, count}` / `bar.arrive id, count`
                    inst.op = if m.has("arrive") {
                        Op::BarArrive
                    } else {
                        Op::Bar
                    };
                    inst.a = self.src(op(0)?, Ty::U32, line)?;
                    if let Some(c) = ops.get(1) {
                        inst.b = self.src(c, Ty::U32, line)?;
                    } else if m.has("arrive") {
                        return Err(perr(line, "bar.arrive needs a thread count"));
                    }
                } else {
                    return Ok(None);
                }
            }
            "shfl" => {
                let Some(mode) = m.pick(&[
                    ("up", ShflMode::Up),
                    ("down", ShflMode::Down),
                    ("bfly", ShflMode::Bfly),
                    ("idx", ShflMode::Idx),
                ]) else {
                    return Ok(None);
                };
                inst.op = Op::Shfl(mode);
                match op(0)? {
                    Operand::Pair(p, q) => {
                        inst.d = self.reg(p, line)?;
                        inst.d2 = self.reg(q, line)?;
                    }
                    d => inst.d = self.dst(d, line)?,
                }
                inst.a = self.src(op(1)?, ty, line)?;
                inst.b = self.src(op(2)?, Ty::U32, line)?;
                inst.c = self.src(op(3)?, Ty::U32, line)?;
                inst.e = match ops.get(4) {
                    Some(o) => self.src(o, Ty::U32, line)?,
                    None => self.konst(0xffff_ffff, line)?,
                };
            }
            "vote" => {
                let Some(mode) = m.pick(&[
                    ("all", VoteMode::All),
                    ("any", VoteMode::Any),
                    ("uni", VoteMode::Uni),
                    ("ballot", VoteMode::Ballot),
                ]) else {
                    return Ok(None);
                };
                inst.op = Op::Vote(mode);
                inst.d = self.dst(op(0)?, line)?;
                let (p, neg) = match op(1)? {
                    Operand::Not(p) => (p.as_str(), true),
                    Operand::Name(p) => (p.as_str(), false),
                    _ => return Err(perr(line, "vote needs a predicate")),
                };
                inst.a = self.reg(p, line)?;
                inst.gneg = false;
                inst.sat = neg;
            }
            "match" => {
                inst.op = Op::Match(m.has("all"));
                match op(0)? {
                    Operand::Pair(p, q) => {
                        inst.d = self.reg(p, line)?;
                        inst.d2 = self.reg(q, line)?;
                    }
                    d => inst.d = self.dst(d, line)?,
                }
                inst.a = self.src(op(1)?, ty, line)?;
            }
            "redux" => {
                let Some(aop) = m.atom_op() else {
                    return Ok(None);
                };
                if !matches!(
                    aop,
                    AtomOp::Add
                        | AtomOp::Min
                        | AtomOp::Max
                        | AtomOp::And
                        | AtomOp::Or
                        | AtomOp::Xor
                ) || ty.is_float()
                {
                    return Ok(None);
                }
                inst.op = Op::Redux(aop);
                inst.d = self.dst(op(0)?, line)?;
                inst.a = self.src(op(1)?, ty, line)?;
            }
            _ => return Ok(None),
        }
        Ok(Some(inst))
    }
}
