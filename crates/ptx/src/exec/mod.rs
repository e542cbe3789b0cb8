//! The executor: a grid runs block by block; a block runs as warps of 32 lanes in lockstep.
//!
//! **Divergence** uses per-lane PCs with min-PC scheduling: each call frame keeps the PC and
//! mask of the lanes executing now, and the PCs of the lanes waiting elsewhere; after a branch
//! splits the warp, the lanes with the lowest PC run first, and lanes merge again as soon as
//! their PCs meet. For the structured code nvcc emits (forward branches around `if` bodies,
//! backward branches closing loops) the lanes reconverge at the immediate post-dominator, as on
//! hardware. `call` runs the callee with the calling lanes; the others wait in the caller
//! (an indirect call runs one target's lanes at a time).
//!
//! **Forward progress** (what sm_70+ guarantees): warps of a block take turns of
//! [`TIME_SLICE`] warp-instructions, so a warp spinning on another warp's store gets past it;
//! inside a warp, lanes spinning in a loop that touches atomics or volatile memory let the
//! lanes ahead of them run after a while (`Frame::branch`), so a lane holding a spin lock can
//! release it. Lanes that ran ahead wait for the others before any warp collective.
//!
//! **Barriers**: a warp that reaches `bar.sync` stops; the block scheduler runs the other warps
//! until the barrier completes (every warp that has not exited waits at it, or, with a thread
//! count, that many threads arrived, `bar.arrive` included), then releases its warps. A
//! barrier that can never complete fails the launch with [`LaunchError::Trap`] instead of
//! hanging.
//!
//! **Address windows**: generic addresses are device addresses, except windows in the
//! non-canonical upper half of the 64-bit space, where no device (or host) allocation can lie:
//! shared memory at [`SHARED_WINDOW`], the thread's local memory at [`LOCAL_WINDOW`] and the
//! kernel's parameter buffer at [`PARAM_WINDOW`], each [`WINDOW_SIZE`] bytes; device
//! functions at [`FUNC_WINDOW`]. `cvta` adds or removes the window base; generic loads and
//! stores pick the space by window.
//!
//! **Registers** are 64-bit slots, stored lane-major (`regs[reg * 32 + lane]`), so one
//! instruction is a loop over the active lanes. Integer results are kept zero-extended to their
//! width (loads of signed narrow types keep the sign extension); predicates are 0 or 1.
// Warp, lane and function indices are bounded far below u32::MAX (1024 threads per block,
// function count checked at decode).
#![allow(clippy::cast_possible_truncation)]

mod block;
mod call;
mod cmp;
mod collective;
mod cvt;
mod float;
mod frame;
pub(crate) mod half;
mod int;
mod mem;
mod printf;
mod step;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub(crate) use frame::Frame;

use crate::decode::{Func, Program};
use crate::ops::{Base, Op};

use crate::{DeviceMemory, LaunchDims, LaunchError, LaunchStats, Module};
pub(crate) use block::init_frame;
use block::run_block;

/// Generic-address window of the block's shared memory.
pub const SHARED_WINDOW: u64 = 0xffff_f000_0000_0000;
/// Generic-address window of the thread's local memory.
pub const LOCAL_WINDOW: u64 = 0xffff_e000_0000_0000;
/// Generic-address window of the kernel's parameter buffer.
pub const PARAM_WINDOW: u64 = 0xffff_d000_0000_0000;
/// Addresses of device functions (function pointers, vtables): function `i` of the module
/// is at `FUNC_WINDOW + i * FUNC_STRIDE`.
pub const FUNC_WINDOW: u64 = 0xffff_c000_0000_0000;
/// Distance between two function addresses.
pub const FUNC_STRIDE: u64 = 16;
/// Size of each window.
pub const WINDOW_SIZE: u64 = 1 << 40;
/// Deepest `.func` call nesting (recursion included) before the launch fails.
pub const MAX_CALL_DEPTH: usize = 64;
/// Warp-instructions a warp runs before the other warps of its block get a turn, so a warp
/// spinning on a flag another warp sets (through shared or global memory) makes progress.
pub const TIME_SLICE: u64 = 1 << 16;
/// Most shared memory one block may use (static plus dynamic), as on sm_90 with opt-in.
pub const MAX_SHARED: u64 = 227 * 1024;

const FULL: u32 = u32::MAX;

/// One warp of a block.
#[derive(Debug, Default)]
pub(crate) struct Warp {
    pub id: u32,
    /// Lanes that are threads of the block.
    pub valid: u32,
    pub exited: u32,
    pub frames: Vec<Frame>,
    pub regs: Vec<u64>,
    pub at_barrier: bool,
    /// An atomic or volatile load ran since the last backward branch (see `Frame::branch`).
    pub spin_hint: bool,
    /// Which barrier it waits at.
    pub bar_id: usize,
    pub done: bool,
}

/// Everything a launch shares between its warps.
pub(crate) struct Env<'a> {
    pub prog: &'a Program,
    pub params: &'a [u8],
    pub gaddr: Vec<u64>,
    pub mem: &'a mut dyn DeviceMemory,
    pub printf: &'a mut dyn std::io::Write,
    pub dims: LaunchDims,
    pub stats: LaunchStats,
    pub shared: Vec<u8>,
    pub dyn_base: u64,
    pub local: Vec<u8>,
    pub stride: u64,
    pub ctaid: [u32; 3],
    pub start: Instant,
    /// Warp-instructions left before the launch is stopped.
    pub budget: u64,
    /// `bar.red` accumulators of the barrier being filled: count, all, any.
    pub bar_popc: u64,
    /// Threads counted at each named barrier, and the count each was given (0: all).
    pub bar_arrived: [u32; 16],
    pub bar_expected: [u32; 16],
    pub bar_all: bool,
    pub bar_any: bool,
}

fn check_config(k: &Func, dims: &LaunchDims) -> Result<(), LaunchError> {
    let bad = |m: String| Err(LaunchError::InvalidConfig(m));
    let threads: u64 = dims.block.iter().map(|&d| u64::from(d)).product();
    if dims.block.contains(&0) || dims.grid.contains(&0) {
        return bad(format!(
            "grid {:?} and block {:?} must not have a zero dimension",
            dims.grid, dims.block
        ));
    }
    if threads > 1024 || dims.block[2] > 64 {
        return bad(format!(
            "block {:?} has {threads} threads; at most 1024 (z at most 64)",
            dims.block
        ));
    }
    if dims.grid[1] > 65535 || dims.grid[2] > 65535 || dims.grid[0] > i32::MAX as u32 {
        return bad(format!(
            "grid {:?} is too large (y and z at most 65535)",
            dims.grid
        ));
    }
    if let Some(max) = k.maxntid.or(k.reqntid)
        && threads > u64::from(max)
    {
        return bad(format!(
            "kernel {} allows at most {max} threads per block, got {threads}",
            k.name
        ));
    }
    if let Some(req) = k.reqntid
        && threads != u64::from(req)
    {
        return bad(format!(
            "kernel {} requires exactly {req} threads per block, got {threads}",
            k.name
        ));
    }
    let dyn_base = crate::types::align_up(k.static_shared, 16);
    if dyn_base + u64::from(dims.dynamic_shared) > MAX_SHARED {
        return bad(format!(
            "{} bytes of shared memory requested ({} static + {} dynamic); at most {MAX_SHARED}",
            dyn_base + u64::from(dims.dynamic_shared),
            k.static_shared,
            dims.dynamic_shared
        ));
    }
    Ok(())
}

/// Runs `kernel` over the grid. See [`crate::launch`]. After `budget` warp-instructions the
/// launch stops with [`LaunchError::Trap`] (tests use this to run arbitrary code safely).
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch(
    module: &Module,
    kernel: &str,
    dims: &LaunchDims,
    params: &[u8],
    symbol: &dyn Fn(&str) -> Option<u64>,
    mem: &mut dyn DeviceMemory,
    printf: &mut dyn std::io::Write,
    budget: u64,
) -> Result<LaunchStats, LaunchError> {
    let prog = &module.prog;
    let kidx = prog
        .funcs
        .iter()
        .position(|f| f.is_entry && f.defined && f.name == kernel)
        .ok_or_else(|| LaunchError::NoSuchKernel(kernel.to_string()))?;
    let k = &prog.funcs[kidx];
    check_config(k, dims)?;
    let need = k
        .kparams
        .iter()
        .map(|p| p.offset + p.size)
        .max()
        .unwrap_or(0);
    let need = usize::try_from(need).unwrap_or(usize::MAX);
    if params.len() < need {
        return Err(LaunchError::BadParams {
            got: params.len(),
            need,
        });
    }
    // Resolve the module variables the code uses.
    let mut gaddr = vec![0u64; module.variables.len()];
    // Only the kernel and the functions it can call need their variables.
    let mut reach = vec![false; prog.funcs.len()];
    let mut todo = vec![kidx];
    while let Some(f) = todo.pop() {
        if std::mem::replace(&mut reach[f], true) {
            continue;
        }
        for i in prog.funcs[f].insts.iter().filter(|i| i.op == Op::Call) {
            match prog.calls.get(i.aux as usize) {
                // A call through a pointer may reach any function.
                Some(c) if c.callee == crate::decode::INDIRECT => todo.extend(0..prog.funcs.len()),
                Some(c) => todo.push(c.callee as usize),
                None => {}
            }
        }
    }
    for f in prog
        .funcs
        .iter()
        .zip(&reach)
        .filter(|(_, r)| **r)
        .map(|(f, _)| f)
    {
        for i in &f.insts {
            if let Base::Global(id) = i.addr.base
                && matches!(
                    i.op,
                    Op::Ld(_) | Op::St(_) | Op::Atom(..) | Op::Red(..) | Op::MovAddr
                )
            {
                let id = id as usize;
                if gaddr[id] == 0 {
                    let name = &module.variables[id].name;
                    gaddr[id] =
                        symbol(name).ok_or_else(|| LaunchError::UnresolvedSymbol(name.clone()))?;
                }
            }
        }
    }
    let threads = dims.block.iter().map(|&d| d as usize).product::<usize>();
    let stride = crate::types::align_up(stack_need(prog, kidx), 16);
    let local_len = usize::try_from(stride)
        .ok()
        .and_then(|s| s.checked_mul(threads))
        .filter(|&l| l <= 1 << 32)
        .ok_or_else(|| LaunchError::InvalidConfig("local memory per block exceeds 4 GiB".into()))?;
    let dyn_base = crate::types::align_up(k.static_shared, prog.dyn_shared_align.max(16));
    let shared_len = usize::try_from(dyn_base + u64::from(dims.dynamic_shared)).unwrap_or(0);
    let mut env = Env {
        prog,
        params,
        gaddr,
        mem,
        printf,
        dims: *dims,
        stats: LaunchStats::default(),
        shared: vec![0; shared_len],
        dyn_base,
        local: vec![0; local_len],
        stride,
        ctaid: [0; 3],
        start: Instant::now(),
        budget,
        bar_popc: 0,
        bar_arrived: [0; 16],
        bar_expected: [0; 16],
        bar_all: true,
        bar_any: false,
    };
    let nwarps = threads.div_ceil(32);
    let mut warps: Vec<Warp> = (0..nwarps).map(|_| Warp::default()).collect();
    for z in 0..dims.grid[2] {
        for y in 0..dims.grid[1] {
            for x in 0..dims.grid[0] {
                env.ctaid = [x, y, z];
                env.shared.fill(0);
                run_block(&mut env, kidx as u32, &mut warps, threads)?;
            }
        }
    }
    Ok(env.stats)
}

/// Local bytes one thread needs: the deepest chain of frames from `kidx` through the static
/// call graph; with recursion, the largest frame times [`MAX_CALL_DEPTH`].
fn stack_need(prog: &Program, kidx: usize) -> u64 {
    fn walk(
        prog: &Program,
        f: usize,
        on_path: &mut Vec<bool>,
        memo: &mut Vec<Option<u64>>,
    ) -> Option<u64> {
        if let Some(v) = memo[f] {
            return Some(v);
        }
        if std::mem::replace(&mut on_path[f], true) {
            return None;
        }
        let mut deepest = 0u64;
        for i in prog.funcs[f].insts.iter().filter(|i| i.op == Op::Call) {
            match prog.calls.get(i.aux as usize) {
                // Through a pointer: unknown depth, size as for recursion.
                Some(c) if c.callee == crate::decode::INDIRECT => return None,
                Some(c) => deepest = deepest.max(walk(prog, c.callee as usize, on_path, memo)?),
                None => {}
            }
        }
        on_path[f] = false;
        let v = u64::from(prog.funcs[f].frame_size) + deepest;
        memo[f] = Some(v);
        Some(v)
    }
    let n = prog.funcs.len();
    walk(prog, kidx, &mut vec![false; n], &mut vec![None; n]).unwrap_or_else(|| {
        u64::from(prog.funcs[kidx].frame_size)
            + u64::from(prog.max_func_frame) * MAX_CALL_DEPTH as u64
    })
}

/// Calls `f(lane)` for every lane set in `mask`.
#[inline(always)]
pub(crate) fn lanes(mask: u32, mut f: impl FnMut(usize)) {
    if mask == FULL {
        for l in 0..32 {
            f(l);
        }
    } else {
        let mut m = mask;
        while m != 0 {
            f(m.trailing_zeros() as usize);
            m &= m - 1;
        }
    }
}

/// Like [`lanes`], stopping at the first error.
#[inline(always)]
pub(crate) fn try_lanes<E>(mask: u32, mut f: impl FnMut(usize) -> Result<(), E>) -> Result<(), E> {
    let mut m = mask;
    while m != 0 {
        f(m.trailing_zeros() as usize)?;
        m &= m - 1;
    }
    Ok(())
}
