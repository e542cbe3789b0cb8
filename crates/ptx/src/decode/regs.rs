//! Operand resolution inside a function: named, special, constant and sink registers;
//! variables through the scopes.
// Float immediates are rounded to the instruction's width, as ptxas does.
#![allow(clippy::cast_possible_truncation)]

use super::{FuncCtx, VarRef, perr};
use crate::ParseError;
use crate::ast::Operand;
use crate::ops::Special;
use crate::types::Ty;

/// Message prefix of a PTX special register the interpreter does not provide; the
/// instruction reading it decodes to [`crate::ops::Op::Unsupported`].
pub(super) const UNSUPPORTED_SPECIAL: &str = "special register not supported: ";

impl FuncCtx<'_> {
    pub(super) fn new_reg(&mut self, line: u32) -> Result<u32, ParseError> {
        let r = self.nregs;
        if r >= 1 << 22 {
            return Err(perr(line, "too many registers"));
        }
        self.nregs += 1;
        Ok(r)
    }

    /// A register holding the constant `v` in every lane.
    pub(crate) fn konst(&mut self, v: u64, line: u32) -> Result<u32, ParseError> {
        if let Some(&r) = self.consts.get(&v) {
            return Ok(r);
        }
        let r = self.new_reg(line)?;
        self.consts.insert(v, r);
        self.out.consts.push((r, v));
        Ok(r)
    }

    /// Resolves a variable name through the scopes, then module scope.
    pub(crate) fn var(&self, name: &str) -> Option<VarRef> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name).copied())
            .or_else(|| self.g.vars.get(name).copied())
    }

    /// Register index of a named register or special register.
    pub(crate) fn reg(&mut self, name: &str, line: u32) -> Result<u32, ParseError> {
        if let Some(r) = self.reg_lookup(name) {
            return Ok(r);
        }
        if name == "_" {
            return Ok(self.sink);
        }
        if name == "WARP_SZ" {
            return self.konst(32, line);
        }
        if let Some(s) = Special::from_name(name) {
            if let Some(&r) = self.specials.get(&s) {
                return Ok(r);
            }
            let r = self.new_reg(line)?;
            self.specials.insert(s, r);
            self.out.specials.push((r, s));
            return Ok(r);
        }
        const OTHER_SPECIALS: &[&str] = &[
            "%envreg",
            "%pm",
            "%clock_hi",
            "%cluster",
            "%nclusterid",
            "%clusterid",
            "%is_explicit_cluster",
            "%aggr_smem_size",
            "%reserved_smem_offset",
            "%current_graph_exec",
            "%globaltimer_lo",
            "%globaltimer_hi",
        ];
        if OTHER_SPECIALS.iter().any(|p| name.starts_with(p)) {
            return Err(perr(line, format!("{UNSUPPORTED_SPECIAL}{name}")));
        }
        Err(perr(line, format!("unknown register `{name}`")))
    }

    pub(super) fn declare(&mut self, name: String, ty: Ty, line: u32) -> Result<(), ParseError> {
        let known = self.regs.last().is_some_and(|s| s.contains_key(&name));
        if !known {
            let r = self.new_reg(line)?;
            self.out.declared_regs += 1;
            if let Some(s) = self.regs.last_mut() {
                s.insert(name, (r, ty));
            }
        }
        Ok(())
    }

    /// The register a name means here (innermost declaration first).
    pub(crate) fn reg_lookup(&self, name: &str) -> Option<u32> {
        self.regs
            .iter()
            .rev()
            .find_map(|s| s.get(name).map(|&(r, _)| r))
    }

    /// Register of a source operand (registers, immediates, specials).
    pub(crate) fn src(&mut self, o: &Operand, ctx: Ty, line: u32) -> Result<u32, ParseError> {
        match o {
            Operand::Name(n) => self.reg(n, line),
            Operand::Int(i) => {
                let v = if ctx == Ty::F32 {
                    u64::from((*i as f32).to_bits())
                } else if ctx == Ty::F64 {
                    (*i as f64).to_bits()
                } else {
                    *i as u64
                };
                self.konst(v, line)
            }
            Operand::F32(b) => {
                let f = f32::from_bits(*b);
                let v = match ctx {
                    Ty::F64 => f64::from(f).to_bits(),
                    Ty::F16 | Ty::F16x2 => u64::from(crate::exec::half::f32_to_f16(f)),
                    _ => u64::from(*b),
                };
                self.konst(v, line)
            }
            Operand::F64(b) => {
                let f = f64::from_bits(*b);
                let v = match ctx {
                    Ty::F32 => u64::from((f as f32).to_bits()),
                    _ => *b,
                };
                self.konst(v, line)
            }
            _ => Err(perr(
                line,
                format!("expected a register or value, found {o:?}"),
            )),
        }
    }

    /// Register of a destination operand.
    pub(crate) fn dst(&mut self, o: &Operand, line: u32) -> Result<u32, ParseError> {
        match o {
            Operand::Name(n) => self.reg(n, line),
            _ => Err(perr(
                line,
                format!("expected a destination register, found {o:?}"),
            )),
        }
    }

    pub(crate) fn unsupported_name(&mut self, name: String) -> u32 {
        let id = self.prog.names.len();
        self.prog.names.push(name);
        u32::try_from(id).unwrap_or(u32::MAX)
    }

    pub(crate) fn cc(&self) -> u32 {
        self.cc
    }
}
