//! crac's own fds live in a protected high range, just below the soft `RLIMIT_NOFILE` crac was
//! started with, so the program's fds (which start at the bottom) never collide with them and
//! checkpoints can skip them by number. The range does not follow later limit changes: a
//! program that lowers its limit below it makes [`move_high`] fail, never land among its fds.
//!
//! A program may `dup2` onto every number of the range; crac's fds then go to the nearest free
//! window below it. So a checkpoint must recognise crac's fds by what they are (the agent keeps
//! their identities), not by number alone.
//!
//! crac code that opens files while the program runs still takes a low number for an instant
//! (the kernel always gives the lowest free one); only opening them before the program starts
//! avoids that.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// How many fd numbers the protected range holds.
pub const HIGH_RANGE: i32 = 64;
/// The range never starts above this, so a huge soft limit does not make the kernel grow the
/// fd table to millions of entries.
const MAX_TOP: u64 = 1 << 16;

/// The range, fixed the first time it is asked for (`init_lower_half` does, before the
/// program exists): a program that later lowers its own limit must not pull crac's fds down
/// among its own, and checkpoints skip crac's fds by this range.
static RANGE: OnceLock<(i32, i32)> = OnceLock::new();

/// `[low, top)` of the protected range, from the soft limit when first called.
pub fn high_range() -> io::Result<(i32, i32)> {
    if let Some(r) = RANGE.get() {
        return Ok(*r);
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a valid local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let top = i32::try_from(lim.rlim_cur.min(MAX_TOP)).unwrap_or(1 << 16);
    Ok(*RANGE.get_or_init(|| ((top - HIGH_RANGE).max(3), top)))
}

/// Moves a crac-owned fd into the protected high range (just below RLIMIT_NOFILE's soft
/// limit), close-on-exec, closing the old number.
///
/// Fails (closing `fd`) rather than leave it among the program's fds when the program has
/// lowered its soft limit below the range, since the kernel then refuses higher numbers.
pub fn move_high(fd: OwnedFd) -> io::Result<OwnedFd> {
    let (low, _top) = high_range()?;
    let new = dup_high(&fd, low)?;
    // Close the low number by hand: the program may already have closed it (its threads run
    // beside crac's), and dropping an `OwnedFd` whose number is gone aborts debug builds. The
    // result is ignored on purpose: EBADF means the program closed it first, which is fine.
    let low_fd = fd.into_raw_fd();
    // SAFETY: `low_fd` was ours (from the OwnedFd just consumed); closing it at most fails with
    // EBADF if the program closed it in the meantime.
    let _ = unsafe { libc::close(low_fd) };
    register(new);
    // SAFETY: `new` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Every fd crac moved out of the program's way (or registered by hand): number and the
/// identity (device, inode) of the file it referred to then. The program may close the number
/// or `dup2` its own file over it, so a number alone proves nothing: [`is_crac_fd`] checks both.
static REGISTRY: Mutex<Vec<(RawFd, (u64, u64))>> = Mutex::new(Vec::new());

fn registry<R>(f: impl FnOnce(&mut Vec<(RawFd, (u64, u64))>) -> R) -> R {
    let mut guard = match REGISTRY.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    f(&mut guard)
}

/// The identity (device, inode) of what fd number `fd` refers to now.
fn identity(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills `st` on success (checked before it is read); a number that is not
    // open only makes it fail with EBADF.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// Records `fd` (open now) as crac's own: checkpoints leave it out and restart moves it out of
/// the program's numbers. [`move_high`] registers what it returns; call this for any other fd
/// crac holds while a checkpoint runs.
pub fn register(fd: RawFd) {
    if let Ok(id) = identity(fd) {
        registry(|r| {
            r.retain(|(n, _)| *n != fd);
            r.push((fd, id));
        });
    }
}

/// Whether fd number `fd` is one of crac's: registered, and still referring to the same file
/// as when it was registered.
pub fn is_crac_fd(fd: RawFd) -> bool {
    let Some(id) = registry(|r| r.iter().find(|(n, _)| *n == fd).map(|(_, id)| *id)) else {
        return false;
    };
    identity(fd).is_ok_and(|now| now == id)
}

/// crac's fds that are still open and still crac's (see [`is_crac_fd`]).
pub fn crac_fds() -> Vec<RawFd> {
    let all: Vec<RawFd> = registry(|r| r.iter().map(|(n, _)| *n).collect());
    all.into_iter().filter(|&n| is_crac_fd(n)).collect()
}

/// Moves every crac fd whose number is in `taken` (the numbers a restarted program's fds will
/// have) to a free number outside `taken`, close-on-exec, and returns the moves as
/// `(old, new)`. Code that keeps a raw number of a moved fd must switch to the new one.
pub fn move_out_of(taken: &[RawFd]) -> io::Result<Vec<(RawFd, RawFd)>> {
    let mut moves = Vec::new();
    for fd in crac_fds().into_iter().filter(|n| taken.contains(n)) {
        let mut start = 3;
        let new = loop {
            // SAFETY: F_DUPFD_CLOEXEC duplicates crac's open fd to the lowest free number at or
            // above `start`; it touches no memory.
            let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, start) };
            if new < 0 {
                return Err(io::Error::last_os_error());
            }
            if !taken.contains(&new) {
                break new;
            }
            // A program number: give it back and look above it.
            // SAFETY: `new` was just made by fcntl and is used by nothing.
            unsafe { libc::close(new) };
            start = new + 1;
        };
        // SAFETY: `fd` is crac's (checked by crac_fds) and its duplicate now stands in for it.
        unsafe { libc::close(fd) };
        registry(|r| r.retain(|(n, _)| *n != fd));
        register(new);
        moves.push((fd, new));
    }
    Ok(moves)
}

/// Duplicates `fd` to the lowest free number in the protected range starting at `low`; when the
/// program has taken every number of the range (`dup2` onto them), to the lowest free number
/// of the nearest window of [`HIGH_RANGE`] numbers below it, still as far from the program's
/// low numbers as the table allows.
fn dup_high(fd: &OwnedFd, low: i32) -> io::Result<i32> {
    let mut start = low;
    loop {
        // SAFETY: F_DUPFD_CLOEXEC duplicates a valid open fd to the lowest free number >= start.
        let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, start) };
        if new >= 0 {
            return Ok(new);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the program lowered its open-file limit (RLIMIT_NOFILE) below crac's fd \
                     range; crac cannot open files out of the program's way until it raises it \
                     again",
                ));
            }
            Some(libc::EMFILE) if start > 3 + HIGH_RANGE => start -= HIGH_RANGE,
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_fd_is_high_cloexec_and_the_same_file() {
        use std::io::Read;
        let f = std::fs::File::open("/proc/self/cmdline").expect("open");
        let moved = move_high(OwnedFd::from(f)).expect("move");
        let (low, top) = high_range().expect("range");
        let n = moved.as_raw_fd();
        assert!(n >= low && n < top, "{n} not in {low}..{top}");
        // SAFETY: querying the flags of an fd we own.
        let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let mut text = Vec::new();
        std::fs::File::from(moved)
            .read_to_end(&mut text)
            .expect("read");
        assert_eq!(
            text,
            std::fs::read("/proc/self/cmdline").expect("read"),
            "same file"
        );
    }

    #[test]
    fn registered_fds_are_recognised_by_number_and_identity() {
        let f = std::fs::File::open("/proc/self/cmdline").expect("open");
        let moved = move_high(OwnedFd::from(f)).expect("move");
        let n = moved.as_raw_fd();
        assert!(is_crac_fd(n));
        assert!(crac_fds().contains(&n));
        // The program dup2s its own file over the number: no longer crac's.
        let other = std::fs::File::open("/dev/null").expect("open");
        // SAFETY: replaces our own moved fd with /dev/null, in this test only.
        assert_eq!(unsafe { libc::dup2(other.as_raw_fd(), n) }, n);
        assert!(
            !is_crac_fd(n),
            "a number taken over by another file is not crac's"
        );
        assert!(!is_crac_fd(other.as_raw_fd()));
    }

    #[test]
    fn move_out_of_avoids_the_taken_numbers() {
        let f = std::fs::File::open("/proc/self/cmdline").expect("open");
        let moved = move_high(OwnedFd::from(f)).expect("move").into_raw_fd();
        let taken: Vec<RawFd> = (moved - 2..=moved + 2).collect();
        let moves = move_out_of(&taken).expect("move out");
        let (old, new) = *moves.iter().find(|(o, _)| *o == moved).expect("moved");
        assert_eq!(old, moved);
        assert!(!taken.contains(&new));
        assert!(is_crac_fd(new));
        // SAFETY: F_GETFD only queries; the old number was closed.
        assert_eq!(unsafe { libc::fcntl(old, libc::F_GETFD) }, -1);
        // SAFETY: our own fd, closed once.
        unsafe { libc::close(new) };
    }

    #[test]
    fn range_stays_put_when_the_program_lowers_its_limit() {
        if !crac_test_support::in_fresh_process(
            "fds::tests::range_stays_put_when_the_program_lowers_its_limit",
        ) {
            return; // the scenario ran in a fresh process
        }
        let (low, top) = high_range().expect("range");
        assert!(low > 16, "the test needs a soft limit above 80, got {top}");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit on a valid local, in this child process only.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
            lim.rlim_cur = 16;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
        assert_eq!(high_range().expect("range"), (low, top), "range moved");
        let f = std::fs::File::open("/dev/null").expect("open");
        let n = f.as_raw_fd();
        let e = move_high(OwnedFd::from(f)).expect_err("cannot go above the lowered limit");
        assert!(e.to_string().contains("RLIMIT_NOFILE"), "{e}");
        // SAFETY: F_GETFD only queries; the fd was closed, not left among the program's.
        assert_eq!(unsafe { libc::fcntl(n, libc::F_GETFD) }, -1);
    }

    #[test]
    fn a_full_range_sends_crac_below_it() {
        if !crac_test_support::in_fresh_process("fds::tests::a_full_range_sends_crac_below_it") {
            return; // the scenario ran in a fresh process
        }
        let (low, top) = high_range().expect("range");
        assert!(
            low > 2 * HIGH_RANGE,
            "the test needs a soft limit above 128, got {top}"
        );
        // The program dup2s onto every number of crac's range.
        for n in low..top {
            // SAFETY: dup2 of stdout onto numbers this child process does not use otherwise.
            assert_eq!(unsafe { libc::dup2(1, n) }, n);
        }
        let f = std::fs::File::open("/dev/null").expect("open");
        let moved = move_high(OwnedFd::from(f)).expect("a window below the range");
        let n = moved.as_raw_fd();
        assert!(
            (low - HIGH_RANGE..low).contains(&n),
            "{n} not in the window below {low}"
        );
    }
}
