//! Histograms with `atomicAdd` on global memory and on shared memory: counts must be exact
//! whatever order the threads run in.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng, dims1};

/// Skewed bytes: a third of them are 7, so many threads hit the same bin.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let r = rng.next_u32();
            if r % 3 == 0 { 7 } else { (r >> 8) as u8 }
        })
        .collect()
}

fn counts(data: &[u8]) -> Vec<u32> {
    let mut bins = vec![0u32; 256];
    for &b in data {
        bins[usize::from(b)] += 1;
    }
    bins
}

fn run(kernel: &str, n: usize, grid: u32, block: u32) {
    let gpu = Gpu::new();
    let f = gpu.kernel("histogram", kernel);
    let input = data(n, 31 + n as u64);
    let (din, dbins) = (gpu.upload(&input), gpu.zeroed::<u32>(256));
    gpu.run(
        f,
        &dims1(grid, block),
        &[din.into(), (n as u32).into(), dbins.into()],
    );
    let bins: Vec<u32> = gpu.download(dbins, 256);
    assert_eq!(bins, counts(&input), "{kernel} over {n} bytes");
    assert_eq!(bins.iter().map(|&c| c as usize).sum::<usize>(), n);
}

#[test]
fn histogram_global_atomics_count_exactly() {
    run("hist_global", 50_000, 12, 256);
}

#[test]
fn histogram_shared_atomics_count_exactly() {
    run("hist_shared", 50_000, 12, 256);
}

#[test]
fn histogram_shared_with_small_blocks() {
    // 96 threads: the zeroing and merging loops take several strides.
    run("hist_shared", 9_999, 5, 96);
}
