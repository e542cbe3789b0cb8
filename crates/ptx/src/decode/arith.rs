//! The arithmetic, logic and math opcodes of the common shape `op d, a[, b[, c[, e]]]`.

use super::mods::Mods;
use super::{FuncCtx, perr};
use crate::ParseError;
use crate::ast::Operand;
use crate::ops::{Inst, Op, TestKind};
use crate::types::Ty;

impl FuncCtx<'_> {
    /// Decodes `base` if it is one of the common-shape opcodes.
    pub(super) fn arith(
        &mut self,
        base: &str,
        m: &Mods<'_>,
        ty: Ty,
        ops: &[Operand],
        line: u32,
    ) -> Result<Option<Inst>, ParseError> {
        let op = |n: usize| Self::operand(ops, n, line);
        let simple = |o: Op| -> Option<Op> { Some(o) };
        let mut inst = Inst::new(Op::Nop, ty, line);
        inst.rnd = m.rnd();
        inst.ftz = m.has("ftz");
        inst.sat = m.has("sat") || m.has("satfinite");
        // Ops with the common shape `op d, a[, b[, c]]`.
        let arith = match base {
            "add" if m.has("cc") => simple(Op::AddCarry(false, false, true)),
            "sub" if m.has("cc") => simple(Op::AddCarry(true, false, true)),
            "addc" => simple(Op::AddCarry(false, true, m.has("cc"))),
            "subc" => simple(Op::AddCarry(true, true, m.has("cc"))),
            "mad" if m.has("cc") => simple(Op::MadCarry(m.has("hi"), false, true)),
            "madc" => simple(Op::MadCarry(m.has("hi"), true, m.has("cc"))),
            "add" => simple(Op::Add),
            "sub" => simple(Op::Sub),
            "mul" if m.has("hi") => simple(Op::MulHi),
            "mul" if m.has("wide") => simple(Op::MulWide),
            "mul" => simple(Op::MulLo),
            "mul24" => simple(Op::Mul24(m.has("hi"))),
            "mad24" => simple(Op::Mad24(m.has("hi"))),
            "dp4a" => simple(Op::Dp4a),
            "mad" if m.has("hi") => simple(Op::MadHi),
            "mad" if m.has("wide") => simple(Op::MadWide),
            "mad" if ty.is_float() => simple(Op::Fma),
            "mad" => simple(Op::MadLo),
            "fma" => simple(Op::Fma),
            "div" => simple(Op::Div),
            "rem" => simple(Op::Rem),
            "abs" => simple(Op::Abs),
            "neg" => simple(Op::Neg),
            "min" => simple(Op::Min),
            "max" => simple(Op::Max),
            "and" => simple(Op::And),
            "or" => simple(Op::Or),
            "xor" => simple(Op::Xor),
            "not" => simple(Op::Not),
            "cnot" => simple(Op::CNot),
            "shl" => simple(Op::Shl),
            "shr" => simple(Op::Shr),
            "shf" => simple(Op::Shf(m.has("l"), m.has("clamp"))),
            "bfe" => simple(Op::Bfe),
            "bmsk" => simple(Op::Bmsk(m.has("clamp"))),
            "szext" => simple(Op::Szext(m.has("clamp"))),
            "bfi" => simple(Op::Bfi),
            "brev" => simple(Op::Brev),
            "clz" => simple(Op::Clz),
            "popc" => simple(Op::Popc),
            "bfind" => simple(Op::Bfind(m.has("shiftamt"))),
            "prmt" if m.parts.len() == 1 => simple(Op::Prmt),
            "sad" => simple(Op::Sad),
            "selp" => simple(Op::Selp),
            "rcp" => simple(Op::Rcp),
            "sqrt" => simple(Op::Sqrt),
            "rsqrt" => simple(Op::Rsqrt),
            "sin" => simple(Op::Sin),
            "cos" => simple(Op::Cos),
            "lg2" => simple(Op::Lg2),
            "ex2" => simple(Op::Ex2),
            "tanh" => simple(Op::Tanh),
            "copysign" => simple(Op::Copysign),
            "activemask" => simple(Op::Activemask),
            "testp" => {
                let Some(k) = m.pick(&[
                    ("finite", TestKind::Finite),
                    ("infinite", TestKind::Infinite),
                    ("number", TestKind::Number),
                    ("notanumber", TestKind::NotANumber),
                    ("normal", TestKind::Normal),
                    ("subnormal", TestKind::Subnormal),
                ]) else {
                    return Ok(None);
                };
                simple(Op::Testp(k))
            }
            _ => None,
        };
        if let Some(o) = arith {
            // A modifier this decoder does not know would change the result: refuse the
            // instruction rather than compute something else.
            const KNOWN: &[&str] = &[
                "ftz",
                "sat",
                "satfinite",
                "approx",
                "full",
                "lo",
                "hi",
                "wide",
                "cc",
                "shiftamt",
                "l",
                "r",
                "wrap",
                "clamp",
                "finite",
                "infinite",
                "number",
                "notanumber",
                "normal",
                "subnormal",
                "rn",
                "rz",
                "rm",
                "rp",
                "noftz",
            ];
            if m.parts
                .iter()
                .any(|p| Ty::from_name(p).is_none() && !KNOWN.contains(p))
            {
                return Ok(None);
            }
            if o == Op::Dp4a {
                let t = m.types();
                inst.ty = *t.first().unwrap_or(&Ty::U32);
                inst.ty2 = *t.get(1).unwrap_or(&Ty::U32);
            }
            inst.op = o;
            let nsrc = ops.len().saturating_sub(1);
            let want = match o {
                Op::Activemask => 0,
                Op::Abs
                | Op::Neg
                | Op::Not
                | Op::CNot
                | Op::Brev
                | Op::Clz
                | Op::Popc
                | Op::Bfind(_) => 1,
                Op::Rcp
                | Op::Sqrt
                | Op::Rsqrt
                | Op::Sin
                | Op::Cos
                | Op::Lg2
                | Op::Ex2
                | Op::Tanh
                | Op::Testp(_) => 1,
                Op::MadLo
                | Op::MadHi
                | Op::MadWide
                | Op::Fma
                | Op::Shf(..)
                | Op::Bfe
                | Op::Prmt
                | Op::Sad
                | Op::Mad24(_)
                | Op::Dp4a => 3,
                Op::Selp | Op::MadCarry(..) => 3,
                Op::Bfi => 4,
                _ => 2,
            };
            if nsrc != want || ops.is_empty() {
                return Err(perr(
                    line,
                    format!("`{base}` takes {} operands, found {}", want + 1, ops.len()),
                ));
            }
            inst.d = self.dst(op(0)?, line)?;
            // Shift amounts, bfe/bfi positions and selp's predicate are not of the op type.
            let src_ty = |k: usize| -> Ty {
                match (o, k) {
                    (Op::Shl | Op::Shr, 1) | (Op::Bfe, 1 | 2) | (Op::Bfi, 2 | 3) => Ty::U32,
                    (Op::Shf(..), 2) => Ty::U32,
                    (Op::MulWide | Op::MadWide, 2) => ty,
                    _ => ty,
                }
            };
            let slots = [&mut inst.a, &mut inst.b, &mut inst.c, &mut inst.e];
            for (k, slot) in slots.into_iter().enumerate().take(nsrc) {
                *slot = self.src(op(k + 1)?, src_ty(k), line)?;
            }
            if matches!(o, Op::AddCarry(..) | Op::MadCarry(..)) {
                inst.d2 = self.cc();
            }
            if o == Op::Activemask {
                inst.a = inst.d;
            }
            return Ok(Some(inst));
        }
        Ok(None)
    }
}
