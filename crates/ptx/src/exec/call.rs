//! `call` to `.func`s (frames on the per-thread stack in local memory, `.param` passing by
//! copy) and `vprintf`.
// Local-memory offsets are bounded by the 4 GiB block check at launch.
#![allow(clippy::cast_possible_truncation)]

use super::printf::{Args, format};
use super::{Env, FUNC_STRIDE, FUNC_WINDOW, Frame, MAX_CALL_DEPTH, Warp, init_frame, lanes};
use crate::LaunchError;
use crate::decode::INDIRECT;
use crate::ops::Inst;
use crate::types::Space;

fn copy_local(
    env: &mut Env<'_>,
    tid: usize,
    from: u64,
    to: u64,
    len: u64,
) -> Result<(), LaunchError> {
    let base = tid as u64 * env.stride;
    if from + len > env.stride || to + len > env.stride {
        return Err(LaunchError::IllegalAddress {
            fault: crate::Fault {
                addr: super::LOCAL_WINDOW + from.max(to),
                len,
            },
            line: 0,
        });
    }
    let (f, t, n) = ((base + from) as usize, (base + to) as usize, len as usize);
    env.local.copy_within(f..f + n, t);
    Ok(())
}

/// Starts the callee of the `call` at `pc` for lanes `exec`.
pub(crate) fn push_frame(
    env: &mut Env<'_>,
    warp: &mut Warp,
    pc: u32,
    exec: u32,
) -> Result<(), LaunchError> {
    let prog = env.prog;
    let depth = warp.frames.len();
    let Some(caller) = warp.frames.last_mut() else {
        return Ok(());
    };
    let cf = &prog.funcs[caller.func as usize];
    let inst = cf.insts[pc as usize];
    let info = &prog.calls[inst.aux as usize];
    let (callee_idx, exec, again) = if info.callee == INDIRECT {
        // Lanes may call different functions: the lanes calling the first lane's target go
        // now, the others run the call again afterwards.
        let r = caller.reg_base + inst.a as usize * 32;
        let first = warp.regs[r + exec.trailing_zeros() as usize];
        let mut same = 0u32;
        lanes(exec, |l| same |= u32::from(warp.regs[r + l] == first) << l);
        let idx = first.wrapping_sub(FUNC_WINDOW) / FUNC_STRIDE;
        let ok = first.wrapping_sub(FUNC_WINDOW) % FUNC_STRIDE == 0
            && prog
                .funcs
                .get(idx as usize)
                .is_some_and(|f| f.defined && !f.is_entry);
        if !ok {
            return Err(LaunchError::IllegalAddress {
                fault: crate::Fault {
                    addr: first,
                    len: 0,
                },
                line: inst.line,
            });
        }
        (idx as u32, same, exec & !same)
    } else {
        (info.callee, exec, 0)
    };
    let callee = &prog.funcs[callee_idx as usize];
    if !callee.defined {
        return Err(LaunchError::Unsupported {
            instr: format!(
                "call {} (declared but not defined in this module)",
                callee.name
            ),
            line: inst.line,
        });
    }
    // In u64: frames near 4 GiB must be refused, not wrap around.
    let new_base = u64::from(caller.local_base) + u64::from(cf.frame_size);
    let new_base = match u32::try_from(new_base) {
        Ok(b)
            if depth < MAX_CALL_DEPTH
                && u64::from(b) + u64::from(callee.frame_size) <= env.stride =>
        {
            b
        }
        _ => {
            return Err(LaunchError::Unsupported {
                instr: format!(
                    "call {}: nesting deeper than {MAX_CALL_DEPTH} frames or local memory over \
                     the per-thread limit (stack overflow)",
                    callee.name
                ),
                line: inst.line,
            });
        }
    };
    let caller_base = caller.local_base;
    let mut m = exec;
    while m != 0 {
        let l = m.trailing_zeros() as usize;
        m &= m - 1;
        let tid = warp.id as usize * 32 + l;
        for (k, &(off, _)) in info.args.iter().enumerate() {
            if let Some(&(poff, psize)) = callee.param_slots.get(k) {
                copy_local(
                    env,
                    tid,
                    u64::from(caller_base + off),
                    u64::from(new_base + poff),
                    u64::from(psize),
                )
                .map_err(|e| with_line(e, inst.line))?;
            }
        }
    }
    // Lanes that do not call move past the call; the calling lanes wait in the caller.
    let Some(caller) = warp.frames.last_mut() else {
        return Ok(());
    };
    let rest = caller.mask & !exec & !again;
    caller.mask = exec;
    if rest != 0 {
        caller.pcs_park(rest, pc + 1);
    }
    if again != 0 {
        caller.pcs_park(again, pc);
    }
    let reg_base = caller.reg_base + cf.nregs as usize * 32;
    warp.regs.resize(reg_base + callee.nregs as usize * 32, 0);
    init_frame(env, callee, &mut warp.regs[reg_base..], warp.id);
    let mut f = Frame::new(callee_idx, reg_base, new_base, exec);
    f.call_inst = pc;
    warp.frames.push(f);
    Ok(())
}

fn with_line(e: LaunchError, line: u32) -> LaunchError {
    match e {
        LaunchError::IllegalAddress { fault, .. } => LaunchError::IllegalAddress { fault, line },
        e => e,
    }
}

/// Finishes the top frame: copies results back and resumes the returned lanes in the caller.
pub(crate) fn pop_frame(env: &mut Env<'_>, warp: &mut Warp) -> Result<(), LaunchError> {
    let prog = env.prog;
    let Some(done) = warp.frames.pop() else {
        return Ok(());
    };
    let Some(caller) = warp.frames.last_mut() else {
        warp.done = true;
        return Ok(());
    };
    let cf = &prog.funcs[caller.func as usize];
    let inst = cf.insts[done.call_inst as usize];
    let info = &prog.calls[inst.aux as usize];
    let callee = &prog.funcs[done.func as usize];
    let back = done.returned & !warp.exited;
    let caller_base = caller.local_base;
    let mut m = back;
    while m != 0 {
        let l = m.trailing_zeros() as usize;
        m &= m - 1;
        let tid = warp.id as usize * 32 + l;
        for (k, &(off, _)) in info.rets.iter().enumerate() {
            if let Some(&(roff, rsize)) = callee.ret_slots.get(k) {
                copy_local(
                    env,
                    tid,
                    u64::from(done.local_base + roff),
                    u64::from(caller_base + off),
                    u64::from(rsize),
                )
                .map_err(|e| with_line(e, inst.line))?;
            }
        }
    }
    warp.regs.truncate(done.reg_base);
    caller.pc = done.call_inst;
    caller.mask = back;
    if back == 0 || (caller.waiting != 0 && caller.next_wait <= caller.pc) {
        // Lanes still wait at the call itself (an indirect call to other targets).
        caller.pc += 1;
        caller.reschedule();
    } else {
        caller.advance();
    }
    Ok(())
}

struct LaneArgs<'e, 'a> {
    env: &'e mut Env<'a>,
    tid: usize,
    buf: u64,
    pos: u64,
}

impl Args for LaneArgs<'_, '_> {
    fn next(&mut self, size: u64) -> u64 {
        self.pos = self.pos.div_ceil(size) * size;
        let v = self
            .env
            .load(
                Space::Generic,
                self.buf.wrapping_add(self.pos),
                size as usize,
                self.tid,
            )
            .unwrap_or(0);
        self.pos += size;
        v
    }
    fn string(&mut self, addr: u64) -> Vec<u8> {
        read_cstr(self.env, addr, self.tid)
    }
}

fn read_cstr(env: &mut Env<'_>, addr: u64, tid: usize) -> Vec<u8> {
    let mut s = Vec::new();
    for k in 0..4096u64 {
        match env.load(Space::Generic, addr.wrapping_add(k), 1, tid) {
            Ok(0) | Err(_) => break,
            Ok(b) => s.push(b as u8),
        }
    }
    s
}

/// `call vprintf, (fmt, args)`: formats for each executing lane, in lane order.
pub(crate) fn printf(
    env: &mut Env<'_>,
    inst: &Inst,
    regs: &mut [u64],
    exec: u32,
    warp: u32,
    local_base: u32,
) -> Result<(), LaunchError> {
    let _ = regs;
    let prog = env.prog;
    let info = &prog.calls[inst.aux as usize];
    let (Some(&(fmt_off, _)), args_off) = (info.args.first(), info.args.get(1).map(|a| a.0)) else {
        return Err(LaunchError::Unsupported {
            instr: "call vprintf without a format".into(),
            line: inst.line,
        });
    };
    let ret = info.rets.first().map(|r| r.0);
    let mut err = Ok(());
    lanes(exec, |l| {
        if err.is_err() {
            return;
        }
        let tid = warp as usize * 32 + l;
        let local = |o: u32| u64::from(local_base + o);
        let fmt_addr = env.load(Space::Local, local(fmt_off), 8, tid);
        let buf = args_off.map_or(Ok(0), |o| env.load(Space::Local, local(o), 8, tid));
        let (Ok(fmt_addr), Ok(buf)) = (fmt_addr, buf) else {
            err = Err(LaunchError::Trap { line: inst.line });
            return;
        };
        let fmt = read_cstr(env, fmt_addr, tid);
        let text = format(
            &fmt,
            &mut LaneArgs {
                env: &mut *env,
                tid,
                buf,
                pos: 0,
            },
        );
        // A closed or failing printf sink must not fail the kernel (as on a GPU).
        let _ = env.printf.write_all(&text);
        if let Some(r) = ret {
            let _ = env.store(Space::Local, local(r), 4, tid, 0);
        }
    });
    err
}

/// `__assertfail(message, file, line, function, char_size)`: prints what CUDA prints for each
/// failing thread, then stops the launch with [`LaunchError::Assert`].
pub(crate) fn assert_fail(
    env: &mut Env<'_>,
    inst: &Inst,
    exec: u32,
    warp: u32,
    local_base: u32,
) -> Result<(), LaunchError> {
    let prog = env.prog;
    let info = &prog.calls[inst.aux as usize];
    let [bx, by, _] = env.dims.block;
    let [cx, cy, cz] = env.ctaid;
    lanes(exec, |l| {
        let tid = warp as usize * 32 + l;
        let arg = |env: &mut Env<'_>, k: usize, size: usize| {
            info.args.get(k).map_or(0, |a| {
                env.load(Space::Local, u64::from(local_base + a.0), size, tid)
                    .unwrap_or(0)
            })
        };
        let text = |env: &mut Env<'_>, k: usize| {
            let addr = arg(env, k, 8);
            String::from_utf8_lossy(&read_cstr(env, addr, tid)).into_owned()
        };
        let (msg, file, func) = (text(env, 0), text(env, 1), text(env, 3));
        let line = arg(env, 2, 4);
        let t = tid as u32;
        let out = format!(
            "{file}:{line}: {func}: block [{cx},{cy},{cz}], thread [{},{},{}] Assertion `{msg}` failed.\n",
            t % bx,
            (t / bx) % by,
            t / (bx * by)
        );
        let _ = env.printf.write_all(out.as_bytes());
    });
    Err(LaunchError::Assert { line: inst.line })
}

impl Frame {
    /// Parks `lanes` at `pc` without rescheduling (they resume when the caller does).
    pub(crate) fn pcs_park(&mut self, parked: u32, pc: u32) {
        self.set_pcs(parked, pc);
        self.next_wait = self.next_wait.min(pc);
    }
}
