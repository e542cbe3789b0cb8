//! Syntax tree → [`Program`]: registers to dense per-function indices (immediates and special
//! registers become pre-filled registers too, so every source operand is a register index),
//! labels to instruction indices, variables to (space, offset) pairs, opcodes to [`Op`]s.
//!
//! Frame layout of a function (per thread, in local memory, relative to the frame base):
//! its `.param` parameters, then its return parameters, then the `.local` and `.param`
//! variables of its body in declaration order. A callee's frame starts right after its
//! caller's.

// Float immediates are rounded to the instruction's width, as ptxas does.
#![allow(clippy::cast_possible_truncation)]

mod arith;
mod collective;
mod instr;
mod mods;
mod operands;
mod regs;

use std::collections::HashMap;

use crate::ast::{Ast, FuncDecl, Stmt, VarDecl};
use crate::ops::{Inst, Special};
use crate::types::{Space, Ty, align_up};
use crate::{KernelInfo, ParamInfo, ParseError, VarSpace, VariableInfo};

/// A decoded function or kernel.
#[derive(Debug, Default)]
pub(crate) struct Func {
    pub name: String,
    pub is_entry: bool,
    pub insts: Vec<Inst>,
    /// Registers in the frame, constants and specials included.
    pub nregs: u32,
    /// Registers the PTX declares.
    pub declared_regs: u32,
    /// Constant registers: (register, value) filled at frame start.
    pub consts: Vec<(u32, u64)>,
    /// Special registers: filled per lane at frame start.
    pub specials: Vec<(u32, Special)>,
    /// Bytes of local memory this function's frame needs.
    pub frame_size: u32,
    /// Frame offsets and sizes of the `.func`'s parameters.
    pub param_slots: Vec<(u32, u32)>,
    /// Frame offsets and sizes of its return values.
    pub ret_slots: Vec<(u32, u32)>,
    /// Kernel parameters (entries only).
    pub kparams: Vec<ParamInfo>,
    /// Static shared bytes (entries only: module-level shared plus the kernel's own).
    pub static_shared: u64,
    pub maxntid: Option<u32>,
    pub reqntid: Option<u32>,
    /// Has a body (else: an `.extern` declaration).
    pub defined: bool,
    /// `brx.idx` jump tables: instruction indices.
    pub tables: Vec<Vec<u32>>,
}

/// `CallInfo::callee` of a call through a register.
pub(crate) const INDIRECT: u32 = u32::MAX;

/// A `call` site: callee and the caller-frame slots of its arguments and results.
#[derive(Debug)]
pub(crate) struct CallInfo {
    pub callee: u32,
    pub args: Vec<(u32, u32)>,
    pub rets: Vec<(u32, u32)>,
}

/// A decoded module.
#[derive(Debug, Default)]
pub(crate) struct Program {
    pub funcs: Vec<Func>,
    pub calls: Vec<CallInfo>,
    /// Names of unsupported instructions (by `Inst::aux`).
    pub names: Vec<String>,
    /// Largest `.func` frame (for sizing the per-thread stack).
    pub max_func_frame: u32,
    /// Alignment of dynamic shared memory.
    pub dyn_shared_align: u64,
}

/// What a variable name resolves to inside a function.
#[derive(Clone, Copy, Debug)]
pub(crate) enum VarRef {
    /// Module `.global`/`.const` variable (index in the variable list).
    Global(u32, Space),
    /// Static shared memory at this offset.
    Shared(u64),
    /// Dynamic shared memory.
    DynShared,
    /// Kernel parameter at this offset in the parameter buffer.
    KParam(u64),
    /// Frame slot (local memory) at this offset.
    Frame(u32),
}

/// The end of static shared variable `v` placed at `off`. Static shared memory is bounded far
/// above any device's (4 GiB), so the running offset never overflows; launches check the real
/// limit.
fn shared_end(off: u64, v: &VarDecl) -> Result<u64, ParseError> {
    off.checked_add(v.size())
        .filter(|&end| end <= 1 << 32)
        .ok_or_else(|| {
            perr(
                v.line,
                format!("`{}`: static shared memory exceeds 4 GiB", v.name),
            )
        })
}

pub(crate) fn perr(line: u32, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Module-wide names every function sees.
pub(crate) struct Globals {
    pub vars: HashMap<String, VarRef>,
    pub funcs: HashMap<String, u32>,
    /// Offset where a kernel's own shared variables start.
    pub shared_base: u64,
}

/// Decodes the syntax tree into kernels, variables and the executable program.
pub(crate) fn decode(
    ast: Ast,
) -> Result<(Vec<KernelInfo>, Vec<VariableInfo>, Program), ParseError> {
    let mut prog = Program {
        dyn_shared_align: 16,
        ..Program::default()
    };
    let mut variables = Vec::new();
    let mut g = Globals {
        vars: HashMap::new(),
        funcs: HashMap::new(),
        shared_base: 0,
    };
    let mut shared_off = 0u64;
    let mut add_var =
        |v: &VarDecl, g: &mut Globals, shared_off: &mut u64| -> Result<(), ParseError> {
            let r = match v.space {
                Space::Global | Space::Const => {
                    let id = u32::try_from(variables.len())
                        .map_err(|_| perr(v.line, "too many variables"))?;
                    let size = v.size();
                    let mut init = v.init.clone();
                    if u64::try_from(init.len()).unwrap_or(u64::MAX) > size {
                        return Err(perr(
                            v.line,
                            format!("initializer of `{}` is larger than it", v.name),
                        ));
                    }
                    let len =
                        usize::try_from(size).map_err(|_| perr(v.line, "variable too large"))?;
                    init.try_reserve_exact(len.saturating_sub(init.len()))
                        .map_err(|_| {
                            perr(
                                v.line,
                                format!("`{}` ({size} bytes) is too large for this host", v.name),
                            )
                        })?;
                    init.resize(len, 0);
                    variables.push(VariableInfo {
                        name: v.name.clone(),
                        space: if v.space == Space::Const {
                            VarSpace::Const
                        } else {
                            VarSpace::Global
                        },
                        size,
                        align: v.align.max(1),
                        init,
                        relocs: v.relocs.clone(),
                        is_extern: v.is_extern,
                    });
                    VarRef::Global(id, v.space)
                }
                Space::Shared if v.is_extern || v.count == Some(0) => VarRef::DynShared,
                Space::Shared => {
                    let off = align_up(*shared_off, v.align);
                    *shared_off = shared_end(off, v)?;
                    VarRef::Shared(off)
                }
                _ => {
                    return Err(perr(
                        v.line,
                        format!(
                            "`{}`: module-level variables must be .global, .const or .shared",
                            v.name
                        ),
                    ));
                }
            };
            g.vars.insert(v.name.clone(), r);
            Ok(())
        };
    for v in &ast.vars {
        if v.space == Space::Shared && (v.is_extern || v.count == Some(0)) {
            prog.dyn_shared_align = prog.dyn_shared_align.max(v.align);
        }
        add_var(v, &mut g, &mut shared_off)?;
    }
    // Shared variables inside `.func` bodies live in the module-wide area too.
    for f in ast.funcs.iter().filter(|f| !f.is_entry) {
        for s in f.body.iter().flatten() {
            if let Stmt::Var(v) = s
                && v.space == Space::Shared
            {
                add_var(v, &mut g, &mut shared_off)?;
            }
        }
    }
    g.shared_base = shared_off;
    // A name may be declared, then defined: the definition wins.
    for (i, f) in ast.funcs.iter().enumerate() {
        let i = u32::try_from(i).map_err(|_| perr(f.line, "too many functions"))?;
        if f.body.is_some() || !g.funcs.contains_key(&f.name) {
            g.funcs.insert(f.name.clone(), i);
        }
    }
    // Function addresses are fixed (the function window): fill them in now.
    for v in &mut variables {
        let mut keep = Vec::new();
        for r in std::mem::take(&mut v.relocs) {
            let Some(&idx) = g.funcs.get(&r.symbol) else {
                keep.push(r);
                continue;
            };
            let val = instr::func_addr(idx)
                .wrapping_add(r.addend as u64)
                .to_le_bytes();
            let (o, w) = (r.offset as usize, r.width as usize);
            if let (Some(slot), Some(src)) = (v.init.get_mut(o..o + w), val.get(..w)) {
                slot.copy_from_slice(src);
            }
        }
        v.relocs = keep;
    }
    for f in &ast.funcs {
        let func = FuncCtx::new(&g, f, &mut prog)?.run(f)?;
        prog.funcs.push(func);
    }
    prog.max_func_frame = prog
        .funcs
        .iter()
        .filter(|f| !f.is_entry)
        .map(|f| f.frame_size)
        .max()
        .unwrap_or(0);
    let kernels = prog
        .funcs
        .iter()
        .filter(|f| f.is_entry && f.defined)
        .map(|f| KernelInfo {
            name: f.name.clone(),
            params: f.kparams.clone(),
            static_shared: f.static_shared,
            local_per_thread: u64::from(f.frame_size),
            num_regs: f.declared_regs,
            max_threads: f.maxntid.or(f.reqntid),
        })
        .collect();
    Ok((kernels, variables, prog))
}

/// Per-function decoding state.
pub(crate) struct FuncCtx<'a> {
    pub g: &'a Globals,
    pub prog: &'a mut Program,
    /// Register names by scope, innermost last.
    pub regs: Vec<HashMap<String, (u32, Ty)>>,
    pub consts: HashMap<u64, u32>,
    pub specials: HashMap<Special, u32>,
    pub labels: HashMap<String, u32>,
    /// `.branchtargets` tables by name (index into `Func::tables`).
    pub tables: HashMap<String, u32>,
    pub scopes: Vec<HashMap<String, VarRef>>,
    pub out: Func,
    pub frame: u32,
    pub shared: u64,
    pub sink: u32,
    pub cc: u32,
    pub nregs: u32,
}

impl<'a> FuncCtx<'a> {
    fn new(g: &'a Globals, f: &FuncDecl, prog: &'a mut Program) -> Result<FuncCtx<'a>, ParseError> {
        let mut cx = FuncCtx {
            g,
            prog,
            regs: vec![HashMap::new()],
            consts: HashMap::new(),
            specials: HashMap::new(),
            labels: HashMap::new(),
            tables: HashMap::new(),
            scopes: vec![HashMap::new()],
            out: Func {
                name: f.name.clone(),
                is_entry: f.is_entry,
                maxntid: f.maxntid,
                reqntid: f.reqntid,
                defined: f.body.is_some(),
                ..Func::default()
            },
            frame: 0,
            shared: g.shared_base,
            sink: 0,
            cc: 1,
            nregs: 2,
        };
        let mut koff = 0u64;
        for p in &f.params {
            if p.space != Space::Param {
                return Err(perr(p.line, "not supported yet: .reg parameters"));
            }
            if f.is_entry {
                let off = align_up(koff, p.align);
                let size = p.size();
                cx.out.kparams.push(ParamInfo {
                    offset: off,
                    size,
                    align: p.align.max(1),
                });
                cx.scopes[0].insert(p.name.clone(), VarRef::KParam(off));
                koff = off + size;
            } else {
                let slot = cx.frame_slot(p)?;
                cx.out.param_slots.push(slot);
            }
        }
        for r in &f.rets {
            let slot = cx.frame_slot(r)?;
            cx.out.ret_slots.push(slot);
        }
        Ok(cx)
    }

    /// Allocates a frame slot for `v` and binds its name in the innermost scope.
    fn frame_slot(&mut self, v: &VarDecl) -> Result<(u32, u32), ParseError> {
        let size = u32::try_from(v.size()).map_err(|_| perr(v.line, "local variable too large"))?;
        let align = u32::try_from(v.align.clamp(1, 4096)).unwrap_or(16);
        let off = self.frame.div_ceil(align) * align;
        self.frame = off
            .checked_add(size)
            .filter(|&e| e <= 1 << 24)
            .ok_or_else(|| perr(v.line, "local memory of the function is too large"))?;
        if let Some(s) = self.scopes.last_mut() {
            s.insert(v.name.clone(), VarRef::Frame(off));
        }
        Ok((off, size))
    }

    fn run(mut self, f: &FuncDecl) -> Result<Func, ParseError> {
        let Some(body) = &f.body else {
            return Ok(self.out);
        };
        // Pass 1: labels (function-wide).
        let mut n = 0u32;
        for s in body {
            match s {
                Stmt::Label(l, line) if self.labels.insert(l.clone(), n).is_some() => {
                    return Err(perr(*line, format!("label `{l}` defined twice")));
                }
                Stmt::Instr(_) => n += 1,
                _ => {}
            }
        }
        for s in body {
            if let Stmt::BranchTargets(name, labels, line) = s {
                let mut t = Vec::with_capacity(labels.len());
                for l in labels {
                    t.push(
                        *self
                            .labels
                            .get(l)
                            .ok_or_else(|| perr(*line, format!("unknown label `{l}`")))?,
                    );
                }
                let id = u32::try_from(self.out.tables.len()).unwrap_or(u32::MAX);
                self.out.tables.push(t);
                self.tables.insert(name.clone(), id);
            }
        }
        // Pass 2: registers and variables (scoped: inline-asm blocks redeclare names), and
        // instructions.
        for s in body {
            match s {
                Stmt::Reg { ty, name, count } => match count {
                    None => self.declare(name.clone(), *ty, f.line)?,
                    Some(c) => {
                        for i in 0..*c {
                            self.declare(format!("{name}{i}"), *ty, f.line)?;
                        }
                    }
                },
                Stmt::Open => {
                    self.scopes.push(HashMap::new());
                    self.regs.push(HashMap::new());
                }
                Stmt::Close => {
                    self.scopes.pop();
                    self.regs.pop();
                    if self.scopes.is_empty() || self.regs.is_empty() {
                        return Err(perr(f.line, "unbalanced `}`"));
                    }
                }
                Stmt::Var(v) => match v.space {
                    Space::Local | Space::Param => {
                        self.frame_slot(v)?;
                    }
                    Space::Shared if f.is_entry => {
                        let r = if v.is_extern || v.count == Some(0) {
                            VarRef::DynShared
                        } else {
                            let off = align_up(self.shared, v.align);
                            self.shared = shared_end(off, v)?;
                            VarRef::Shared(off)
                        };
                        if let Some(s) = self.scopes.last_mut() {
                            s.insert(v.name.clone(), r);
                        }
                    }
                    Space::Shared => {}
                    _ => {
                        return Err(perr(
                            v.line,
                            "not supported yet: .global/.const variables inside a function",
                        ));
                    }
                },
                Stmt::Instr(i) => {
                    let inst = self.instr(i)?;
                    self.out.insts.push(inst);
                }
                Stmt::Label(..) | Stmt::BranchTargets(..) => {}
            }
        }
        // Falling off the end returns.
        self.out
            .insts
            .push(Inst::new(crate::ops::Op::Ret, Ty::B32, f.line));
        self.out.nregs = self.nregs;
        self.out.frame_size = self.frame.div_ceil(16) * 16;
        self.out.static_shared = self.shared;
        Ok(self.out)
    }
}
