//! Capture and restore of the program's fds, each scenario in a child process of its own (the
//! fd table, cwd, umask and limits are process-wide): the test binary runs itself with the
//! scenario's name (`crac_test_support::in_fresh_process`), and the child builds fds of every
//! kind at known numbers, captures them, and checks what the program would see.

#![allow(clippy::unwrap_used)]

#[path = "support/fds_sys.rs"]
mod sys;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use crac_agent::fds::{self, FdCapture, FdError};
use crac_core::image::{FdKind, FdRecord};

/// Runs test `name` in a fresh process and fails with its output if it fails. Returns true in
/// that child, where the caller runs the scenario.
fn in_child(name: &str) -> bool {
    crac_test_support::in_fresh_process(name)
}

// The numbers the big scenario uses.
const FILE: RawFd = 3;
const FILE_DUP: RawFd = 4;
const PIPE_R: RawFd = 5;
const PIPE_W: RawFd = 6;
const OUT_PIPE_R: RawFd = 7;
const EVENT: RawFd = 8;
const EPOLL: RawFd = 9;
const TIMER: RawFd = 10;
const TCP: RawFd = 11;
const UNIX: RawFd = 12;
const PAIR_A: RawFd = 13;
const PAIR_B: RawFd = 14;
const NULL: RawFd = 15;
const HOLE: RawFd = 16;
const REPLY: RawFd = 17;
const SIGNAL: RawFd = 18;
const DIR: RawFd = 19;
const STDOUT_DUP: RawFd = 20;
const REPLY_DUP: RawFd = 21;
/// "crac's" fds: the outside end of pipe 7 and the agent's end of the reply connection.
const OUTSIDE_W: RawFd = 60;
const AGENT_END: RawFd = 61;

const REPLY_BYTES: &[u8] = b"\x05\0\0\0hello";

/// What the scenario made.
struct Layout {
    dir: tempfile::TempDir,
    tcp_port: u16,
}

impl Layout {
    fn sock_path(&self) -> std::path::PathBuf {
        self.dir.path().join("listen.sock")
    }
}

fn is_crac(fd: i32) -> bool {
    fd == OUTSIDE_W || fd == AGENT_END
}

/// Builds every kind of fd at its number. Numbers 3..=40 are first held by `/dev/null` so new
/// fds never land on a number placed earlier; the leftovers are closed at the end.
fn build() -> Layout {
    sys::close_from_3();
    fds::note_startup_stdio();
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    for n in 3..=40 {
        sys::put_at(sys::dup(null.as_raw_fd()), n, false);
    }
    drop(null);
    let dir = tempfile::tempdir().expect("tempdir");

    let path = dir.path().join("data.txt");
    std::fs::write(&path, b"0123456789").expect("write data");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .expect("open data");
    sys::put_at(OwnedFd::from(f), FILE, false);
    sys::seek(FILE, 4);
    sys::put_at(sys::dup(FILE), FILE_DUP, true);

    let (r, w) = sys::pipe();
    sys::write(w.as_raw_fd(), b"in flight").expect("fill pipe");
    sys::put_at(r, PIPE_R, false);
    sys::put_at(w, PIPE_W, true);
    sys::set_status_flags(PIPE_R, libc::O_NONBLOCK);

    let (r, w) = sys::pipe();
    sys::write(w.as_raw_fd(), b"outside").expect("fill pipe");
    sys::put_at(r, OUT_PIPE_R, false);
    sys::put_at(w, OUTSIDE_W, true);

    sys::put_at(sys::eventfd(5, libc::EFD_NONBLOCK), EVENT, false);
    sys::put_at(sys::epoll(), EPOLL, true);
    sys::epoll_add(EPOLL, PIPE_R, libc::EPOLLIN as u32, 0x55);
    sys::epoll_add(EPOLL, EVENT, (libc::EPOLLIN | libc::EPOLLET) as u32, 0x88);
    sys::put_at(sys::timerfd(100, 50), TIMER, false);

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listen");
    tcp.set_nonblocking(true).expect("nonblocking");
    let tcp_port = tcp.local_addr().expect("addr").port();
    sys::put_at(OwnedFd::from(tcp), TCP, false);
    let layout = Layout { dir, tcp_port };
    let unix = UnixListener::bind(layout.sock_path()).expect("unix listen");
    sys::put_at(OwnedFd::from(unix), UNIX, false);

    let (a, b) = UnixStream::pair().expect("socketpair");
    sys::put_at(OwnedFd::from(a), PAIR_A, false);
    sys::put_at(OwnedFd::from(b), PAIR_B, false);
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    sys::put_at(OwnedFd::from(null), NULL, false);
    let (mine, agent) = UnixStream::pair().expect("socketpair");
    sys::put_at(OwnedFd::from(mine), REPLY, false);
    sys::put_at(sys::dup(REPLY), REPLY_DUP, false);
    sys::put_at(OwnedFd::from(agent), AGENT_END, true);
    sys::put_at(sys::signalfd(libc::SIGUSR2), SIGNAL, true);
    let d = std::fs::File::open(layout.dir.path()).expect("open dir");
    sys::put_at(OwnedFd::from(d), DIR, false);
    sys::put_at(sys::dup(1), STDOUT_DUP, false);

    for n in 22..=40 {
        sys::close(n);
    }
    sys::close(HOLE);
    layout
}

fn capture() -> FdCapture {
    fds::capture(&is_crac, Some((REPLY, REPLY_BYTES))).expect("capture")
}

fn record(records: &[FdRecord], fd: RawFd) -> &FdRecord {
    records
        .iter()
        .find(|r| r.fd == fd)
        .unwrap_or_else(|| panic!("no record for fd {fd}: {records:#?}"))
}

/// What capture made of the layout.
fn check_records(records: &[FdRecord], layout: &Layout) {
    let fds: Vec<i32> = records.iter().map(|r| r.fd).collect();
    assert_eq!(
        fds,
        [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21
        ],
        "{records:#?}"
    );
    for fd in [0, 1, 2, STDOUT_DUP] {
        assert_eq!(record(records, fd).kind, FdKind::Stdio, "fd {fd}");
    }
    assert_eq!(
        record(records, 1).description,
        record(records, STDOUT_DUP).description
    );
    let file = record(records, FILE);
    let FdKind::File {
        path,
        flags,
        offset,
        size,
    } = &file.kind
    else {
        panic!("{file:?}")
    };
    assert_eq!(Path::new(path), layout.dir.path().join("data.txt"));
    assert_eq!((*offset, *size), (4, 10));
    assert_eq!(
        flags & (libc::O_ACCMODE | libc::O_APPEND),
        libc::O_RDWR | libc::O_APPEND
    );
    assert!(!file.cloexec && record(records, FILE_DUP).cloexec);
    assert_eq!(file.description, record(records, FILE_DUP).description);
    assert_eq!(record(records, FILE_DUP).kind, file.kind);
    let descriptions: std::collections::BTreeSet<u32> =
        records.iter().map(|r| r.description).collect();
    assert_eq!(
        descriptions.len(),
        records.len() - 3,
        "only 3/4, 1/20 and 17/21 share"
    );

    let FdKind::Pipe {
        pipe_id,
        read_end: true,
        flags,
        data,
        peer_outside: false,
        ..
    } = &record(records, PIPE_R).kind
    else {
        panic!("{:?}", record(records, PIPE_R))
    };
    assert_eq!(data, b"in flight");
    assert_ne!(flags & libc::O_NONBLOCK, 0);
    let FdKind::Pipe {
        pipe_id: w_id,
        read_end: false,
        data: w_data,
        peer_outside: false,
        ..
    } = &record(records, PIPE_W).kind
    else {
        panic!("{:?}", record(records, PIPE_W))
    };
    assert_eq!((pipe_id, w_data.len()), (w_id, 0));
    let FdKind::Pipe {
        read_end: true,
        data,
        peer_outside: true,
        ..
    } = &record(records, OUT_PIPE_R).kind
    else {
        panic!("{:?}", record(records, OUT_PIPE_R))
    };
    assert_eq!(data, b"outside");
    assert_eq!(
        record(records, EVENT).kind,
        FdKind::EventFd {
            count: 5,
            flags: libc::EFD_NONBLOCK
        }
    );
    let FdKind::Epoll { watches } = &record(records, EPOLL).kind else {
        panic!("{:?}", record(records, EPOLL))
    };
    let mut w: Vec<(i32, u64)> = watches.iter().map(|w| (w.fd, w.data)).collect();
    w.sort_unstable();
    assert_eq!(w, [(PIPE_R, 0x55), (EVENT, 0x88)]);
    let FdKind::TimerFd {
        clock,
        value_ns,
        interval_ns,
        ..
    } = record(records, TIMER).kind
    else {
        panic!("{:?}", record(records, TIMER))
    };
    assert_eq!(
        (clock, interval_ns),
        (libc::CLOCK_MONOTONIC, 50_000_000_000)
    );
    assert!(
        value_ns > 90_000_000_000 && value_ns <= 100_000_000_000,
        "{value_ns}"
    );
    assert!(matches!(
        record(records, TCP).kind,
        FdKind::ListenSocket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM,
            ..
        }
    ));
    assert!(matches!(
        record(records, UNIX).kind,
        FdKind::ListenSocket {
            domain: libc::AF_UNIX,
            ..
        }
    ));
    let end = |fd| match &record(records, fd).kind {
        FdKind::SocketPair {
            pair_id,
            first,
            ty: libc::SOCK_STREAM,
            data,
            ..
        } if data.is_empty() => (*pair_id, *first),
        other => panic!("fd {fd}: {other:?}"),
    };
    let (a, b) = (end(PAIR_A), end(PAIR_B));
    assert_eq!(a.0, b.0, "one pair");
    assert_ne!(a.1, b.1, "two ends");
    assert!(
        matches!(&record(records, NULL).kind, FdKind::Device { path, .. } if path == "/dev/null")
    );
    for fd in [REPLY, REPLY_DUP] {
        assert_eq!(
            record(records, fd).kind,
            FdKind::AgentReply {
                reply: REPLY_BYTES.to_vec()
            }
        );
    }
    assert_eq!(
        record(records, SIGNAL).kind,
        FdKind::SignalFd {
            mask: 1 << (libc::SIGUSR2 - 1),
            flags: 0
        }
    );
    let dir = &record(records, DIR).kind;
    assert!(
        matches!(dir, FdKind::File { path, .. } if Path::new(path) == layout.dir.path()),
        "{dir:?}"
    );
}

/// What every fd looks like to the program, whether it continued or was restored. `restored`
/// says which: then the peers outside are gone.
fn check_program_view(layout: &Layout, restored: bool) {
    // First, before anything here opens an fd at the lowest free number.
    assert!(sys::cloexec(HOLE).is_err(), "the hole stays closed");
    // The dup'd file: flags, cloexec and one shared offset.
    assert_eq!(sys::offset(FILE), 4);
    assert_eq!(
        sys::status_flags(FILE).unwrap() & libc::O_APPEND,
        libc::O_APPEND
    );
    assert!(!sys::cloexec(FILE).unwrap());
    assert!(sys::cloexec(FILE_DUP).unwrap());
    assert_eq!(sys::read(FILE, 2).unwrap(), b"45");
    assert_eq!(sys::offset(FILE_DUP), 6, "offset shared");

    // epoll sees the pipe with data and the eventfd with a count.
    let ready = sys::epoll_ready(EPOLL);
    assert_eq!(ready.iter().map(|e| e.1).collect::<Vec<_>>(), [0x55, 0x88]);
    assert!(ready.iter().all(|e| e.0 & libc::EPOLLIN as u32 != 0));
    assert!(sys::cloexec(EPOLL).unwrap());

    // The pipe still holds its bytes, in order, and works both ways.
    assert_ne!(sys::status_flags(PIPE_R).unwrap() & libc::O_NONBLOCK, 0);
    assert_eq!(sys::read(PIPE_R, 64).unwrap(), b"in flight");
    assert_eq!(
        sys::read(PIPE_R, 64).unwrap_err().raw_os_error(),
        Some(libc::EAGAIN)
    );
    assert_eq!(sys::write(PIPE_W, b"more").unwrap(), 4);
    assert_eq!(sys::read(PIPE_R, 64).unwrap(), b"more");
    assert!(sys::cloexec(PIPE_W).unwrap());

    // The pipe from outside: its bytes, then more from outside or end-of-file.
    assert_eq!(sys::read(OUT_PIPE_R, 64).unwrap(), b"outside");
    if restored {
        assert_eq!(sys::read(OUT_PIPE_R, 64).unwrap(), b"", "peer gone");
    } else {
        assert_eq!(sys::write(OUTSIDE_W, b"later").unwrap(), 5);
        assert_eq!(sys::read(OUT_PIPE_R, 64).unwrap(), b"later");
    }

    assert_eq!(sys::read(EVENT, 8).unwrap(), 5u64.to_ne_bytes());
    let (value, interval) = sys::timer_get(TIMER);
    assert!(value > 90.0 && value <= 100.0, "{value}");
    assert_eq!(interval, 50.0);

    // The listeners accept new connections.
    let mut c = TcpStream::connect(("127.0.0.1", layout.tcp_port)).expect("connect tcp");
    let s = sys::accept(TCP).expect("accept tcp");
    c.write_all(b"x").unwrap();
    assert_eq!(sys::read(s.as_raw_fd(), 1).unwrap(), b"x");
    assert_eq!(sys::tcp_port(TCP), layout.tcp_port);
    assert_ne!(sys::status_flags(TCP).unwrap() & libc::O_NONBLOCK, 0);
    let mut u = UnixStream::connect(layout.sock_path()).expect("connect unix");
    let s = sys::accept(UNIX).expect("accept unix");
    u.write_all(b"y").unwrap();
    assert_eq!(sys::read(s.as_raw_fd(), 1).unwrap(), b"y");

    // The socketpair is connected, restored or not.
    assert_eq!(sys::write(PAIR_A, b"z").unwrap(), 1);
    assert_eq!(sys::read(PAIR_B, 8).unwrap(), b"z");
    assert_eq!(sys::write(PAIR_B, b"w").unwrap(), 1);
    assert_eq!(sys::read(PAIR_A, 8).unwrap(), b"w");
    if restored {
        let mut reply = Vec::new();
        let mut s = UnixStream::from(sys::dup(REPLY));
        s.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, REPLY_BYTES, "the reply, then EOF");
        assert_eq!(
            sys::read(REPLY_DUP, 8).unwrap(),
            b"",
            "one connection, read through both"
        );
    }

    assert_eq!(sys::write(NULL, b"gone").unwrap(), 4);
    assert!(sys::cloexec(SIGNAL).unwrap());
    assert_eq!(
        std::fs::read_link(format!("/proc/self/fd/{DIR}")).unwrap(),
        layout.dir.path()
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/self/fd/{STDOUT_DUP}")).unwrap(),
        std::fs::read_link("/proc/self/fd/1").unwrap()
    );
}

#[test]
fn capture_then_continue() {
    if !in_child("capture_then_continue") {
        return;
    }
    let layout = build();
    let cap = capture();
    check_records(&cap.records, &layout);
    cap.resume().expect("resume");
    check_program_view(&layout, false);
}

/// Closes every program fd from 3 up except crac's (as a fresh restarter would have none).
fn close_program_fds() {
    for n in 3..OUTSIDE_W {
        sys::close(n);
    }
    sys::close(OUTSIDE_W);
    sys::close(AGENT_END);
}

/// Normalises what differs between two captures of equal fds: pipe and socketpair ids (and
/// which end of a pair is first, which follows the new sockets' inodes), and the timer's
/// remaining time.
fn normalised(records: &[FdRecord]) -> Vec<FdRecord> {
    records
        .iter()
        .cloned()
        .map(|mut r| {
            match &mut r.kind {
                FdKind::Pipe { pipe_id, .. } => *pipe_id = 0,
                FdKind::SocketPair { pair_id, first, .. } => {
                    *pair_id = 0;
                    *first = false;
                }
                FdKind::TimerFd { value_ns, .. } => *value_ns = 0,
                _ => {}
            }
            r
        })
        .collect()
}

#[test]
fn capture_close_and_restore() {
    if !in_child("capture_close_and_restore") {
        return;
    }
    let layout = build();
    let cap = capture();
    check_records(&cap.records, &layout);
    let json = serde_json::to_string(&cap.records).expect("encode");
    close_program_fds();
    let records: Vec<FdRecord> = serde_json::from_str(&json).expect("decode");
    fds::restore(&records).expect("restore");

    // A capture of the restored fds gives the same records (restart of a restarted program).
    let again = fds::capture(&is_crac, Some((REPLY, REPLY_BYTES))).expect("capture again");
    assert_eq!(normalised(&again.records), normalised(&records));
    again.resume().expect("resume");

    check_program_view(&layout, true);
}

#[test]
fn restore_replaces_whatever_holds_the_numbers() {
    if !in_child("restore_replaces_whatever_holds_the_numbers") {
        return;
    }
    let layout = build();
    let records = capture().records;
    close_program_fds();
    // The restarter has its own files at some of the program's numbers.
    for n in [FILE, PIPE_W, EPOLL, HOLE, 25] {
        let f = std::fs::File::open("/proc/self/cmdline").unwrap();
        sys::put_at(OwnedFd::from(f), n, false);
    }
    fds::restore(&records).expect("restore");
    assert!(
        sys::cloexec(25).is_ok(),
        "a number the program did not use is left alone"
    );
    sys::close(25);
    sys::close(HOLE);
    check_program_view(&layout, true);
}

#[test]
fn standard_fds_the_program_replaced_are_saved_as_what_they_are() {
    if !in_child("standard_fds_the_program_replaced_are_saved_as_what_they_are") {
        return;
    }
    sys::close_from_3();
    fds::note_startup_stdio();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, b"abcdef").unwrap();
    let f = std::fs::File::open(&path).unwrap();
    sys::put_at(OwnedFd::from(f), 0, false);
    sys::seek(0, 2);
    let records = fds::capture(&|_| false, None).expect("capture").records;
    assert!(
        matches!(&records[0].kind, FdKind::File { path: p, offset: 2, .. } if Path::new(p) == path),
        "{records:?}"
    );
    assert_eq!(records[1].kind, FdKind::Stdio);
    assert_eq!(records[2].kind, FdKind::Stdio);
    sys::close(0);
    fds::restore(&records).expect("restore");
    assert_eq!(sys::read(0, 16).unwrap(), b"cdef");

    // A standard fd the program closed is closed after restore.
    let closed = fds::capture(&|_| false, None).expect("capture").records;
    let without_0: Vec<FdRecord> = closed.into_iter().filter(|r| r.fd != 0).collect();
    fds::restore(&without_0).expect("restore");
    assert!(sys::cloexec(0).is_err(), "fd 0 closed");

    // A restarter started without fd 0 restores a program whose fd 0 was standard: it stays
    // closed, and a standard fd above 2 sharing it is left closed too.
    let std = |fd, description| FdRecord {
        fd,
        cloexec: false,
        description,
        kind: FdKind::Stdio,
    };
    let records = [std(0, 9), std(1, 1), std(2, 2), std(30, 9)];
    fds::restore(&records).expect("restore without a restarter fd 0");
    assert!(sys::cloexec(0).is_err() && sys::cloexec(30).is_err());
}

#[test]
fn inotify_is_refused_by_name() {
    if !in_child("inotify_is_refused_by_name") {
        return;
    }
    sys::close_from_3();
    sys::put_at(sys::inotify(), 7, false);
    let err = fds::capture(&|_| false, None).expect_err("inotify is not supported");
    assert!(matches!(err, FdError::Unsupported { fd: 7, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("fd 7 is an inotify instance; crac cannot checkpoint inotify yet"),
        "{msg}"
    );
    sys::close(7);
    sys::put_at(sys::memfd(), 8, false);
    let err = fds::capture(&|_| false, None).expect_err("memfds are not supported");
    assert!(matches!(err, FdError::Unsupported { fd: 8, .. }), "{err:?}");
    assert!(err.to_string().contains("memfd:scratch"), "{err}");
}

#[test]
fn deleted_files_are_refused_by_name() {
    if !in_child("deleted_files_are_refused_by_name") {
        return;
    }
    sys::close_from_3();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.txt");
    let f = std::fs::File::create(&path).unwrap();
    sys::put_at(OwnedFd::from(f), 5, false);
    std::fs::remove_file(&path).unwrap();
    let err = fds::capture(&|_| false, None).expect_err("deleted file");
    assert!(matches!(err, FdError::DeletedFile { fd: 5, .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_missing_or_shorter_file_fails_restore_by_name() {
    if !in_child("a_missing_or_shorter_file_fails_restore_by_name") {
        return;
    }
    sys::close_from_3();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.txt");
    std::fs::write(&path, b"0123456789").unwrap();
    sys::put_at(OwnedFd::from(std::fs::File::open(&path).unwrap()), 5, false);
    sys::seek(5, 8);
    let records = fds::capture(&|_| false, None).unwrap().records;
    sys::close(5);
    std::fs::write(&path, b"0123").unwrap();
    let err = fds::restore(&records).expect_err("shorter");
    assert!(
        matches!(
            err,
            FdError::FileShrunk {
                fd: 5,
                offset: 8,
                size: 4,
                ..
            }
        ),
        "{err:?}"
    );
    std::fs::remove_file(&path).unwrap();
    let err = fds::restore(&records).expect_err("missing");
    assert!(matches!(err, FdError::Reopen { fd: 5, .. }), "{err:?}");
    assert!(err.to_string().contains("f.txt"), "{err}");
}

#[test]
fn process_state_round_trips() {
    if !in_child("process_state_round_trips") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    sys::umask(0o027);
    let (soft, hard) = sys::rlimit(libc::RLIMIT_NOFILE);
    sys::set_rlimit(libc::RLIMIT_NOFILE, soft.min(200), hard);
    let state = fds::capture_process().expect("capture");
    assert_eq!(state.umask, 0o027);
    assert_eq!(Path::new(&state.cwd), dir.path());

    std::env::set_current_dir("/").unwrap();
    sys::umask(0o022);
    sys::set_rlimit(libc::RLIMIT_NOFILE, 100, hard);
    fds::restore_process(&state).expect("restore");
    assert_eq!(std::env::current_dir().unwrap(), dir.path());
    assert_eq!(sys::umask(0o022), 0o027);
    assert_eq!(sys::rlimit(libc::RLIMIT_NOFILE), (soft.min(200), hard));

    // A hard limit only root may raise comes back as high as allowed, with an error naming it.
    let mut state = state;
    state.cwd = "/".into();
    std::env::set_current_dir("/").unwrap();
    drop(dir);
    if sys::euid() == 0 {
        sys::become_nobody();
    }
    let low = hard.min(150);
    sys::set_rlimit(libc::RLIMIT_NOFILE, 50, low - 1);
    let err = fds::restore_process(&state).expect_err("cannot raise the hard limit");
    assert!(matches!(err, FdError::HardLimitsLowered(_)), "{err:?}");
    assert_eq!(sys::rlimit(libc::RLIMIT_NOFILE), (low - 1, low - 1));
    assert_eq!(sys::umask(0o022), 0o027, "the rest was restored");

    // A missing directory is an error naming it.
    state.cwd = "/no/such/dir".into();
    let err = fds::restore_process(&state).expect_err("missing cwd");
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}

#[test]
fn an_expired_timer_is_readable_after_restore() {
    if !in_child("an_expired_timer_is_readable_after_restore") {
        return;
    }
    sys::close_from_3();
    // First expiry after 1 ns, then every second: one expiry is pending and unread at capture.
    let t = sys::timerfd(0, 1);
    sys::put_at(t, 5, false);
    sys::timer_set_ns(5, 1, 1_000_000_000);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let records = fds::capture(&|_| false, None).unwrap().records;
    let FdKind::TimerFd {
        value_ns,
        interval_ns,
        ..
    } = records[3].kind
    else {
        panic!("{records:?}")
    };
    assert_eq!((value_ns, interval_ns), (1, 1_000_000_000), "due at once");
    sys::close(5);
    fds::restore(&records).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let ticks = sys::read(5, 8).unwrap();
    assert!(u64::from_ne_bytes(ticks.try_into().unwrap()) >= 1);
}

#[test]
fn own_proc_files_reopen_as_self() {
    if !in_child("own_proc_files_reopen_as_self") {
        return;
    }
    sys::close_from_3();
    let f = std::fs::File::open("/proc/self/status").unwrap();
    sys::put_at(OwnedFd::from(f), 5, false);
    let head = sys::read(5, 5).unwrap();
    assert_eq!(head, b"Name:");
    let records = fds::capture(&|_| false, None).unwrap().records;
    assert!(
        matches!(&records[3].kind, FdKind::File { path, offset: 5, size: 0, .. }
            if path == "/proc/self/status"),
        "{records:?}"
    );
    sys::close(5);
    fds::restore(&records).expect("a /proc file of size 0 read past 0 restores");
    assert_eq!(sys::offset(5), 5);
}

#[test]
fn thousands_of_fds_round_trip() {
    if !in_child("thousands_of_fds_round_trip") {
        return;
    }
    sys::close_from_3();
    let (_, hard) = sys::rlimit(libc::RLIMIT_NOFILE);
    sys::set_rlimit(libc::RLIMIT_NOFILE, hard.min(20_000), hard);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let ep = sys::epoll();
    let mut keep = Vec::new();
    for i in 0..1500u32 {
        // An eventfd (all share one anonymous inode), a file and its dup, a pipe with a byte.
        let e = sys::eventfd(i + 1, libc::EFD_NONBLOCK);
        sys::epoll_add(
            ep.as_raw_fd(),
            e.as_raw_fd(),
            libc::EPOLLIN as u32,
            u64::from(i),
        );
        let f = std::fs::File::open(&path).unwrap();
        sys::seek(f.as_raw_fd(), i64::from(i % 10));
        let d = sys::dup(f.as_raw_fd());
        let (r, w) = sys::pipe();
        sys::write(w.as_raw_fd(), &[u8::try_from(i % 256).unwrap()]).unwrap();
        keep.extend([e, OwnedFd::from(f), d, r, w]);
    }
    keep.push(ep);
    let records = fds::capture(&|_| false, None).unwrap().records;
    assert_eq!(records.len(), 3 + keep.len());
    let descriptions: std::collections::BTreeSet<u32> =
        records.iter().map(|r| r.description).collect();
    assert_eq!(
        descriptions.len(),
        records.len() - 1500,
        "each file shares with its dup"
    );
    let numbers: Vec<RawFd> = keep.iter().map(|k| k.as_raw_fd()).collect();
    for k in keep.drain(..) {
        let _ = std::os::fd::IntoRawFd::into_raw_fd(k);
    }
    for n in &numbers {
        sys::close(*n);
    }
    fds::restore(&records).unwrap();
    let again = fds::capture(&|_| false, None).unwrap().records;
    assert_eq!(normalised(&again), normalised(&records));
    for chunk in numbers.chunks(5).take(1500) {
        let [e, f, d, r, _w] = chunk else { panic!() };
        let i = u64::from_ne_bytes(sys::read(*e, 8).unwrap().try_into().unwrap()) - 1;
        assert_eq!(sys::offset(*f) % 10, i % 10);
        let digit = b'0' + u8::try_from(i % 10).unwrap();
        assert_eq!(
            sys::read(*d, 1).unwrap(),
            [digit],
            "the dup shares the offset"
        );
        assert_eq!(sys::offset(*f), i % 10 + 1);
        assert_eq!(sys::read(*r, 1).unwrap(), [u8::try_from(i % 256).unwrap()]);
    }
}

#[test]
fn ipv4_and_ipv6_only_listeners_on_one_port() {
    if !in_child("ipv4_and_ipv6_only_listeners_on_one_port") {
        return;
    }
    sys::close_from_3();
    let Some((six, port)) = sys::tcp6_only_listener() else {
        println!("no IPv6 here; nothing to check");
        return;
    };
    let four = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    // The IPv6 one has the lower number, so it would be restored first.
    sys::put_at(six, 5, false);
    sys::put_at(OwnedFd::from(four), 6, false);
    let records = fds::capture(&|_| false, None).unwrap().records;
    sys::close(5);
    sys::close(6);
    fds::restore(&records).expect("both listeners come back");
    let _c4 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sys::accept(6).expect("IPv4 connection on the IPv4 listener");
    let _c6 = TcpStream::connect(("::1", port)).unwrap();
    sys::accept(5).expect("IPv6 connection on the IPv6 listener");
}

/// The end of a socketpair at `fd`: `(pair_id, first, data)`.
fn pair_end(records: &[FdRecord], fd: RawFd) -> (u64, bool, Vec<u8>) {
    match &record(records, fd).kind {
        FdKind::SocketPair {
            pair_id,
            first,
            data,
            ..
        } => (*pair_id, *first, data.clone()),
        other => panic!("fd {fd}: {other:?}"),
    }
}

/// 25 writes of 4000 bytes each: many queued buffers in a stream socket's queue.
fn many_chunks() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect()
}

/// A stream socketpair with bytes queued both ways (one way in many buffers, behind a peek
/// offset the program set) and a datagram socketpair with messages queued both ways (one of
/// them empty): capture leaves them and the peek offset as they were; after close and restore
/// each end reads its own bytes in order and its messages with their bounds, then the ends
/// talk to each other.
#[test]
fn socketpairs_come_back_connected_with_their_queued_bytes() {
    if !in_child("socketpairs_come_back_connected_with_their_queued_bytes") {
        return;
    }
    sys::close_from_3();
    fds::note_startup_stdio();
    let (a, b) = sys::socketpair(libc::SOCK_STREAM);
    sys::put_at(a, 3, false);
    sys::put_at(b, 4, true);
    let (c, d) = sys::socketpair(libc::SOCK_DGRAM);
    sys::put_at(c, 5, false);
    sys::put_at(d, 6, false);
    let to_b = many_chunks();
    for chunk in to_b.chunks(4000) {
        assert_eq!(sys::send(3, chunk).unwrap(), chunk.len());
    }
    sys::send(4, b"to a, ").unwrap();
    sys::send(4, b"twice").unwrap();
    sys::set_status_flags(4, libc::O_NONBLOCK);
    sys::set_peek_off(4, 2);
    for m in [&b"d1"[..], b"", b"d333"] {
        assert_eq!(sys::send(5, m).unwrap(), m.len());
    }
    sys::send(6, b"back1").unwrap();

    let records = fds::capture(&|_| false, None).expect("capture").records;
    let (ia, ib) = (pair_end(&records, 3), pair_end(&records, 4));
    assert_eq!(ia.0, ib.0, "one pair");
    assert_ne!(ia.1, ib.1, "two ends");
    assert_eq!(ia.2, b"to a, twice");
    assert!(ib.2 == to_b, "{} bytes queued on b", ib.2.len());
    let (ic, id) = (pair_end(&records, 5), pair_end(&records, 6));
    assert_eq!(ic.0, id.0);
    assert_eq!(ic.2, b"\x05\0\0\0back1", "one message, length first");
    assert_eq!(id.2, b"\x02\0\0\0d1\0\0\0\0\x04\0\0\0d333", "bounds kept");
    assert_ne!(ia.0, ic.0, "two pairs");
    assert!(matches!(
        record(&records, 5).kind,
        FdKind::SocketPair {
            ty: libc::SOCK_DGRAM,
            ..
        }
    ));
    // Nothing was consumed, and the program's peek offset is its own again.
    assert_eq!(sys::peek_off(4), 2);
    assert_eq!(sys::peek_off(3), -1);
    let again = fds::capture(&|_| false, None)
        .expect("capture again")
        .records;
    assert_eq!(again[..6], records[..6]);
    // The kernel skips an empty datagram that was peeked once when peeking at an offset, so a
    // second capture does not see it (the program's own reads still get it, below).
    assert_eq!(pair_end(&again, 6).2, b"\x02\0\0\0d1\x04\0\0\0d333");

    for n in 3..=6 {
        sys::close(n);
    }
    fds::restore(&records).expect("restore");
    assert!(!sys::cloexec(3).unwrap() && sys::cloexec(4).unwrap());
    assert_ne!(sys::status_flags(4).unwrap() & libc::O_NONBLOCK, 0);
    assert_eq!(sys::read(3, 64).unwrap(), b"to a, twice");
    let mut got = Vec::new();
    while got.len() < to_b.len() {
        let part = sys::read(4, 1 << 20).unwrap();
        assert!(!part.is_empty());
        got.extend_from_slice(&part);
    }
    assert!(got == to_b, "{} bytes read back", got.len());
    assert_eq!(
        sys::read(4, 8).unwrap_err().raw_os_error(),
        Some(libc::EAGAIN),
        "nothing more, and still non-blocking"
    );
    assert_eq!(sys::send(3, b"ping").unwrap(), 4);
    assert_eq!(sys::read(4, 8).unwrap(), b"ping");
    assert_eq!(sys::send(4, b"pong").unwrap(), 4);
    assert_eq!(sys::read(3, 8).unwrap(), b"pong");
    for m in [&b"d1"[..], b"", b"d333"] {
        assert_eq!(sys::read(6, 64).unwrap(), m, "queued datagrams, one by one");
    }
    assert_eq!(sys::read(5, 64).unwrap(), b"back1");
    assert_eq!(sys::send(5, b"one").unwrap(), 3);
    assert_eq!(sys::send(5, b"two").unwrap(), 3);
    assert_eq!(
        sys::read(6, 64).unwrap(),
        b"one",
        "datagrams keep their bounds"
    );
    assert_eq!(sys::read(6, 64).unwrap(), b"two");
    assert_eq!(sys::send(6, b"back").unwrap(), 4);
    assert_eq!(sys::read(5, 64).unwrap(), b"back");
}

/// Socketpair ends (stream and seqpacket) whose peer was closed keep what was queued on them:
/// after restore they read it, then end-of-file, and writing fails with `EPIPE`.
#[test]
fn a_socketpair_end_whose_peer_was_closed_reads_its_bytes_then_eof() {
    if !in_child("a_socketpair_end_whose_peer_was_closed_reads_its_bytes_then_eof") {
        return;
    }
    sys::close_from_3();
    fds::note_startup_stdio();
    let (a, b) = sys::socketpair(libc::SOCK_STREAM);
    sys::put_at(a, 3, false);
    sys::send(b.as_raw_fd(), b"last words").unwrap();
    drop(b);
    let (c, d) = sys::socketpair(libc::SOCK_SEQPACKET);
    sys::put_at(c, 4, false);
    for m in [&b"m1"[..], b"", b"m3"] {
        sys::send(d.as_raw_fd(), m).unwrap();
    }
    drop(d);
    let records = fds::capture(&|_| false, None).expect("capture").records;
    assert_eq!(pair_end(&records, 3).2, b"last words");
    assert_eq!(pair_end(&records, 4).2, b"\x02\0\0\0m1\0\0\0\0\x02\0\0\0m3");
    sys::close(3);
    sys::close(4);
    fds::restore(&records).expect("restore");
    assert_eq!(sys::read(3, 64).unwrap(), b"last words");
    assert_eq!(sys::read(3, 64).unwrap(), b"", "then end-of-file");
    assert_eq!(
        sys::send(3, b"x").unwrap_err().raw_os_error(),
        Some(libc::EPIPE)
    );
    for m in [&b"m1"[..], b"", b"m3"] {
        assert_eq!(sys::read(4, 64).unwrap(), m);
    }
    assert!(sys::read(4, 64).unwrap().is_empty(), "then end-of-file");
    assert_eq!(
        sys::send(4, b"x").unwrap_err().raw_os_error(),
        Some(libc::EPIPE)
    );
}

/// A socket connected to a peer that is alive outside the program comes back dead, as before.
#[test]
fn a_socket_whose_peer_is_outside_comes_back_dead() {
    if !in_child("a_socket_whose_peer_is_outside_comes_back_dead") {
        return;
    }
    sys::close_from_3();
    fds::note_startup_stdio();
    let (a, b) = sys::socketpair(libc::SOCK_STREAM);
    sys::put_at(a, 3, false);
    sys::put_at(b, OUTSIDE_W, false);
    let records = fds::capture(&is_crac, None).expect("capture").records;
    assert!(
        matches!(
            record(&records, 3).kind,
            FdKind::DeadSocket {
                domain: libc::AF_UNIX,
                ..
            }
        ),
        "{records:?}"
    );
}

/// Bytes queued with passed fds cannot be saved: the checkpoint fails naming the fd.
#[test]
fn fds_in_flight_on_a_socketpair_are_refused_by_name() {
    if !in_child("fds_in_flight_on_a_socketpair_are_refused_by_name") {
        return;
    }
    sys::close_from_3();
    fds::note_startup_stdio();
    let (a, b) = UnixStream::pair().unwrap();
    sys::put_at(OwnedFd::from(a), 3, false);
    sys::put_at(OwnedFd::from(b), 4, false);
    sys::send_fd(4, 0, b"with an fd");
    let err = fds::capture(&|_| false, None).expect_err("fds in flight");
    assert!(matches!(err, FdError::Unsupported { fd: 3, .. }), "{err:?}");
    assert_eq!(sys::read(3, 64).unwrap(), b"with an fd", "still queued");
}
