//! Vector loads and stores (float4, int2, double2), non-coherent `__restrict__` loads, a 64-bit
//! grid-stride loop, and `clock64()`.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants"
)]

mod common;

use common::{Gpu, Rng, dims1};

#[test]
fn float4_grid_stride_is_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("vector_mem", "axpb4");
    let mut rng = Rng::new(121);
    let n4 = 3000usize; // far more elements than threads: every thread strides
    let x = rng.f32s(4 * n4, -50.0, 50.0);
    let (a, b) = (0.731f32, -2.25f32);
    let (dx, dy) = (gpu.upload(&x), gpu.zeroed::<f32>(4 * n4));
    gpu.run(
        f,
        &dims1(3, 128),
        &[dx.into(), dy.into(), a.into(), b.into(), (n4 as u64).into()],
    );
    let got: Vec<f32> = gpu.download(dy, 4 * n4);
    for (i, (g, v)) in got.iter().zip(&x).enumerate() {
        let want = a.mul_add(*v, b);
        assert_eq!(g.to_bits(), want.to_bits(), "component {i}");
    }
}

#[test]
fn int2_and_double2_pairs() {
    let gpu = Gpu::new();
    let f = gpu.kernel("vector_mem", "pairs");
    let mut rng = Rng::new(122);
    let n = 777;
    let ints: Vec<i32> = (0..2 * n).map(|_| rng.next_u32() as i32).collect();
    let dbl: Vec<f64> = (0..2 * n).map(|_| rng.f64_in(-1e6, 1e6)).collect();
    let (di, dd, ds) = (gpu.upload(&ints), gpu.upload(&dbl), gpu.zeroed::<f64>(n));
    gpu.run(
        f,
        &dims1(n.div_ceil(64) as u32, 64),
        &[di.into(), dd.into(), ds.into(), (n as i32).into()],
    );
    let swapped: Vec<i32> = gpu.download(di, 2 * n);
    let sums: Vec<f64> = gpu.download(ds, n);
    for i in 0..n {
        assert_eq!(
            [swapped[2 * i], swapped[2 * i + 1]],
            [ints[2 * i + 1], ints[2 * i]]
        );
        assert_eq!(sums[i].to_bits(), (dbl[2 * i] + dbl[2 * i + 1]).to_bits());
    }
}

#[test]
fn clock64_advances_over_work() {
    let gpu = Gpu::new();
    let f = gpu.kernel("vector_mem", "clocks");
    let out = gpu.zeroed::<i64>(64);
    gpu.run(f, &dims1(1, 32), &[out.into(), 200i32.into()]);
    let got: Vec<i64> = gpu.download(out, 64);
    for t in 0..32i64 {
        let (elapsed, acc) = (got[2 * t as usize], got[2 * t as usize + 1]);
        // Work ran between the reads, so the clock advanced (a real SM counts cycles).
        assert!(elapsed > 0, "thread {t}: clock advanced by {elapsed}");
        assert_eq!(acc, (0..200).map(|k| k * t).sum::<i64>() as i32 as i64);
    }
}
