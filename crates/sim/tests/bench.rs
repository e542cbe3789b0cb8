//! End-to-end benchmark of the `sim` device (not a test: ignored by default, run by
//! `bench/sim.sh` in release). Runs the 5-point stencil through the full device path (fat-binary
//! registration, parameter packing, launch, synchronise) and prints throughput, plus the ratio
//! to the same stencil computed natively in Rust. Prints numbers; asserts only correctness.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use std::time::Instant;

use common::{Gpu, Rng};
use crac_gpu::{LaunchConfig, Stream};

fn native_step(input: &[f32], out: &mut [f32], w: usize, h: usize) {
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            out[i] = if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                input[i]
            } else {
                0.2f32
                    * ((((input[i] + input[i - w]) + input[i + w]) + input[i - 1]) + input[i + 1])
            };
        }
    }
}

#[test]
#[ignore = "benchmark: run with bench/sim.sh (release)"]
fn stencil_throughput() {
    let (w, h) = (256usize, 256usize);
    let steps: usize = std::env::var("CRAC_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let gpu = Gpu::new();
    let f = gpu.kernel("stencil", "stencil5");
    let grid = Rng::new(7).f32s(w * h, 0.0, 1.0);
    let bufs = [gpu.upload(&grid), gpu.upload(&grid)];
    let cfg = LaunchConfig {
        grid: [(w / 16) as u32, (h / 16) as u32, 1],
        block: [16, 16, 1],
        dynamic_shared: 0,
        stream: Stream::NULL,
    };
    let t = Instant::now();
    for s in 0..steps {
        let (src, dst) = (bufs[s % 2], bufs[(s + 1) % 2]);
        gpu.launch(
            f,
            &cfg,
            &[src.into(), dst.into(), (w as i32).into(), (h as i32).into()],
        )
        .expect("launch");
    }
    gpu.dev().device_synchronize().expect("synchronize");
    let sim_s = t.elapsed().as_secs_f64();
    let got: Vec<f32> = gpu.download(bufs[steps % 2], w * h);

    let t = Instant::now();
    let (mut a, mut b) = (grid.clone(), grid);
    for _ in 0..steps {
        native_step(&a, &mut b, w, h);
        std::mem::swap(&mut a, &mut b);
    }
    let native_s = t.elapsed().as_secs_f64().max(1e-9);
    assert!(
        got.iter().zip(&a).all(|(g, r)| g.to_bits() == r.to_bits()),
        "sim result differs"
    );

    let threads = (w * h * steps) as f64;
    println!("sim stencil {w}x{h}, {steps} launches of {} threads", w * h);
    println!(
        "  sim:    {sim_s:.3} s  {:.1} launches/s  {:.2} M thread-runs/s",
        steps as f64 / sim_s,
        threads / sim_s / 1e6
    );
    println!(
        "  native: {native_s:.4} s  {:.1} M cells/s",
        threads / native_s / 1e6
    );
    println!("  sim / native time ratio: {:.0}x", sim_s / native_s);
}
