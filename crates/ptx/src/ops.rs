//! The decoded instruction form the executor runs: every name resolved to an index, every
//! opcode and modifier to an enum, so execution does no string work.

use crate::types::{Space, Ty};

/// "No register" marker for optional operand slots.
pub(crate) const NONE: u32 = u32::MAX;

/// Comparison of `setp`/`set`/`slct`-style instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Unsigned lower (`lo`), lower-or-same (`ls`), higher (`hi`), higher-or-same (`hs`).
    Lo,
    Ls,
    Hi,
    Hs,
    /// Float comparisons that are also true when either operand is NaN.
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    /// Neither operand is NaN.
    Num,
    /// Either operand is NaN.
    Nan,
}

impl Cmp {
    pub(crate) fn from_name(s: &str) -> Option<Cmp> {
        Some(match s {
            "eq" => Cmp::Eq,
            "ne" => Cmp::Ne,
            "lt" => Cmp::Lt,
            "le" => Cmp::Le,
            "gt" => Cmp::Gt,
            "ge" => Cmp::Ge,
            "lo" => Cmp::Lo,
            "ls" => Cmp::Ls,
            "hi" => Cmp::Hi,
            "hs" => Cmp::Hs,
            "equ" => Cmp::Equ,
            "neu" => Cmp::Neu,
            "ltu" => Cmp::Ltu,
            "leu" => Cmp::Leu,
            "gtu" => Cmp::Gtu,
            "geu" => Cmp::Geu,
            "num" => Cmp::Num,
            "nan" => Cmp::Nan,
            _ => return None,
        })
    }
}

/// Boolean combination of `setp.cmp.bop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoolOp {
    None,
    And,
    Or,
    Xor,
}

/// Rounding modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rnd {
    /// None given (the instruction's default).
    Default,
    Rn,
    Rz,
    Rm,
    Rp,
    /// Round to an integral value (`cvt` float→float / float→int).
    Rni,
    Rzi,
    Rmi,
    Rpi,
    /// `.rna` (ties away from zero).
    Rna,
}

/// Atomic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtomOp {
    Add,
    Min,
    Max,
    Inc,
    Dec,
    And,
    Or,
    Xor,
    Exch,
    Cas,
}

/// `shfl` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShflMode {
    Up,
    Down,
    Bfly,
    Idx,
}

/// `vote` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteMode {
    All,
    Any,
    Uni,
    Ballot,
}

/// Reduction of `bar.red`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BarRedKind {
    Popc,
    And,
    Or,
}

/// `testp` class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestKind {
    Finite,
    Infinite,
    Number,
    NotANumber,
    Normal,
    Subnormal,
}

/// Base of an address operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// A register's value.
    Reg(u32),
    /// No base: the offset is the address (in the instruction's space).
    Abs,
    /// A module `.global`/`.const` variable (index into the module's variable list).
    Global(u32),
    /// The block's dynamic shared memory (`extern .shared x[]`).
    DynShared,
    /// The current frame's local memory (function `.param`s, `.local` arrays).
    Frame,
}

/// An address operand: base plus byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addr {
    pub base: Base,
    pub off: i64,
}

/// Operation, with the modifiers that select the semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Mov,
    /// `mov d, symbol` (address of a variable, in its own space).
    MovAddr,
    /// `mov.bN d, {a, b, …}`: `vn` parts of `ty2`'s width from `v`.
    Pack,
    /// `mov.bN {a, b, …}, s`: split into `vn` parts of `ty2`'s width into `v`.
    Unpack,
    /// `cvta.space` (to generic: `true`) or `cvta.to.space` (`false`).
    Cvta(Space, bool),
    Add,
    Sub,
    /// `add.cc`, `addc`, `addc.cc`, `sub.cc`, `subc`, `subc.cc`: (is_sub, carry_in, carry_out).
    AddCarry(bool, bool, bool),
    MulLo,
    MulHi,
    MulWide,
    /// `mul24.lo` (`false`) / `mul24.hi` (`true`).
    Mul24(bool),
    /// `mad24.lo` / `mad24.hi`.
    Mad24(bool),
    /// `dp4a.atype.btype d, a, b, c` (`ty` = atype, `ty2` = btype).
    Dp4a,
    MadLo,
    MadHi,
    MadWide,
    /// `mad.lo.cc`/`madc.lo(.cc)`/`madc.hi(.cc)`: (hi, carry_in, carry_out).
    MadCarry(bool, bool, bool),
    Fma,
    Div,
    Rem,
    Abs,
    Neg,
    Min,
    Max,
    And,
    Or,
    Xor,
    Not,
    CNot,
    Shl,
    Shr,
    /// `shf.l`/`shf.r` (left, clamp).
    Shf(bool, bool),
    Bfe,
    /// `bmsk.{clamp,wrap}` (clamp).
    Bmsk(bool),
    /// `szext.{clamp,wrap}` (clamp).
    Szext(bool),
    Bfi,
    Brev,
    Clz,
    Popc,
    /// `bfind` (shiftamt).
    Bfind(bool),
    Prmt,
    Sad,
    Setp(Cmp, BoolOp),
    /// `set.cmp.dtype.stype`: all-ones / 1.0 when true.
    Set(Cmp, BoolOp),
    Selp,
    Slct,
    Rcp,
    Sqrt,
    Rsqrt,
    Sin,
    Cos,
    Lg2,
    Ex2,
    Tanh,
    Copysign,
    Testp(TestKind),
    Cvt,
    Ld(Space),
    St(Space),
    Atom(Space, AtomOp),
    Red(Space, AtomOp),
    Bra,
    /// `brx.idx a, table` (table index in `aux`).
    BrxIdx,
    Ret,
    Exit,
    Trap,
    /// `bar.sync id{, count}`: `a` = barrier id, `b` = thread count or [`NONE`] (all).
    Bar,
    /// `bar.arrive id, count`: counts the warp at the barrier without waiting.
    BarArrive,
    Nop,
    Shfl(ShflMode),
    Vote(VoteMode),
    Activemask,
    /// `redux.sync.op` over the executing lanes.
    Redux(AtomOp),
    /// `bar.red.{popc,and,or}`: a barrier that also reduces a predicate over the block.
    BarRed(BarRedKind),
    /// `lop3.b32 d, a, b, c, lut` (lut in `aux`).
    Lop3,
    /// `isspacep.space d, a`.
    IsSpace(Space),
    /// `cp.async` (copy done at once; `aux` holds the byte count).
    CpAsync,
    /// `cvt.rn.f16x2.f32 d, a, b` / `cvt.rn.bf16x2.f32`: pack two converted floats.
    CvtPack,
    /// `match.any` (`false`) / `match.all` (`true`).
    Match(bool),
    /// `%clock`/`%clock64` reads.
    Clock,
    /// `%globaltimer` reads.
    GlobalTimer,
    /// `call` to a `.func` (index into the module's call table).
    Call,
    /// `call vprintf` (index into the call table).
    Printf,
    /// `call __assertfail`: prints the failed assertion, then traps.
    AssertFail,
    /// Not implemented: fails the launch when executed (name index in `aux`).
    Unsupported,
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inst {
    pub op: Op,
    /// Operation type (destination type for `cvt`).
    pub ty: Ty,
    /// Second type: source type of `cvt`/`set`/`slct`, part type of pack/unpack.
    pub ty2: Ty,
    pub rnd: Rnd,
    pub ftz: bool,
    pub sat: bool,
    /// Vector length of `ld/st .v2/.v4` and pack/unpack.
    pub vn: u8,
    /// Guard predicate register or [`NONE`].
    pub guard: u32,
    /// Guard is `@!p`.
    pub gneg: bool,
    pub d: u32,
    pub d2: u32,
    pub a: u32,
    pub b: u32,
    pub c: u32,
    pub e: u32,
    /// Vector registers of `ld/st .vN`, pack/unpack.
    pub v: [u32; 4],
    pub addr: Addr,
    /// Branch target, call-table index, or unsupported-name index.
    pub aux: u32,
    /// PTX source line.
    pub line: u32,
}

impl Inst {
    pub(crate) fn new(op: Op, ty: Ty, line: u32) -> Inst {
        Inst {
            op,
            ty,
            ty2: ty,
            rnd: Rnd::Default,
            ftz: false,
            sat: false,
            vn: 1,
            guard: NONE,
            gneg: false,
            d: NONE,
            d2: NONE,
            a: NONE,
            b: NONE,
            c: NONE,
            e: NONE,
            v: [NONE; 4],
            addr: Addr {
                base: Base::Abs,
                off: 0,
            },
            aux: 0,
            line,
        }
    }
}

/// Special registers, materialized into per-frame registers at frame start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Special {
    Tid(u8),
    Ntid(u8),
    Ctaid(u8),
    Nctaid(u8),
    LaneId,
    WarpId,
    NWarpId,
    SmId,
    NSmId,
    GridId,
    LanemaskEq,
    LanemaskLt,
    LanemaskLe,
    LanemaskGt,
    LanemaskGe,
    DynSmemSize,
    TotalSmemSize,
}

impl Special {
    pub(crate) fn from_name(s: &str) -> Option<Special> {
        let dim = |d: &str| match d {
            "x" => Some(0u8),
            "y" => Some(1),
            "z" => Some(2),
            _ => None,
        };
        let (head, tail) = s.split_once('.').unwrap_or((s, ""));
        Some(match head {
            "%tid" => Special::Tid(dim(tail)?),
            "%ntid" => Special::Ntid(dim(tail)?),
            "%ctaid" => Special::Ctaid(dim(tail)?),
            "%nctaid" => Special::Nctaid(dim(tail)?),
            "%laneid" => Special::LaneId,
            "%warpid" => Special::WarpId,
            "%nwarpid" => Special::NWarpId,
            "%smid" => Special::SmId,
            "%nsmid" => Special::NSmId,
            "%gridid" => Special::GridId,
            "%lanemask_eq" => Special::LanemaskEq,
            "%lanemask_lt" => Special::LanemaskLt,
            "%lanemask_le" => Special::LanemaskLe,
            "%lanemask_gt" => Special::LanemaskGt,
            "%lanemask_ge" => Special::LanemaskGe,
            "%dynamic_smem_size" => Special::DynSmemSize,
            "%total_smem_size" => Special::TotalSmemSize,
            _ => return None,
        })
    }
}
