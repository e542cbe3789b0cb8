//! Atomics: histograms with `atomicAdd` on global and on shared memory, and the other atomic
//! operations (min/max/and/or/xor/inc/CAS/exch, f32 and u64 add). Results must be exact
//! whatever order the threads run in.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng, blocks_for, dims1};

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

#[test]
fn other_atomic_operations_are_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("atomic_ops", "atomic_mix");
    let mut rng = Rng::new(81);
    let n = 3000;
    let input: Vec<i32> = (0..n)
        .map(|_| (rng.next_u32() % 200_001) as i32 - 100_000)
        .collect();
    let din = gpu.upload(&input);
    let slots = gpu.upload(&[i32::MIN, i32::MAX, -1, 0, 0, 0, 0]);
    let (fsum, wide) = (gpu.zeroed::<f32>(1), gpu.zeroed::<u64>(1));
    let owner = gpu.upload(&[-1i32; 16]);
    let prev = gpu.zeroed::<i32>(n);
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[
            din.into(),
            (n as i32).into(),
            slots.into(),
            fsum.into(),
            wide.into(),
            owner.into(),
            prev.into(),
        ],
    );
    let got: Vec<i32> = gpu.download(slots, 7);
    let want = [
        *input.iter().max().expect("input"),
        *input.iter().min().expect("input"),
        input.iter().fold(-1, |a, v| a & (v | 0x10)),
        input.iter().fold(0, |a, v| a | (v & 0x7fff)),
        input.iter().fold(0, |a, v| a ^ v),
        (n % 1001) as i32, // atomicInc wraps to 0 after reaching 1000
        input.iter().fold(0i32, |a, v| a.wrapping_add(*v)),
    ];
    assert_eq!(got, want, "max, min, and, or, xor, inc, CAS-add");
    // Small integers: the f32 sum is exact in any order.
    let fwant: f32 = input.iter().map(|v| (v & 0xff) as f32).sum();
    assert_eq!(gpu.download::<f32>(fsum, 1), [fwant]);
    let wwant = input.iter().fold(0u64, |a, &v| {
        a.wrapping_add(u64::from(v as u32).wrapping_mul(1_000_003))
    });
    assert_eq!(gpu.download::<u64>(wide, 1), [wwant]);
    // Exchange: per slot, the old values returned plus the final owner are exactly the
    // initial -1 and every thread id that swapped there (no update lost or duplicated).
    let owners: Vec<i32> = gpu.download(owner, 16);
    let prevs: Vec<i32> = gpu.download(prev, n);
    for (k, &last) in owners.iter().enumerate() {
        let mut seen: Vec<i32> = (k..n).step_by(16).map(|i| prevs[i]).collect();
        seen.push(last);
        seen.sort_unstable();
        let mut expect: Vec<i32> = (k..n).step_by(16).map(|i| i as i32).collect();
        expect.insert(0, -1);
        assert_eq!(seen, expect, "exchange chain of slot {k}");
    }
}

#[test]
fn float_and_64_bit_atomics_are_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("atomic_ops", "atomic_float_mix");
    let mut rng = Rng::new(82);
    let (n, block) = (2000usize, 128u32);
    let input: Vec<i32> = (0..n)
        .map(|_| (rng.next_u32() % 1_000_000) as i32)
        .collect();
    let blocks = blocks_for(n, block);
    let din = gpu.upload(&input);
    let (dsum, fsum) = (gpu.zeroed::<f64>(1), gpu.zeroed::<f32>(blocks as usize));
    let wide = gpu.upload(&[0u64, u64::MAX, 0]);
    let fx = gpu.upload(&[-1.0f32]);
    gpu.run(
        f,
        &dims1(blocks, block),
        &[
            din.into(),
            (n as i32).into(),
            dsum.into(),
            fsum.into(),
            wide.into(),
            fx.into(),
        ],
    );
    let total: f64 = input.iter().map(|&v| f64::from(v)).sum();
    assert_eq!(gpu.download::<f64>(dsum, 1), [total]);
    let per_block: Vec<f32> = input
        .chunks(block as usize)
        .map(|c| c.iter().map(|&v| (v & 0xfff) as f32).sum())
        .collect();
    assert_eq!(gpu.download::<f32>(fsum, blocks as usize), per_block);
    let w: Vec<u64> = input.iter().map(|&v| u64::from(v as u32) << 20).collect();
    let want = [
        *w.iter().max().expect("input"),
        *w.iter().min().expect("input"),
        w.iter().fold(0u64, |a, b| a.wrapping_add(*b)),
    ];
    assert_eq!(gpu.download::<u64>(wide, 3), want);
    // The last exchange leaves one of the threads' values.
    let last = gpu.download::<f32>(fx, 1)[0];
    assert!(input.iter().any(|&v| v as f32 == last), "exchanged {last}");
}
