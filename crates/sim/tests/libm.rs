//! CUDA's accurate math library (`expf`, `logf`, `sinf`, `powf`, `atan2`, … as nvcc inlines them
//! from libdevice: long sequences of fma, bit manipulation, approximate ex2/lg2, local-memory
//! tables for huge trigonometric arguments) and the exact rounding functions.
//!
//! Tolerances are the maximum ulp errors of the CUDA C Programming Guide's tables
//! ("Mathematical Functions", full range), plus 1 ulp because the host reference is itself a
//! rounded (f64, or glibc) result. Rounding functions, fmod, min/max and conversions are exact.
#![allow(
    clippy::cast_possible_truncation,
    reason = "the references round to f32 and i32 on purpose, as the kernels do"
)]

mod common;

use common::{Gpu, Rng, blocks_for, dims1};

fn key32(x: f32) -> i64 {
    let bits = i64::from(x.to_bits());
    if bits & 0x8000_0000 != 0 {
        -(bits & 0x7fff_ffff)
    } else {
        bits
    }
}

fn key64(x: f64) -> i128 {
    let bits = i128::from(x.to_bits());
    if bits & (1 << 63) != 0 {
        -(bits & 0x7fff_ffff_ffff_ffff)
    } else {
        bits
    }
}

/// Equal (NaNs equal each other), or both finite and at most `ulp` apart.
fn close32(got: f32, want: f32, ulp: u32) -> bool {
    got.to_bits() == want.to_bits()
        || (got.is_nan() && want.is_nan())
        || (got.is_finite()
            && want.is_finite()
            && (key32(got) - key32(want)).unsigned_abs() <= u64::from(ulp))
}

fn close64(got: f64, want: f64, ulp: u32) -> bool {
    got.to_bits() == want.to_bits()
        || (got.is_nan() && want.is_nan())
        || (got.is_finite()
            && want.is_finite()
            && (key64(got) - key64(want)).unsigned_abs() <= u128::from(ulp))
}

fn inputs() -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(101);
    let mut x = rng.f32s(900, -20.0, 20.0);
    x.extend(rng.f32s(100, -1e4, 1e4));
    x.extend([
        0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e6, -3e7, 88.0, -87.0, 1e-40, 3.0e38,
    ]);
    let y: Vec<f32> = (0..x.len())
        .map(|_| {
            let v = rng.f32_in(-5.0, 5.0);
            if v == 0.0 { 1.0 } else { v }
        })
        .collect();
    (x, y)
}

#[test]
fn single_precision_library_within_documented_ulp() {
    let gpu = Gpu::new();
    let f = gpu.kernel("libm", "math_f32");
    let (x, y) = inputs();
    let n = x.len();
    let (dx, dy, dout) = (gpu.upload(&x), gpu.upload(&y), gpu.zeroed::<f32>(16 * n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[dx.into(), dy.into(), dout.into(), (n as i32).into()],
    );
    let out: Vec<f32> = gpu.download(dout, 16 * n);
    for i in 0..n {
        let (a, b) = (x[i], y[i]);
        let (ad, bd) = (f64::from(a), f64::from(b));
        let log_arg = a.abs() + 0.001;
        let pow_base = a.abs() + 0.5;
        // (name, want, max ulp from the Programming Guide + 1 for the reference's rounding)
        let checks: [(&str, f32, u32); 16] = [
            ("expf", ad.exp() as f32, 2 + 1),
            ("logf", f64::from(log_arg).ln() as f32, 1 + 1),
            ("sinf", ad.sin() as f32, 2 + 1),
            ("cosf", ad.cos() as f32, 2 + 1),
            ("tanf", ad.tan() as f32, 4 + 1),
            ("tanhf", ad.tanh() as f32, 2 + 1),
            ("powf", f64::from(pow_base).powf(bd) as f32, 4 + 1),
            ("atan2f", bd.atan2(ad) as f32, 3 + 1),
            ("floorf", a.floor(), 0),
            ("ceilf", a.ceil(), 0),
            ("truncf", a.trunc(), 0),
            ("roundf", a.round(), 0),
            ("rintf", a.round_ties_even(), 0),
            ("fmodf", a % b, 0),
            ("fmaxf - fminf", a.max(b) - a.min(b), 0),
            (
                "__float2int_rn + __saturatef",
                ((a * 100.0).round_ties_even() as i32) as f32 + b.clamp(0.0, 1.0),
                0,
            ),
        ];
        for (k, (name, want, ulp)) in checks.into_iter().enumerate() {
            let got = out[16 * i + k];
            assert!(
                close32(got, want, ulp),
                "{name} at x={a:e} y={b:e}: got {got:e} ({:#x}) want {want:e} ({:#x}), {ulp} ulp allowed",
                got.to_bits(),
                want.to_bits()
            );
        }
    }
}

#[test]
fn double_precision_library_within_documented_ulp() {
    let gpu = Gpu::new();
    let f = gpu.kernel("libm", "math_f64");
    let mut rng = Rng::new(102);
    let mut x: Vec<f64> = (0..600).map(|_| rng.f64_in(-30.0, 30.0)).collect();
    x.extend((0..100).map(|_| rng.f64_in(-1e6, 1e6)));
    x.extend([0.0, -0.0, 1e-310, 700.0, -745.0, 1e15]);
    let y: Vec<f64> = (0..x.len()).map(|_| rng.f64_in(-6.0, 6.0)).collect();
    let n = x.len();
    let (dx, dy, dout) = (gpu.upload(&x), gpu.upload(&y), gpu.zeroed::<f64>(6 * n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[dx.into(), dy.into(), dout.into(), (n as i32).into()],
    );
    let out: Vec<f64> = gpu.download(dout, 6 * n);
    for i in 0..n {
        let (a, b) = (x[i], y[i]);
        let checks: [(&str, f64, u32); 6] = [
            ("exp", a.exp(), 1 + 1),
            ("log", (a.abs() + 0.001).ln(), 1 + 1),
            ("sin", a.sin(), 2 + 1),
            ("cos", a.cos(), 2 + 1),
            ("pow", (a.abs() + 0.5).powf(b), 2 + 1),
            ("atan2", b.atan2(a), 2 + 1),
        ];
        for (k, (name, want, ulp)) in checks.into_iter().enumerate() {
            let got = out[6 * i + k];
            assert!(
                close64(got, want, ulp),
                "{name} at x={a:e} y={b:e}: got {got:e} want {want:e}, {ulp} ulp allowed"
            );
        }
    }
}
