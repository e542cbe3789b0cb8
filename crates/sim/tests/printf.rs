//! Device `printf`: the sim's printf writer is captured and compared as text, including %d %u
//! %f %s (device-memory and module strings) %x %lld and %%.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, dims1};

const TAG: &str = "crac";

/// The line thread `t` of block `b` prints (see tests/cuda/kernels/printf.cu).
fn line(b: u32, t: i32, scale: f32) -> String {
    format!(
        "block {b} thread {t}: {:.6} {TAG} {:x} {} {} {} 100%\n",
        f64::from(scale * t as f32),
        t * 255,
        (t as u32).wrapping_add(4_000_000_000),
        i64::from(t) * -10_000_000_000,
        if t % 2 == 0 { "even" } else { "odd" },
    )
}

fn launch(gpu: &Gpu, grid: u32, block: u32, limit: i32, scale: f32) {
    let f = gpu.kernel("printf", "say");
    let mut tag = TAG.as_bytes().to_vec();
    tag.push(0);
    let dtag = gpu.upload(&tag);
    gpu.run(
        f,
        &dims1(grid, block),
        &[limit.into(), scale.into(), dtag.into()],
    );
}

#[test]
fn printf_text_is_exact_within_a_warp() {
    let gpu = Gpu::new();
    let out = gpu.sim().capture_printf();
    let scale = 0.1f32;
    launch(&gpu, 1, 32, 20, scale);
    // One warp: lanes print in lane order.
    let want: String = (0..20).map(|t| line(0, t, scale)).collect();
    assert_eq!(out.text(), want);
    assert!(
        want.contains("block 0 thread 3: 0.300000 crac 2fd 4000000003 -30000000000 odd 100%\n")
    );
}

#[test]
fn printf_from_many_warps_and_blocks() {
    let gpu = Gpu::new();
    let out = gpu.sim().capture_printf();
    let scale = -2.5f32;
    launch(&gpu, 3, 64, 40, scale);
    // CUDA orders lines only within a warp: compare each warp's lines in order, and the set of
    // warps as a whole.
    let text = out.text();
    assert!(text.ends_with('\n'));
    let mut got: Vec<&str> = text.split_inclusive('\n').collect();
    let mut want: Vec<String> = (0..3)
        .flat_map(|b| (0..40).map(move |t| line(b, t, scale)))
        .collect();
    assert_eq!(got.len(), want.len(), "line count:\n{text}");
    for b in 0..3u32 {
        for (warp, lanes) in [(0, 0..32), (1, 32..40)] {
            let mine: Vec<&str> = got
                .iter()
                .copied()
                .filter(|l| {
                    l.starts_with(&format!("block {b} thread ")) && lanes.contains(&thread_of(l))
                })
                .collect();
            let expect: Vec<String> = lanes.clone().map(|t| line(b, t, scale)).collect();
            assert_eq!(mine, expect, "block {b} warp {warp}");
        }
    }
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

fn thread_of(line: &str) -> i32 {
    line.split_whitespace()
        .nth(3)
        .and_then(|t| t.trim_end_matches(':').parse().ok())
        .expect("thread number")
}

#[test]
fn printf_widths_flags_and_conversions_match_c() {
    let gpu = Gpu::new();
    let out = gpu.sim().capture_printf();
    let f = gpu.kernel("printf", "say_formats");
    let word = gpu.upload(b"checkpoint\0");
    gpu.run(f, &dims1(1, 2), &[1234.5678f64.into(), word.into()]);
    // Expected text is what C's printf gives for the same arguments (glibc and Python's %
    // agree on every conversion here). Each printf call prints its lanes in lane order.
    let want = "\
[ 1234|1234  |01234|+1234| 1234|2322|BEEF|0xff|A]
[-1234|-1234 |-1234|-1234|-1234|2322|BEEF|0xff|B]
[1.523457e+06|1.234568E+03|1.52346e+06|0.000123457|1234.568|1523456.6652|1.23e+03  |+1235]
[-1.523457e+06|1.234568E+03|-1.52346e+06|0.000123457|1234.568|-1523456.6652|1.23e+03  |+1235]
[checkpoint|checkpoint|ch|-28516|254|4000000000|123456789abcdef]
[checkpoint|checkpoint|ch|28516|90|4000000000|123456789abcdef]
";
    assert_eq!(out.text(), want);
}
