//! A small Rust program for the e2e tests: prints its arguments, sums numbers on four threads
//! through a channel, writes a line to stderr, and exits with the code given as its first
//! argument (0 when none).

use std::sync::mpsc;
use std::thread;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("rust args {args:?}");
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                let sum: u64 = (t * 1_000_000..(t + 1) * 1_000_000).map(|x| x ^ (x >> 3)).sum();
                tx.send((t, sum)).expect("main thread receives");
            })
        })
        .collect();
    drop(tx);
    let mut sums: Vec<(u64, u64)> = rx.iter().collect();
    sums.sort_unstable();
    for h in handles {
        h.join().expect("worker finishes");
    }
    println!("rust sums {sums:?}");
    eprintln!("rust stderr line");
    let code = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
    std::process::exit(code);
}
