//! Starting the agent: bind the control socket, move it to crac's fds, and spawn the agent
//! thread with every signal blocked.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lower::{LoaderLowerHalf, LowerHalf};
use crate::{AgentError, server, socket, sys};

/// A running agent. Dropping it removes the socket file (the thread keeps running until the
/// process ends; in a launched process this is never dropped, because entering the program does
/// not return).
#[derive(Debug)]
pub struct Agent {
    path: PathBuf,
}

impl Agent {
    /// Where the control socket is.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Starts the agent of this process, with the lower half as the loader recorded it.
pub fn start() -> Result<Agent, AgentError> {
    let uid = sys::effective_uid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    let dir = socket::choose_dir(xdg.as_deref(), uid)?;
    start_in(&dir, Arc::new(LoaderLowerHalf), uid)
}

/// Starts an agent whose socket is `<dir>/<pid>.sock` (`dir` already prepared), answering peers
/// of user `allowed_uid` only.
pub fn start_in(
    dir: &Path,
    lower: Arc<dyn LowerHalf>,
    allowed_uid: u32,
) -> Result<Agent, AgentError> {
    // fds 0-2 as they are now are what the program inherits: checkpoints save those as stdio.
    crate::fds::note_startup_stdio();
    let path = socket::socket_path(dir, socket::own_socket_pid());
    let listener = socket::bind(&path)?;
    // From here on, dropping `agent` removes the socket file if a later step fails.
    let agent = Agent { path };
    let listener = lower
        .protect_fd(OwnedFd::from(listener))
        .map(UnixListener::from)
        .map_err(AgentError::ProtectFd)?;
    // Sweep before the program exists: reading the directory and probing sockets takes low fd
    // numbers, which must all be free again when the program starts.
    let swept = if socket::proc_shows_every_process() {
        socket::sweep_stale(dir, Path::new("/proc"))
    } else {
        0
    };
    if swept > 0 {
        tracing::debug!(
            "removed {swept} stale control sockets from {}",
            dir.display()
        );
    }
    // The triggers' wake pipe too: made here, it never takes a low number while the program
    // runs (the agent thread's loop would otherwise make it on its first pass).
    if let Err(e) = crate::trigger::ensure_wake() {
        tracing::warn!("checkpoint signal and period will not be served: {e}");
    }
    let server = server::Server::new(listener, agent.path.clone(), lower.clone(), allowed_uid)
        .map_err(AgentError::Listen)?;
    spawn_blocked(move || {
        lower.register_current_thread();
        server.run();
    })?;
    tracing::debug!("control socket at {}", agent.path.display());
    Ok(agent)
}

/// Spawns the agent thread with every signal blocked: blocks them in the calling thread, spawns
/// (the new thread inherits the mask), and restores the caller's mask whatever happened.
fn spawn_blocked(f: impl FnOnce() + Send + 'static) -> Result<(), AgentError> {
    let old = sys::block_all_signals().map_err(AgentError::SignalMask)?;
    let spawned = std::thread::Builder::new()
        .name("crac-agent".into())
        .spawn(f);
    sys::set_signal_mask(&old).map_err(AgentError::SignalMask)?;
    spawned.map(drop).map_err(AgentError::Spawn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client;
    use crac_core::interval::{Interval, IntervalSet};
    use crac_core::protocol::{self, ErrorCode, Half, ReplyBody};
    use std::io::{self, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Mutex;

    /// A lower half that owns one fake interval and records the agent thread.
    #[derive(Default)]
    struct Fake {
        agent: Mutex<Option<(i32, bool, bool)>>,
        /// The fd numbers handed to `protect_fd`, the listening socket's first.
        fds: Mutex<Vec<i32>>,
        /// Held by a test to keep the agent thread from getting past its registration.
        hold: Mutex<()>,
    }

    impl LowerHalf for Fake {
        fn register_current_thread(&self) {
            drop(self.hold.lock().unwrap());
            let blocked = |s| sys::signal_is_blocked(s).unwrap();
            *self.agent.lock().unwrap() = Some((
                sys::thread_id(),
                blocked(libc::SIGTERM),
                blocked(libc::SIGUSR1) && blocked(libc::SIGINT),
            ));
        }
        fn intervals(&self) -> IntervalSet {
            // Our own text: some lines of /proc/self/maps belong to "crac".
            let here = (Fake::default as fn() -> Fake) as usize as u64 & !0xfff;
            [Interval::new(here, here + 0x1000)].into_iter().collect()
        }
        fn tids(&self) -> Vec<i32> {
            self.agent.lock().unwrap().iter().map(|a| a.0).collect()
        }
        fn protect_fd(&self, fd: OwnedFd) -> io::Result<OwnedFd> {
            use std::os::fd::AsRawFd;
            self.fds.lock().unwrap().push(fd.as_raw_fd());
            Ok(fd)
        }
    }

    fn started(allowed_uid: Option<u32>) -> (tempfile::TempDir, Agent, Arc<Fake>) {
        let tmp = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake::default());
        let uid = allowed_uid.unwrap_or_else(sys::effective_uid);
        let agent = start_in(tmp.path(), fake.clone(), uid).unwrap();
        (tmp, agent, fake)
    }

    fn raw_exchange(path: &Path, bytes: &[u8]) -> protocol::Reply {
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(bytes).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let body = protocol::read_frame(&mut s, protocol::MAX_REPLY_FRAME).unwrap();
        protocol::decode_reply(&body).unwrap()
    }

    fn error_code(reply: protocol::Reply) -> ErrorCode {
        match reply.body {
            ReplyBody::Error { code, .. } => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn status_over_a_real_socket() {
        let (_tmp, agent, fake) = started(None);
        let stream = UnixStream::connect(agent.socket_path()).unwrap();
        let report = client::status_over(stream, 0).unwrap();
        assert_eq!(report.pid, i32::try_from(std::process::id()).unwrap());
        let (agent_tid, ..) = fake.agent.lock().unwrap().unwrap();
        let agent_thread = report.threads.iter().find(|t| t.tid == agent_tid).unwrap();
        assert_eq!(
            (agent_thread.half, agent_thread.name.as_str()),
            (Half::Lower, "crac-agent")
        );
        assert!(report.threads.iter().any(|t| t.half == Half::Upper));
        assert_eq!(report.total(Half::Lower), 0x1000);
        assert!(report.total(Half::Upper) > 0);
    }

    #[test]
    fn agent_thread_has_every_signal_blocked_and_the_caller_keeps_its_mask() {
        // This test thread's own mask is whatever the harness gave it (the loader's exported
        // pthread_create may block signals): unblock SIGTERM so that a change shows.
        // SAFETY: fills a local set and changes only this test thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        let (_tmp, agent, fake) = started(None);
        // The agent registers itself asynchronously; a status round trip orders us after it.
        client::status_over(UnixStream::connect(agent.socket_path()).unwrap(), 0).unwrap();
        let (_, term, others) = fake.agent.lock().unwrap().unwrap();
        assert!(term && others);
        assert!(!sys::signal_is_blocked(libc::SIGTERM).unwrap());
    }

    #[test]
    fn garbage_gets_error_replies_and_the_agent_keeps_serving() {
        let (_tmp, agent, _fake) = started(None);
        let path = agent.socket_path();
        let frame = |b: &[u8]| {
            let mut v = u32::try_from(b.len()).unwrap().to_le_bytes().to_vec();
            v.extend_from_slice(b);
            v
        };
        assert_eq!(
            error_code(raw_exchange(path, &frame(b"\xff\x00junk"))),
            ErrorCode::Garbage
        );
        assert_eq!(
            error_code(raw_exchange(
                path,
                &frame(br#"{"version":9,"body":{"type":"status"}}"#)
            )),
            ErrorCode::WrongVersion
        );
        assert_eq!(
            error_code(raw_exchange(
                path,
                &frame(br#"{"version":2,"body":{"type":"boom"}}"#)
            )),
            ErrorCode::Malformed
        );
        assert_eq!(
            error_code(raw_exchange(path, &u32::MAX.to_le_bytes())),
            ErrorCode::TooLarge
        );
        assert_eq!(
            error_code(raw_exchange(path, &[7, 0])),
            ErrorCode::Truncated
        );
        let mut cut = frame(br#"{"version":2}"#);
        cut.truncate(9);
        assert_eq!(error_code(raw_exchange(path, &cut)), ErrorCode::Truncated);
        // A client that connects and leaves without a word.
        drop(UnixStream::connect(path).unwrap());
        client::status_over(UnixStream::connect(path).unwrap(), 0).unwrap();
    }

    #[test]
    fn a_checkpoint_into_a_relative_directory_is_refused_before_it_starts() {
        // (A checkpoint that runs would stop this test binary's threads: e2e tests do that.)
        let (_tmp, agent, _fake) = started(None);
        let stream = UnixStream::connect(agent.socket_path()).unwrap();
        let ask = client::CheckpointAsk {
            dir: Some("relative/dir".into()),
            exit: false,
            progress: true,
        };
        let mut started = None;
        let mut events = 0;
        let err = client::checkpoint_over(stream, 3, &ask, &mut started, &mut |_| events += 1)
            .unwrap_err();
        assert!(
            matches!(
                err,
                client::ClientError::CheckpointFailed {
                    pid: 3,
                    code: ErrorCode::BadRequest,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("relative/dir is not an absolute path"),
            "{err}"
        );
        assert_eq!((started, events), (None, 0));
        // The agent goes on serving.
        client::status_over(UnixStream::connect(agent.socket_path()).unwrap(), 0).unwrap();
    }

    #[test]
    fn peers_of_another_user_are_refused() {
        let (_tmp, agent, _fake) = started(Some(sys::effective_uid() + 1));
        let mut s = UnixStream::connect(agent.socket_path()).unwrap();
        let err = client::status_over(s.try_clone().unwrap(), 7).unwrap_err();
        assert!(
            matches!(err, client::ClientError::Refused { pid: 7 }),
            "{err}"
        );
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0);
    }

    #[test]
    fn idle_agent_sleeps_in_accept_and_drop_removes_the_socket() {
        let (_tmp, agent, fake) = started(None);
        let path = agent.socket_path().to_owned();
        client::status_over(UnixStream::connect(&path).unwrap(), 0).unwrap();
        let (tid, ..) = fake.agent.lock().unwrap().unwrap();
        let stat_path = format!("/proc/self/task/{tid}/stat");
        let cpu = || {
            let stat = std::fs::read_to_string(&stat_path).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            (
                f[0].to_owned(),
                f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap(),
            )
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (state, before) = cpu();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (_, after) = cpu();
        assert_eq!(state, "S");
        assert!(
            after - before <= 1,
            "idle agent used {} ticks",
            after - before
        );
        drop(agent);
        assert!(!path.exists());
    }

    /// Asks for the status until it is answered (the agent may be re-creating its socket).
    fn status_eventually(path: &Path) -> protocol::StatusReport {
        let mut last = None;
        for _ in 0..40 {
            match UnixStream::connect(path).map(|s| client::status_over(s, 0)) {
                Ok(Ok(report)) => return report,
                other => last = Some(format!("{other:?}")),
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no status from the agent: {last:?}");
    }

    #[test]
    fn the_program_taking_over_the_socket_number_is_left_alone() {
        use std::os::fd::AsRawFd;
        let (_tmp, agent, fake) = started(None);
        let n = fake.fds.lock().unwrap()[0];
        // The program puts a file of its own at the socket's number (dup2 replaces atomically,
        // as close_range followed by an open would).
        let theirs = std::fs::File::open("/proc/self/cmdline").unwrap();
        let theirs_id = sys::file_id(theirs.as_raw_fd()).unwrap();
        // SAFETY: test: replaces the agent's listening socket, as a hostile program would.
        assert_eq!(unsafe { libc::dup2(theirs.as_raw_fd(), n) }, n);
        status_eventually(agent.socket_path());
        // Give the loop time to come back to the number; it must not close the program's file.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(sys::file_id(n).ok(), Some(theirs_id), "program's fd closed");
        status_eventually(agent.socket_path());
        assert_eq!(sys::file_id(n).ok(), Some(theirs_id), "program's fd closed");
    }

    #[test]
    fn stale_sockets_are_swept_before_start_returns() {
        // Sweeping opens fds at low numbers: it must be over before the program runs, not race
        // it on the agent thread.
        let tmp = tempfile::tempdir().unwrap();
        let stale = socket::socket_path(tmp.path(), 4_000_000_000);
        drop(socket::bind(&stale).unwrap());
        let fake = Arc::new(Fake::default());
        let held = fake.hold.lock().unwrap();
        let agent = start_in(tmp.path(), fake.clone(), sys::effective_uid()).unwrap();
        let swept = !stale.exists();
        drop(held);
        assert!(swept, "stale socket still there when start returned");
        client::status_over(UnixStream::connect(agent.socket_path()).unwrap(), 0).unwrap();
    }

    #[test]
    fn an_idle_agent_holds_no_low_fd_number() {
        use std::os::fd::AsRawFd;
        if !crac_test_support::in_fresh_process(
            "start::tests::an_idle_agent_holds_no_low_fd_number",
        ) {
            return; // the scenario ran in a fresh process
        }
        let (_tmp, agent, _fake) = started(None);
        client::status_over(UnixStream::connect(agent.socket_path()).unwrap(), 0).unwrap();
        // Let the agent go back to waiting for the next connection.
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Every number below 64 that looks closed must be one that open can give: a number
        // reserved by a thread blocked in accept looks closed but is never handed out.
        // SAFETY: F_GETFD only asks whether a number is open; it opens nothing.
        let free: Vec<i32> = (0..64)
            .filter(|&n| unsafe { libc::fcntl(n, libc::F_GETFD) } < 0)
            .collect();
        let mut files = Vec::new();
        let mut given = Vec::new();
        loop {
            let f = std::fs::File::open("/dev/null").unwrap();
            if f.as_raw_fd() >= 64 {
                break;
            }
            given.push(f.as_raw_fd());
            files.push(f);
        }
        assert_eq!(given, free, "a free number was reserved");
    }

    #[test]
    fn out_of_fds_is_waited_out_without_spinning() {
        if !crac_test_support::in_fresh_process(
            "start::tests::out_of_fds_is_waited_out_without_spinning",
        ) {
            return; // the scenario ran in a fresh process
        }
        let (_tmp, agent, fake) = started(None);
        client::status_over(UnixStream::connect(agent.socket_path()).unwrap(), 0).unwrap();
        let (tid, ..) = fake.agent.lock().unwrap().unwrap();
        // Like a program that lowers its limit and uses every fd: accept gets EMFILE while
        // the connection waits.
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit on a valid local, in this child process only.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
            lim.rlim_cur = 64;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
        // The agent thread's stat file, opened before the fds run out and re-read from the
        // start each time.
        let mut stat = std::fs::File::open(format!("/proc/self/task/{tid}/stat")).unwrap();
        let mut filler = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            filler.push(f);
        }
        // The client's socket takes the last free number, so the agent finds none to accept.
        filler.pop();
        let client = UnixStream::connect(agent.socket_path()).unwrap();
        let mut ticks = || {
            use std::io::Seek;
            let mut text = String::new();
            stat.rewind().unwrap();
            stat.read_to_string(&mut text).unwrap();
            let f: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split(' ').collect();
            f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
        };
        let before = ticks();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let used = ticks() - before;
        assert!(used <= 2, "agent used {used} ticks while out of fds");
        // Once fds are free again, the waiting connection is answered.
        drop(filler);
        client::status_over(client, 0).unwrap();
    }
}
