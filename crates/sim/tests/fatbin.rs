//! Fat-binary forms nvcc produces: compressed PTX (the default, covered by every other test),
//! plain PTX (`--no-compress`), cubin only (must be refused with a clear "no PTX" error), and
//! garbage.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{FatbinKind, Gpu, blocks_for, dims1, fatbin};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn nvcc_compresses_ptx_by_default_and_not_with_no_compress() {
    // The premise of the next test: only the --no-compress build carries the PTX as text.
    let compressed = fatbin("vector_add", FatbinKind::Ptx);
    let plain = fatbin("vector_add", FatbinKind::PtxUncompressed);
    assert_eq!(&compressed[..4], &0xBA55_ED50u32.to_le_bytes());
    assert_eq!(&plain[..4], &0xBA55_ED50u32.to_le_bytes());
    assert!(!contains(&compressed, b".entry vector_add("));
    assert!(contains(&plain, b".entry vector_add("));
}

#[test]
fn uncompressed_ptx_fatbin_runs() {
    let gpu = Gpu::new();
    let module = gpu.load_kind("vector_add", FatbinKind::PtxUncompressed);
    let f = gpu.func(module, "vector_add_u32");
    let n = 300;
    let a: Vec<u32> = (0..n).collect();
    let b: Vec<u32> = (0..n).map(|i| i * 1000).collect();
    let (da, db, dc) = (
        gpu.upload(&a),
        gpu.upload(&b),
        gpu.zeroed::<u32>(n as usize),
    );
    gpu.run(
        f,
        &dims1(blocks_for(n as usize, 128), 128),
        &[da.into(), db.into(), dc.into(), n.into()],
    );
    let want: Vec<u32> = (0..n).map(|i| i * 1001).collect();
    assert_eq!(gpu.download::<u32>(dc, n as usize), want);
}

#[test]
fn cubin_only_fatbin_is_refused_with_no_ptx_error() {
    let gpu = Gpu::new();
    let image = fatbin("vector_add", FatbinKind::CubinOnly);
    let e = gpu
        .dev()
        .register_fatbin(&image)
        .expect_err("a cubin-only fat binary cannot run");
    // cudaErrorNoKernelImageForDevice, and the message says why.
    assert_eq!(e.code(), 209, "{e}");
    assert!(
        e.to_string().contains("PTX"),
        "message should say there is no PTX: {e}"
    );
}

#[test]
fn garbage_is_invalid_kernel_image() {
    let gpu = Gpu::new();
    let mut image = fatbin("vector_add", FatbinKind::Ptx);
    image[0] ^= 0xff; // bad magic
    let e = gpu.dev().register_fatbin(&image).expect_err("bad magic");
    assert_eq!(e.code(), 200, "{e}");
    let e = gpu
        .dev()
        .register_fatbin(&[0x50, 0xed, 0x55, 0xba])
        .expect_err("truncated");
    assert_eq!(e.code(), 200, "{e}");
}

#[test]
fn two_modules_define_the_same_kernel_name_independently() {
    // Two registrations are two modules; each kernel handle runs its own module's code.
    let gpu = Gpu::new();
    let m1 = gpu.load("vector_add");
    let m2 = gpu.load_kind("vector_add", FatbinKind::PtxUncompressed);
    assert_ne!(m1, m2);
    let f1 = gpu.func(m1, "vector_add_u32");
    let f2 = gpu.func(m2, "vector_add_u32");
    let a = gpu.upload(&[1u32, 2, 3, 4]);
    let c = gpu.zeroed::<u32>(4);
    gpu.run(
        f1,
        &dims1(1, 4),
        &[a.into(), a.into(), c.into(), 4u32.into()],
    );
    assert_eq!(gpu.download::<u32>(c, 4), [2, 4, 6, 8]);
    gpu.dev().unregister_module(m1).expect("unregister");
    gpu.run(
        f2,
        &dims1(1, 4),
        &[c.into(), a.into(), c.into(), 4u32.into()],
    );
    assert_eq!(gpu.download::<u32>(c, 4), [3, 6, 9, 12]);
    // The unloaded module's kernel is gone.
    let params = gpu.pack(f2, &[a.into(), a.into(), c.into(), 4u32.into()]);
    let e = gpu.dev().launch(f1, &dims1(1, 4), &params);
    assert!(
        e.is_err(),
        "kernel of an unregistered module still launches"
    );
    assert!(!e.expect_err("checked").is_sticky());
}
