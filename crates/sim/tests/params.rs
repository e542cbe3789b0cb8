//! Kernel parameter packing: every size and alignment, and a struct by value, laid out as the
//! CUDA ABI packs `void **args` (natural alignment, declaration order).

mod common;

use common::{Arg, Gpu, dims1};

#[test]
fn parameter_layout_follows_the_cuda_abi() {
    let gpu = Gpu::new();
    let f = gpu.kernel("params", "params_mix");
    let layout: Vec<(u64, u64)> = gpu
        .dev()
        .function_params(f)
        .expect("layout")
        .iter()
        .map(|p| (p.offset, p.size))
        .collect();
    // char, double, short, int, double*, unsigned long long, struct {int; float; double}, uchar
    assert_eq!(
        layout,
        [
            (0, 1),
            (8, 8),
            (16, 2),
            (20, 4),
            (24, 8),
            (32, 8),
            (40, 16),
            (56, 1)
        ]
    );
}

#[test]
fn every_parameter_arrives_intact() {
    let gpu = Gpu::new();
    let f = gpu.kernel("params", "params_mix");
    let out = gpu.zeroed::<f64>(9);
    let mut packed = Vec::new();
    packed.extend_from_slice(&(-123_456i32).to_le_bytes()); // st.a
    packed.extend_from_slice(&1.5f32.to_le_bytes()); // st.b
    packed.extend_from_slice(&(-2.0f64.powi(-30)).to_le_bytes()); // st.c
    let u = (1u64 << 52) + 12_345; // exact as a double
    gpu.run(
        f,
        &dims1(1, 1),
        &[
            (-7i8).into(),
            std::f64::consts::E.into(),
            (-30_000i16).into(),
            2_000_000_000i32.into(),
            out.into(),
            u.into(),
            Arg::Bytes(packed),
            250u8.into(),
        ],
    );
    let got: Vec<f64> = gpu.download(out, 9);
    let want = [
        -7.0,
        std::f64::consts::E,
        -30_000.0,
        2_000_000_000.0,
        u as f64,
        -123_456.0,
        1.5,
        -2.0f64.powi(-30),
        250.0,
    ];
    assert_eq!(got, want);
}
