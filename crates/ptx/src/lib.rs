//! PTX parser and interpreter for crac's `sim` device: runs the kernels nvcc 12/13 emits
//! (PTX ISA 8.x/9.x) on the CPU, so CUDA programs can be tested without a GPU.
//!
//! INTERFACE CONTRACT (shared with `crates/sim`; change only together):
//! - [`Module::parse`] turns PTX text into a pre-decoded module.
//! - [`Module::kernels`] / [`Module::variables`] describe what the module defines; a
//!   variable's [`VariableInfo::relocs`] are addresses of other variables the device writes
//!   into its initial value after placing every variable (function addresses, which live in
//!   the fixed [`FUNC_WINDOW`], are already filled in).
//! - [`launch`] runs one grid to completion against a [`DeviceMemory`].
//!
//! Pipeline: `lexer` (tokens) → `parser` (syntax tree, `ast`) → `decode` (registers, labels,
//! variables and opcodes resolved to dense indices and enums) → `exec` (warps of 32 lanes in
//! lockstep; see its module doc for the min-PC divergence scheme, barriers, and the
//! generic-address windows [`SHARED_WINDOW`], [`LOCAL_WINDOW`], [`PARAM_WINDOW`]).
//!
//! Precision: integer and `.rn` float arithmetic is exact as PTX defines it; the `.approx`
//! functions are computed with Rust's `f32`/`f64` library (within 2 ulp, inside PTX's stated
//! bounds); directed rounding (`.rz .rm .rp`) is exact for `add sub mul div sqrt` and `cvt`,
//! while a directed `fma` may be off by one ulp (`.f64`: rounded to nearest).
//!
//! Not supported yet (decoded, and failing the launch with [`LaunchError::Unsupported`] only
//! if executed): textures and surfaces, `mma`/`wmma`/`ldmatrix`, `mbarrier`, bulk/tensor
//! copies, clusters, `.b128`/`.v8` accesses, half-precision atomics other than `add`,
//! packed-half comparisons. Blocks run one after another, so blocks that wait on each other
//! (grid-wide sync, inter-block spin locks) cannot work; warps of one block take turns.
#![forbid(unsafe_code)]

mod ast;
mod decode;
mod exec;
mod lexer;
mod ops;
mod parser;
mod types;

pub use exec::{
    FUNC_STRIDE, FUNC_WINDOW, LOCAL_WINDOW, MAX_CALL_DEPTH, MAX_SHARED, PARAM_WINDOW,
    SHARED_WINDOW, WINDOW_SIZE,
};

use thiserror::Error;

/// Memory space of a module-level variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarSpace {
    /// `.global` (a `__device__` variable).
    Global,
    /// `.const` (a `__constant__` variable).
    Const,
}

/// A module-level `.global` / `.const` variable the device must allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableInfo {
    /// Mangled name as written in the PTX.
    pub name: String,
    /// Space it lives in.
    pub space: VarSpace,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes.
    pub align: u64,
    /// Initial bytes (`size` long; zeros where the PTX gives no initializer).
    pub init: Vec<u8>,
    /// Whether the variable is `.extern` (declared here, defined elsewhere).
    pub is_extern: bool,
    /// Addresses of other variables the initial value holds (`.u64 p = generic(x)`): the
    /// device writes `address(symbol) + addend` at `offset`, `init` holding zeros there.
    pub relocs: Vec<Reloc>,
}

/// One address in a variable's initial value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloc {
    /// Byte offset in the variable.
    pub offset: u64,
    /// Bytes the address takes there (4 or 8, the variable's element size).
    pub width: u32,
    /// The variable (or function) whose address goes there.
    pub symbol: String,
    /// Added to the address.
    pub addend: i64,
}

/// One kernel parameter's place in the parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// Byte offset in the packed parameter buffer (natural alignment, as the CUDA ABI packs).
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes.
    pub align: u64,
}

/// An `.entry` (kernel) the module defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// Mangled name as written in the PTX.
    pub name: String,
    /// Parameters in declaration order.
    pub params: Vec<ParamInfo>,
    /// Bytes of static `.shared` memory the kernel uses.
    pub static_shared: u64,
    /// Bytes of `.local` memory per thread.
    pub local_per_thread: u64,
    /// Registers per thread (after decoding; for `cudaFuncGetAttributes`).
    pub num_regs: u32,
    /// `.maxntid` if given.
    pub max_threads: Option<u32>,
}

/// Grid and block shape of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Bytes of dynamic shared memory.
    pub dynamic_shared: u32,
}

/// A device-memory access outside every allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("illegal address {addr:#x} ({len} bytes)")]
pub struct Fault {
    /// First address accessed.
    pub addr: u64,
    /// Bytes accessed.
    pub len: u64,
}

/// Global (and constant) device memory as the interpreter sees it. Addresses are device
/// addresses; every module variable lives at the address the `symbol` resolver gives.
pub trait DeviceMemory {
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// Writes `data` at `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault>;
}

/// Why parsing failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("ptx line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number in the PTX text.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// Why a launch failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LaunchError {
    /// No `.entry` of that name.
    #[error("no kernel named {0}")]
    NoSuchKernel(String),
    /// Block or grid shape invalid (zero, over 1024 threads, shared memory over the limit, …).
    #[error("invalid launch configuration: {0}")]
    InvalidConfig(String),
    /// Parameter buffer shorter than the kernel's parameters need.
    #[error("parameter buffer is {got} bytes, kernel needs {need}")]
    BadParams {
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A module variable the kernel uses has no device address.
    #[error("unresolved symbol {0}")]
    UnresolvedSymbol(String),
    /// The kernel touched memory outside every allocation.
    #[error("{fault} at ptx line {line}")]
    IllegalAddress {
        /// The faulting access.
        fault: Fault,
        /// PTX line of the instruction.
        line: u32,
    },
    /// `trap`.
    #[error("kernel trapped at ptx line {line}")]
    Trap {
        /// PTX line of the instruction.
        line: u32,
    },
    /// A failed device-side `assert` (`__assertfail`); CUDA reports it as its own error.
    #[error("device-side assert failed at ptx line {line}")]
    Assert {
        /// PTX line of the call.
        line: u32,
    },
    /// An instruction the interpreter does not implement: never silently skipped.
    #[error("unsupported instruction `{instr}` at ptx line {line}")]
    Unsupported {
        /// The instruction as written (opcode with modifiers).
        instr: String,
        /// PTX line.
        line: u32,
    },
}

/// What one launch executed (for benchmarks and `--stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaunchStats {
    /// Warp-instructions issued (one per instruction per warp step).
    pub warp_instructions: u64,
    /// Thread-instructions executed (active lanes summed over warp-instructions).
    pub thread_instructions: u64,
}

/// A parsed, pre-decoded PTX module.
#[derive(Debug)]
pub struct Module {
    kernels: Vec<KernelInfo>,
    variables: Vec<VariableInfo>,
    prog: decode::Program,
}

impl Module {
    /// Parses and decodes PTX text as nvcc emits it (ISA 8.x/9.x).
    pub fn parse(src: &str) -> Result<Module, ParseError> {
        let ast = parser::parse(src)?;
        let (kernels, variables, prog) = decode::decode(ast)?;
        Ok(Module {
            kernels,
            variables,
            prog,
        })
    }

    /// The kernels (`.entry`) the module defines.
    pub fn kernels(&self) -> &[KernelInfo] {
        &self.kernels
    }

    /// The module-level variables (`.global`, `.const`) the device must allocate.
    pub fn variables(&self) -> &[VariableInfo] {
        &self.variables
    }

    /// The kernel named `name`.
    pub fn kernel(&self, name: &str) -> Option<&KernelInfo> {
        self.kernels.iter().find(|k| k.name == name)
    }
}

/// Runs `kernel` over the whole grid, to completion.
///
/// `params` is the packed parameter buffer (layout per [`KernelInfo::params`]); `symbol` gives
/// the device address of each module variable by name; `printf` receives `printf` output.
pub fn launch(
    module: &Module,
    kernel: &str,
    dims: &LaunchDims,
    params: &[u8],
    symbol: &dyn Fn(&str) -> Option<u64>,
    mem: &mut dyn DeviceMemory,
    printf: &mut dyn std::io::Write,
) -> Result<LaunchStats, LaunchError> {
    exec::launch(module, kernel, dims, params, symbol, mem, printf, u64::MAX)
}
