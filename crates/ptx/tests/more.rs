//! nvcc's full-precision libm (long sequences, carry chains, local-memory reduction paths),
//! control flow with continue/break and calls, cooperative-groups tiles, vector loads.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::*;

const SRC: &str = include_str!("data/more_sm75.ptx");

fn close32(got: f32, want: f64, ulps: f64, what: &str) {
    let tol = (want.abs() * f64::from(f32::EPSILON) * ulps).max(1e-30);
    assert!(
        f64::from(got) == want || (f64::from(got) - want).abs() <= tol,
        "{what}: {got} vs {want}"
    );
}

fn close64(got: f64, want: f64, what: &str) {
    let tol = (want.abs() * f64::EPSILON * 4.0).max(1e-300);
    assert!(
        got == want || (got - want).abs() <= tol,
        "{what}: {got} vs {want}"
    );
}

#[test]
fn libm_matches_host_math() {
    let mut d = Dev::new(SRC);
    let mut x: Vec<f32> = (0..60).map(|i| (i as f32 - 30.0) * 123.4567).collect();
    x.extend([1e30f32, -3.0e9, 0.5]);
    let n = x.len();
    let (px, po, pd) = (
        d.mem.alloc(&bytes_f32(&x)),
        d.mem.alloc(&vec![0; n * 32]),
        d.mem.alloc(&vec![0; n * 32]),
    );
    d.launch(
        "libm",
        [1, 1, 1],
        [n as u32, 1, 1],
        0,
        Params::default().u64(px).u64(po).u64(pd),
    )
    .unwrap();
    let o = d.mem.f32s(po, n * 8);
    let od = d.mem.f64s(pd, n * 4);
    for i in 0..n {
        let v = f64::from(x[i]);
        let w = format!("x={v}");
        close32(o[i * 8], v.sin(), 4.0, &format!("sinf {w}"));
        close32(o[i * 8 + 1], v.cos(), 4.0, &format!("cosf {w}"));
        close32(
            o[i * 8 + 2],
            f64::from(x[i] * 0.01).exp(),
            4.0,
            &format!("expf {w}"),
        );
        close32(
            o[i * 8 + 3],
            (f64::from(x[i].abs() + 1e-3)).ln(),
            4.0,
            &format!("logf {w}"),
        );
        close32(
            o[i * 8 + 4],
            v.abs().powf(f64::from(0.37f32)),
            16.0,
            &format!("powf {w}"),
        );
        close32(
            o[i * 8 + 5],
            f64::from(x[i] * 0.01).tanh(),
            4.0,
            &format!("tanhf {w}"),
        );
        close32(o[i * 8 + 7], v.atan2(3.0), 4.0, &format!("atan2f {w}"));
        close64(od[i * 4], v.sin(), &format!("sin {w}"));
        close64(od[i * 4 + 1], (v * 0.001).exp(), &format!("exp {w}"));
        close64(od[i * 4 + 2], (v.abs() + 1.0).ln(), &format!("log {w}"));
        close64(
            od[i * 4 + 3],
            v.abs().sqrt() + v.cbrt(),
            &format!("pow+cbrt {w}"),
        );
    }
}

#[test]
fn loops_with_continue_break_and_calls() {
    let mut d = Dev::new(SRC);
    let n = 128usize;
    let input: Vec<i32> = (0..n as i32).map(|i| i * 37 % 101).collect();
    let (pi, po, pl) = (
        d.mem.alloc(&bytes_i32(&input)),
        d.mem.alloc(&vec![0; n * 4]),
        d.mem.alloc(&vec![0; n * 16]),
    );
    d.launch(
        "control",
        [2, 1, 1],
        [64, 1, 1],
        0,
        Params::default().u64(pi).u64(po).u64(pl),
    )
    .unwrap();
    let out = d.mem.i32s(po, n);
    let l: Vec<i64> = d
        .mem
        .get(pl, n * 16)
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let classify = |v: i32| [11, 23, 37, 41, 53, 67, 71, 83, 97][(v % 9) as usize];
    for t in 0..n {
        let v = input[t];
        let mut acc = 0;
        for k in 0..50 {
            if (v + k) % 7 == 0 {
                continue;
            }
            if acc > 300 + (t as i32 & 15) {
                break;
            }
            acc += classify(v + k);
        }
        assert_eq!(out[t], acc, "t={t}");
        let a = i64::from(v) * 1_000_003 - 77;
        assert_eq!(l[t * 2], a / (t as i64 + 3) + a % 97, "t={t}");
        assert_eq!(l[t * 2 + 1], (a as u64 / 13) as i64, "t={t}");
    }
}

#[test]
fn cooperative_group_tiles_and_match() {
    let mut d = Dev::new(SRC);
    let n = 64usize;
    let input: Vec<i32> = (0..n as i32).map(|i| i * 5 + 1).collect();
    let (pi, po) = (
        d.mem.alloc(&bytes_i32(&input)),
        d.mem.alloc(&vec![0; n * 12]),
    );
    d.launch(
        "groups",
        [1, 1, 1],
        [n as u32, 1, 1],
        0,
        Params::default().u64(pi).u64(po),
    )
    .unwrap();
    let out = d.mem.i32s(po, n * 3);
    for t in 0..n {
        let tile = t / 8 * 8;
        // shfl_down within the tile: lanes near the tile's end keep their own values.
        let mut s: Vec<i32> = input[tile..tile + 8].to_vec();
        for o in [4, 2, 1] {
            let prev = s.clone();
            for (k, x) in s.iter_mut().enumerate() {
                if k + o < 8 {
                    *x += prev[k + o];
                } else {
                    *x += prev[k];
                }
            }
        }
        assert_eq!(out[t * 3], s[t - tile], "sum t={t}");
        assert_eq!(out[t * 3 + 1], input[tile], "first t={t}");
        let warp = t / 32 * 32;
        let m = (0..32)
            .filter(|&k| input[warp + k] & 3 == input[t] & 3)
            .fold(0u32, |m, k| m | 1 << k);
        assert_eq!(out[t * 3 + 2] as u32, m, "match t={t}");
    }
}

#[test]
fn float4_loads_saturate_and_u64_atomics() {
    let mut d = Dev::new(SRC);
    let n = 32usize;
    let a: Vec<f32> = (0..n * 4).map(|i| i as f32 * 0.1 - 1.0).collect();
    let (pa, pb, ps) = (
        d.mem.alloc(&bytes_f32(&a)),
        d.mem.alloc(&vec![0; n * 16]),
        d.mem.alloc(&[0; 8]),
    );
    d.launch(
        "vec4",
        [1, 1, 1],
        [n as u32, 1, 1],
        0,
        Params::default().u64(pa).u64(pb).u64(ps),
    )
    .unwrap();
    let b = d.mem.f32s(pb, n * 4);
    for i in 0..n {
        let v = &a[i * 4..i * 4 + 4];
        assert_eq!(
            &b[i * 4..i * 4 + 4],
            &[v[3], v[2], v[1], v[0].clamp(0.0, 1.0)]
        );
    }
    assert_eq!(
        u64::from_le_bytes(d.mem.get(ps, 8).try_into().unwrap()),
        (0..n as u64).sum::<u64>()
    );
}

#[test]
fn function_pointers_and_virtual_calls() {
    let mut d = Dev::new(include_str!("data/fptr_sm75.ptx"));
    let po = d.mem.alloc(&[0; 64 * 4]);
    d.launch("fptr", [1, 1, 1], [64, 1, 1], 0, Params::default().u64(po))
        .unwrap();
    let out = d.mem.i32s(po, 64);
    for t in 0..64i32 {
        let f = if t & 1 == 0 { t + 3 } else { t * 3 };
        let area = if t & 2 != 0 { t * t } else { t * 2 };
        assert_eq!(out[t as usize], f + area, "t={t}");
    }
}

#[test]
fn spinning_warp_yields_to_the_warp_it_waits_for() {
    let mut d = Dev::new(SRC);
    let po = d.mem.alloc(&[0; 64 * 4]);
    d.launch("spin", [1, 1, 1], [64, 1, 1], 0, Params::default().u64(po))
        .unwrap();
    assert_eq!(d.mem.i32s(po, 32), vec![7; 32]);
}

#[test]
fn cub_block_reduce_scan_and_radix_sort() {
    let mut d = Dev::new(include_str!("data/cub_sm75.ptx"));
    let input: Vec<i32> = (0..1024).map(|i| (i * 37 + 11) % 101 - 50).collect();
    let pi = d.mem.alloc(&bytes_i32(&input));
    let (ps, pc, po) = (
        d.mem.alloc(&[0; 8]),
        d.mem.alloc(&[0; 1024]),
        d.mem.alloc(&[0; 4096]),
    );
    d.launch(
        "cub_block",
        [2, 1, 1],
        [128, 1, 1],
        0,
        Params::default().u64(pi).u64(ps).u64(pc).u64(po),
    )
    .unwrap();
    let sums = d.mem.i32s(ps, 2);
    let scan = d.mem.i32s(pc, 256);
    let sorted = d.mem.i32s(po, 1024);
    for b in 0..2 {
        let block = &input[b * 128..b * 128 + 128];
        assert_eq!(sums[b], block.iter().sum::<i32>());
        let mut acc = 0;
        for t in 0..128 {
            assert_eq!(scan[b * 128 + t], acc, "scan b={b} t={t}");
            acc += block[t];
        }
        let mut keys: Vec<i32> = (0..128)
            .flat_map(|t| (0..4).map(move |k| (b * 128 + t) * 4 % 512 + k))
            .map(|i| input[i] * 7919 % 1000 - 500)
            .collect();
        keys.sort_unstable();
        assert_eq!(&sorted[b * 512..b * 512 + 512], &keys[..], "sort b={b}");
    }
}

#[test]
fn cub_warp_primitives_load_store_histogram() {
    let mut d = Dev::new(include_str!("data/cub2_sm75.ptx"));
    let input: Vec<i32> = (0..256).map(|i| (i * 53 + 7) % 97).collect();
    let pi = d.mem.alloc(&bytes_i32(&input));
    let (po, ph, pf) = (
        d.mem.alloc(&[0; 1024]),
        d.mem.alloc(&[0; 64]),
        d.mem.alloc(&[0; 256]),
    );
    d.launch(
        "cub_warp",
        [1, 1, 1],
        [64, 1, 1],
        0,
        Params::default().u64(pi).u64(po).u64(ph).u64(pf),
    )
    .unwrap();
    let out = d.mem.i32s(po, 256);
    let hist = d.mem.u32s(ph, 16);
    let fout = d.mem.f32s(pf, 64);
    // Blocked arrangement: thread t holds items 4t..4t+3.
    for w in 0..2 {
        let max = (w * 32..w * 32 + 32).map(|t| input[t * 4]).max().unwrap();
        let mut acc = 0.0f32;
        for t in w * 32..w * 32 + 32 {
            acc += input[t * 4 + 1] as f32 * 0.5;
            assert_eq!(fout[t], acc, "scan t={t}");
            for k in 0..4 {
                assert_eq!(out[t * 4 + k], input[t * 4 + k] * 2 + max, "t={t} k={k}");
            }
        }
    }
    let mut want = [0u32; 16];
    for &v in &input {
        want[((v & 0xff) % 16) as usize] += 1;
    }
    assert_eq!(hist, want.to_vec());
}
