//! Working directory, umask and resource limits.

use crac_core::image::Rlimit;

use super::sys;
use super::{FdError, ProcessState};

/// Every `RLIMIT_*` number Linux defines (`RLIM_NLIMITS`).
const RLIMITS: u32 = 16;

/// The `Umask:` line of `/proc/self/status` (octal).
fn parse_umask(status: &str) -> Option<u32> {
    let v = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(v.trim(), 8).ok()
}

/// Captures cwd, umask and rlimits.
pub fn capture_process() -> Result<ProcessState, FdError> {
    let cwd = std::fs::read_link("/proc/self/cwd").map_err(FdError::ReadCwd)?;
    let cwd = cwd.into_os_string().into_string().map_err(|p| {
        FdError::ReadCwd(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not UTF-8", p.to_string_lossy()),
        ))
    })?;
    if let Some(gone) = cwd.strip_suffix(" (deleted)")
        && !std::path::Path::new(&cwd).is_dir()
    {
        return Err(FdError::DeletedCwd(gone.to_owned()));
    }
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| FdError::ReadUmask(e.to_string()))?;
    let umask = parse_umask(&status).ok_or_else(|| FdError::ReadUmask("no Umask line".into()))?;
    let mut rlimits = Vec::new();
    for resource in 0..RLIMITS {
        match sys::get_rlimit(resource) {
            Ok((soft, hard)) => rlimits.push(Rlimit {
                resource,
                soft,
                hard,
            }),
            // A limit this kernel does not know.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(source) => {
                return Err(FdError::Rlimit {
                    op: "read",
                    resource,
                    source,
                });
            }
        }
    }
    Ok(ProcessState {
        cwd,
        umask,
        rlimits,
    })
}

/// Restores cwd, umask and rlimits. A hard limit above the current one can only be raised by
/// root: it is restored as high as allowed (the soft limit capped by it), everything else is
/// restored, and [`FdError::HardLimitsLowered`] names what stayed lower.
pub fn restore_process(state: &ProcessState) -> Result<(), FdError> {
    std::env::set_current_dir(&state.cwd).map_err(|source| FdError::Chdir {
        path: state.cwd.clone(),
        source,
    })?;
    sys::set_umask(state.umask & 0o777);
    let mut lowered = Vec::new();
    for l in &state.rlimits {
        match sys::set_rlimit(l.resource, l.soft, l.hard) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                let err = |op| {
                    move |source| FdError::Rlimit {
                        op,
                        resource: l.resource,
                        source,
                    }
                };
                let (_, hard_now) = sys::get_rlimit(l.resource).map_err(err("read"))?;
                let hard = l.hard.min(hard_now);
                let soft = l.soft.min(hard);
                sys::set_rlimit(l.resource, soft, hard).map_err(err("set"))?;
                lowered.push(format!(
                    "limit {}: hard {hard} instead of {}",
                    l.resource, l.hard
                ));
            }
            Err(source) => {
                return Err(FdError::Rlimit {
                    op: "set",
                    resource: l.resource,
                    source,
                });
            }
        }
    }
    if lowered.is_empty() {
        Ok(())
    } else {
        Err(FdError::HardLimitsLowered(lowered.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_from_status() {
        let s = "Name:\tx\nUmask:\t0027\nState:\tR (running)\n";
        assert_eq!(parse_umask(s), Some(0o027));
        assert_eq!(parse_umask("Name:\tx\n"), None);
        assert_eq!(parse_umask("Umask:\t9\n"), None);
    }

    #[test]
    fn capture_reads_this_process() {
        let s = capture_process().unwrap();
        assert_eq!(
            std::path::PathBuf::from(&s.cwd),
            std::env::current_dir().unwrap()
        );
        let nofile = s
            .rlimits
            .iter()
            .find(|l| l.resource == libc::RLIMIT_NOFILE)
            .unwrap();
        assert!(nofile.soft <= nofile.hard);
        assert_eq!(s.rlimits.len(), 16);
    }
}
