//! sm_90 PTX (tests/data/extra.cu): block reductions at barriers, redux, 64-bit bit ops,
//! cp.async, f16x2, by-value struct parameters.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::*;

const SRC: &str = include_str!("data/extra_sm90.ptx");

#[test]
fn syncthreads_count_and_or() {
    let mut d = Dev::new(SRC);
    let n = 96usize;
    for flip in [false, true] {
        let v: Vec<i32> = (0..n as i32)
            .map(|i| {
                if i == 77 {
                    76
                } else if flip && i == 40 {
                    77
                } else if flip && i == 3 {
                    -1
                } else {
                    i
                }
            })
            .collect();
        let has77 = v.contains(&77);
        let (pi, po) = (d.mem.alloc(&bytes_i32(&v)), d.mem.alloc(&vec![0; n * 4]));
        d.launch(
            "syncs",
            [1, 1, 1],
            [n as u32, 1, 1],
            0,
            Params::default().u64(pi).u64(po),
        )
        .unwrap();
        let cnt = v.iter().filter(|&&x| x > 10).count() as i32;
        let all = i32::from(v.iter().all(|&x| x >= 0));
        let want = cnt * 100 + all * 10 + i32::from(has77);
        assert_eq!(d.mem.i32s(po, n), vec![want; n]);
    }
}

#[test]
fn bit_operations_and_redux() {
    let mut d = Dev::new(SRC);
    let n = 32usize;
    let mut s = 0x1234_5678u32;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let (a, b, c): (Vec<u32>, Vec<u32>, Vec<u32>) = (
        (0..n).map(|_| rnd()).collect(),
        (0..n).map(|_| rnd()).collect(),
        (0..n).map(|_| rnd()).collect(),
    );
    let (pa, pb, pc) = (
        d.mem.alloc(&bytes_u32(&a)),
        d.mem.alloc(&bytes_u32(&b)),
        d.mem.alloc(&bytes_u32(&c)),
    );
    let (po, p64) = (d.mem.alloc(&vec![0; n * 16]), d.mem.alloc(&vec![0; n * 16]));
    d.launch(
        "bits",
        [1, 1, 1],
        [n as u32, 1, 1],
        0,
        Params::default().u64(pa).u64(pb).u64(pc).u64(po).u64(p64),
    )
    .unwrap();
    let out = d.mem.u32s(po, n * 4);
    let o64: Vec<u64> = d
        .mem
        .get(p64, n * 16)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let sum = a.iter().fold(0u32, |s, &x| s.wrapping_add(x));
    let max = *b.iter().max().unwrap();
    for i in 0..n {
        let (x, y, z) = (a[i], b[i], c[i]);
        assert_eq!(out[i * 4], (x & y) | (!x & z));
        assert_eq!(out[i * 4 + 1], (x ^ y ^ z) & !(x | z));
        assert_eq!(out[i * 4 + 2], sum ^ max);
        let umulhi = ((u64::from(x) * u64::from(y)) >> 32) as u32;
        let sh = z & 31;
        let funnel = ((((u64::from(y) << 32) | u64::from(x)) << sh) >> 32) as u32;
        let bytes = (u64::from(y) << 32) | u64::from(x);
        let perm = [0u32, 4, 1, 5]
            .iter()
            .enumerate()
            .fold(0u32, |acc, (k, &sel)| {
                acc | (((bytes >> (8 * sel)) & 0xff) as u32) << (8 * k)
            });
        assert_eq!(
            out[i * 4 + 3],
            umulhi.wrapping_add(funnel).wrapping_add(perm),
            "lane {i}"
        );
        let w = (u64::from(x) << 32) | u64::from(y);
        let hi = ((u128::from(w) * 0x9E37_79B9_7F4A_7C15u128) >> 64) as u64;
        assert_eq!(o64[i * 2], hi ^ (w >> (z & 63)));
        let ffs = if w == 0 { 0 } else { w.trailing_zeros() + 1 };
        assert_eq!(
            o64[i * 2 + 1],
            u64::from(w.leading_zeros() + w.count_ones() + ffs)
        );
    }
}

#[test]
fn cp_async_into_shared() {
    let mut d = Dev::new(SRC);
    let x: Vec<f32> = (0..256).map(|i| i as f32).collect();
    let (pi, po) = (d.mem.alloc(&bytes_f32(&x)), d.mem.alloc(&vec![0; 1024]));
    d.launch(
        "copy_async",
        [2, 1, 1],
        [128, 1, 1],
        0,
        Params::default().u64(pi).u64(po),
    )
    .unwrap();
    let out = d.mem.f32s(po, 256);
    for b in 0..2 {
        for t in 0..128 {
            assert_eq!(out[b * 128 + t], x[b * 128 + 127 - t] * 2.0 + 0.5);
        }
    }
}

#[test]
fn half2_arithmetic() {
    let mut d = Dev::new(SRC);
    let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.25 - 3.0).collect();
    let (pi, po) = (d.mem.alloc(&bytes_f32(&x)), d.mem.alloc(&[0; 128]));
    d.launch(
        "halves",
        [1, 1, 1],
        [32, 1, 1],
        0,
        Params::default().u64(pi).u64(po),
    )
    .unwrap();
    let out = d.mem.u32s(po, 32);
    for i in 0..32 {
        // Small multiples of 0.25 are exact in f16: (h + h) * h = 2 h².
        let lo = 2.0 * x[i] * x[i];
        let hi = 2.0 * (2.0 * x[i]) * (2.0 * x[i]);
        let dec = |h: u32| {
            let (e, m) = ((h >> 10) & 0x1f, h & 0x3ff);
            let v = if e == 0 {
                m as f32 * 2f32.powi(-24)
            } else {
                (1.0 + m as f32 / 1024.0) * 2f32.powi(e as i32 - 15)
            };
            if h & 0x8000 != 0 { -v } else { v }
        };
        assert_eq!(
            (dec(out[i] & 0xffff), dec(out[i] >> 16)),
            (lo, hi),
            "lane {i}"
        );
    }
}

#[test]
fn struct_by_value_parameter() {
    let mut d = Dev::new(SRC);
    let po = d.mem.alloc(&[0; 64]);
    let mut s = Vec::new();
    s.extend_from_slice(&5i32.to_le_bytes());
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&7.9f64.to_le_bytes());
    s.extend_from_slice(&[1, 2, 0xfd, 0, 0, 0, 0, 0]);
    let mut p = Params(s);
    p = p.u64(po);
    d.launch("structs", [1, 1, 1], [6, 1, 1], 0, p).unwrap();
    assert_eq!(d.mem.i32s(po, 6), vec![13, 14, 9, 13, 14, 9]);
}

#[test]
fn address_initializers_are_relocated() {
    let m = crac_ptx::Module::parse(SRC).unwrap();
    let p = m
        .variables()
        .iter()
        .find(|v| v.name == "ptr_to_target")
        .unwrap();
    assert_eq!(
        p.relocs,
        vec![crac_ptx::Reloc {
            offset: 0,
            width: 8,
            symbol: "target_var".into(),
            addend: 4
        }]
    );
    let mut d = Dev::new(SRC);
    d.launch(
        "relocated",
        [1, 1, 1],
        [32, 1, 1],
        0,
        Params::default().i32(42),
    )
    .unwrap();
    assert_eq!(d.mem.i32s(d.syms["target_var"], 4), vec![0, 42, 0, 0]);
    assert_eq!(String::from_utf8(d.out.clone()).unwrap(), "hi 42\n");
}

#[test]
fn half_precision_atomics() {
    let mut d = Dev::new(SRC);
    let (acc, b) = (d.mem.alloc(&[0; 4]), d.mem.alloc(&[0; 2]));
    d.launch(
        "half_atomics",
        [1, 1, 1],
        [64, 1, 1],
        0,
        Params::default().u64(acc).u64(b),
    )
    .unwrap();
    // (0.5 + …) × 64 = 32.0 = 0x5000 in the low half, 0.25 × 64 = 16.0 = 0x4c00 high.
    assert_eq!(d.mem.u32s(acc, 1), vec![0x4c00_5000]);
    // bf16 64.0 = 0x4280.
    assert_eq!(d.mem.get(b, 2), vec![0x80, 0x42]);
}
