//! Block reductions with `__shfl_down_sync` and shared memory: u32 and i64 exact, f32 bit-exact
//! against a reference that reproduces the kernel's addition tree.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng, Scalar, blocks_for, dims1};

/// One warp's `warp_sum` from tests/cuda/kernels/reduce.cu: for offset 16, 8, 4, 2, 1 every lane
/// adds the value `offset` lanes up (its own value when that lane is past 31, as
/// `shfl.sync.down` returns). Returns lane 0's result.
fn warp_sum<T: Copy>(mut v: [T; 32], add: impl Fn(T, T) -> T) -> T {
    let mut offset = 16;
    while offset > 0 {
        let prev = v;
        for lane in 0..32 {
            let other = if lane + offset < 32 {
                prev[lane + offset]
            } else {
                prev[lane]
            };
            v[lane] = add(prev[lane], other);
        }
        offset /= 2;
    }
    v[0]
}

/// Per-block results of `block_sum` (same tree: warps, then warp 0 over the warp partials).
fn block_sums<T: Copy>(
    input: &[T],
    block: usize,
    zero: T,
    add: impl Fn(T, T) -> T + Copy,
) -> Vec<T> {
    assert_eq!(block % 32, 0);
    let blocks = input.len().div_ceil(block);
    (0..blocks)
        .map(|b| {
            let warps = block / 32;
            let partial: Vec<T> = (0..warps)
                .map(|w| {
                    let lanes = std::array::from_fn(|l| {
                        let i = b * block + w * 32 + l;
                        if i < input.len() { input[i] } else { zero }
                    });
                    warp_sum(lanes, add)
                })
                .collect();
            let lanes = std::array::from_fn(|l| if l < warps { partial[l] } else { zero });
            warp_sum(lanes, add)
        })
        .collect()
}

fn run<T: Scalar>(kernel: &str, input: &[T], block: u32) -> Vec<T> {
    let gpu = Gpu::new();
    let f = gpu.kernel("reduce", kernel);
    let blocks = blocks_for(input.len(), block);
    let (din, dout) = (gpu.upload(input), gpu.zeroed::<T>(blocks as usize));
    gpu.run(
        f,
        &dims1(blocks, block),
        &[din.into(), dout.into(), (input.len() as u32).into()],
    );
    gpu.download(dout, blocks as usize)
}

#[test]
fn reduce_u32_is_exact() {
    let mut rng = Rng::new(21);
    let input = rng.u32s(10_007);
    let got = run("reduce_u32", &input, 256);
    let want = block_sums(&input, 256, 0u32, u32::wrapping_add);
    assert_eq!(got, want);
    let total = got.iter().fold(0u32, |a, b| a.wrapping_add(*b));
    assert_eq!(total, input.iter().fold(0u32, |a, b| a.wrapping_add(*b)));
}

#[test]
fn reduce_i64_is_exact() {
    let mut rng = Rng::new(22);
    let input: Vec<i64> = (0..5000).map(|_| rng.next_u64() as i64 >> 3).collect();
    let got = run("reduce_i64", &input, 128);
    let want = block_sums(&input, 128, 0i64, i64::wrapping_add);
    assert_eq!(got, want);
    let total = got.iter().fold(0i64, |a, b| a.wrapping_add(*b));
    assert_eq!(total, input.iter().fold(0i64, |a, b| a.wrapping_add(*b)));
}

#[test]
fn reduce_f32_follows_the_documented_order() {
    // Values of mixed magnitude, so a different addition order gives different bits.
    let mut rng = Rng::new(23);
    let input: Vec<f32> = (0..8192 + 77)
        .map(|i| rng.f32_in(-1.0, 1.0) * if i % 7 == 0 { 1e4 } else { 1e-2 })
        .collect();
    let got = run("reduce_f32", &input, 1024);
    let want = block_sums(&input, 1024, 0f32, |a, b| a + b);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "block {i}: {g} want {w}");
    }
    // The tree order matters for these inputs: a sequential sum of block 0 differs.
    let seq: f32 = input[..1024].iter().sum();
    assert_ne!(
        seq.to_bits(),
        want[0].to_bits(),
        "inputs do not distinguish summation orders"
    );
}

#[test]
fn last_block_sums_the_partials_after_a_threadfence() {
    let gpu = Gpu::new();
    let module = gpu.load("reduce");
    let f = gpu.func(module, "reduce_last_block");
    let mut rng = Rng::new(24);
    for (launch, n) in [(0, 5000usize), (1, 777), (2, 12_345)] {
        let input: Vec<u32> = rng.u32s(n).into_iter().map(|v| v >> 8).collect();
        let blocks = blocks_for(n, 128);
        let (din, dpart, dtotal) = (
            gpu.upload(&input),
            gpu.zeroed::<u32>(blocks as usize),
            gpu.zeroed::<u32>(1),
        );
        gpu.run(
            f,
            &dims1(blocks, 128),
            &[din.into(), dpart.into(), dtotal.into(), (n as u32).into()],
        );
        let total = input.iter().fold(0u32, |a, b| a.wrapping_add(*b));
        assert_eq!(gpu.download::<u32>(dtotal, 1), [total], "launch {launch}");
        // The last block reset the ticket counter for the next launch.
        let (ptr, _) = gpu
            .dev()
            .register_variable(module, "blocks_done")
            .expect("variable");
        assert_eq!(gpu.download::<u32>(ptr, 1), [0], "launch {launch}");
    }
}

#[test]
fn block_wide_votes() {
    let gpu = Gpu::new();
    let f = gpu.kernel("reduce", "block_votes");
    let mut rng = Rng::new(25);
    let (block, blocks) = (96usize, 4usize);
    let threshold = 50;
    let mut input: Vec<i32> = (0..block * blocks)
        .map(|_| (rng.next_u32() % 200) as i32 - 60)
        .collect();
    // Block 1 all positive; block 2 none below -threshold.
    for v in &mut input[block..2 * block] {
        *v = v.abs() + 1;
    }
    for v in &mut input[2 * block..3 * block] {
        *v = (*v).max(-threshold);
    }
    let (din, dout) = (gpu.upload(&input), gpu.zeroed::<i32>(3 * blocks));
    gpu.run(
        f,
        &dims1(blocks as u32, block as u32),
        &[din.into(), dout.into(), threshold.into()],
    );
    let got: Vec<i32> = gpu.download(dout, 3 * blocks);
    let want: Vec<i32> = input
        .chunks(block)
        .flat_map(|b| {
            [
                b.iter().filter(|&&v| v > threshold).count() as i32,
                i32::from(b.iter().all(|&v| v > 0)),
                i32::from(b.iter().any(|&v| v < -threshold)),
            ]
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!((want[4], want[8]), (1, 0), "inputs cover both answers");
}
