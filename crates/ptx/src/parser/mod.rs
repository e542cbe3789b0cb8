//! PTX text → syntax tree ([`Ast`]). Names stay strings here; the decoder resolves them.
// Float initializers are rounded to the declared width, as ptxas does.
#![allow(clippy::cast_possible_truncation)]

use crate::ParseError;
use crate::lexer::{Tok, Token, tokenize};

use crate::ast::{Ast, Operand};
use crate::types::{Space, Ty};

mod body;
mod decl;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

fn perr(line: u32, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses an integer literal as PTX writes it (decimal, `0x`, `0b`, octal, `U` suffix).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let s = s.strip_suffix(['U', 'u']).unwrap_or(s);
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        u64::from_str_radix(b, 2).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u64>().ok()?
    };
    Some(v as i64)
}

fn parse_num(s: &str) -> Option<Operand> {
    if let Some(h) = s.strip_prefix("0f").or_else(|| s.strip_prefix("0F")) {
        return (h.len() == 8).then(|| u32::from_str_radix(h, 16).ok().map(Operand::F32))?;
    }
    if let Some(h) = s.strip_prefix("0d").or_else(|| s.strip_prefix("0D")) {
        return (h.len() == 16).then(|| u64::from_str_radix(h, 16).ok().map(Operand::F64))?;
    }
    if let Some(v) = parse_int(s) {
        return Some(Operand::Int(v));
    }
    s.parse::<f64>().ok().map(|f| Operand::F64(f.to_bits()))
}

impl Parser {
    fn line(&self) -> u32 {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(1, |t| t.line)
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }
    fn next(&mut self) -> Result<Tok, ParseError> {
        let t = self
            .toks
            .get(self.pos)
            .map(|t| t.kind.clone())
            .ok_or_else(|| perr(self.line(), "unexpected end of input"))?;
        self.pos += 1;
        Ok(t)
    }
    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }
    fn eat(&mut self, c: char) -> bool {
        let hit = self.is_punct(c);
        if hit {
            self.pos += 1;
        }
        hit
    }
    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(perr(
                self.line(),
                format!("expected `{c}`, found {}", self.shown()),
            ))
        }
    }
    fn shown(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Num(n)) => format!("`{n}`"),
            Some(Tok::Str(s)) => format!("\"{s}\""),
            Some(Tok::Punct(c)) => format!("`{c}`"),
        }
    }
    fn word(&mut self) -> Result<String, ParseError> {
        match self.next()? {
            Tok::Word(w) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(perr(
                    self.line(),
                    format!("expected a name, found {}", self.shown()),
                ))
            }
        }
    }
    fn int(&mut self) -> Result<i64, ParseError> {
        let neg = self.eat('-');
        match self.next()? {
            Tok::Num(n) => parse_int(&n)
                .map(|v| if neg { v.wrapping_neg() } else { v })
                .ok_or_else(|| perr(self.line(), format!("bad integer `{n}`"))),
            _ => {
                self.pos -= 1;
                Err(perr(
                    self.line(),
                    format!("expected an integer, found {}", self.shown()),
                ))
            }
        }
    }
    fn count(&mut self) -> Result<u64, ParseError> {
        let line = self.line();
        u64::try_from(self.int()?).map_err(|_| perr(line, "negative size"))
    }
    /// Skips to just after the next `;` (for directives we ignore).
    fn skip_statement(&mut self) -> Result<(), ParseError> {
        while !self.eat(';') {
            self.next()?;
        }
        Ok(())
    }
    /// Skips a balanced `{ … }` block (debug `.section`s).
    fn skip_block(&mut self) -> Result<(), ParseError> {
        self.expect('{')?;
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn module(&mut self) -> Result<Ast, ParseError> {
        let mut ast = Ast::default();
        while let Some(tok) = self.peek().cloned() {
            let line = self.line();
            let Tok::Word(w) = tok else {
                return Err(perr(
                    line,
                    format!("unexpected {} at module level", self.shown()),
                ));
            };
            match w.as_str() {
                ".version" | ".target" | ".address_size" | ".file" | ".loc" | ".pragma" => {
                    self.pos += 1;
                    // These end at the line's end, and `.target` has no `;`.
                    while self.peek().is_some() && self.line() == line && !self.eat(';') {
                        self.pos += 1;
                    }
                }
                ".section" => {
                    self.pos += 1;
                    self.word()?;
                    self.skip_block()?;
                }
                _ => self.module_item(&mut ast)?,
            }
        }
        Ok(ast)
    }

    fn module_item(&mut self, ast: &mut Ast) -> Result<(), ParseError> {
        let line = self.line();
        let mut is_extern = false;
        loop {
            match self.peek() {
                Some(Tok::Word(w)) if w == ".visible" || w == ".weak" || w == ".common" => {
                    self.pos += 1;
                }
                Some(Tok::Word(w)) if w == ".extern" => {
                    is_extern = true;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let w = self.word()?;
        match w.as_str() {
            ".entry" | ".func" => {
                let f = self.function(w == ".entry", line)?;
                ast.funcs.push(f);
            }
            ".global" | ".const" | ".shared" | ".local" => {
                let space = Space::from_name(&w[1..]).unwrap_or(Space::Global);
                let mut v = self.var_decl(space, line)?;
                v.is_extern = is_extern;
                ast.vars.push(v);
            }
            _ => {
                return Err(perr(
                    line,
                    format!("unknown directive `{w}` at module level"),
                ));
            }
        }
        Ok(())
    }
}

fn float_bits(ty: Ty, f: f64) -> u64 {
    match ty {
        Ty::F32 => u64::from((f as f32).to_bits()),
        Ty::F16 => u64::from(crate::exec::half::f32_to_f16(f as f32)),
        _ => f.to_bits(),
    }
}

/// Parses PTX text into a syntax tree.
pub(crate) fn parse(src: &str) -> Result<Ast, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, pos: 0 };
    p.module()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Stmt;

    #[test]
    fn parses_declarations_and_instructions() {
        let src = ".version 9.0\n.target sm_75\n.address_size 64\n\
            .global .align 4 .b8 t[8] = {1, 2, 3};\n.const .f32 c = 0f3F800000;\n\
            .visible .entry k(.param .u64 k_param_0, .param .align 8 .b8 k_param_1[16])\n\
            .maxntid 128, 1, 1\n{\n.reg .pred %p<2>;\n.reg .b32 %r<4>;\n\
            @!%p1 bra $L__BB0_1;\nshfl.sync.down.b32 %r1|%p1, %r2, 1, 31, -1;\n\
            st.local.v2.u32 [%rd2+-8], {%r1, %r2};\n$L__BB0_1:\nret;\n}\n";
        let ast = parse(src).unwrap();
        assert_eq!(ast.vars.len(), 2);
        assert_eq!(ast.vars[0].init, vec![1, 2, 3]);
        assert_eq!(ast.vars[1].init, vec![0, 0, 0x80, 0x3f]);
        let f = &ast.funcs[0];
        assert_eq!(f.maxntid, Some(128));
        assert_eq!(f.params[1].count, Some(16));
        let body = f.body.as_ref().unwrap();
        let Stmt::Instr(i) = &body[2] else { panic!() };
        assert_eq!(i.guard, Some((true, "%p1".into())));
        let Stmt::Instr(i) = &body[3] else { panic!() };
        assert_eq!(i.operands[0], Operand::Pair("%r1".into(), "%p1".into()));
        assert_eq!(i.operands[4], Operand::Int(-1));
        let Stmt::Instr(i) = &body[4] else { panic!() };
        assert_eq!(i.operands[0], Operand::Addr(Some("%rd2".into()), -8));
    }

    #[test]
    fn skips_debug_sections_and_directives() {
        let src = ".version 9.0\n.target sm_75, debug\n.address_size 64\n\
            .entry k()\n{\n.loc 1 2 3\nret;\n}\n.file 1 \"k.cu\"\n\
            .section .debug_info\n{\n.b32 12\n.b8 1,2\n.b64 $L__func_begin0\n}\n";
        let ast = parse(src).unwrap();
        assert_eq!(ast.funcs.len(), 1);
        assert!(parse(".section .debug_info\n{\n.b8 1\n").is_err());
    }

    #[test]
    fn errors_carry_lines() {
        let e = parse(".version 9.0\n.entry k()\n{\n add.s32 %r1 %r2;\n}").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(parse(".entry k(\n").is_err());
        assert!(parse(".bogus x;").is_err());
    }
}
