//! Float/int/half conversions and math against CPU references, and the launch errors.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::float_cmp
)]

mod common;

use common::*;
use crac_ptx::{LaunchError, Module};

fn f16_bits(f: f32) -> u16 {
    // Reference conversion through the IEEE formula (round to nearest even).
    let mut best = 0u16;
    let mut err = f64::INFINITY;
    for b in 0..=0x7bffu16 {
        let v = f16_value(b) * f64::from(f.signum());
        let e = (v - f64::from(f)).abs();
        if e < err || (e == err && b & 1 == 0) {
            err = e;
            best = b;
        }
    }
    if f < 0.0 { best | 0x8000 } else { best }
}

fn f16_value(b: u16) -> f64 {
    let e = i32::from((b >> 10) & 0x1f);
    let m = f64::from(b & 0x3ff);
    if e == 0 {
        m * 2f64.powi(-24)
    } else {
        (1.0 + m / 1024.0) * 2f64.powi(e - 15)
    }
}

#[test]
fn mathmix_matches_cpu() {
    for src in [KERNELS_SM75, include_str!("data/kernels_debug.ptx")] {
        let mut d = Dev::new(src);
        let n = 64usize;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 30.0) * 0.37).collect();
        let px = d.mem.alloc(&bytes_f32(&x));
        let (pf, pd, pi, ph) = (
            d.mem.alloc(&vec![0; n * 32]),
            d.mem.alloc(&vec![0; n * 32]),
            d.mem.alloc(&vec![0; n * 16]),
            d.mem.alloc(&vec![0; n * 2]),
        );
        d.launch(
            "mathmix",
            [1, 1, 1],
            [n as u32, 1, 1],
            0,
            Params::default().u64(px).u64(pf).u64(pd).u64(pi).u64(ph),
        )
        .unwrap();
        let of = d.mem.f32s(pf, n * 8);
        let od = d.mem.f64s(pd, n * 4);
        let oi = d.mem.i32s(pi, n * 4);
        let oh = d.mem.get(ph, n * 2);
        for t in 0..n {
            let f = x[t];
            let dd = f64::from(f) * 1.5;
            let close = |got: f32, want: f32, what: &str| {
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "t={t} {what}: {got} vs {want}"
                );
            };
            assert_eq!(of[t * 8], f.abs().sqrt(), "sqrt");
            close(of[t * 8 + 1], (f * 0.1).exp(), "exp");
            close(of[t * 8 + 2], (f.abs() + 1.0).ln(), "log");
            close(of[t * 8 + 3], f.sin() + f.cos(), "sin+cos");
            close(of[t * 8 + 4], 1.0 / (f.abs() + 1.0).sqrt(), "rsqrt");
            assert_eq!(of[t * 8 + 5], f / 3.0, "div");
            assert_eq!(
                of[t * 8 + 6],
                f.min(2.0) + f.max(-1.0) + 1f32.copysign(f),
                "min/max/copysign"
            );
            let want7 = (f as i32) as f32
                + t as f32
                + f.trunc()
                + f.floor()
                + f.ceil()
                + f.round_ties_even();
            close(of[t * 8 + 7], want7, "rounding");
            assert_eq!(od[t * 4], dd.abs().sqrt());
            assert_eq!(od[t * 4 + 1], dd / 7.0);
            assert_eq!(od[t * 4 + 2], dd.mul_add(dd, 1.0));
            assert_eq!(od[t * 4 + 3], ((dd * 1000.0) as i64) as f64);
            assert_eq!(oi[t * 4], f as i32);
            assert_eq!(oi[t * 4 + 1], f.round_ties_even() as i32);
            assert_eq!(oi[t * 4 + 2], ((f * 100.0) as u32 % 7) as i32);
            let tt = t as u32;
            let ffs = if tt == 0 { 0 } else { tt.trailing_zeros() + 1 };
            assert_eq!(
                oi[t * 4 + 3] as u32,
                tt.reverse_bits() ^ (tt + 1).leading_zeros() ^ ffs,
                "bit ops t={t}"
            );
            let h = f16_bits(f);
            let h2 = f16_bits((f16_value(h & 0x7fff) as f32).copysign(f) + 1.0);
            let want = f16_bits(
                (f16_value(h2 & 0x7fff) as f32 * if h2 & 0x8000 != 0 { -1.0 } else { 1.0 })
                    * (f16_value(h & 0x7fff) as f32 * if h & 0x8000 != 0 { -1.0 } else { 1.0 }),
            );
            assert_eq!(
                u16::from_le_bytes([oh[t * 2], oh[t * 2 + 1]]),
                want,
                "half t={t}"
            );
        }
    }
}

const HAND: &str = r#"
.version 9.0
.target sm_75
.address_size 64
.visible .entry oob(.param .u64 p)
{
    .reg .b64 %rd<4>;
    .reg .b32 %r<4>;
    ld.param.u64 %rd1, [p];
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r1;
    ret;
}
.visible .entry weird(.param .u64 p)
{
    .reg .b32 %r<4>;
    .reg .pred %p<2>;
    mov.u32 %r1, %tid.x;
    setp.gt.u32 %p1, %r1, 100;
    @%p1 tex.1d.v4.f32.s32 %r2, [tx, {%r1}];
    ret;
}
.visible .entry trapper()
{
    trap;
}
.visible .entry shared_oob()
{
    .reg .b32 %r<2>;
    .shared .align 4 .b8 s[64];
    mov.u32 %r1, 64;
    st.shared.u32 [%r1], %r1;
    ret;
}
.visible .entry spin(.param .u32 n) .maxntid 64, 1, 1
{
    .reg .b32 %r<3>;
    .reg .pred %p<2>;
    ld.param.u32 %r1, [n];
$L0:
    sub.s32 %r1, %r1, 1;
    setp.gt.s32 %p1, %r1, 0;
    @%p1 bra $L0;
    ret;
}
"#;

#[test]
fn out_of_bounds_is_illegal_address_with_line() {
    let mut d = Dev::new(HAND);
    let p = d.mem.alloc(&[0; 64 * 4]);
    d.launch("oob", [1, 1, 1], [64, 1, 1], 0, Params::default().u64(p))
        .unwrap();
    let e = d
        .launch("oob", [1, 1, 1], [65, 1, 1], 0, Params::default().u64(p))
        .unwrap_err();
    assert_eq!(
        e,
        LaunchError::IllegalAddress {
            fault: crac_ptx::Fault {
                addr: p + 256,
                len: 4
            },
            line: 13
        }
    );
    let e = d
        .launch("shared_oob", [1, 1, 1], [1, 1, 1], 0, Params::default())
        .unwrap_err();
    assert!(
        matches!(e, LaunchError::IllegalAddress { line: 34, .. }),
        "{e}"
    );
}

#[test]
fn unsupported_fails_only_when_executed() {
    let mut d = Dev::new(HAND);
    let p = Params::default().u64(0);
    d.launch("weird", [1, 1, 1], [64, 1, 1], 0, Params::default().u64(0))
        .unwrap();
    let e = d.launch("weird", [1, 1, 1], [128, 1, 1], 0, p).unwrap_err();
    assert_eq!(
        e,
        LaunchError::Unsupported {
            instr: "tex.1d.v4.f32.s32".into(),
            line: 22
        }
    );
    assert_eq!(
        d.launch("trapper", [1, 1, 1], [1, 1, 1], 0, Params::default())
            .unwrap_err(),
        LaunchError::Trap { line: 27 }
    );
}

#[test]
fn bad_configurations() {
    let mut d = Dev::new(HAND);
    let cfg = |r: Result<_, LaunchError>| matches!(r, Err(LaunchError::InvalidConfig(_)));
    assert!(cfg(d.launch(
        "spin",
        [1, 1, 1],
        [0, 1, 1],
        0,
        Params::default().u32(1)
    )));
    assert!(cfg(d.launch(
        "spin",
        [1, 1, 1],
        [2048, 1, 1],
        0,
        Params::default().u32(1)
    )));
    assert!(
        cfg(d.launch("spin", [1, 1, 1], [128, 1, 1], 0, Params::default().u32(1))),
        ".maxntid 64"
    );
    assert!(cfg(d.launch(
        "spin",
        [1, 1, 1],
        [32, 1, 1],
        1 << 20,
        Params::default().u32(1)
    )));
    assert!(cfg(d.launch(
        "spin",
        [1, 70000, 1],
        [32, 1, 1],
        0,
        Params::default().u32(1)
    )));
    assert_eq!(
        d.launch("spin", [1, 1, 1], [32, 1, 1], 0, Params::default())
            .unwrap_err(),
        LaunchError::BadParams { got: 0, need: 4 }
    );
    assert_eq!(
        d.launch("nope", [1, 1, 1], [32, 1, 1], 0, Params::default())
            .unwrap_err(),
        LaunchError::NoSuchKernel("nope".into())
    );
    let st = d
        .launch("spin", [2, 1, 1], [64, 1, 1], 0, Params::default().u32(10))
        .unwrap();
    // 2 blocks × 2 warps × (ld + 10 × 3 + ret) warp-instructions.
    assert_eq!(st.warp_instructions, 4 * 32);
    assert_eq!(st.thread_instructions, 4 * 32 * 32);
}

#[test]
fn unresolved_symbol() {
    let m = Module::parse(KERNELS_SM75).unwrap();
    let mut mem = Mem::default();
    let p = mem.alloc(&[0; 256]);
    let dims = crac_ptx::LaunchDims {
        grid: [1, 1, 1],
        block: [32, 1, 1],
        dynamic_shared: 0,
    };
    let e = crac_ptx::launch(
        &m,
        "const_counter",
        &dims,
        &p.to_le_bytes(),
        &|_| None,
        &mut mem,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        matches!(e, LaunchError::UnresolvedSymbol(ref s) if s == "coeffs" || s == "table" || s == "counter"),
        "{e}"
    );
}

const HAND_OPS: &str = r#"
.version 9.0
.target sm_75
.address_size 64
.visible .entry ops(.param .u64 p)
{
    .reg .b64 %rd<2>;
    .reg .b32 %r<12>;
    ld.param.u64 %rd1, [p];
    mov.u32 %r1, 2147483600;
    add.sat.s32 %r2, %r1, 100;
    sub.sat.s32 %r3, -2147483600, %r1;
    mul24.lo.u32 %r4, 16777215, 2;
    mad24.hi.u32 %r5, 16777215, 16777215, 1;
    dp4a.s32.u32 %r6, 0xff020304, 0x01010101, 10;
    lop3.b32 %r7, 0xf0f0f0f0, 0xcccccccc, 0xaaaaaaaa, 0x96;
    bfe.s32 %r8, 0x00000f00, 8, 4;
    prmt.b32 %r9, 0x44332211, 0x88776655, 0x1357;
    st.global.v4.u32 [%rd1], {%r2, %r3, %r4, %r5};
    st.global.v4.u32 [%rd1+16], {%r6, %r7, %r8, %r9};
    ret;
}
.visible .entry odd(.param .u64 p)
{
    .reg .f32 %f<3>;
    max.NaN.f32 %f1, %f2, %f2;
    ret;
}
"#;

#[test]
fn hand_written_integer_ops() {
    let mut d = Dev::new(HAND_OPS);
    let p = d.mem.alloc(&[0; 32]);
    d.launch("ops", [1, 1, 1], [1, 1, 1], 0, Params::default().u64(p))
        .unwrap();
    let got = d.mem.u32s(p, 8);
    let dp = -1i32 + 2 + 3 + 4 + 10;
    assert_eq!(
        got,
        vec![
            i32::MAX as u32,
            i32::MIN as u32,
            0x1ff_fffe,
            0xffff_fe01,
            dp as u32,
            0xf0f0_f0f0 ^ 0xcccc_cccc ^ 0xaaaa_aaaa,
            0xffff_ffff,
            0x2244_6688
        ]
    );
    // An arithmetic modifier the interpreter does not know is refused, not ignored.
    let e = d
        .launch("odd", [1, 1, 1], [1, 1, 1], 0, Params::default().u64(p))
        .unwrap_err();
    assert_eq!(
        e,
        LaunchError::Unsupported {
            instr: "max.NaN.f32".into(),
            line: 26
        }
    );
}

#[test]
fn device_assert_prints_and_traps() {
    let mut d = Dev::new(include_str!("data/assert_sm75.ptx"));
    let p = d.mem.alloc(&[0; 256]);
    d.launch(
        "checks",
        [1, 1, 1],
        [32, 1, 1],
        0,
        Params::default().u64(p).i32(7),
    )
    .unwrap();
    assert_eq!(d.mem.i32s(p, 32), vec![7; 32]);
    let e = d
        .launch(
            "checks",
            [2, 1, 1],
            [48, 1, 1],
            0,
            Params::default().u64(p).i32(7),
        )
        .unwrap_err();
    assert!(matches!(e, LaunchError::Assert { .. }), "{e}");
    let out = String::from_utf8(d.out.clone()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert_eq!(
        lines[0],
        "assert.cu:4: void checks(int *, int): block [0,0,0], thread [40,0,0] Assertion `threadIdx.x < 40` failed."
    );
}

const RECURSE: &str = r#"
.version 9.0
.target sm_75
.address_size 64
.func (.param .b32 r) down(.param .b32 n)
{
    .reg .b32 %r<4>;
    .reg .pred %p1;
    ld.param.b32 %r1, [n];
    setp.eq.s32 %p1, %r1, 0;
    @%p1 bra DONE;
    add.s32 %r2, %r1, -1;
    {
    .param .b32 a;
    .param .b32 b;
    st.param.b32 [a], %r2;
    call.uni (b), down, (a);
    ld.param.b32 %r3, [b];
    }
    add.s32 %r1, %r3, 2;
DONE:
    st.param.b32 [r], %r1;
    ret;
}
.visible .entry deep(.param .u64 out, .param .u32 n)
{
    .reg .b32 %r<3>;
    .reg .b64 %rd<2>;
    ld.param.u32 %r1, [n];
    {
    .param .b32 a;
    .param .b32 b;
    st.param.b32 [a], %r1;
    call.uni (b), down, (a);
    ld.param.b32 %r2, [b];
    }
    ld.param.u64 %rd1, [out];
    st.global.u32 [%rd1], %r2;
    ret;
}
"#;

#[test]
fn recursion_is_capped() {
    let mut d = Dev::new(RECURSE);
    let p = d.mem.alloc(&[0; 4]);
    d.launch(
        "deep",
        [1, 1, 1],
        [32, 1, 1],
        0,
        Params::default().u64(p).u32(50),
    )
    .unwrap();
    assert_eq!(d.mem.u32s(p, 1), vec![100]);
    let e = d
        .launch(
            "deep",
            [1, 1, 1],
            [32, 1, 1],
            0,
            Params::default().u64(p).u32(500),
        )
        .unwrap_err();
    assert!(
        matches!(e, LaunchError::Unsupported { ref instr, line: 17 } if instr.contains("deeper than 64")),
        "{e}"
    );
}

#[test]
fn warp_size_constant() {
    let src = ".version 9.0\n.target sm_75\n.address_size 64\n.visible .entry k(.param .u64 p)\n{\n\
        .reg .b32 %r<2>;\n.reg .b64 %rd<2>;\nld.param.u64 %rd1, [p];\nmov.u32 %r1, WARP_SZ;\n\
        st.global.u32 [%rd1], %r1;\nret;\n}\n";
    let mut d = Dev::new(src);
    let p = d.mem.alloc(&[0; 4]);
    d.launch("k", [1, 1, 1], [1, 1, 1], 0, Params::default().u64(p))
        .unwrap();
    assert_eq!(d.mem.u32s(p, 1), vec![32]);
}

const SWITCH: &str = r#"
.version 9.0
.target sm_75
.address_size 64
.visible .entry sw(.param .u64 p)
{
    .reg .b32 %r<5>;
    .reg .b64 %rd<4>;
    ld.param.u64 %rd1, [p];
    mov.u32 %r1, %tid.x;
    rem.u32 %r2, %r1, 3;
    ts: .branchtargets L0, L1, L2;
    brx.idx %r2, ts;
L0:
    mov.u32 %r3, 100;
    bra.uni END;
L1:
    mov.u32 %r3, 200;
    bra.uni END;
L2:
    mov.u32 %r3, 300;
END:
    activemask.b32 %r4;
    add.s32 %r3, %r3, %r1;
    mul.wide.u32 %rd2, %r1, 8;
    add.s64 %rd3, %rd1, %rd2;
    st.global.v2.u32 [%rd3], {%r3, %r4};
    ret;
}
"#;

#[test]
fn indirect_branch_through_a_table() {
    let mut d = Dev::new(SWITCH);
    let p = d.mem.alloc(&[0; 64 * 8]);
    d.launch("sw", [1, 1, 1], [64, 1, 1], 0, Params::default().u64(p))
        .unwrap();
    let out = d.mem.u32s(p, 128);
    for t in 0..64u32 {
        assert_eq!(out[t as usize * 2], 100 * (t % 3 + 1) + t, "t={t}");
        assert_eq!(out[t as usize * 2 + 1], u32::MAX, "reconverged t={t}");
    }
}

const NAMED_BARRIERS: &str = r#"
.version 9.0
.target sm_75
.address_size 64
.visible .entry pc(.param .u64 p)
{
    .reg .b32 %r<6>;
    .reg .b64 %rd<4>;
    .reg .pred %q<3>;
    .shared .align 4 .b32 box;
    ld.param.u64 %rd1, [p];
    mov.u32 %r1, %tid.x;
    mov.u32 %r5, 0;
    setp.lt.u32 %q1, %r1, 32;
    @%q1 bra PRODUCER;
    // consumers (warps 1 and 2): wait until the producer filled the box, read it
    bar.sync 1, 96;
    ld.shared.u32 %r2, [box];
    mul.wide.u32 %rd2, %r1, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.u32 [%rd3], %r2;
    bar.arrive 2, 96;
    ret;
PRODUCER:
    setp.eq.u32 %q2, %r1, 0;
    @%q2 st.shared.u32 [box], 1234;
    bar.arrive 1, 96;
    bar.sync 2, 96;
    st.global.u32 [%rd1], %r5;
    ret;
}
.visible .entry stuck()
{
    .reg .b32 %r<2>;
    .reg .pred %q<2>;
    mov.u32 %r1, %tid.x;
    setp.lt.u32 %q1, %r1, 32;
    @%q1 bra DONE;
    bar.sync 3, 128;
DONE:
    ret;
}
"#;

#[test]
fn named_barriers_producer_consumer() {
    let mut d = Dev::new(NAMED_BARRIERS);
    let p = d.mem.alloc(&[0xff; 96 * 4]);
    d.launch("pc", [2, 1, 1], [96, 1, 1], 0, Params::default().u64(p))
        .unwrap();
    let out = d.mem.u32s(p, 96);
    assert_eq!(
        out[0], 0,
        "the producer finished after the consumers arrived"
    );
    assert_eq!(&out[32..], &[1234; 64][..]);
    // A barrier expecting more threads than will ever arrive would hang a GPU: it fails.
    let e = d
        .launch("stuck", [1, 1, 1], [64, 1, 1], 0, Params::default())
        .unwrap_err();
    assert_eq!(e, LaunchError::Trap { line: 39 });
}

#[test]
fn unprovided_special_register_fails_when_read() {
    let src = ".version 9.0\n.target sm_90\n.address_size 64\n.visible .entry k()\n{\n\
        .reg .b32 %r<2>;\n.reg .pred %p<2>;\nmov.u32 %r1, %tid.x;\nsetp.gt.u32 %p1, %r1, 40;\n\
        @%p1 mov.u32 %r1, %envreg3;\nret;\n}\n";
    let mut d = Dev::new(src);
    d.launch("k", [1, 1, 1], [32, 1, 1], 0, Params::default())
        .unwrap();
    let e = d
        .launch("k", [1, 1, 1], [64, 1, 1], 0, Params::default())
        .unwrap_err();
    assert_eq!(
        e,
        LaunchError::Unsupported {
            instr: "mov.u32 (reads %envreg3)".into(),
            line: 10
        }
    );
}
