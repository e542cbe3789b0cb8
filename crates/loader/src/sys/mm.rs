//! Telling the kernel where the program's argv, environment, auxv and stack now are
//! (`prctl(PR_SET_MM, PR_SET_MM_MAP)`, the unprivileged checkpoint/restore interface), so
//! `/proc/PID/cmdline` (what `ps` shows), `environ`, `auxv` and the `[stack]` label describe the
//! program, not crac. Code, data and brk fields are passed back unchanged. Best effort: a
//! kernel without `CONFIG_CHECKPOINT_RESTORE` or a seccomp filter leaves crac's values.

use std::io;

/// `struct prctl_mm_map` from `<linux/prctl.h>`: its first eleven members are `__u64`s in a
/// row (start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start,
/// arg_end, env_start, env_end), laid out exactly as this array.
#[repr(C)]
struct PrctlMmMap {
    fields: [u64; 11],
    auxv: *const u64,
    auxv_size: u32,
    exe_fd: u32,
}

// The kernel checks the size it is passed against its own struct's (104 bytes).
const _: () = assert!(std::mem::size_of::<PrctlMmMap>() == 104);

const PR_SET_MM: i32 = 35;
const PR_SET_MM_MAP: u64 = 14;

/// Fields 26.. of `/proc/self/stat` this needs, by their 1-based field numbers.
fn stat_fields() -> io::Result<Vec<u64>> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    // Field 3 is the first after the ')'.
    Ok(rest
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .collect())
}

/// Points the kernel's view of argv/env/auxv/stack at the program's stack.
pub(crate) fn describe_program(
    args: (u64, u64),
    env: (u64, u64),
    auxv: &[(u64, u64)],
    stack: u64,
) -> io::Result<()> {
    let f = stat_fields()?;
    let field = |n: usize| f.get(n - 3).copied().unwrap_or(0);
    let flat: Vec<u64> = auxv.iter().flat_map(|(k, v)| [*k, *v]).collect();
    set_mm_map(
        [
            field(26),
            field(27),
            field(45),
            field(46),
            field(47),
            super::current_brk() as u64,
            stack,
            args.0,
            args.1,
            env.0,
            env.1,
        ],
        &flat,
    )
}

/// `prctl(PR_SET_MM, PR_SET_MM_MAP)` with `fields` in `prctl_mm_map` order (start_code,
/// end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
/// env_end) and `auxv` (flat key/value words). When the kernel refuses the auxv (its saved
/// one may be smaller), the rest is set and its auxv kept. The exe link is not changed.
pub fn set_mm_map(fields: [u64; 11], auxv: &[u64]) -> io::Result<()> {
    let mut map = PrctlMmMap {
        fields,
        auxv: if auxv.is_empty() {
            std::ptr::null()
        } else {
            auxv.as_ptr()
        },
        auxv_size: u32::try_from(std::mem::size_of_val(auxv)).unwrap_or(0),
        exe_fd: u32::MAX,
    };
    let call = |map: &PrctlMmMap| {
        // SAFETY: PR_SET_MM_MAP reads one prctl_mm_map of the given size and `auxv_size`
        // bytes at `auxv` (a live slice, or null with size 0); it changes only what /proc
        // reports about the process.
        let rc = unsafe {
            libc::prctl(
                PR_SET_MM,
                PR_SET_MM_MAP,
                map as *const PrctlMmMap,
                std::mem::size_of::<PrctlMmMap>(),
                0,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match call(&map) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && map.auxv_size != 0 => {
            map.auxv = std::ptr::null();
            map.auxv_size = 0;
            call(&map)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_shows_the_argv_and_environ_ranges_set() {
        if !crac_test_support::in_fresh_process(
            "sys::mm::tests::proc_shows_the_argv_and_environ_ranges_set",
        ) {
            return; // the scenario ran in a fresh process
        }
        // On the heap: the kernel shows these only from anonymous memory.
        let args = b"program\0--flag\0".to_vec();
        let env = b"A=1\0B=2\0".to_vec();
        let range = |b: &[u8]| {
            let start = b.as_ptr() as u64;
            (start, start + b.len() as u64)
        };
        // Field 28 of /proc/self/stat is start_stack: kept as it is.
        let stack = stat_fields().expect("stat")[28 - 3];
        describe_program(range(&args), range(&env), &[], stack).expect("PR_SET_MM_MAP");
        assert_eq!(std::fs::read("/proc/self/cmdline").expect("cmdline"), args);
        assert_eq!(std::fs::read("/proc/self/environ").expect("environ"), env);
        assert_eq!(stat_fields().expect("stat")[28 - 3], stack);
    }
}
