//! Function bodies: register declarations, labels, instructions and their operands.

use super::{Parser, parse_num, perr};
use crate::ParseError;
use crate::ast::{Instr, Operand, Stmt};
use crate::lexer::Tok;
use crate::types::{Space, Ty};

impl Parser {
    pub(super) fn body(&mut self) -> Result<Vec<Stmt>, ParseError> {
        self.expect('{')?;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let line = self.line();
            match self.next()? {
                Tok::Punct('{') => {
                    depth += 1;
                    out.push(Stmt::Open);
                }
                Tok::Punct('}') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                    out.push(Stmt::Close);
                }
                Tok::Punct(';') => {}
                Tok::Punct('@') => {
                    let neg = self.eat('!');
                    let p = self.word()?;
                    let op = self.word()?;
                    out.push(Stmt::Instr(self.instr(Some((neg, p)), op, line)?));
                }
                Tok::Word(w) if self.is_punct(':') => {
                    self.pos += 1;
                    if matches!(self.peek(), Some(Tok::Word(w)) if w == ".callprototype") {
                        self.skip_statement()?;
                    } else if matches!(self.peek(), Some(Tok::Word(w)) if w == ".branchtargets") {
                        self.pos += 1;
                        let mut labels = Vec::new();
                        loop {
                            labels.push(self.word()?);
                            if !self.eat(',') {
                                break;
                            }
                        }
                        self.expect(';')?;
                        out.push(Stmt::BranchTargets(w, labels, line));
                    } else {
                        out.push(Stmt::Label(w, line));
                    }
                }
                Tok::Word(w) => match w.as_str() {
                    ".reg" => self.reg_decl(&mut out, line)?,
                    ".local" | ".shared" | ".param" | ".global" | ".const" => {
                        let space = Space::from_name(&w[1..]).unwrap_or(Space::Local);
                        out.push(Stmt::Var(self.var_decl(space, line)?));
                    }
                    ".loc" | ".pragma" | ".file" | ".maxnreg" => {
                        while self.peek().is_some() && self.line() == line && !self.eat(';') {
                            self.pos += 1;
                        }
                    }
                    _ if w.starts_with('.') => {
                        return Err(perr(
                            line,
                            format!("unknown directive `{w}` in function body"),
                        ));
                    }
                    _ => out.push(Stmt::Instr(self.instr(None, w, line)?)),
                },
                _ => {
                    self.pos -= 1;
                    return Err(perr(line, format!("unexpected {}", self.shown())));
                }
            }
        }
    }

    fn reg_decl(&mut self, out: &mut Vec<Stmt>, line: u32) -> Result<(), ParseError> {
        let mut ty = None;
        let mut vec = 1u32;
        loop {
            let w = self.word()?;
            if let Some(t) = w.strip_prefix('.').and_then(Ty::from_name) {
                ty = Some(t);
            } else if w == ".v2" || w == ".v4" {
                vec = if w == ".v2" { 2 } else { 4 };
            } else if w.starts_with('.') {
                return Err(perr(line, format!("unknown register attribute `{w}`")));
            } else {
                let ty = ty.ok_or_else(|| perr(line, "register declared without a type"))?;
                if vec > 1 {
                    return Err(perr(line, "not supported yet: vector registers"));
                }
                let count = if self.eat('<') {
                    let n = u32::try_from(self.count()?)
                        .ok()
                        .filter(|&n| n <= 1 << 20)
                        .ok_or_else(|| perr(line, "register range too large"))?;
                    self.expect('>')?;
                    Some(n)
                } else {
                    None
                };
                out.push(Stmt::Reg { ty, name: w, count });
                if self.eat(',') {
                    continue;
                }
                return self.expect(';');
            }
        }
    }

    fn instr(
        &mut self,
        guard: Option<(bool, String)>,
        opcode: String,
        line: u32,
    ) -> Result<Instr, ParseError> {
        let mut operands = Vec::new();
        if !self.is_punct(';') {
            loop {
                operands.push(self.operand()?);
                if !self.eat(',') {
                    break;
                }
            }
        }
        self.expect(';')?;
        Ok(Instr {
            guard,
            opcode,
            operands,
            line,
        })
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let line = self.line();
        match self.next()? {
            Tok::Word(w) => {
                if self.eat('|') {
                    let p = self.word()?;
                    return Ok(Operand::Pair(w, p));
                }
                if self.is_punct('+') {
                    // `sym+4` as a plain operand (e.g. `mov.u64 %rd1, arr+8`).
                    self.pos += 1;
                    let off = self.int()?;
                    return Ok(Operand::Addr(Some(w), off));
                }
                Ok(Operand::Name(w))
            }
            Tok::Punct('!') => Ok(Operand::Not(self.word()?)),
            Tok::Punct('-') => match self.next()? {
                Tok::Num(n) => match parse_num(&n) {
                    Some(Operand::Int(i)) => Ok(Operand::Int(i.wrapping_neg())),
                    Some(Operand::F32(b)) => Ok(Operand::F32(b ^ 0x8000_0000)),
                    Some(Operand::F64(b)) => Ok(Operand::F64(b ^ (1 << 63))),
                    _ => Err(perr(line, format!("bad number `{n}`"))),
                },
                _ => Err(perr(line, "expected a number after `-`")),
            },
            Tok::Num(n) => parse_num(&n).ok_or_else(|| perr(line, format!("bad number `{n}`"))),
            Tok::Punct('[') => {
                let base = match self.peek() {
                    Some(Tok::Word(_)) => Some(self.word()?),
                    _ => None,
                };
                if base.is_some() && self.eat(',') {
                    // `[tex, {coords}]` of texture/surface instructions: keep as a list.
                    let mut items = vec![Operand::Name(base.unwrap_or_default())];
                    loop {
                        items.push(self.operand()?);
                        if self.eat(']') {
                            return Ok(Operand::List(items));
                        }
                        self.expect(',')?;
                    }
                }
                let mut off = 0i64;
                if base.is_none() || self.eat('+') || self.is_punct('-') {
                    off = self.int()?;
                }
                self.expect(']')?;
                Ok(Operand::Addr(base, off))
            }
            Tok::Punct(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                let mut items = Vec::new();
                if !self.eat(close) {
                    loop {
                        items.push(self.operand()?);
                        if self.eat(close) {
                            break;
                        }
                        self.expect(',')?;
                    }
                }
                Ok(if open == '{' {
                    Operand::Vector(items)
                } else {
                    Operand::List(items)
                })
            }
            _ => {
                self.pos -= 1;
                Err(perr(
                    line,
                    format!("expected an operand, found {}", self.shown()),
                ))
            }
        }
    }
}
