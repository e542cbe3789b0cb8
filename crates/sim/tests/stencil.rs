//! A 2-D 5-point stencil iterated 1000 times with ping-pong buffers: many launches, f32,
//! bit-exact against a Rust reference with the kernel's operation order.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng};
use crac_gpu::{LaunchConfig, Stream};

/// One step, exactly as tests/cuda/kernels/stencil.cu: border copied, interior
/// `0.2f * ((((c + n) + s) + w) + e)`.
fn step(input: &[f32], out: &mut [f32], w: usize, h: usize) {
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            out[i] = if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                input[i]
            } else {
                let mut sum = input[i] + input[i - w];
                sum += input[i + w];
                sum += input[i - 1];
                sum += input[i + 1];
                0.2f32 * sum
            };
        }
    }
}

#[test]
fn stencil_1000_steps_is_bit_exact() {
    let (w, h, steps) = (40usize, 24usize, 1000);
    let gpu = Gpu::new();
    let f = gpu.kernel("stencil", "stencil5");
    let mut rng = Rng::new(41);
    let mut grid = rng.f32s(w * h, 0.0, 1.0);
    // A hot border on one side, so heat flows through the whole run.
    grid[..w].fill(100.0);
    let bufs = [gpu.upload(&grid), gpu.upload(&grid)];
    let cfg = LaunchConfig {
        grid: [w.div_ceil(16) as u32, h.div_ceil(16) as u32, 1],
        block: [16, 16, 1],
        dynamic_shared: 0,
        stream: Stream::NULL,
    };
    for s in 0..steps {
        let (src, dst) = (bufs[s % 2], bufs[(s + 1) % 2]);
        gpu.launch(
            f,
            &cfg,
            &[src.into(), dst.into(), (w as i32).into(), (h as i32).into()],
        )
        .unwrap_or_else(|e| panic!("launch {s}: {e}"));
    }
    gpu.dev().device_synchronize().expect("all steps ran");
    let got: Vec<f32> = gpu.download(bufs[steps % 2], w * h);

    let mut other = grid.clone();
    for _ in 0..steps {
        step(&grid, &mut other, w, h);
        std::mem::swap(&mut grid, &mut other);
    }
    for (i, (g, r)) in got.iter().zip(&grid).enumerate() {
        assert_eq!(
            g.to_bits(),
            r.to_bits(),
            "cell ({}, {}): {g} want {r}",
            i % w,
            i / w
        );
    }
    // The heat really spread: a cell in the middle is well above its start range.
    assert!(grid[(h / 2) * w + w / 2] > 1.0);
}
