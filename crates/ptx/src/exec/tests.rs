//! Executor robustness: arbitrary (mutated) programs run under an instruction budget must
//! end in `Ok` or an error, never a panic.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use proptest::prelude::*;

use crate::{DeviceMemory, Fault, LaunchDims, Module};

struct Small(Vec<u8>);
const BASE: u64 = 0x1000;

impl DeviceMemory for Small {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let f = Fault {
            addr,
            len: buf.len() as u64,
        };
        let o = addr.checked_sub(BASE).ok_or(f)? as usize;
        buf.copy_from_slice(self.0.get(o..o.saturating_add(buf.len())).ok_or(f)?);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let f = Fault {
            addr,
            len: data.len() as u64,
        };
        let o = addr.checked_sub(BASE).ok_or(f)? as usize;
        self.0
            .get_mut(o..o.saturating_add(data.len()))
            .ok_or(f)?
            .copy_from_slice(data);
        Ok(())
    }
}

fn run_all(m: &Module) {
    for k in m.kernels() {
        let mut mem = Small(vec![0; 1 << 16]);
        let params: Vec<u8> = (0..256)
            .map(|i| if i % 8 == 1 { 0x10 } else { 0 })
            .collect();
        let dims = LaunchDims {
            grid: [2, 1, 1],
            block: [40, 1, 1],
            dynamic_shared: 256,
        };
        let mut out = Vec::new();
        let _ = super::launch(
            m,
            &k.name,
            &dims,
            &params,
            &|_| Some(BASE),
            &mut mem,
            &mut out,
            20_000,
        );
    }
}

/// Literals that sit on the edges of integer widths.
const EXTREMES: [&str; 10] = [
    "0",
    "1",
    "31",
    "32",
    "63",
    "64",
    "4294967295",
    "4294967296",
    "9223372036854775808",
    "18446744073709551615",
];

const REAL: &str = include_str!("../../tests/data/kernels_sm75.ptx");
const DEBUG: &str = include_str!("../../tests/data/kernels_debug.ptx");

/// Deletes each `(at, len)` byte range from `src` in turn and runs whatever still parses.
fn cut_and_run(src: &str, cuts: &[(usize, usize)]) {
    let mut s = src.as_bytes().to_vec();
    for &(at, len) in cuts {
        let at = at.min(s.len());
        let end = (at + len).min(s.len());
        s.drain(at..end);
    }
    if let Ok(m) = Module::parse(&String::from_utf8_lossy(&s)) {
        run_all(&m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn mutated_programs_never_panic(cuts in proptest::collection::vec((0usize..REAL.len(), 1usize..30), 1..4)) {
        cut_and_run(REAL, &cuts);
    }

    #[test]
    fn programs_with_extreme_numbers_never_panic(
        picks in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..EXTREMES.len()), 1..6),
        which in 0usize..3,
    ) {
        let src = [REAL, DEBUG, include_str!("../../tests/data/more_sm75.ptx")][which];
        // Byte ranges of the decimal literals in the program.
        let mut spans = Vec::new();
        let b = src.as_bytes();
        let mut k = 0;
        while k < b.len() {
            if b[k].is_ascii_digit() && (k == 0 || !(b[k - 1].is_ascii_alphanumeric() || b[k - 1] == b'_' || b[k - 1] == b'%')) {
                let start = k;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                spans.push((start, k));
            } else {
                k += 1;
            }
        }
        let mut chosen: Vec<(usize, &str)> = picks
            .iter()
            .map(|(at, e)| (at.index(spans.len()), EXTREMES[*e]))
            .collect();
        chosen.sort_unstable();
        chosen.dedup_by_key(|c| c.0);
        let mut out = String::with_capacity(src.len() + 64);
        let mut last = 0;
        for (i, text) in chosen {
            let (s, e) = spans[i];
            out.push_str(&src[last..s]);
            out.push_str(text);
            last = e;
        }
        out.push_str(&src[last..]);
        if let Ok(m) = Module::parse(&out) {
            run_all(&m);
        }
    }

    #[test]
    fn mutated_debug_programs_never_panic(cuts in proptest::collection::vec((0usize..DEBUG.len(), 1usize..30), 1..4)) {
        cut_and_run(DEBUG, &cuts);
    }
}

#[test]
fn every_sample_kernel_runs_on_junk_parameters() {
    for src in [
        REAL,
        DEBUG,
        include_str!("../../tests/data/more_sm75.ptx"),
        include_str!("../../tests/data/extra_sm90.ptx"),
        include_str!("../../tests/data/cub_sm75.ptx"),
        include_str!("../../tests/data/cub2_sm75.ptx"),
        include_str!("../../tests/data/fptr_sm75.ptx"),
        include_str!("../../tests/data/spin_debug.ptx"),
    ] {
        run_all(&Module::parse(src).unwrap());
    }
}

#[test]
fn budget_stops_infinite_loops() {
    let src = ".version 9.0\n.target sm_75\n.address_size 64\n.entry k()\n{\n$L: bra $L;\n}\n";
    let m = Module::parse(src).unwrap();
    let dims = LaunchDims {
        grid: [1, 1, 1],
        block: [32, 1, 1],
        dynamic_shared: 0,
    };
    let e = super::launch(
        &m,
        "k",
        &dims,
        &[],
        &|_| None,
        &mut Small(vec![]),
        &mut Vec::new(),
        1000,
    )
    .unwrap_err();
    assert_eq!(e, crate::LaunchError::Trap { line: 6 });
}

#[test]
fn huge_declared_sizes_are_errors_not_overflows() {
    let decls = [
        ".shared .b32 big[4611686018427387904];",
        ".shared .b8 a[18446744073709551615];\n.shared .b8 b[2];",
        ".shared .align 4 .b8 a[18446744073709551614];\n.shared .align 8 .b8 b[1];",
        ".shared .b8 a[1099511627776];\n.shared .b8 b[1099511627776];",
        ".shared .align 3 .b8 a[4];",
        ".shared .align 9223372036854775808 .b8 a[4];",
        ".global .b64 g[4611686018427387904];",
        ".const .b64 c[2][2305843009213693952];",
    ];
    for decl in decls {
        for inner in [false, true] {
            let (outside, body) = if inner { ("", decl) } else { (decl, "") };
            let src = format!(
                ".version 9.0\n.target sm_75\n.address_size 64\n{outside}\n.entry k()\n{{\n{body}\nret;\n}}\n"
            );
            // Globals and constants inside a kernel are not valid PTX either way.
            assert!(Module::parse(&src).is_err(), "{src}");
        }
    }
}

/// Unbounded recursion, each frame holding a local array: the launch must end in an error that
/// names the stack overflow (frame arithmetic done without wrapping), never a panic or a hang.
#[test]
fn unbounded_recursion_is_a_stack_overflow_error() {
    let src = r#"
.version 8.0
.target sm_75
.address_size 64

.func rec()
{
	.local .align 4 .b8 buf[65536];
	call.uni rec, ();
	ret;
}

.visible .entry k()
{
	call.uni rec, ();
	ret;
}
"#;
    let m = Module::parse(src).unwrap();
    let mut mem = Small(vec![0; 64]);
    let dims = LaunchDims {
        grid: [1, 1, 1],
        block: [32, 1, 1],
        dynamic_shared: 0,
    };
    let err = super::launch(
        &m,
        "k",
        &dims,
        &[],
        &|_| Some(BASE),
        &mut mem,
        &mut Vec::new(),
        u64::MAX,
    )
    .unwrap_err();
    assert!(err.to_string().contains("stack overflow"), "{err}");
}
