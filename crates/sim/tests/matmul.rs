//! Tiled matrix multiply with static shared memory and `__syncthreads`, on shapes that are not
//! multiples of the 32 x 32 tile.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng};
use crac_gpu::{LaunchConfig, Stream};

const TILE: usize = 32;

/// C = A * B in the kernel's exact order: per output, tiles in order, within a tile k in order,
/// `acc = fma(a, b, acc)` from 0.0 (nvcc contracts `acc += As * Bs`; see
/// tests/cuda/ptx/matmul.ptx), including the zero-padded cells of a partial tile.
fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let tiles = k.div_ceil(TILE);
    let mut c = vec![0f32; m * n];
    for r in 0..m {
        for col in 0..n {
            let mut acc = 0f32;
            for kk in 0..tiles * TILE {
                let (x, y) = if kk < k {
                    (a[r * k + kk], b[kk * n + col])
                } else {
                    (0.0, 0.0)
                };
                acc = x.mul_add(y, acc);
            }
            c[r * n + col] = acc;
        }
    }
    c
}

fn run(m: usize, k: usize, n: usize, seed: u64) {
    let gpu = Gpu::new();
    let f = gpu.kernel("matmul", "matmul_tiled");
    let mut rng = Rng::new(seed);
    let a = rng.f32s(m * k, -2.0, 2.0);
    let b = rng.f32s(k * n, -2.0, 2.0);
    let (da, db, dc) = (gpu.upload(&a), gpu.upload(&b), gpu.zeroed::<f32>(m * n));
    let cfg = LaunchConfig {
        grid: [n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, 1],
        block: [TILE as u32, TILE as u32, 1],
        dynamic_shared: 0,
        stream: Stream::NULL,
    };
    gpu.run(
        f,
        &cfg,
        &[
            da.into(),
            db.into(),
            dc.into(),
            (m as i32).into(),
            (k as i32).into(),
            (n as i32).into(),
        ],
    );
    let got: Vec<f32> = gpu.download(dc, m * n);
    let want = reference(&a, &b, m, k, n);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "C[{}][{}] = {g} want {w}",
            i / n,
            i % n
        );
    }
}

#[test]
fn matmul_64x48_by_48x80_is_bit_exact() {
    run(64, 48, 80, 11);
}

#[test]
fn matmul_ragged_shape_is_bit_exact() {
    // Every dimension leaves a partial tile, and one is smaller than a tile.
    run(37, 70, 19, 12);
}

#[test]
fn matmul_reports_its_static_shared_memory() {
    let gpu = Gpu::new();
    let f = gpu.kernel("matmul", "matmul_tiled");
    let attrs = gpu
        .dev()
        .function_attributes(f)
        .expect("function attributes");
    // Two 32 x 32 f32 tiles.
    assert_eq!(attrs.shared_size_bytes, 2 * 32 * 32 * 4);
    assert!(attrs.max_threads_per_block >= 1024);
}
