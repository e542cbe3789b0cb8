//! Real nvcc kernels (tests/data/kernels.cu → kernels_*.ptx) run through `launch` and
//! compared with CPU references.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use common::*;
use crac_ptx::{LaunchError, Module};

const ALL: [(&str, &str); 3] = [
    ("sm75", KERNELS_SM75),
    ("sm90", KERNELS_SM90),
    ("debug", include_str!("data/kernels_debug.ptx")),
];

#[test]
fn all_samples_parse() {
    for (name, src) in ALL
        .iter()
        .chain([("bench", include_str!("data/bench.ptx"))].iter())
    {
        let m = Module::parse(src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            m.kernel("bench").is_some() || m.kernel("vecadd").is_some(),
            "{name}"
        );
    }
    let m = Module::parse(KERNELS_SM75).unwrap();
    let k = m.kernel("matmul").unwrap();
    assert_eq!(k.static_shared, 2048);
    assert_eq!(
        k.params.iter().map(|p| p.offset).collect::<Vec<_>>(),
        vec![0, 8, 16, 24]
    );
    let v = m.variables().iter().find(|v| v.name == "table").unwrap();
    assert_eq!((v.size, v.init[28]), (32, 8));
}

#[test]
fn vecadd() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let n = 1000usize;
        let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..n).map(|i| 3.0 - i as f32).collect();
        let (pa, pb, pc) = (
            d.mem.alloc(&bytes_f32(&a)),
            d.mem.alloc(&bytes_f32(&b)),
            d.mem.alloc(&vec![0; n * 4]),
        );
        let st = d
            .launch(
                "vecadd",
                [4, 1, 1],
                [256, 1, 1],
                0,
                Params::default().u64(pa).u64(pb).u64(pc).i32(n as i32),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = d.mem.f32s(pc, n);
        for i in 0..n {
            assert_eq!(c[i], a[i] + b[i], "{name} {i}");
        }
        assert!(st.thread_instructions > 0 && st.warp_instructions > 0);
    }
}

#[test]
fn saxpy_grid_stride() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let n = 3001usize;
        let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
        let y: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 1.0).collect();
        let (px, py) = (d.mem.alloc(&bytes_f32(&x)), d.mem.alloc(&bytes_f32(&y)));
        d.launch(
            "saxpy",
            [3, 1, 1],
            [128, 1, 1],
            0,
            Params::default().i32(n as i32).f32(2.5).u64(px).u64(py),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = d.mem.f32s(py, n);
        for i in 0..n {
            assert_eq!(out[i], 2.5f32.mul_add(x[i], y[i]), "{name} {i}");
        }
    }
}

#[test]
fn tiled_matmul_shared_and_barriers() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let n = 37usize;
        let a: Vec<f32> = (0..n * n).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..n * n).map(|i| ((i * 3) % 13) as f32 * 0.25).collect();
        let (pa, pb, pc) = (
            d.mem.alloc(&bytes_f32(&a)),
            d.mem.alloc(&bytes_f32(&b)),
            d.mem.alloc(&vec![0; n * n * 4]),
        );
        let g = n.div_ceil(16) as u32;
        d.launch(
            "matmul",
            [g, g, 1],
            [16, 16, 1],
            0,
            Params::default().u64(pa).u64(pb).u64(pc).i32(n as i32),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = d.mem.f32s(pc, n * n);
        for r in 0..n {
            for col in 0..n {
                let want: f32 = (0..n).map(|k| a[r * n + k] * b[k * n + col]).sum();
                assert!(
                    (c[r * n + col] - want).abs() < 1e-3,
                    "{name} ({r},{col}) {} vs {want}",
                    c[r * n + col]
                );
            }
        }
    }
}

#[test]
fn warp_shuffles_and_votes() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let n = 96usize;
        let input: Vec<i32> = (0..n as i32).map(|i| i * 3 - 40).collect();
        let pin = d.mem.alloc(&bytes_i32(&input));
        let pout = d.mem.alloc(&[0; 16]);
        let pb = d.mem.alloc(&vec![0; (1024 + n) * 4]);
        d.launch(
            "warp_reduce",
            [1, 1, 1],
            [n as u32, 1, 1],
            0,
            Params::default().u64(pin).u64(pout).u64(pb).i32(80),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = d.mem.i32s(pout, 3);
        let b = d.mem.u32s(pb, 1024 + n);
        for w in 0..3 {
            let want: i32 = (w * 32..w * 32 + 32)
                .filter(|&i| i < 80)
                .map(|i| input[i])
                .sum();
            assert_eq!(out[w], want, "{name} warp {w}");
            let ballot: u32 = (0..32)
                .filter(|l| (w * 32 + l) % 4 == 0)
                .fold(0, |m, l| m | 1 << l);
            let any = u32::from(w == 0) << 1;
            assert_eq!(
                b[w],
                ballot.wrapping_add(1).wrapping_add(any),
                "{name} ballot {w}"
            );
        }
        for i in 0..n {
            let lane = i % 32;
            let up = if lane == 0 { i } else { i - 1 };
            let idx = (i - lane) + (31 - lane);
            assert_eq!(b[1024 + i] as usize, up * 1000 + idx, "{name} lane {i}");
        }
    }
}

#[test]
fn shared_and_global_atomics_histogram() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let n = 5000usize;
        let data: Vec<u8> = (0..n).map(|i| ((i * 31 + i / 7) % 256) as u8).collect();
        let pd = d.mem.alloc(&data);
        let pbins = d.mem.alloc(&[0; 1024]);
        d.launch(
            "histogram",
            [4, 1, 1],
            [192, 1, 1],
            0,
            Params::default().u64(pd).i32(n as i32).u64(pbins),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let bins = d.mem.u32s(pbins, 256);
        let mut want = [0u32; 256];
        for &x in &data {
            want[x as usize] += 1;
        }
        assert_eq!(bins, want.to_vec(), "{name}");
    }
}

#[test]
fn atomic_operations() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let iv = d.mem.alloc(&bytes_i32(&[0, 0]));
        let uv = d.mem.alloc(&bytes_u32(&[u32::MAX, 0, 0, 0, 0, 0, 0]));
        let fv = d.mem.alloc(&bytes_f32(&[0.0]));
        let dv = d.mem.alloc(&1.0f64.to_le_bytes());
        let lv = d.mem.alloc(&0u64.to_le_bytes());
        let t = 64u32;
        d.launch(
            "atomics_mix",
            [1, 1, 1],
            [t, 1, 1],
            0,
            Params::default().u64(iv).u64(uv).u64(fv).u64(dv).u64(lv),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.mem.i32s(iv, 2), vec![-63, 63], "{name}");
        let u = d.mem.u32s(uv, 7);
        let xor = (0..t).fold(0, |a, i| a ^ i);
        // inc wraps at 7 (64 increments from 0 → 64 % 8 = 0); dec from 0 with limit 5.
        let mut dec = 0u32;
        for _ in 0..t {
            dec = if dec == 0 || dec > 5 { 5 } else { dec - 1 };
        }
        assert_eq!(u, vec![0, u32::MAX, xor, 0, dec, 42, 1], "{name}");
        assert_eq!(d.mem.f32s(fv, 1)[0], 32.0, "{name}");
        assert_eq!(d.mem.f64s(dv, 1)[0], 17.0, "{name}");
        assert_eq!(
            u64::from_le_bytes(d.mem.get(lv, 8).try_into().unwrap()),
            (0..64).sum::<u64>(),
            "{name}"
        );
    }
}

#[test]
fn stencil_with_halo() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let n = 1000usize;
        let x: Vec<f32> = (0..n).map(|i| ((i * i) % 97) as f32).collect();
        let (px, py) = (d.mem.alloc(&bytes_f32(&x)), d.mem.alloc(&vec![0; n * 4]));
        d.launch(
            "stencil",
            [4, 1, 1],
            [256, 1, 1],
            0,
            Params::default().u64(px).u64(py).i32(n as i32),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let y = d.mem.f32s(py, n);
        for i in 0..n {
            let l = if i > 0 { x[i - 1] } else { 0.0 };
            let r = if i + 1 < n { x[i + 1] } else { 0.0 };
            let want = 0.25f32.mul_add(r, 0.25f32.mul_add(l, 0.5 * x[i]));
            assert!((y[i] - want).abs() < 1e-4, "{name} {i}: {} vs {want}", y[i]);
        }
    }
}

#[test]
fn constant_and_device_variables() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let po = d.mem.alloc(&vec![0; 64 * 4]);
        d.launch(
            "const_counter",
            [2, 1, 1],
            [32, 1, 1],
            0,
            Params::default().u64(po),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = d.mem.f32s(po, 64);
        for (i, v) in out.iter().enumerate() {
            assert_eq!(
                *v,
                (1 + (i & 3)) as f32 * (1 + (i & 7)) as f32,
                "{name} {i}"
            );
        }
        let counter = d.syms["counter"];
        assert_eq!(d.mem.u32s(counter, 1)[0], 64, "{name}");
    }
}

#[test]
fn dynamic_shared_memory() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let input: Vec<i32> = (0..256).collect();
        let (pi, po) = (d.mem.alloc(&bytes_i32(&input)), d.mem.alloc(&vec![0; 1024]));
        d.launch(
            "dyn_shared",
            [2, 1, 1],
            [128, 1, 1],
            512,
            Params::default().u64(pi).u64(po),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = d.mem.i32s(po, 256);
        for b in 0..2 {
            for t in 0..128 {
                assert_eq!(out[b * 128 + t], (b * 128 + 127 - t) as i32, "{name}");
            }
        }
        // Too little dynamic shared memory for the block: the access faults.
        let e = d
            .launch(
                "dyn_shared",
                [1, 1, 1],
                [128, 1, 1],
                64,
                Params::default().u64(pi).u64(po),
            )
            .unwrap_err();
        assert!(
            matches!(e, LaunchError::IllegalAddress { .. }),
            "{name}: {e}"
        );
    }
}

#[test]
fn printf_output() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        d.launch(
            "hello",
            [1, 1, 1],
            [2, 1, 1],
            0,
            Params::default().i32(-7).f64(2.5),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = String::from_utf8(d.out.clone()).unwrap();
        let line = |t: u32| {
            format!(
                "thread {t} v=-7 d=2.500 hex=ff str=ok c=Z     7|-3  |-1234567890123 1.234500e+03 0.0001\n"
            )
        };
        assert_eq!(out, line(0) + &line(1), "{name}");
    }
}

#[test]
fn divergence_and_activemask() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let po = d.mem.alloc(&vec![0; 128 * 4]);
        d.launch(
            "diverge",
            [1, 1, 1],
            [64, 1, 1],
            0,
            Params::default().u64(po),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = d.mem.i32s(po, 128);
        for t in 0..64i32 {
            let r = if t & 1 == 1 { t * 3 } else { -t };
            let mut s = 0i32;
            for k in 0..t {
                s += k ^ r;
            }
            if t % 3 == 0 {
                while s > 100 {
                    s -= 7;
                }
            }
            assert_eq!(out[t as usize], s, "{name} {t}");
            assert_eq!(
                out[64 + t as usize],
                32,
                "{name} activemask after reconvergence"
            );
        }
    }
}

#[test]
fn device_function_calls_and_recursion() {
    for (name, src) in ALL {
        let mut d = Dev::new(src);
        let (po, pf) = (d.mem.alloc(&vec![0; 64 * 4]), d.mem.alloc(&vec![0; 64 * 4]));
        d.launch(
            "calls",
            [1, 1, 1],
            [64, 1, 1],
            0,
            Params::default().u64(po).u64(pf),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        fn fib(n: i32) -> i32 {
            if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
        }
        let out = d.mem.i32s(po, 64);
        let fo = d.mem.f32s(pf, 64);
        for t in 0..64 {
            assert_eq!(out[t], fib(t as i32 % 12), "{name} {t}");
            assert_eq!(fo[t], 1.5f32.mul_add(t as f32, t as f32), "{name} {t}");
        }
    }
}
