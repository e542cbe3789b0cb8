//! Process-wide state: signal actions and pending signals, the kernel's `mm` fields and auxv,
//! and the program's name and arguments (for people).

use crac_core::image::{MmRecord, SigAction, SignalRecord};

use super::procmem::ProcMem;
use super::quiesce::QUIESCE_SIGNAL;
use super::threads::status_mask;
use crate::sys::quiesce::{self, KernelSigaction};

/// `AT_EXECFN`: the program path the process was started with.
const AT_EXECFN: u64 = 31;

/// Every signal action (the quiesce signal's is `program_action`, the program's own), and the
/// process-wide pending set.
pub fn signals(program_action: &KernelSigaction) -> std::io::Result<SignalRecord> {
    let mut actions = Vec::new();
    for signo in (1..=64).filter(|s| *s != libc::SIGKILL && *s != libc::SIGSTOP) {
        let a = if signo == QUIESCE_SIGNAL {
            *program_action
        } else {
            quiesce::get_action(signo)?
        };
        actions.push(SigAction {
            signo,
            handler: a.handler,
            flags: a.flags,
            restorer: a.restorer,
            mask: a.mask,
        });
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    Ok(SignalRecord {
        actions,
        shared_pending: status_mask(&status, "ShdPnd:"),
    })
}

/// The fields of `/proc/self/stat` after the command name, by their 1-based field numbers.
fn stat_field(fields: &[&str], n: usize) -> u64 {
    fields
        .get(n.wrapping_sub(3))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// The `mm` record from the text of `/proc/self/stat` and `/proc/self/auxv`, with `brk` the
/// current break.
pub fn mm_from(stat: &str, auxv: &[u8], brk: u64) -> MmRecord {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    MmRecord {
        start_code: stat_field(&f, 26),
        end_code: stat_field(&f, 27),
        start_stack: stat_field(&f, 28),
        start_data: stat_field(&f, 45),
        end_data: stat_field(&f, 46),
        start_brk: stat_field(&f, 47),
        brk,
        arg_start: stat_field(&f, 48),
        arg_end: stat_field(&f, 49),
        env_start: stat_field(&f, 50),
        env_end: stat_field(&f, 51),
        auxv: auxv
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    }
}

/// This process's `mm` record.
pub fn mm() -> std::io::Result<MmRecord> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let auxv = std::fs::read("/proc/self/auxv")?;
    Ok(mm_from(&stat, &auxv, crate::sys::process::current_brk()))
}

/// The program's path (its `AT_EXECFN` string) and argv (the strings between `arg_start` and
/// `arg_end`, read from memory: `/proc/self/cmdline` would do, but the kernel shows it only
/// from anonymous memory).
pub fn program_and_argv(mm: &MmRecord, mem: &ProcMem) -> (String, Vec<String>) {
    let len = usize::try_from(mm.arg_end.saturating_sub(mm.arg_start))
        .unwrap_or(0)
        .min(1 << 20);
    let mut args = vec![0u8; len];
    if mem.read(mm.arg_start, &mut args).is_err() {
        args.clear();
    }
    let argv: Vec<String> = args
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let execfn = mm
        .auxv
        .chunks_exact(2)
        .find(|kv| kv[0] == AT_EXECFN)
        .map(|kv| kv[1])
        .and_then(|addr| {
            let mut buf = vec![0u8; 4096];
            // The string may end closer than 4 KiB before the end of the stack: read less.
            let n = (0..=12)
                .map(|i| 4096usize >> i)
                .find(|n| mem.read(addr, &mut buf[..*n]).is_ok())?;
            let s = &buf[..n];
            let end = s.iter().position(|b| *b == 0)?;
            Some(String::from_utf8_lossy(&s[..end]).into_owned())
        });
    let program = execfn.or_else(|| argv.first().cloned()).unwrap_or_default();
    (program, argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mm_fields_come_from_their_stat_positions() {
        // pid, a comm holding ") ", state, then fields 4.. numbered so field n holds n.
        let tail: Vec<String> = (4..=52).map(|n| n.to_string()).collect();
        let stat = format!("1234 (a) b) c) S {}", tail.join(" "));
        let auxv: Vec<u8> = [6u64, 4096, 0, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mm = mm_from(&stat, &auxv, 99);
        assert_eq!(mm.start_code, 26);
        assert_eq!(mm.end_code, 27);
        assert_eq!(mm.start_stack, 28);
        assert_eq!(mm.start_data, 45);
        assert_eq!(mm.start_brk, 47);
        assert_eq!(mm.env_end, 51);
        assert_eq!(mm.brk, 99);
        assert_eq!(mm.auxv, vec![6, 4096, 0, 0]);
    }

    #[test]
    fn this_process_has_a_program_path_and_argv() {
        let mm = mm().unwrap();
        let mem = ProcMem::open_plain().unwrap();
        let (program, argv) = program_and_argv(&mm, &mem);
        assert!(!program.is_empty());
        assert!(!argv.is_empty());
        assert!(mm.arg_end > mm.arg_start);
    }
}
