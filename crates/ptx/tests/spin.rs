//! Forward progress (sm_70+ independent thread scheduling): warps spinning on another warp's
//! flag, and lanes of one warp contending for a spin lock held by another lane. A deadlock
//! fails the test after a time limit instead of hanging it.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;

const SOURCES: [&str; 2] = [
    include_str!("data/spin_sm75.ptx"),
    include_str!("data/spin_debug.ptx"),
];

fn within(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = worker.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: no progress in {secs} s"),
    }
}

#[test]
fn cross_warp_flag() {
    within(20, || {
        for src in SOURCES {
            let mut d = Dev::new(src);
            let (data, flag, out) = (
                d.mem.alloc(&[0; 128]),
                d.mem.alloc(&[0; 4]),
                d.mem.alloc(&[0; 128]),
            );
            d.launch(
                "cross_warp_flag",
                [1, 1, 1],
                [64, 1, 1],
                0,
                Params::default().u64(data).u64(flag).u64(out),
            )
            .unwrap();
            assert_eq!(
                d.mem.i32s(out, 32),
                (32..64).map(|t| t * 3).collect::<Vec<_>>()
            );
        }
    });
}

fn mutex(kernel: &'static str) {
    within(20, move || {
        for src in SOURCES {
            let mut d = Dev::new(src);
            let (lock, counter) = (d.mem.alloc(&[0; 4]), d.mem.alloc(&[0; 4]));
            d.launch(
                kernel,
                [3, 1, 1],
                [64, 1, 1],
                0,
                Params::default().u64(lock).u64(counter),
            )
            .unwrap();
            assert_eq!(
                d.mem.i32s(counter, 1),
                vec![192],
                "every thread got the lock once"
            );
            assert_eq!(d.mem.i32s(lock, 1), vec![0], "lock released");
        }
    });
}

#[test]
fn spin_lock_with_done_flag() {
    mutex("mutex_counter");
}

#[test]
fn classic_spin_lock_loop() {
    mutex("mutex_counter_spin");
}
