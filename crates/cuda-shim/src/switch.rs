//! The crossing: finds crac's call table, passes the API gate, gives each upper thread its own
//! lower-half TCB, and runs one operation on it.
//!
//! The gate (`crac_abi::gate`) is passed before anything touches the lower half, the first
//! call's bootstrap included, and left after the crossing back: a checkpoint that closes it
//! finds no call inside once the last one has come out, and new calls wait here, in upper
//! mode, on a futex (signals interrupt the wait and it resumes; the checkpoint's quiesce stops
//! the thread there). The gate's counters carry the table generation, which is also how a
//! thread learns that a restart replaced its lower TCB: its cached TCB belongs to an older
//! generation. The host-callback thread's operations go through [`call_callback`], on the
//! gate's callback lane.
//!
//! Between the switch to the lower fs and the switch back ([`cross`]), the fs base points at a
//! lower-half TCB: the code there must not touch thread-locals (they would be the lower
//! thread's), allocate, panic, take a lock, or call the program's libc. errno needs no saving:
//! the lower half's libc writes its own errno, which lives in the lower TCB. A signal that
//! arrives meanwhile runs the program's handler through the trampoline of `exports::signal`,
//! which switches to the upper fs first.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::time::Duration;

use crac_abi::gate::{self, Futex, Lane};
use crac_abi::{MAX_ARGS, Op, TABLE_MAGIC, TABLE_VERSION, Table};

use crate::{arch, errors, sys};

/// [`TABLE_STATE`]: not looked for yet.
const UNKNOWN: u8 = 0;
/// [`TABLE_STATE`]: found and valid.
const PRESENT: u8 = 1;
/// [`TABLE_STATE`]: the program was not started by `crac_launch --gpu`.
const ABSENT: u8 = 2;

static TABLE_STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static TABLE: AtomicPtr<Table> = AtomicPtr::new(std::ptr::null_mut());
static TOLD_ABSENT: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread's lower-half TCB (0 until its first call) and the table generation it
    /// belongs to (a restart starts new lower threads and bumps the generation).
    static LOWER: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The smallest table this shim can use: up to `op_count`, the fields of the first version.
const MIN_TABLE_SIZE: usize = std::mem::offset_of!(Table, op_count) + 4;

/// Looks for the table in the auxiliary vector and checks it. Runs from the library's
/// constructor, and again from any call that comes first.
pub fn init() {
    if TABLE_STATE.load(Ordering::Acquire) != UNKNOWN {
        return;
    }
    // CRAC_SHIM_NO_FSGSBASE=1 forces the arch_prctl path (for tests and measurements on
    // machines that have FSGSBASE).
    let hwcap2 = if sys::env_flag(c"CRAC_SHIM_NO_FSGSBASE") {
        0
    } else {
        sys::getauxval(libc::AT_HWCAP2)
    };
    arch::detect(hwcap2);
    let addr = sys::getauxval(crac_abi::AT_CRAC_TABLE);
    let state = match usize::try_from(addr) {
        Ok(a) if a != 0 => {
            let table = a as *mut Table;
            // SAFETY: crac_launch put the address of its table, which lives for the whole
            // process, in the auxiliary vector under AT_CRAC_TABLE; the fixed header fields are
            // read before anything else and checked.
            let ok = unsafe { table_is_valid(table) };
            if ok {
                TABLE.store(table, Ordering::Release);
                PRESENT
            } else {
                sys::write_stderr(
                    b"crac: the call table crac_launch passed does not match this libcudart shim (magic, version or size); run the program with the crac_launch that built the shim\n",
                );
                ABSENT
            }
        }
        _ => ABSENT,
    };
    TABLE_STATE.store(state, Ordering::Release);
}

/// Whether the table at `t` has the expected magic, version and a size that covers our view.
///
/// # Safety
/// `t` must point at readable memory of at least the table's fixed header.
unsafe fn table_is_valid(t: *const Table) -> bool {
    // SAFETY: the caller guarantees the header is readable; the three fields are plain words.
    let (magic, version, size) = unsafe { ((*t).magic, (*t).version, (*t).size) };
    magic == TABLE_MAGIC
        && version == TABLE_VERSION
        && usize::try_from(size).is_ok_and(|s| s >= MIN_TABLE_SIZE)
}

/// The table, if the program runs under crac.
#[inline]
pub fn table() -> Option<&'static Table> {
    if TABLE_STATE.load(Ordering::Acquire) == UNKNOWN {
        init();
    }
    let t = TABLE.load(Ordering::Acquire);
    // SAFETY: a non-null pointer was checked by `init` and the table lives for the process.
    unsafe { t.as_ref() }
}

/// What every call returns outside crac: `cudaErrorNoDevice`, after saying once why.
fn not_under_crac() -> u32 {
    if !TOLD_ABSENT.swap(true, Ordering::Relaxed) {
        sys::write_stderr(
            b"crac: libcudart shim loaded outside crac_launch --gpu; run the program with crac_launch --gpu sim|cuda\n",
        );
    }
    errors::NO_DEVICE
}

/// Runs operation `op` with its argument words in the lower half, on this thread's own lower
/// TCB. Returns the `cudaError_t`.
#[inline]
pub fn call(op: Op, args: &[u64]) -> u32 {
    call_on(Lane::Ordinary, op, args)
}

/// [`call`] for the host-callback thread's operations (`HostCallbackNext`/`Done`): they pass
/// a closed gate (callbacks must run while a checkpoint drains the device) and wait only while
/// it is paused.
pub fn call_callback(op: Op, args: &[u64]) -> u32 {
    call_on(Lane::Callbacks, op, args)
}

#[inline(always)]
fn call_on(lane: Lane, op: Op, args: &[u64]) -> u32 {
    let Some(table) = table() else {
        return not_under_crac();
    };
    if !has_gate(table) {
        return call_inside(table, generation(table), op, args);
    }
    let tag = match gate::enter(table, lane, &ShimFutex) {
        Ok(tag) => tag,
        Err(gate::Refused::Forked) => return errors::INITIALIZATION_ERROR,
    };
    let r = call_inside(table, u64::from(tag), op, args);
    gate::leave(table, lane, &ShimFutex);
    r
}

/// The crossing proper, inside the gate: this thread's lower TCB for `generation` (the
/// counters' tag, or the table's generation for a table without a gate), then the call.
#[inline(always)]
fn call_inside(table: &Table, generation: u64, op: Op, args: &[u64]) -> u32 {
    let fs = match LOWER.with(Cell::get) {
        (fs, g) if fs != 0 && g == generation => fs,
        _ => match bootstrap(table, generation) {
            Some(fs) => fs,
            None => return errors::INITIALIZATION_ERROR,
        },
    };
    let mut words = [0u64; MAX_ARGS];
    let n = args.len().min(MAX_ARGS);
    words[..n].copy_from_slice(&args[..n]);
    // SAFETY: `fs` is this thread's own lower TCB (from `new_lower_thread`), `table.cuda` is
    // the lower half's entry point, and `words` holds MAX_ARGS words as the contract asks.
    unsafe { cross(table, fs, op as u32, words.as_ptr()) }
}

/// Whether the table has the gate's fields (a lower half that predates them has none).
#[inline(always)]
fn has_gate(table: &Table) -> bool {
    usize::try_from(table.size).is_ok_and(|s| s >= crac_abi::GATE_END)
}

/// The table's generation, or 0 for a table that predates the field.
#[inline]
fn generation(table: &Table) -> u64 {
    if usize::try_from(table.size).is_ok_and(|s| s >= crac_abi::GENERATION_END) {
        table.generation.load(Ordering::Acquire)
    } else {
        0
    }
}

/// The gate's waits, in upper mode: raw futex system calls that leave the program's errno
/// alone.
struct ShimFutex;

impl Futex for ShimFutex {
    #[inline]
    fn wait(&self, addr: usize, expected: u32, timeout: Option<Duration>) {
        arch::futex_wait(addr, expected, timeout);
    }

    #[inline]
    fn wake_all(&self, addr: usize) {
        arch::futex_wake_all(addr);
    }

    fn forked(&self, fork_byte: u64) -> bool {
        let Ok(addr) = usize::try_from(fork_byte) else {
            return false;
        };
        // SAFETY: a non-zero `Table::fork_byte` is the address of a byte in a page the lower
        // half mapped read-write for the life of the process (a forked child inherits it,
        // zeroed by MADV_WIPEONFORK); it is only ever accessed atomically.
        unsafe { std::sync::atomic::AtomicU8::from_ptr(addr as *mut u8) }.load(Ordering::Acquire)
            == 0
    }
}

/// Switches to `lower_fs`, calls the table's `cuda` entry, switches back.
///
/// # Safety
/// `lower_fs` must be the calling thread's own lower-half TCB, and `args` must point at
/// [`MAX_ARGS`] readable words.
#[inline(always)]
unsafe fn cross(table: &Table, lower_fs: u64, op: u32, args: *const u64) -> u32 {
    let upper = arch::get_fs();
    // SAFETY: from here to the switch back, only the lower half's entry runs (no TLS of ours
    // is touched); `lower_fs` is this thread's own lower TCB (caller's guarantee).
    unsafe {
        arch::set_fs(lower_fs);
        let r = (table.cuda)(op, args);
        arch::set_fs(upper);
        r
    }
}

/// First call of a thread (or its first after a restart): get a lower TCB of its own with
/// `new_lower_thread`, run on the shared bootstrap TCB under the table's lock, with every
/// signal blocked (the bootstrap TCB is shared, so the trampoline could not tell whose it is).
/// After a restart the new TCB may sit where an old one of another thread did: registering it
/// overwrites that stale entry of the signal table.
#[cold]
fn bootstrap(table: &Table, generation: u64) -> Option<u64> {
    let upper = arch::get_fs();
    let saved = sys::block_all_signals();
    while table
        .bootstrap_lock
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    // SAFETY: the lock is held, so this thread alone uses the bootstrap TCB, and signals are
    // blocked; `new_lower_thread` is the lower half's entry, called with fs = bootstrap_fs as
    // its contract asks; the switch back restores our own TCB before any thread-local is used.
    let lower = unsafe {
        arch::set_fs(table.bootstrap_fs);
        let fs = (table.new_lower_thread)();
        arch::set_fs(upper);
        fs
    };
    table.bootstrap_lock.store(0, Ordering::Release);
    let registered = lower != 0 && sys::register_lower_fs(lower, upper);
    sys::restore_signals(&saved);
    if lower == 0 {
        sys::write_stderr(b"crac: the lower half could not start a thread for this program thread; its CUDA calls fail with cudaErrorInitializationError\n");
        return None;
    }
    if !registered {
        sys::write_stderr(b"crac: too many CUDA-calling threads for the signal table; signals during their CUDA calls may crash\n");
    }
    LOWER.with(|c| c.set((lower, generation)));
    Some(lower)
}

/// Whether the program runs under crac (the table was found).
pub fn under_crac() -> bool {
    table().is_some()
}
