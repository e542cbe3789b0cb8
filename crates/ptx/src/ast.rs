//! The syntax tree the parser builds: names are still strings; the decoder resolves them.

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
    /// Addresses to store into the initial bytes.
    pub relocs: Vec<crate::Reloc>,
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
    /// `name: .branchtargets L1, L2, …;` (a `brx.idx` jump table).
    BranchTargets(String, Vec<String>, u32),
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
