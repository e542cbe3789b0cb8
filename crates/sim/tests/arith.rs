//! Element-wise arithmetic kernels: vector add, saxpy (fused and unfused), f64, integer
//! intrinsics, and the fast-math approximations. Exact operations are compared bit for bit;
//! approximations within the error bound CUDA documents for them.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, Rng, blocks_for, dims1};

/// Whether two floats are the same value: equal bits, or both NaN (NaN payloads differ between
/// a GPU, which returns the canonical NaN, and the host, which propagates an operand's).
fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Distance in units in the last place between two finite floats of the same sign.
fn ulps(a: f32, b: f32) -> u32 {
    assert!(a.is_finite() && b.is_finite(), "ulps of non-finite {a} {b}");
    let key = |x: f32| {
        let bits = x.to_bits() as i64;
        if bits & 0x8000_0000 != 0 {
            -(bits & 0x7fff_ffff)
        } else {
            bits
        }
    };
    u32::try_from((key(a) - key(b)).unsigned_abs()).expect("ulp distance fits in u32")
}

#[test]
fn vector_add_f32_is_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("vector_add", "vector_add");
    let n = 1000; // not a multiple of the block: the tail threads must do nothing
    let mut rng = Rng::new(1);
    let a = rng.f32s(n, -1e3, 1e3);
    let b = rng.f32s(n, -1e3, 1e3);
    let (da, db) = (gpu.upload(&a), gpu.upload(&b));
    // One element past the end holds a sentinel that must survive.
    let mut init = vec![0f32; n + 1];
    init[n] = 12345.0;
    let dc = gpu.upload(&init);
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[da.into(), db.into(), dc.into(), (n as i32).into()],
    );
    let c: Vec<f32> = gpu.download(dc, n + 1);
    for i in 0..n {
        assert!(
            same_f32(c[i], a[i] + b[i]),
            "c[{i}] = {} want {}",
            c[i],
            a[i] + b[i]
        );
    }
    assert_eq!(c[n], 12345.0, "thread past n wrote");
}

#[test]
fn vector_add_u32_wraps() {
    let gpu = Gpu::new();
    let f = gpu.kernel("vector_add", "vector_add_u32");
    let n = 777;
    let mut rng = Rng::new(2);
    let mut a = rng.u32s(n);
    let b = rng.u32s(n);
    a[0] = u32::MAX;
    let (da, db, dc) = (gpu.upload(&a), gpu.upload(&b), gpu.zeroed::<u32>(n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 64), 64),
        &[da.into(), db.into(), dc.into(), (n as u32).into()],
    );
    let c: Vec<u32> = gpu.download(dc, n);
    let want: Vec<u32> = a.iter().zip(&b).map(|(x, y)| x.wrapping_add(*y)).collect();
    assert_eq!(c, want);
}

#[test]
fn saxpy_fused_matches_mul_add_bit_exactly() {
    // nvcc contracts `a * x[i] + y[i]` to fma.rn.f32 (checked in tests/cuda/ptx/saxpy.ptx), so
    // the reference is a single rounding: f32::mul_add.
    let gpu = Gpu::new();
    let module = gpu.load("saxpy");
    let fused = gpu.func(module, "saxpy");
    let unfused = gpu.func(module, "saxpy_unfused");
    let n = 4099;
    let mut rng = Rng::new(3);
    let x = rng.f32s(n, -10.0, 10.0);
    let y = rng.f32s(n, -10.0, 10.0);
    let a = 1.618_034_f32;
    let (dx, dy1, dy2) = (gpu.upload(&x), gpu.upload(&y), gpu.upload(&y));
    let cfg = dims1(blocks_for(n, 256), 256);
    gpu.run(
        fused,
        &cfg,
        &[(n as i32).into(), a.into(), dx.into(), dy1.into()],
    );
    gpu.run(
        unfused,
        &cfg,
        &[(n as i32).into(), a.into(), dx.into(), dy2.into()],
    );
    let got_fused: Vec<f32> = gpu.download(dy1, n);
    let got_unfused: Vec<f32> = gpu.download(dy2, n);
    let mut fused_differs = 0;
    for i in 0..n {
        let want_fused = a.mul_add(x[i], y[i]);
        let want_unfused = a * x[i] + y[i];
        assert!(
            same_f32(got_fused[i], want_fused),
            "fused y[{i}] = {} want {want_fused}",
            got_fused[i]
        );
        assert!(
            same_f32(got_unfused[i], want_unfused),
            "unfused y[{i}] = {} want {want_unfused}",
            got_unfused[i]
        );
        fused_differs += usize::from(want_fused != want_unfused);
    }
    // The inputs are chosen so the two roundings really differ somewhere: otherwise this test
    // could not tell an fma from a mul+add.
    assert!(
        fused_differs > 100,
        "only {fused_differs} elements tell fma from mul+add"
    );
}

#[test]
fn f64_ops_are_ieee_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("f64", "f64_ops");
    let mut rng = Rng::new(4);
    let mut x: Vec<f64> = (0..500).map(|_| rng.f64_in(-1000.0, 1000.0)).collect();
    let mut y: Vec<f64> = (0..500).map(|_| rng.f64_in(0.001, 100.0)).collect();
    // Edge cases whose IEEE results (and saturating conversions) are well defined.
    let edges = [
        (1e308, 10.0),
        (-1e308, 1e-5),
        (5e-324, 0.5),
        (0.0, 1e-300),
        (-0.0, 3.0),
        (f64::INFINITY, 2.0),
        (f64::NAN, 2.0),
        (9.3e15, -1.0),
    ];
    for (i, (a, b)) in edges.into_iter().enumerate() {
        x[i] = a;
        y[i] = b;
    }
    let n = x.len();
    let (dx, dy, dout) = (gpu.upload(&x), gpu.upload(&y), gpu.zeroed::<f64>(9 * n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 96), 96),
        &[dx.into(), dy.into(), dout.into(), (n as i32).into()],
    );
    let out: Vec<f64> = gpu.download(dout, 9 * n);
    for i in 0..n {
        let (a, b) = (x[i], y[i]);
        let want = [
            a + b,
            a * b,
            a / b,
            a.abs().sqrt(),
            a * b + 1.0,
            a.min(b),
            ((a * 1000.0) as i64) as f64, // cvt.rzi.s64.f64 saturates; NaN gives 0, as `as`
            i as f64 * 0.1 - b,
            a.mul_add(b, -1.0),
        ];
        for (k, w) in want.iter().enumerate() {
            let g = out[9 * i + k];
            assert!(
                same_f64(g, *w),
                "element {i} ({a:e}, {b:e}) output {k}: {g:e} want {w:e}"
            );
        }
    }
}

#[test]
fn integer_intrinsics_are_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("int_ops", "int_ops");
    let mut rng = Rng::new(5);
    let mut a = rng.u32s(600);
    let mut b = rng.u32s(600);
    let edges = [
        (0, 0),
        (1, 1),
        (u32::MAX, u32::MAX),
        (0x8000_0000, 0xffff_ffff),
        (0x8000_0000, 31),
        (12345, 0),
        (0x7fff_ffff, 0x8000_0000),
    ];
    for (i, (x, y)) in edges.into_iter().enumerate() {
        a[i] = x;
        b[i] = y;
    }
    let n = a.len();
    let (da, db, dout) = (gpu.upload(&a), gpu.upload(&b), gpu.zeroed::<u32>(13 * n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[da.into(), db.into(), dout.into(), (n as i32).into()],
    );
    let out: Vec<u32> = gpu.download(dout, 13 * n);
    for i in 0..n {
        let (x, y) = (a[i], b[i]);
        let (xs, ys) = (x as i32, y as i32);
        let p_lhs = (x as i64).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64);
        let p = ((i128::from(p_lhs) * i128::from(y as i64 - 7)) >> 64) as i64;
        let (bfe_pos, bfe_len) = (y & 15, 10);
        let spos = (y >> 4) & 15;
        let want = [
            ((u64::from(x) * u64::from(y)) >> 32) as u32,
            x.reverse_bits(),
            x.count_ones(),
            x.leading_zeros(),
            (x >> bfe_pos) & ((1 << bfe_len) - 1),
            (xs >> (y & 31)) as u32,
            x.checked_div(y).unwrap_or(0),
            if y != 0 {
                xs.wrapping_rem((y | 1) as i32) as u32
            } else {
                0
            },
            x.min(y),
            xs.max(ys) as u32,
            p as u32,
            (p >> 32) as u32,
            ((xs << (32 - spos - 9)) >> (32 - 9)) as u32,
        ];
        for (k, w) in want.iter().enumerate() {
            let g = out[13 * i + k];
            assert_eq!(
                g, *w,
                "element {i} (x={x:#x}, y={y:#x}) output {k}: {g:#x} want {w:#x}"
            );
        }
    }
}

#[test]
fn fast_math_within_documented_error() {
    let gpu = Gpu::new();
    let f = gpu.kernel("math_approx", "math_approx");
    let mut rng = Rng::new(6);
    let x = rng.f32s(1000, -std::f32::consts::PI, std::f32::consts::PI);
    let n = x.len();
    let (dx, dout) = (gpu.upload(&x), gpu.zeroed::<f32>(4 * n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 256), 256),
        &[dx.into(), dout.into(), (n as i32).into()],
    );
    let out: Vec<f32> = gpu.download(dout, 4 * n);
    for (i, &v) in x.iter().enumerate() {
        let xd = f64::from(v);
        // __expf: CUDA C Programming Guide, intrinsic functions: at most 2 + floor(|1.173 x|)
        // ulp (the error of rounding x * log2(e) grows with |x|).
        let e = out[4 * i];
        let e_bound = 2 + (1.173 * xd.abs()).floor() as u32;
        let e_want = xd.exp() as f32;
        assert!(
            ulps(e, e_want) <= e_bound,
            "__expf({v}) = {e} want {e_want} (±{e_bound} ulp)"
        );
        // __sinf: absolute error at most 2^-21.41 for x in [-pi, pi].
        let s = out[4 * i + 1];
        let s_err = (f64::from(s) - xd.sin()).abs();
        assert!(
            s_err <= 2f64.powf(-21.41),
            "__sinf({v}) = {s}, error {s_err:e}"
        );
        // sqrtf compiles to sqrt.rn.f32: correctly rounded, so bit-exact.
        assert_eq!(
            out[4 * i + 2].to_bits(),
            v.abs().sqrt().to_bits(),
            "sqrtf(|{v}|)"
        );
        // rsqrtf (rsqrt.approx.f32): at most 2 ulp.
        let r = out[4 * i + 3];
        let r_want = (1.0 / f64::from(v.abs() + 1.0).sqrt()) as f32;
        assert!(
            ulps(r, r_want) <= 2,
            "rsqrtf({}) = {r} want {r_want}",
            v.abs() + 1.0
        );
    }
}
