//! Capture: list the program's fds, inspect each once, group them into open file descriptions,
//! and hand each to the module of its kind.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

use crac_core::image::{FdKind, FdRecord};

use super::sys::{self, Stat};
use super::{FdCapture, FdError, events, files, pipes, sockets};

/// What capture learnt about one program fd before deciding its kind.
#[derive(Clone, Debug)]
pub(super) struct Probe {
    /// The fd number.
    pub fd: i32,
    /// `fstat`.
    pub st: Stat,
    /// `readlink /proc/self/fd/N` (`/path`, `pipe:[ino]`, `anon_inode:[eventfd]`, …).
    pub link: OsString,
    /// `F_GETFL`.
    pub flags: i32,
    /// `FD_CLOEXEC`.
    pub cloexec: bool,
}

impl Probe {
    /// The link as text, for messages and prefix checks.
    pub fn link_lossy(&self) -> String {
        String::from_utf8_lossy(self.link.as_bytes()).into_owned()
    }
}

/// The identities (device, inode) of crac's fds 0–2 when the agent started; `None` for a
/// closed one.
type StartupStdio = [Option<(u64, u64)>; 3];

static STARTUP_STDIO: OnceLock<StartupStdio> = OnceLock::new();

/// Records what crac's fds 0–2 are open on, so a checkpoint can tell the standard fds the
/// program inherited (saved as [`FdKind::Stdio`]) from files the program put there itself.
/// Call it once at start-up, before the program runs; later calls do nothing. `restore` calls
/// it too, so a restarted program's standard fds are `crac_restart`'s.
pub fn note_startup_stdio() {
    STARTUP_STDIO.get_or_init(|| {
        let id = |fd| sys::fstat(fd).ok().map(|st| (st.dev, st.ino));
        [id(0), id(1), id(2)]
    });
}

/// Captures the program's fds. `is_crac_fd` says which fds are crac's own (skipped);
/// `agent_reply` is the fd waiting in `crac_checkpoint()` and the reply it reads after restart.
pub fn capture(
    is_crac_fd: &dyn Fn(i32) -> bool,
    agent_reply: Option<(i32, &[u8])>,
) -> Result<FdCapture, FdError> {
    let numbers = list_fds(is_crac_fd)?;
    let probes = numbers
        .into_iter()
        .filter_map(|fd| probe(fd).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let descriptions = descriptions(&probes);
    let stdio = stdio_fds(&probes, &descriptions);
    // Every fd sharing the reply connection's description is that connection.
    let reply_description = agent_reply.and_then(|(fd, _)| {
        let i = probes.iter().position(|p| p.fd == fd)?;
        Some(descriptions[i])
    });
    let mut records = Vec::with_capacity(probes.len());
    for (i, p) in probes.iter().enumerate() {
        let kind = match agent_reply {
            Some((_, reply)) if reply_description == Some(descriptions[i]) => FdKind::AgentReply {
                reply: reply.to_vec(),
            },
            _ if stdio[i] => FdKind::Stdio,
            _ => classify(p, &probes)?,
        };
        records.push(FdRecord {
            fd: p.fd,
            cloexec: p.cloexec,
            description: descriptions[i],
            kind,
        });
    }
    let drained = pipes::finish(&mut records)?;
    Ok(FdCapture { records, drained })
}

/// The program's fd numbers, sorted: `/proc/self/fd` read through an fd whose own number is
/// left out, minus crac's.
fn list_fds(is_crac_fd: &dyn Fn(i32) -> bool) -> Result<Vec<i32>, FdError> {
    let dir = sys::open(
        Path::new("/proc/self/fd"),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
    .map_err(FdError::ListFds)?;
    let own = dir.as_raw_fd();
    let names = crate::sys::dir_names(dir.as_fd()).map_err(FdError::ListFds)?;
    drop(dir);
    let mut fds: Vec<i32> = names
        .iter()
        .filter_map(|n| n.to_str()?.parse().ok())
        .filter(|&fd| fd != own && !is_crac_fd(fd))
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// Inspects fd `fd`; `None` when it is no longer open (a lower-half thread of crac's closed
/// one of its own between the listing and now).
fn probe(fd: i32) -> Result<Option<Probe>, FdError> {
    let inspect = |what| move |source| FdError::Inspect { fd, what, source };
    let st = match sys::fstat(fd) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => return Ok(None),
        Err(e) => return Err(inspect("fstat")(e)),
    };
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map_err(inspect("readlink"))?
        .into_os_string();
    let flags = sys::status_flags(fd).map_err(inspect("status flags"))?;
    let cloexec = sys::cloexec(fd).map_err(inspect("descriptor flags"))?;
    Ok(Some(Probe {
        fd,
        st,
        link,
        flags,
        cloexec,
    }))
}

/// One description id per probe: equal ids share an open file description. Ids are given in
/// fd order. Only fds on the same inode can share one; within such a group the fds are sorted
/// by `kcmp`'s order of their descriptions, so thousands of eventfds (which all share one
/// anonymous inode) cost O(n log n) calls, not O(n²).
fn descriptions(probes: &[Probe]) -> Vec<u32> {
    let mut root: Vec<usize> = (0..probes.len()).collect();
    let mut groups: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, p) in probes.iter().enumerate() {
        groups.entry((p.st.dev, p.st.ino)).or_default().push(i);
    }
    for members in groups.values_mut().filter(|m| m.len() > 1) {
        if !join_sorted(probes, members, &mut root) {
            join_pairwise(probes, members, &mut root);
        }
    }
    let mut id_of_root: Vec<Option<u32>> = vec![None; probes.len()];
    let mut next = 0u32;
    let mut ids = Vec::with_capacity(probes.len());
    for &r in &root {
        // `r` is the lowest index of its class, so its id is given before any other member's.
        let id = *id_of_root[r].get_or_insert_with(|| {
            next += 1;
            next - 1
        });
        ids.push(id);
    }
    ids
}

/// Joins the members of one inode group that kcmp says share a description: sorts them by
/// kcmp's order, then each run of equal ones gets its lowest index as root. `false` (nothing
/// joined) when kcmp is not available.
fn join_sorted(probes: &[Probe], members: &mut [usize], root: &mut [usize]) -> bool {
    let failed = Cell::new(false);
    let cmp = |a: usize, b: usize| {
        sys::description_order(probes[a].fd, probes[b].fd).unwrap_or_else(|_| {
            failed.set(true);
            Ordering::Equal
        })
    };
    members.sort_by(|&a, &b| cmp(a, b));
    if failed.get() {
        return false;
    }
    let mut start = 0;
    for end in 1..=members.len() {
        if end == members.len() || cmp(members[end - 1], members[end]) != Ordering::Equal {
            let run = &members[start..end];
            let low = run.iter().copied().min().unwrap_or(run[0]);
            for &m in run {
                root[m] = low;
            }
            start = end;
        }
    }
    !failed.get()
}

/// Without kcmp: regular files and directories with equal flags and offsets are taken as one
/// description; anything else never shares.
fn join_pairwise(probes: &[Probe], members: &[usize], root: &mut [usize]) {
    let mut reps: Vec<usize> = Vec::new();
    for &i in members {
        let p = &probes[i];
        let seekable = matches!(p.st.file_type(), libc::S_IFREG | libc::S_IFDIR);
        let same = |j: &&usize| {
            let q = &probes[**j];
            seekable
                && q.flags == p.flags
                && matches!((sys::offset(q.fd), sys::offset(p.fd)), (Ok(x), Ok(y)) if x == y)
        };
        match reps.iter().find(same) {
            Some(&j) => root[i] = root[j].min(i),
            None => reps.push(i),
        }
    }
}

/// Which probes are [`FdKind::Stdio`]: fds 0–2 on crac's start-up standard files (or, without
/// a start-up record, on a tty, device, socket or pipe leaving the program), and fds sharing
/// their descriptions.
fn stdio_fds(probes: &[Probe], descriptions: &[u32]) -> Vec<bool> {
    let startup = STARTUP_STDIO.get();
    let is_std = |p: &Probe| -> bool {
        if !(0..3).contains(&p.fd) {
            return false;
        }
        match startup {
            Some(ids) => ids.contains(&Some((p.st.dev, p.st.ino))),
            None => match p.st.file_type() {
                libc::S_IFREG | libc::S_IFDIR => false,
                libc::S_IFIFO => !probes
                    .iter()
                    .any(|q| q.fd != p.fd && q.st.ino == p.st.ino && q.st.dev == p.st.dev),
                _ => true,
            },
        }
    };
    let std_descriptions: Vec<u32> = probes
        .iter()
        .zip(descriptions)
        .filter(|(p, _)| is_std(p))
        .map(|(_, &d)| d)
        .collect();
    descriptions
        .iter()
        .map(|d| std_descriptions.contains(d))
        .collect()
}

/// The kind of a program fd that is neither `Stdio` nor the agent's reply.
fn classify(p: &Probe, probes: &[Probe]) -> Result<FdKind, FdError> {
    if p.link.as_bytes().starts_with(b"anon_inode:") {
        return events::capture(p, probes);
    }
    match p.st.file_type() {
        libc::S_IFREG | libc::S_IFDIR => files::capture_file(p),
        libc::S_IFCHR => files::capture_device(p),
        libc::S_IFIFO => pipes::capture(p),
        libc::S_IFSOCK => sockets::capture(p, probes),
        libc::S_IFBLK => Err(FdError::Unsupported {
            fd: p.fd,
            what: format!("a block device ({})", p.link_lossy()),
            short: "block devices",
        }),
        _ => Err(FdError::Unsupported {
            fd: p.fd,
            what: format!("an unknown kind of file ({})", p.link_lossy()),
            short: "it",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    fn probes_of(fds: &[&OwnedFd]) -> Vec<Probe> {
        fds.iter()
            .map(|f| probe(f.as_raw_fd()).unwrap().unwrap())
            .collect()
    }

    #[test]
    fn kcmp_and_the_fallback_group_dups_of_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let a = sys::open(&path, libc::O_RDONLY).unwrap();
        let b = sys::open(&path, libc::O_RDONLY).unwrap();
        let a2 = sys::dup_at_least(a.as_raw_fd(), 0).unwrap();
        sys::seek(b.as_raw_fd(), 3).unwrap();
        let probes = probes_of(&[&a, &b, &a2]);
        assert_eq!(descriptions(&probes), [0, 1, 0], "kcmp");
        let mut root = vec![0, 1, 2];
        join_pairwise(&probes, &[0, 1, 2], &mut root);
        assert_eq!(root, [0, 1, 0], "same flags and offset");
    }

    #[test]
    fn eventfds_on_one_inode_stay_apart_unless_duplicated() {
        let fds: Vec<OwnedFd> = (0..40).map(|_| sys::eventfd(0).unwrap()).collect();
        let dup = sys::dup_at_least(fds[7].as_raw_fd(), 0).unwrap();
        let mut all: Vec<&OwnedFd> = fds.iter().collect();
        all.push(&dup);
        let ids = descriptions(&probes_of(&all));
        let want: Vec<u32> = (0..40).chain([7]).collect();
        assert_eq!(ids, want);
        let mut root: Vec<usize> = (0..all.len()).collect();
        let members: Vec<usize> = (0..all.len()).collect();
        join_pairwise(&probes_of(&all), &members, &mut root);
        assert_eq!(
            root,
            (0..all.len()).collect::<Vec<_>>(),
            "never joined without kcmp"
        );
    }
}
