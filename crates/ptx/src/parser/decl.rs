//! Declarations: variables with initializers, parameters, function headers.
// Float initializers are rounded to the declared width, as ptxas does.
#![allow(clippy::cast_possible_truncation)]

use super::{Parser, float_bits, parse_num, perr};
use crate::ParseError;
use crate::ast::{FuncDecl, Operand, VarDecl};
use crate::lexer::Tok;
use crate::types::{Space, Ty};

/// The largest variable or parameter: the whole device window (1 TiB).
const MAX_DECL_BYTES: u64 = 1 << 40;
/// The largest `.align` accepted.
const MAX_ALIGN: u64 = 1 << 32;

impl Parser {
    /// After the space word: `[.align n] [.v2] .ty name[[n]] [= init];`
    pub(super) fn var_decl(&mut self, space: Space, line: u32) -> Result<VarDecl, ParseError> {
        let mut v = self.typed_decl(space, line)?;
        if self.eat('=') {
            self.initializer(&mut v)?;
            if v.count == Some(0) {
                let n = v.init.len() as u64 / u64::from(v.ty.size());
                v.count = Some(n);
            }
        }
        self.expect(';')?;
        Ok(v)
    }

    /// `[.align n] [.vN] .ty name[[n]]` as a declaration in `space`, without an initializer.
    fn typed_decl(&mut self, space: Space, line: u32) -> Result<VarDecl, ParseError> {
        let (ty, align, name, count) = self.typed_name(line)?;
        Ok(VarDecl {
            name,
            space,
            ty,
            align,
            count,
            init: Vec::new(),
            relocs: Vec::new(),
            is_extern: false,
            line,
        })
    }

    /// `[.align n] [.ptr .space] [.vN] .ty name[[n]]` shared by variables and parameters.
    /// Refuses sizes over [`MAX_DECL_BYTES`] and alignments that are not powers of two up to
    /// [`MAX_ALIGN`].
    fn typed_name(&mut self, line: u32) -> Result<(Ty, u64, String, Option<u64>), ParseError> {
        let mut align = None;
        let mut ty = None;
        let mut vec = 1u64;
        loop {
            let w = self.word()?;
            if w == ".align" {
                align = Some(self.count()?);
            } else if let Some(t) = w.strip_prefix('.').and_then(Ty::from_name) {
                ty = Some(t);
            } else if w == ".v2" || w == ".v4" || w == ".v8" {
                vec = w[2..].parse().unwrap_or(1);
            } else if w == ".ptr"
                || w.strip_prefix('.').and_then(Space::from_name).is_some()
                || w == ".texref"
                || w == ".samplerref"
                || w == ".surfref"
            {
                if w.ends_with("ref") {
                    return Err(perr(line, format!("not supported yet: `{w}` variables")));
                }
            } else if w.starts_with('.') {
                return Err(perr(line, format!("unknown declaration attribute `{w}`")));
            } else {
                let ty =
                    ty.ok_or_else(|| perr(line, format!("`{w}` is declared without a type")))?;
                let mut count = if self.eat('[') {
                    let n = if self.is_punct(']') { 0 } else { self.count()? };
                    self.expect(']')?;
                    Some(n)
                } else {
                    None
                };
                while self.eat('[') {
                    let n = self.count()?;
                    self.expect(']')?;
                    count = count.map(|c| c.saturating_mul(n));
                }
                if vec > 1 {
                    count = Some(count.unwrap_or(1).saturating_mul(vec));
                }
                let align = align.unwrap_or(u64::from(ty.size()) * vec);
                // Sizes and alignments are summed and rounded later: bounding them here keeps
                // that arithmetic from overflowing on any input.
                if !align.is_power_of_two() || align > MAX_ALIGN {
                    return Err(perr(
                        line,
                        format!("`{w}`: .align {align} is not a power of two up to {MAX_ALIGN}"),
                    ));
                }
                let bytes = count.unwrap_or(1).checked_mul(u64::from(ty.size()));
                if bytes.is_none_or(|b| b > MAX_DECL_BYTES) {
                    return Err(perr(
                        line,
                        format!("`{w}` is larger than {MAX_DECL_BYTES} bytes, the device window"),
                    ));
                }
                return Ok((ty, align, w, count));
            }
        }
    }

    fn initializer(&mut self, v: &mut VarDecl) -> Result<(), ParseError> {
        if self.eat('{') {
            if !self.is_punct('}') {
                loop {
                    if self.is_punct('{') {
                        self.initializer(v)?;
                    } else {
                        self.init_value(v)?;
                    }
                    if !self.eat(',') {
                        break;
                    }
                }
            }
            self.expect('}')
        } else {
            self.init_value(v)
        }
    }

    fn init_value(&mut self, v: &mut VarDecl) -> Result<(), ParseError> {
        let line = self.line();
        let neg = self.eat('-');
        let size = v.ty.size() as usize;
        let bits: u64 = match self.next()? {
            Tok::Num(n) => match parse_num(&n) {
                Some(Operand::Int(i)) => {
                    let i = if neg { i.wrapping_neg() } else { i };
                    if v.ty.is_float() {
                        float_bits(v.ty, i as f64)
                    } else {
                        i as u64
                    }
                }
                Some(Operand::F32(b)) => {
                    let f = f64::from(f32::from_bits(b));
                    float_bits(v.ty, if neg { -f } else { f })
                }
                Some(Operand::F64(b)) => {
                    let f = f64::from_bits(b);
                    float_bits(v.ty, if neg { -f } else { f })
                }
                _ => return Err(perr(line, format!("bad initializer value `{n}`"))),
            },
            Tok::Word(w) => {
                // `sym`, `generic(sym)`, `sym+4`: the address of a variable or function.
                let name = if w == "generic" {
                    self.expect('(')?;
                    let n = self.word()?;
                    self.expect(')')?;
                    n
                } else {
                    w
                };
                let addend = if self.eat('+') { self.int()? } else { 0 };
                if neg || !matches!(size, 4 | 8) {
                    return Err(perr(
                        line,
                        format!("address of `{name}` must initialize a 32- or 64-bit value"),
                    ));
                }
                v.relocs.push(crate::Reloc {
                    offset: v.init.len() as u64,
                    width: size as u32,
                    symbol: name,
                    addend,
                });
                0
            }
            _ => return Err(perr(line, "bad initializer value")),
        };
        v.init.extend_from_slice(&bits.to_le_bytes()[..size.min(8)]);
        Ok(())
    }

    fn params(&mut self, line: u32) -> Result<Vec<VarDecl>, ParseError> {
        self.expect('(')?;
        let mut out = Vec::new();
        if self.eat(')') {
            return Ok(out);
        }
        loop {
            let w = self.word()?;
            let space = match w.as_str() {
                ".param" => Space::Param,
                ".reg" => Space::Local,
                _ => return Err(perr(self.line(), format!("expected `.param`, found `{w}`"))),
            };
            out.push(self.typed_decl(space, line)?);
            if self.eat(')') {
                return Ok(out);
            }
            self.expect(',')?;
        }
    }

    pub(super) fn function(&mut self, is_entry: bool, line: u32) -> Result<FuncDecl, ParseError> {
        let rets = if self.is_punct('(') {
            self.params(line)?
        } else {
            Vec::new()
        };
        let name = self.word()?;
        let params = if self.is_punct('(') {
            self.params(line)?
        } else {
            Vec::new()
        };
        let mut f = FuncDecl {
            name,
            is_entry,
            rets,
            params,
            body: None,
            maxntid: None,
            reqntid: None,
            line,
        };
        loop {
            match self.peek().cloned() {
                Some(Tok::Punct(';')) => {
                    self.pos += 1;
                    return Ok(f);
                }
                Some(Tok::Punct('{')) => break,
                Some(Tok::Word(w)) => {
                    self.pos += 1;
                    match w.as_str() {
                        ".maxntid" | ".reqntid" | ".minnctapersm" | ".maxnreg"
                        | ".maxclusterrank" | ".reqnctapercluster" | ".explicitcluster" => {
                            let mut dims = Vec::new();
                            while matches!(self.peek(), Some(Tok::Num(_))) {
                                dims.push(self.count()?);
                                if !self.eat(',') {
                                    break;
                                }
                            }
                            let total = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
                            let total = total.and_then(|t| u32::try_from(t).ok());
                            match w.as_str() {
                                ".maxntid" => f.maxntid = total,
                                ".reqntid" => f.reqntid = total,
                                _ => {}
                            }
                        }
                        ".noreturn" => {}
                        ".pragma" => self.skip_statement()?,
                        _ => {
                            return Err(perr(
                                self.line(),
                                format!("unknown function attribute `{w}`"),
                            ));
                        }
                    }
                }
                _ => {
                    return Err(perr(
                        self.line(),
                        format!("expected `{{`, found {}", self.shown()),
                    ));
                }
            }
        }
        f.body = Some(self.body()?);
        Ok(f)
    }
}
