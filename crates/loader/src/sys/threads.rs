//! The `pthread_create` the `crac` executable exports to its own libraries: every thread the
//! lower half starts (crac's agent, Rust std threads, the CUDA runtime's helper threads)
//! registers itself as lower half (tid and stack) before running its start routine. The upper
//! half has its own libc and never sees this symbol.
//!
//! glibc's internal threads (timer and AIO helpers) are created without the PLT and are not
//! seen: they stay "upper" and are saved, which is wasteful but safe.
//!
//! Lower threads start with every signal blocked: the program's process-directed signals must
//! go to the program's own threads, since a program handler run on a lower thread would use
//! that thread's TLS as the program's (the shim's trampoline can only tell lower TCBs it lent
//! to upper threads).

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A C thread start routine, allowed to be unwound through by `pthread_exit`/cancellation.
type StartFn = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;
/// libc's `pthread_create`.
type CreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartFn,
    *mut c_void,
) -> i32;

/// libc's `pthread_create`, found on first use.
static REAL: AtomicUsize = AtomicUsize::new(0);

fn real() -> Option<CreateFn> {
    let mut p = REAL.load(Ordering::Acquire);
    if p == 0 {
        // SAFETY: dlsym with RTLD_NEXT and a valid C string; it finds the next definition
        // after this executable, libc's.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        if p == 0 {
            return None;
        }
        REAL.store(p, Ordering::Release);
    }
    // SAFETY: `p` is libc's pthread_create, whose C signature CreateFn spells out.
    Some(unsafe { std::mem::transmute::<usize, CreateFn>(p) })
}

/// What the trampoline needs to call the real start routine.
struct Start {
    f: StartFn,
    arg: *mut c_void,
}

/// Registers the new thread, then runs its start routine. No value with a destructor is alive
/// across the call, so `pthread_exit`'s forced unwind may pass through this frame.
unsafe extern "C-unwind" fn trampoline(p: *mut c_void) -> *mut c_void {
    let (f, arg) = {
        // SAFETY: `p` is the Box<Start> leaked by pthread_create below, handed over once.
        let start = unsafe { Box::from_raw(p.cast::<Start>()) };
        (start.f, start.arg)
    };
    crate::lower::register_current_thread();
    // SAFETY: the caller of pthread_create passed a valid start routine and its argument.
    unsafe { f(arg) }
}

/// `pthread_create(3)` for the lower half: the new thread records itself as lower first.
///
/// # Safety
/// As `pthread_create(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartFn,
    arg: *mut c_void,
) -> i32 {
    let Some(create) = real() else {
        return libc::EAGAIN;
    };
    let boxed = Box::into_raw(Box::new(Start { f: start, arg }));
    // The child inherits the mask in force when it is created: all blocked, then ours back.
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only write the two locals.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sets; this changes only the calling thread's mask, restored below.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: forwarding the caller's arguments, with our trampoline and its boxed state.
    let rc = unsafe { create(thread, attr, trampoline, boxed.cast()) };
    // SAFETY: `old` is the mask read above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if rc != 0 {
        // SAFETY: the thread was not created, so the box is still ours.
        drop(unsafe { Box::from_raw(boxed) });
    }
    rc
}

/// The export's address, read by `init_lower_half` so its object file is always linked.
pub(crate) fn keep() -> usize {
    std::hint::black_box(pthread_create as *const () as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lower_threads_start_with_every_signal_blocked() {
        let blocked = std::thread::spawn(|| {
            // SAFETY: sigset_t is plain data; pthread_sigmask with a null new set only reads.
            let mut cur: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: `cur` is a valid out-set.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut cur) };
            // SAFETY: `cur` was filled above; sigismember only reads it.
            [libc::SIGALRM, libc::SIGINT, libc::SIGUSR1, libc::SIGTERM]
                .iter()
                .all(|&s| unsafe { libc::sigismember(&cur, s) } == 1)
        })
        .join()
        .expect("thread");
        assert!(blocked, "a lower thread could take the program's signals");
    }

    #[test]
    fn threads_register_themselves_and_survive_pthread_exit() {
        let tid = std::thread::spawn(|| {
            let tid = crate::sys::gettid();
            let local = 0u8;
            assert!(
                crate::lower::lower_tids().contains(&tid),
                "std thread registered"
            );
            assert!(crate::lower::intervals().contains(&local as *const u8 as u64));
            tid
        })
        .join()
        .expect("thread");
        assert!(!crate::lower::lower_tids().contains(&tid));

        extern "C-unwind" fn exits(_: *mut std::ffi::c_void) -> *mut std::ffi::c_void {
            // SAFETY: ends the calling thread, a C thread with no Rust frames needing drops.
            unsafe { libc::pthread_exit(7usize as *mut std::ffi::c_void) }
        }
        let mut t: libc::pthread_t = 0;
        let mut ret: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: valid out-pointers and a start routine that exits via pthread_exit.
        unsafe {
            assert_eq!(
                super::pthread_create(&mut t, std::ptr::null(), exits, std::ptr::null_mut()),
                0
            );
            assert_eq!(libc::pthread_join(t, &mut ret), 0);
        }
        assert_eq!(ret as usize, 7);
    }
}
