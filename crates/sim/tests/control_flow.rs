//! Divergence-heavy kernels (lane-dependent loops, early return, switch), `__noinline__`
//! device-function calls, recursion and per-thread local arrays, and kernels registered by
//! C++-mangled names.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng, blocks_for, dims1};

fn collatz(x: u32) -> u32 {
    let mut x = u64::from(x);
    let mut steps = 0;
    while x != 1 && x != 0 && steps < 1000 {
        x = if x & 1 == 1 {
            x.wrapping_mul(3).wrapping_add(1)
        } else {
            x >> 1
        };
        steps += 1;
    }
    steps
}

#[test]
fn collatz_lanes_loop_independently() {
    let gpu = Gpu::new();
    let f = gpu.kernel("divergence", "collatz_steps");
    let mut input: Vec<u32> = (0..2000).collect();
    input.extend([27, 97, 871, 77_031, 837_799, u32::MAX, 0x8000_0000]);
    let n = input.len();
    let (din, dout) = (gpu.upload(&input), gpu.zeroed::<u32>(n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[din.into(), dout.into(), (n as u32).into()],
    );
    let got: Vec<u32> = gpu.download(dout, n);
    let want: Vec<u32> = input.iter().map(|&x| collatz(x)).collect();
    assert_eq!(got, want);
    assert_eq!(collatz(27), 111, "reference sanity");
}

fn branchy(v: i32, lane: i32) -> i32 {
    if lane & 1 == 1 && lane > 16 {
        return -1;
    }
    let mut v = v;
    match lane % 4 {
        0 => {
            for k in 0..lane {
                v = v.wrapping_mul(3).wrapping_add(k);
            }
        }
        1 => v = if v > 0 { v / 7 } else { v.wrapping_neg() },
        2 => {
            while v > 100 {
                v -= 37;
            }
        }
        _ => v ^= 0x5a5a,
    }
    v
}

#[test]
fn branchy_paths_and_early_returns() {
    let gpu = Gpu::new();
    let f = gpu.kernel("divergence", "branchy");
    let mut rng = Rng::new(61);
    let n = 1000; // the last warp is partial
    let input: Vec<i32> = (0..n)
        .map(|_| (rng.next_u32() % 11_000) as i32 - 1000)
        .collect();
    let (din, dout) = (gpu.upload(&input), gpu.zeroed::<i32>(n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 64), 64),
        &[din.into(), dout.into(), (n as i32).into()],
    );
    let got: Vec<i32> = gpu.download(dout, n);
    let want: Vec<i32> = (0..n).map(|i| branchy(input[i], (i % 32) as i32)).collect();
    assert_eq!(got, want);
}

fn mix(a: i32, b: i32) -> i32 {
    let mut r = a.wrapping_mul(31).wrapping_add(b);
    if r < 0 {
        r = r.wrapping_neg();
    }
    r.wrapping_rem(1_000_003)
}

#[test]
fn noinline_calls_through_a_mangled_kernel() {
    let gpu = Gpu::new();
    let f = gpu.kernel("device_call", "_Z10mix_kernelPKiS0_Pii");
    let mut rng = Rng::new(62);
    let n = 700;
    let mut a: Vec<i32> = (0..n).map(|_| rng.next_u32() as i32).collect();
    let b: Vec<i32> = (0..n).map(|_| rng.next_u32() as i32).collect();
    a[0] = i32::MIN;
    let (da, db, dout) = (gpu.upload(&a), gpu.upload(&b), gpu.zeroed::<i32>(n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[da.into(), db.into(), dout.into(), (n as i32).into()],
    );
    let got: Vec<i32> = gpu.download(dout, n);
    let want: Vec<i32> = (0..n).map(|i| mix(mix(a[i], b[i]), i as i32)).collect();
    assert_eq!(got, want);
}

#[test]
fn overloaded_and_template_kernels_by_mangled_name() {
    let gpu = Gpu::new();
    let module = gpu.load("device_call");
    let lerp = gpu.func(module, "_Z10mix_kernelPKfS0_Pfif");
    let iota = gpu.func(module, "_Z9fill_iotaIjEvPT_S0_i");
    // The demangled spelling is not a kernel name the device knows.
    let err = gpu
        .dev()
        .register_function(module, "mix_kernel")
        .expect_err("unmangled name");
    assert_eq!(err.code(), 98, "{err}");

    let mut rng = Rng::new(63);
    let n = 300;
    let a = rng.f32s(n, -100.0, 100.0);
    let b = rng.f32s(n, -100.0, 100.0);
    let t = 0.3f32;
    let (da, db, dout) = (gpu.upload(&a), gpu.upload(&b), gpu.zeroed::<f32>(n));
    gpu.run(
        lerp,
        &dims1(blocks_for(n, 64), 64),
        &[
            da.into(),
            db.into(),
            dout.into(),
            (n as i32).into(),
            t.into(),
        ],
    );
    let got: Vec<f32> = gpu.download(dout, n);
    for i in 0..n {
        // lerp uses __fadd_rn/__fmul_rn/__fsub_rn: three separate roundings.
        let want = a[i] + t * (b[i] - a[i]);
        assert_eq!(got[i].to_bits(), want.to_bits(), "lerp element {i}");
    }

    let dints = gpu.zeroed::<u32>(n);
    let start = u32::MAX - 100;
    gpu.run(
        iota,
        &dims1(blocks_for(n, 64), 64),
        &[dints.into(), start.into(), (n as i32).into()],
    );
    let got: Vec<u32> = gpu.download(dints, n);
    let want: Vec<u32> = (0..n as u32).map(|i| start.wrapping_add(i)).collect();
    assert_eq!(got, want);
}

fn fib(k: u32) -> u32 {
    if k < 2 { k } else { fib(k - 1) + fib(k - 2) }
}

/// tests/cuda/kernels/local_mem.cu's `local_sort` for one thread.
fn local_sort(seed: u32, i: usize) -> [u32; 3] {
    let mut x = seed;
    let mut table = [0u32; 40];
    for t in &mut table {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *t = x >> 16;
    }
    table.sort_unstable();
    let mut sum = 0u32;
    let mut idx = (seed % 40) as usize;
    for _ in 0..40 {
        sum = sum.wrapping_mul(31).wrapping_add(table[idx]);
        idx = (idx + table[idx] as usize) % 40;
    }
    [table[i % 40], sum, fib((i % 16) as u32)]
}

#[test]
fn local_arrays_and_recursion() {
    let gpu = Gpu::new();
    let f = gpu.kernel("local_mem", "local_sort");
    let mut rng = Rng::new(64);
    let n = 300;
    let seeds = rng.u32s(n);
    let (dseeds, dout) = (gpu.upload(&seeds), gpu.zeroed::<u32>(3 * n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 64), 64),
        &[dseeds.into(), dout.into(), (n as i32).into()],
    );
    let got: Vec<u32> = gpu.download(dout, 3 * n);
    for i in 0..n {
        assert_eq!(got[3 * i..3 * i + 3], local_sort(seeds[i], i), "thread {i}");
    }
}

#[test]
fn generic_pointers_to_global_shared_and_local_memory() {
    let gpu = Gpu::new();
    let f = gpu.kernel("device_call", "generic_ptrs");
    let mut rng = Rng::new(65);
    let input = rng.f32s(64, -100.0, 100.0);
    let (din, dout, dflags) = (
        gpu.upload(&input),
        gpu.zeroed::<f32>(64 * 8),
        gpu.zeroed::<i32>(64),
    );
    gpu.run(f, &dims1(1, 64), &[din.into(), dout.into(), dflags.into()]);
    let out: Vec<f32> = gpu.download(dout, 64 * 8);
    for t in 0..64 {
        for k in 0..8 {
            let x = input[(t % 8) * 8 + k];
            let want = ((x * 2.0) * 0.5) * 3.0;
            assert_eq!(
                out[t * 8 + k].to_bits(),
                want.to_bits(),
                "thread {t} element {k}"
            );
        }
    }
    // __isShared(sh), __isGlobal(in), __isLocal(local) true; the crossed ones false.
    assert_eq!(gpu.download::<i32>(dflags, 64), vec![0b00111; 64]);
}
