//! PTX text → syntax tree ([`Ast`]). Names stay strings here; the decoder resolves them.
// Float initializers are rounded to the declared width, as ptxas does.
#![allow(clippy::cast_possible_truncation)]

use crate::ParseError;
use crate::lexer::{Tok, Token, tokenize};
use crate::types::{Space, Ty};

/// A parsed module.
#[derive(Debug, Default)]
pub(crate) struct Ast {
    /// Module-level variables.
    pub vars: Vec<VarDecl>,
    /// Functions and kernels, in text order.
    pub funcs: Vec<FuncDecl>,
}

/// A variable declaration (module level or inside a function body).
#[derive(Clone, Debug)]
pub(crate) struct VarDecl {
    /// Name.
    pub name: String,
    /// State space.
    pub space: Space,
    /// Element type.
    pub ty: Ty,
    /// Alignment in bytes.
    pub align: u64,
    /// `None` for a scalar, `Some(n)` for `name[n]` (`Some(0)` for `name[]`).
    pub count: Option<u64>,
    /// Initial bytes (may be shorter than the size; the rest is zero).
    pub init: Vec<u8>,
    /// Declared `.extern`.
    pub is_extern: bool,
    /// Line of the declaration.
    pub line: u32,
}

impl VarDecl {
    /// Size in bytes.
    pub(crate) fn size(&self) -> u64 {
        u64::from(self.ty.size()) * self.count.unwrap_or(1)
    }
}

/// A function or kernel.
#[derive(Debug)]
pub(crate) struct FuncDecl {
    /// Name.
    pub name: String,
    /// `.entry` (kernel) rather than `.func`.
    pub is_entry: bool,
    /// Return parameters.
    pub rets: Vec<VarDecl>,
    /// Parameters.
    pub params: Vec<VarDecl>,
    /// Body; `None` for a declaration (`.extern .func vprintf(...)`).
    pub body: Option<Vec<Stmt>>,
    /// `.maxntid`.
    pub maxntid: Option<u32>,
    /// `.reqntid`.
    pub reqntid: Option<u32>,
    /// Line of the header.
    pub line: u32,
}

/// A statement in a function body.
#[derive(Debug)]
pub(crate) enum Stmt {
    /// `.reg .ty name` or `.reg .ty name<n>`.
    Reg {
        /// Type.
        ty: Ty,
        /// Name (prefix for a range).
        name: String,
        /// `Some(n)` for `name<n>` (names `name0` … `name{n-1}`).
        count: Option<u32>,
    },
    /// `.local`, `.shared`, `.param` … inside the body.
    Var(VarDecl),
    /// `label:`
    Label(String, u32),
    /// An instruction.
    Instr(Instr),
    /// `{` opening a scope.
    Open,
    /// `}` closing a scope.
    Close,
}

/// One instruction as written.
#[derive(Debug)]
pub(crate) struct Instr {
    /// Guard predicate: (negated, register name).
    pub guard: Option<(bool, String)>,
    /// Opcode with modifiers (`ld.global.f32`).
    pub opcode: String,
    /// Operands.
    pub operands: Vec<Operand>,
    /// Line.
    pub line: u32,
}

/// An operand as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operand {
    /// A register, variable, label or function name.
    Name(String),
    /// `!name`
    Not(String),
    /// `a|b` (two destinations).
    Pair(String, String),
    /// An integer literal.
    Int(i64),
    /// A `0f…` single-precision literal (bits).
    F32(u32),
    /// A `0d…` double-precision literal (bits), or a decimal float.
    F64(u64),
    /// `[base+off]`, `[base]`, `[off]`.
    Addr(Option<String>, i64),
    /// `{a, b, …}`
    Vector(Vec<Operand>),
    /// `(a, b, …)` in `call`.
    List(Vec<Operand>),
}

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

    /// After the space word: `[.align n] [.v2] .ty name[[n]] [= init];`
    fn var_decl(&mut self, space: Space, line: u32) -> Result<VarDecl, ParseError> {
        let (ty, align, name, count) = self.typed_name(line)?;
        let mut v = VarDecl {
            name,
            space,
            ty,
            align,
            count,
            init: Vec::new(),
            is_extern: false,
            line,
        };
        if self.eat('=') {
            self.initializer(&mut v)?;
            if v.count == Some(0) {
                let n = v.init.len() as u64 / u64::from(ty.size());
                v.count = Some(n);
            }
        }
        self.expect(';')?;
        Ok(v)
    }

    /// `[.align n] [.ptr .space] [.vN] .ty name[[n]]` shared by variables and parameters.
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
                return Err(perr(
                    line,
                    format!("not supported yet: address initializer `{w}`"),
                ));
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
            let (ty, align, name, count) = self.typed_name(line)?;
            out.push(VarDecl {
                name,
                space,
                ty,
                align,
                count,
                init: Vec::new(),
                is_extern: false,
                line,
            });
            if self.eat(')') {
                return Ok(out);
            }
            self.expect(',')?;
        }
    }

    fn function(&mut self, is_entry: bool, line: u32) -> Result<FuncDecl, ParseError> {
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

    fn body(&mut self) -> Result<Vec<Stmt>, ParseError> {
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
                    if self.peek() == Some(&Tok::Word(".callprototype".into())) {
                        self.skip_statement()?;
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
    fn errors_carry_lines() {
        let e = parse(".version 9.0\n.entry k()\n{\n add.s32 %r1 %r2;\n}").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(parse(".entry k(\n").is_err());
        assert!(parse(".bogus x;").is_err());
    }
}
