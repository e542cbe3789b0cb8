//! Measures the `sim` device's overheads through the backend trait: copy throughput, the
//! round trip of one asynchronous operation, launch latency, and interpreter throughput on the
//! fixture kernel `a[i] += counter + (int)coef[i % 4]`.
//!
//! Run: `cargo run --release -p crac-sim --example sim_bench`

use std::time::Instant;

use crac_gpu::{DeviceBackend, LaunchConfig, Result, Stream, StreamFlags};
use crac_sim::Sim;

const FATBIN: &[u8] = include_bytes!("../tests/fixtures/fatbin_ptx_zstd.bin");

fn main() -> Result<()> {
    let sim = Sim::new(1 << 30);
    let size = 64usize << 20;
    let buf = sim.malloc(size as u64)?;
    let host = vec![7u8; size];
    let mut back = vec![0u8; size];
    let t = Instant::now();
    for _ in 0..4 {
        sim.memcpy_htod_sync(buf, &host, Stream::NULL)?;
    }
    let h2d = 4.0 * size as f64 / t.elapsed().as_secs_f64() / f64::from(1u32 << 30);
    let t = Instant::now();
    for _ in 0..4 {
        sim.memcpy_dtoh(&mut back, buf, Stream::NULL)?;
    }
    let d2h = 4.0 * size as f64 / t.elapsed().as_secs_f64() / f64::from(1u32 << 30);
    println!("memcpy host->device {h2d:.2} GiB/s, device->host {d2h:.2} GiB/s (64 MiB copies)");

    let s = sim.stream_create(StreamFlags::NON_BLOCKING, 0)?;
    let n = 10_000;
    let t = Instant::now();
    for _ in 0..n {
        sim.memset(buf, 1, 256, s)?;
        sim.stream_synchronize(s)?;
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("memset + stream synchronize round trip: {us:.1} us");
    let t = Instant::now();
    for _ in 0..n {
        sim.memset(buf, 1, 256, s)?;
    }
    sim.stream_synchronize(s)?;
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("queued memsets: {us:.2} us each");

    let t = Instant::now();
    let big = sim.malloc(512 << 20)?;
    sim.free(big)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    println!("malloc + free of 512 MiB: {ms:.2} ms");

    let module = sim.register_fatbin(FATBIN)?;
    let add = sim.register_function(module, "_Z3addPii")?;
    let launch = |n: u32| -> Result<()> {
        let mut params = buf.0.to_le_bytes().to_vec();
        params.extend_from_slice(&n.to_le_bytes());
        let cfg = LaunchConfig {
            grid: [n.div_ceil(256), 1, 1],
            block: [256.min(n), 1, 1],
            dynamic_shared: 0,
            stream: s,
        };
        sim.launch(add, &cfg, &params)
    };
    let launches = 2000;
    let t = Instant::now();
    for _ in 0..launches {
        launch(32)?;
    }
    sim.stream_synchronize(s)?;
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(launches);
    println!("launch of a 32-thread kernel, queued: {us:.1} us each");

    let threads = 1u32 << 20;
    let before = sim.stats();
    let t = Instant::now();
    launch(threads)?;
    sim.stream_synchronize(s)?;
    let secs = t.elapsed().as_secs_f64();
    let instructions = sim.stats().thread_instructions - before.thread_instructions;
    println!(
        "kernel over 2^20 threads: {:.1} M threads/s, {:.0} M thread-instructions/s",
        f64::from(threads) / secs / 1e6,
        instructions as f64 / secs / 1e6
    );
    Ok(())
}
