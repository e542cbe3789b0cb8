//! The lower half's start-up: run once without address randomization (re-exec), block the
//! shared program break, and record every mapping crac owns before the program exists.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicU32, Ordering};

use crac_core::interval::{Interval, IntervalSet};

use crate::StartupError;
use crate::sys;

/// Marker in the re-exec'd process's environment: never re-exec twice.
pub const REEXEC_MARKER: &str = "__CRAC_REEXEC";
/// The personality crac was started with (hex), passed across the re-exec.
pub const PERSONALITY_VAR: &str = "__CRAC_PERSONALITY";
/// The glibc tunable that keeps glibc from registering rseq (DESIGN.md: v1 policy).
pub const RSEQ_OFF: &str = "glibc.pthread.rseq=0";
/// `ADDR_NO_RANDOMIZE` personality flag.
const ADDR_NO_RANDOMIZE: u32 = 0x0040000;
/// Size of the PROT_NONE guard above the break.
const BRK_GUARD: usize = 1 << 20;

/// The personality before the re-exec (restored for the program by `exec::enter`).
static ORIGINAL_PERSONALITY: AtomicU32 = AtomicU32::new(u32::MAX);

/// The personality crac was started with, if known.
pub(crate) fn original_personality() -> Option<u32> {
    let p = ORIGINAL_PERSONALITY.load(Ordering::Relaxed);
    (p != u32::MAX).then_some(p)
}

/// `GLIBC_TUNABLES` with rseq registration off: any existing `glibc.pthread.rseq` entry is
/// replaced by `=0`, every other entry kept in order.
pub fn merge_tunables(existing: Option<&OsStr>) -> OsString {
    let mut parts: Vec<&[u8]> = existing
        .map(|v| v.as_bytes())
        .unwrap_or_default()
        .split(|b| *b == b':')
        .filter(|p| !p.is_empty() && !p.starts_with(b"glibc.pthread.rseq="))
        .collect();
    parts.push(RSEQ_OFF.as_bytes());
    OsString::from_vec(parts.join(&b':'))
}

/// Whether a `GLIBC_TUNABLES` value already turns rseq off.
fn rseq_is_off(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| {
        v.as_bytes()
            .split(|b| *b == b':')
            .rfind(|p| p.starts_with(b"glibc.pthread.rseq="))
            .is_some_and(|p| p == RSEQ_OFF.as_bytes())
    })
}

/// First thing `main` does for `crac_launch`: if ADDR_NO_RANDOMIZE is not set, set it with
/// personality(2) and re-exec /proc/self/exe with the same argv and environment plus the
/// private marker `__CRAC_REEXEC=1`; returns Ok(()) in the re-exec'd process (never loops).
///
/// The re-exec also sets `GLIBC_TUNABLES` (merged) so crac's own glibc does not register rseq
/// for the main thread, which becomes the program's; if ASLR is already off but the tunable is
/// missing it re-execs for that alone.
pub fn ensure_no_aslr() -> Result<(), StartupError> {
    let persona = sys::personality(None).map_err(StartupError::Personality)?;
    let no_aslr = persona & ADDR_NO_RANDOMIZE != 0;
    let tunables = std::env::var_os("GLIBC_TUNABLES");
    if std::env::var_os(REEXEC_MARKER).is_some() {
        let original = std::env::var(PERSONALITY_VAR)
            .ok()
            .and_then(|v| u32::from_str_radix(&v, 16).ok())
            .unwrap_or(persona);
        ORIGINAL_PERSONALITY.store(original, Ordering::Relaxed);
        // Executing /proc/self/exe named the process "exe"; give it back the name it was run as.
        if let Some(name) = std::env::args_os().next() {
            let base = std::path::Path::new(&name).file_name().unwrap_or_default();
            if let Ok(c) = CString::new(base.as_bytes()) {
                let _ = sys::set_comm(&c);
            }
        }
        return if no_aslr {
            Ok(())
        } else {
            Err(StartupError::AslrStillOn)
        };
    }
    if no_aslr && rseq_is_off(tunables.as_deref()) {
        ORIGINAL_PERSONALITY.store(persona, Ordering::Relaxed);
        return Ok(());
    }
    sys::personality(Some(persona | ADDR_NO_RANDOMIZE)).map_err(StartupError::Personality)?;
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k != "GLIBC_TUNABLES" && k != REEXEC_MARKER && k != PERSONALITY_VAR)
        .collect();
    env.push(("GLIBC_TUNABLES".into(), merge_tunables(tunables.as_deref())));
    env.push((REEXEC_MARKER.into(), "1".into()));
    env.push((PERSONALITY_VAR.into(), format!("{persona:x}").into()));
    // exec keeps SIG_IGN and the mask: give the new image the state crac was started with, not
    // the SIGPIPE=SIG_IGN std set, so its start-up capture sees the original.
    if let Err(e) = sys::signals::restore_for_program() {
        return Err(StartupError::Reexec(e));
    }
    // Likewise the standard fds: closed ones must be closed again in the new image (std put
    // /dev/null on them), or its start-up capture would see them open.
    if let Err(e) = sys::stdfds::close_for_program() {
        return Err(StartupError::Reexec(e));
    }
    let err = reexec(std::env::args_os().collect(), env);
    // Put the personality back: we stay in this process only on failure.
    let _ = sys::personality(Some(persona));
    Err(StartupError::Reexec(err))
}

fn cstring(s: OsString) -> Result<CString, std::io::Error> {
    CString::new(s.into_vec()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

fn reexec(argv: Vec<OsString>, env: Vec<(OsString, OsString)>) -> std::io::Error {
    let built = (|| -> Result<(Vec<CString>, Vec<CString>), std::io::Error> {
        let argv = argv
            .into_iter()
            .map(cstring)
            .collect::<Result<Vec<_>, _>>()?;
        let env = env
            .into_iter()
            .map(|(mut k, v)| {
                k.push("=");
                k.push(v);
                cstring(k)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((argv, env))
    })();
    let (argv, env) = match built {
        Ok(v) => v,
        Err(e) => return e,
    };
    sys::execve(c"/proc/self/exe", &argv, &env)
}

/// Brk guard (a PROT_NONE mapping right above the current break so both halves' mallocs use
/// mmap) and recording of the lower half's startup mappings. Idempotent.
pub fn init_lower_half() -> Result<(), StartupError> {
    // Keep the exports and the signal-capturing constructor linked into every binary that
    // calls this, whatever object file the linker would otherwise drop.
    std::hint::black_box(sys::exports::keep());
    std::hint::black_box(sys::threads::keep());
    if !sys::signals::captured() {
        return Err(StartupError::SignalsNotCaptured);
    }
    if crate::lower::has_startup() {
        return Ok(());
    }
    // Fix crac's fd range now, from the limit crac was started with.
    crate::fds::high_range().map_err(StartupError::FdRange)?;
    guard_brk().map_err(StartupError::BrkGuard)?;
    sys::register_atfork().map_err(StartupError::AtFork)?;
    // Make sure the arena exists before the snapshot (it is lower half either way).
    std::hint::black_box(Box::new(0u8));
    let text = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| StartupError::Maps(e.to_string()))?;
    let entries =
        crac_core::procfs::parse_maps(&text).map_err(|e| StartupError::Maps(e.to_string()))?;
    let set: IntervalSet = entries.iter().map(|e| e.range).collect();
    crate::lower::set_startup(set);
    Ok(())
}

/// Maps the PROT_NONE guard right above the break. If something is already mapped there the
/// break cannot grow anyway, which is all the guard is for.
fn guard_brk() -> std::io::Result<Interval> {
    let start = sys::page_up(sys::current_brk() as u64);
    let start = usize::try_from(start).unwrap_or(0);
    match sys::map_guard(start, BRK_GUARD) {
        Ok(()) => Ok(Interval::new(start as u64, (start + BRK_GUARD) as u64)),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(Interval::new(0, 0)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn tunables_merge_keeps_other_entries_and_forces_rseq_off() {
        assert_eq!(merge_tunables(None), OsString::from(RSEQ_OFF));
        assert_eq!(
            merge_tunables(Some(OsStr::new(
                "glibc.malloc.check=3:glibc.pthread.rseq=1"
            ))),
            OsString::from("glibc.malloc.check=3:glibc.pthread.rseq=0")
        );
        assert_eq!(
            merge_tunables(Some(OsStr::new("a=1::b=2"))),
            OsString::from("a=1:b=2:glibc.pthread.rseq=0")
        );
        assert!(rseq_is_off(Some(OsStr::new("x=1:glibc.pthread.rseq=0"))));
        assert!(!rseq_is_off(Some(OsStr::new(
            "glibc.pthread.rseq=0:glibc.pthread.rseq=1"
        ))));
        assert!(!rseq_is_off(None));
    }

    #[test]
    fn reexec_turns_aslr_and_rseq_off_once() {
        if !crac_test_support::in_fresh_process(
            "startup::tests::reexec_turns_aslr_and_rseq_off_once",
        ) {
            return; // the scenario ran in a fresh process
        }
        // The first call re-execs this test binary with the same argv; the second image gets here
        // again and the call returns.
        ensure_no_aslr().expect("re-exec");
        assert!(
            std::env::var_os(REEXEC_MARKER).is_some(),
            "went through the re-exec"
        );
        let p = sys::personality(None).expect("personality");
        assert_ne!(p & ADDR_NO_RANDOMIZE, 0);
        assert!(rseq_is_off(std::env::var_os("GLIBC_TUNABLES").as_deref()));
        assert_eq!(
            original_personality().map(|o| o & ADDR_NO_RANDOMIZE),
            Some(0)
        );
        ensure_no_aslr().expect("second call is a no-op");
    }

    #[test]
    fn startup_set_holds_what_existed_and_nothing_made_after() {
        if !crac_test_support::in_fresh_process(
            "startup::tests::startup_set_holds_what_existed_and_nothing_made_after",
        ) {
            return; // the scenario ran in a fresh process
        }
        let before = sys::mmap_anon(8192, libc::PROT_READ, 0).expect("map before");
        init_lower_half().expect("init");
        init_lower_half().expect("idempotent");
        let after = sys::mmap_anon(8192, libc::PROT_READ, 0).expect("map after");
        let set = crate::lower::intervals();
        assert!(set.covers(&Interval::new(before as u64, before as u64 + 8192)));
        assert!(
            !set.contains(after as u64),
            "a raw mapping made later is not lower"
        );
        // A start-up mapping that lower code unmaps later is no longer lower: the program may
        // map something there.
        // SAFETY: `before` is this test's own mapping, used by nothing.
        assert_eq!(unsafe { sys::exports::munmap(before as *mut _, 8192) }, 0);
        assert!(
            !crate::lower::intervals().contains(before as u64),
            "an unmapped start-up mapping stays lower"
        );
        let guard = sys::page_up(sys::current_brk() as u64);
        assert!(set.contains(guard), "the brk guard is lower");
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        assert!(
            maps.lines()
                .any(|l| l.starts_with(&format!("{guard:x}-")) && l.contains("---p"))
        );
    }
}
