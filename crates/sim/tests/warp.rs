//! Thread/block indexing in three dimensions and warp-level primitives: shfl idx/up/xor/width,
//! vote ballot/any/all, and `__activemask` in a divergent branch.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng, dims1};
use crac_gpu::{LaunchConfig, Stream};

#[test]
fn indices_in_three_dimensions() {
    let gpu = Gpu::new();
    let f = gpu.kernel("indexing", "indices");
    let (grid, block) = ([3u32, 2, 2], [8u32, 4, 3]);
    let per_block = (block[0] * block[1] * block[2]) as usize;
    let total = per_block * (grid[0] * grid[1] * grid[2]) as usize;
    let out = gpu.zeroed::<u32>(8 * total);
    let cfg = LaunchConfig {
        grid,
        block,
        dynamic_shared: 0,
        stream: Stream::NULL,
    };
    gpu.run(f, &cfg, &[out.into()]);
    let got: Vec<u32> = gpu.download(out, 8 * total);
    let mut want = vec![0u32; 8 * total];
    for bz in 0..grid[2] {
        for by in 0..grid[1] {
            for bx in 0..grid[0] {
                for tz in 0..block[2] {
                    for ty in 0..block[1] {
                        for tx in 0..block[0] {
                            let tib = (tz * block[1] + ty) * block[0] + tx;
                            let b = (bz * grid[1] + by) * grid[0] + bx;
                            let id = b as usize * per_block + tib as usize;
                            want[8 * id..8 * id + 8].copy_from_slice(&[
                                tx,
                                ty,
                                tz,
                                bx,
                                by,
                                bz,
                                tib % 32,
                                tib / 32,
                            ]);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(got, want);
}

/// The eight outputs of `warp_ops` for one warp's values (see tests/cuda/kernels/warp.cu).
fn warp_reference(v: &[i32], threshold: i32) -> Vec<u32> {
    assert_eq!(v.len(), 32);
    let ballot = (0..32)
        .filter(|&l| v[l] & 1 != 0)
        .fold(0u32, |m, l| m | 1 << l);
    let any = u32::from(v.iter().any(|&x| x > threshold));
    let all = u32::from(v.iter().all(|&x| x > 0));
    let every_third = (0..32).step_by(3).fold(0u32, |m, l| m | 1 << l);
    (0..32)
        .flat_map(|l| {
            [
                v[(l * 7) % 32] as u32,
                if l >= 3 { v[l - 3] } else { v[l] } as u32,
                v[l ^ 5] as u32,
                ballot,
                any,
                all,
                if l % 3 == 0 { every_third } else { 0 },
                v[(l / 8) * 8 + 2] as u32,
            ]
        })
        .collect()
}

#[test]
fn shuffles_votes_and_active_mask() {
    let gpu = Gpu::new();
    let f = gpu.kernel("warp", "warp_ops");
    let mut rng = Rng::new(71);
    let threshold = 900;
    // Warp 0: all positive, none over the threshold. Warp 1: mixed signs, some over. Warp 2:
    // all positive, some over.
    // Warp 3: all negative.
    let mut input: Vec<i32> = (0..32).map(|_| 1 + (rng.next_u32() % 800) as i32).collect();
    input.extend((0..32).map(|_| (rng.next_u32() % 2000) as i32 - 500));
    input.extend((0..32).map(|_| 1 + (rng.next_u32() % 1000) as i32));
    input.extend((0..32).map(|_| -1 - (rng.next_u32() % 1000) as i32));
    let n = input.len();
    let (din, dout) = (gpu.upload(&input), gpu.zeroed::<u32>(8 * n));
    gpu.run(
        f,
        &dims1(2, 64),
        &[din.into(), dout.into(), threshold.into()],
    );
    let got: Vec<u32> = gpu.download(dout, 8 * n);
    for w in 0..n / 32 {
        let want = warp_reference(&input[32 * w..32 * w + 32], threshold);
        for (k, (g, x)) in got[256 * w..256 * w + 256].iter().zip(&want).enumerate() {
            assert_eq!(g, x, "warp {w} lane {} output {}", k / 8, k % 8);
        }
    }
    // The warps were chosen to cover both answers of each vote.
    let votes: Vec<(u32, u32)> = (0..4)
        .map(|w| (got[256 * w + 4], got[256 * w + 5]))
        .collect();
    assert_eq!(votes, [(0, 1), (1, 0), (1, 1), (0, 0)]);
}

#[test]
fn grid_x_beyond_65535_blocks() {
    // gridDim.x may be up to 2^31 - 1 (only y and z stop at 65535).
    let gpu = Gpu::new();
    let f = gpu.kernel("errors", "touch");
    let blocks = 70_000u32;
    let p = gpu.zeroed::<i32>(blocks as usize + 1);
    gpu.run(f, &dims1(blocks, 1), &[p.into()]);
    let got: Vec<i32> = gpu.download(p, blocks as usize + 1);
    assert!(
        got[..blocks as usize].iter().all(|&v| v == 1),
        "a block did not run"
    );
    assert_eq!(got[blocks as usize], 0, "a block past the grid ran");
}
