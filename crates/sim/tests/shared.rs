//! Dynamic shared memory (`extern __shared__`, size given at launch).
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng};
use crac_gpu::{LaunchConfig, Stream};

#[test]
fn dynamic_shared_reverses_each_block() {
    let gpu = Gpu::new();
    let f = gpu.kernel("dyn_shared", "reverse_block");
    let (block, blocks) = (96usize, 5usize);
    let n = block * blocks;
    let mut rng = Rng::new(51);
    let input = rng.f32s(n, -5.0, 5.0);
    let ints: Vec<i32> = (0..n as i32).map(|i| i * 3 - 500).collect();
    let (din, dints) = (gpu.upload(&input), gpu.upload(&ints));
    let (dout, dsum) = (gpu.zeroed::<f32>(n), gpu.zeroed::<i32>(n));
    let cfg = LaunchConfig {
        grid: [blocks as u32, 1, 1],
        block: [block as u32, 1, 1],
        // blockDim floats then blockDim ints.
        dynamic_shared: (block * 8) as u32,
        stream: Stream::NULL,
    };
    gpu.run(
        f,
        &cfg,
        &[din.into(), dout.into(), dsum.into(), dints.into()],
    );
    let out: Vec<f32> = gpu.download(dout, n);
    let sums: Vec<i32> = gpu.download(dsum, n);
    for b in 0..blocks {
        for t in 0..block {
            let (i, m) = (b * block + t, b * block + block - 1 - t);
            assert_eq!(out[i].to_bits(), input[m].to_bits(), "out[{i}]");
            assert_eq!(sums[i], ints[i] + ints[m], "mirror_sum[{i}]");
        }
    }
}

#[test]
fn dynamic_shared_larger_than_the_device_allows_is_rejected() {
    let gpu = Gpu::new();
    let f = gpu.kernel("dyn_shared", "reverse_block");
    let p = gpu.dev().device_props(0).expect("props");
    let buf = gpu.zeroed::<f32>(64);
    let cfg = LaunchConfig {
        grid: [1, 1, 1],
        block: [32, 1, 1],
        dynamic_shared: u32::try_from(p.shared_mem_per_block_optin + 1).expect("fits"),
        stream: Stream::NULL,
    };
    let err = gpu
        .launch(f, &cfg, &[buf.into(), buf.into(), buf.into(), buf.into()])
        .expect_err("launch over the shared-memory limit must fail");
    assert!(
        !err.is_sticky(),
        "a rejected launch must not poison the context: {err}"
    );
    // The device is still usable.
    gpu.dev().device_synchronize().expect("context still good");
}
