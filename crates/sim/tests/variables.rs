//! Module variables: a `__constant__` table, a `__device__` counter and a `__device__` array,
//! read and written through the variable hooks (`__cudaRegisterVar`, `cudaMemcpyToSymbol`,
//! `cudaMemcpyFromSymbol`) and the checkpoint hook that lists them.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, from_bytes, to_bytes};
use crac_gpu::Stream;

const FIB: [i32; 16] = [
    1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597,
];

fn read_var(gpu: &Gpu, module: crac_gpu::ModuleId, name: &str) -> Vec<u8> {
    let (ptr, size) = gpu
        .dev()
        .register_variable(module, name)
        .expect("register variable");
    let mut bytes = vec![0u8; size as usize];
    gpu.dev()
        .memcpy_dtoh(&mut bytes, ptr, Stream::NULL)
        .expect("copy from symbol");
    bytes
}

#[test]
fn constant_table_has_its_initializer() {
    let gpu = Gpu::new();
    let module = gpu.load("variables");
    let (_, size) = gpu
        .dev()
        .register_variable(module, "coeffs")
        .expect("coeffs");
    assert_eq!(size, 64);
    assert_eq!(from_bytes::<i32>(&read_var(&gpu, module, "coeffs")), FIB);
    // Uninitialised __device__ variables start zeroed.
    assert_eq!(
        from_bytes::<i32>(&read_var(&gpu, module, "accum")),
        vec![0; 64]
    );
    assert_eq!(read_var(&gpu, module, "hits"), vec![0; 4]);
    assert_eq!(read_var(&gpu, module, "launches_seen"), vec![0; 8]);
}

#[test]
fn kernels_update_device_variables() {
    let gpu = Gpu::new();
    let module = gpu.load("variables");
    let apply = gpu.func(module, "apply_coeffs");
    // 2 blocks of 64: threads 64..127 do nothing but thread 0 still bumps launches_seen.
    for scale in [3, -5] {
        gpu.run(apply, &common::dims1(2, 64), &[scale.into()]);
    }
    let accum = from_bytes::<i32>(&read_var(&gpu, module, "accum"));
    let want: Vec<i32> = (0..64).map(|i| FIB[i % 16] * (3 - 5)).collect();
    assert_eq!(accum, want);
    assert_eq!(from_bytes::<u32>(&read_var(&gpu, module, "hits")), [128]);
    assert_eq!(
        from_bytes::<u64>(&read_var(&gpu, module, "launches_seen")),
        [2]
    );
}

#[test]
fn host_writes_to_symbols_are_seen_by_kernels() {
    let gpu = Gpu::new();
    let module = gpu.load("variables");
    let read_back = gpu.func(module, "read_back");
    // cudaMemcpyToSymbol on the constant table and on the device array.
    let new_coeffs: Vec<i32> = (0..16).map(|i| 1000 * i - 7).collect();
    let accum: Vec<i32> = (0..64).map(|i| i * i).collect();
    let (cptr, _) = gpu
        .dev()
        .register_variable(module, "coeffs")
        .expect("coeffs");
    let (aptr, _) = gpu.dev().register_variable(module, "accum").expect("accum");
    gpu.dev()
        .memcpy_htod_sync(cptr, &to_bytes(&new_coeffs), Stream::NULL)
        .expect("copy to constant symbol");
    gpu.dev()
        .memcpy_htod_sync(aptr, &to_bytes(&accum), Stream::NULL)
        .expect("copy to device symbol");
    let out = gpu.zeroed::<i32>(64);
    gpu.run(read_back, &common::dims1(1, 64), &[out.into()]);
    let got: Vec<i32> = gpu.download(out, 64);
    let want: Vec<i32> = (0..64).map(|i| accum[i] + new_coeffs[i % 16]).collect();
    assert_eq!(got, want);
}

#[test]
fn module_variables_lists_every_variable_with_its_place() {
    let gpu = Gpu::new();
    let module = gpu.load("variables");
    let mut vars = gpu.dev().module_variables().expect("module variables");
    vars.retain(|v| v.module == module);
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    let summary: Vec<(&str, u64, bool)> = vars
        .iter()
        .map(|v| (v.name.as_str(), v.size, v.constant))
        .collect();
    assert_eq!(
        summary,
        [
            ("accum", 256, false),
            ("coeffs", 64, true),
            ("hits", 4, false),
            ("launches_seen", 8, false)
        ]
    );
    for v in &vars {
        let (ptr, size) = gpu
            .dev()
            .register_variable(module, &v.name)
            .expect("lookup");
        assert_eq!((ptr, size), (v.ptr, v.size), "{}", v.name);
    }
    // No two variables overlap.
    let mut spans: Vec<(u64, u64)> = vars.iter().map(|v| (v.ptr.0, v.ptr.0 + v.size)).collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|p| p[0].1 <= p[1].0),
        "variables overlap: {spans:x?}"
    );
}

#[test]
fn unknown_symbol_is_invalid_symbol() {
    let gpu = Gpu::new();
    let module = gpu.load("variables");
    let err = gpu
        .dev()
        .register_variable(module, "no_such_var")
        .expect_err("must fail");
    assert_eq!(err.code(), 13, "{err}");
}

#[test]
fn two_modules_have_their_own_copies_of_same_named_variables() {
    // Two translation units may each define `accum`: every registered fat binary is its own
    // module with its own storage.
    let gpu = Gpu::new();
    let (a, b) = (gpu.load("variables"), gpu.load("variables"));
    let (pa, _) = gpu.dev().register_variable(a, "accum").expect("a");
    let (pb, _) = gpu.dev().register_variable(b, "accum").expect("b");
    assert_ne!(pa, pb);
    let apply_a = gpu.func(a, "apply_coeffs");
    gpu.run(apply_a, &common::dims1(1, 64), &[7i32.into()]);
    let want: Vec<i32> = (0..64).map(|i| FIB[i % 16] * 7).collect();
    assert_eq!(from_bytes::<i32>(&read_var(&gpu, a, "accum")), want);
    assert_eq!(from_bytes::<i32>(&read_var(&gpu, b, "accum")), vec![0; 64]);
    assert_eq!(from_bytes::<u64>(&read_var(&gpu, b, "launches_seen")), [0]);
    // Unloading one leaves the other's variables alive and listed.
    gpu.dev().unregister_module(a).expect("unregister");
    let listed: Vec<_> = gpu
        .dev()
        .module_variables()
        .expect("variables")
        .into_iter()
        .map(|v| v.module)
        .collect();
    assert!(!listed.contains(&a) && listed.contains(&b), "{listed:?}");
    assert_eq!(from_bytes::<i32>(&read_var(&gpu, b, "accum")), vec![0; 64]);
}
