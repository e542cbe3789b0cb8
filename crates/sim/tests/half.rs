//! Half precision (`cuda_fp16.h`): f32 to f16 conversion with round-to-nearest-even, f16 add,
//! multiply and fma, packed half2 arithmetic, and f16 to f32. All exact: the reference rounds
//! the exact result once (computed in f64, where these inputs' results are exact).
#![allow(
    clippy::cast_possible_truncation,
    reason = "the f16 encoder truncates values it has already rounded to integers"
)]

mod common;

use common::{Gpu, Rng, blocks_for, dims1};

/// IEEE binary16 bits of `x` rounded to nearest, ties to even.
fn to_f16(x: f64) -> u16 {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    if x.is_nan() {
        return 0x7e00;
    }
    let a = x.abs();
    // 65504 is the largest half; 65520 is halfway to the next binade and rounds (to even) up.
    if a >= 65520.0 {
        return sign | 0x7c00;
    }
    if a < 2f64.powi(-14) {
        // Subnormal: multiples of 2^-24 (1024 * 2^-24 encodes as the smallest normal).
        return sign | (a * 2f64.powi(24)).round_ties_even() as u16;
    }
    let e = ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let mut q = (a / 2f64.powi(e - 10)).round_ties_even() as u32; // 1024..=2048
    let mut e = e;
    if q == 2048 {
        q = 1024;
        e += 1;
    }
    sign | (((e + 15) as u16) << 10) | (q - 1024) as u16
}

/// The value of binary16 bits.
fn from_f16(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let e = i32::from((h >> 10) & 0x1f);
    let m = f64::from(h & 0x3ff);
    sign * match e {
        0 => m * 2f64.powi(-24),
        31 if m == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + m) * 2f64.powi(e - 25),
    }
}

fn same_f16(a: u16, b: u16) -> bool {
    a == b || (from_f16(a).is_nan() && from_f16(b).is_nan())
}

#[test]
fn f16_encoder_reference_is_right() {
    // Known encodings, so the reference itself is trusted.
    assert_eq!(to_f16(1.0), 0x3c00);
    assert_eq!(to_f16(-2.0), 0xc000);
    assert_eq!(to_f16(65504.0), 0x7bff);
    assert_eq!(to_f16(65519.0), 0x7bff);
    assert_eq!(to_f16(65520.0), 0x7c00);
    assert_eq!(to_f16(2f64.powi(-24)), 0x0001);
    assert_eq!(to_f16(2f64.powi(-25)), 0x0000); // tie to even: down to zero
    assert_eq!(to_f16(3.0 * 2f64.powi(-25)), 0x0002); // tie to even: up
    assert_eq!(to_f16(1.0 + 2f64.powi(-11)), 0x3c00); // tie to even
    assert_eq!(to_f16(0.1), 0x2e66);
    for h in 0..=u16::MAX {
        let v = from_f16(h);
        if !v.is_nan() {
            assert_eq!(to_f16(v), h, "round trip of {h:#06x}");
        }
    }
}

#[test]
fn half_arithmetic_is_exact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("half", "half_ops");
    let mut rng = Rng::new(111);
    // Magnitudes in [0.01, 100] keep every exact result within f64's 53 bits (see module doc).
    let mag = |rng: &mut Rng| {
        let m = 10f32.powf(rng.f32_in(-2.0, 2.0));
        if rng.next_u32() & 1 == 0 { m } else { -m }
    };
    let mut x: Vec<f32> = (0..500).map(|_| mag(&mut rng)).collect();
    let mut y: Vec<f32> = (0..500).map(|_| mag(&mut rng)).collect();
    // Overflow to infinity, the largest half, ties, and a subnormal half.
    let edges = [
        (70000.0, 1.5),
        (65519.0, -1.0),
        (1.0 + 2f32.powi(-11), 3.0),
        (1e-6, 50.0),
        (-0.0, 2.0),
    ];
    for (i, (a, b)) in edges.into_iter().enumerate() {
        x[i] = a;
        y[i] = b;
    }
    let n = x.len();
    let (dx, dy) = (gpu.upload(&x), gpu.upload(&y));
    let (dout, dsum) = (gpu.zeroed::<u16>(8 * n), gpu.zeroed::<f32>(n));
    gpu.run(
        f,
        &dims1(blocks_for(n, 128), 128),
        &[
            dx.into(),
            dy.into(),
            dout.into(),
            dsum.into(),
            (n as i32).into(),
        ],
    );
    let out: Vec<u16> = gpu.download(dout, 8 * n);
    let sums: Vec<f32> = gpu.download(dsum, n);
    for i in 0..n {
        let (hx, hy) = (to_f16(f64::from(x[i])), to_f16(f64::from(y[i])));
        let (vx, vy) = (from_f16(hx), from_f16(hy));
        let add = to_f16(vx + vy);
        let mul = to_f16(vx * vy);
        let want = [
            hx,
            hy,
            add,
            mul,
            to_f16(vx * vy + vx), // one rounding: the f64 sum is exact for these inputs
            add,
            to_f16(vy + vy),
            to_f16(vx * vx),
        ];
        for (k, w) in want.iter().enumerate() {
            let g = out[8 * i + k];
            assert!(
                same_f16(g, *w),
                "element {i} (x={}, y={}) output {k}: {g:#06x} want {w:#06x}",
                x[i],
                y[i]
            );
        }
        let sum = from_f16(add) as f32 + from_f16(mul) as f32;
        assert!(
            sums[i].to_bits() == sum.to_bits() || (sums[i].is_nan() && sum.is_nan()),
            "element {i}: sum {} want {sum}",
            sums[i]
        );
    }
}
