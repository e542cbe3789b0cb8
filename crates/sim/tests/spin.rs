//! Forward progress between waiting threads, as sm_70+ devices guarantee (independent thread
//! scheduling): a warp spinning on another warp's flag, and lanes of one warp contending for a
//! spin lock. A deadlock fails the test after a time limit instead of hanging it.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{Gpu, dims1};

/// Runs `body` on its own thread; fails if it does not finish within `secs` seconds (the stuck
/// thread is left behind; the test process ends without it).
fn within(secs: u64, what: &str, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => worker.join().expect("worker"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish in {secs} s: threads waiting on each other deadlocked")
        }
    }
}

#[test]
fn warp_waits_for_a_flag_set_by_another_warp() {
    within(20, "cross-warp flag", || {
        let gpu = Gpu::new();
        let f = gpu.kernel("spin", "cross_warp_flag");
        let (data, flag, out) = (
            gpu.zeroed::<i32>(32),
            gpu.zeroed::<i32>(1),
            gpu.zeroed::<i32>(32),
        );
        gpu.run(f, &dims1(1, 64), &[data.into(), flag.into(), out.into()]);
        let got: Vec<i32> = gpu.download(out, 32);
        assert_eq!(got, (32..64).map(|t| t * 3).collect::<Vec<_>>());
    });
}

fn mutex(kernel: &'static str) {
    within(20, kernel, move || {
        let gpu = Gpu::new();
        let f = gpu.kernel("spin", kernel);
        let (lock, counter) = (gpu.zeroed::<i32>(1), gpu.zeroed::<i32>(1));
        // 3 blocks of 64: lanes of each warp contend with each other and with other warps.
        gpu.run(f, &dims1(3, 64), &[lock.into(), counter.into()]);
        assert_eq!(
            gpu.download::<i32>(counter, 1),
            [192],
            "every thread got the lock once"
        );
        assert_eq!(gpu.download::<i32>(lock, 1), [0], "lock released");
    });
}

#[test]
fn lanes_of_one_warp_share_a_spin_lock() {
    mutex("mutex_counter");
}

#[test]
fn lanes_of_one_warp_share_a_spin_lock_classic_loop() {
    mutex("mutex_counter_spin");
}
