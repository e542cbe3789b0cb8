//! Error paths: an out-of-bounds write gives `cudaErrorIllegalAddress` and poisons the context
//! (sticky); `trap` gives `cudaErrorLaunchFailure`; bad launch shapes give
//! `cudaErrorInvalidConfiguration` and leave the context usable.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, dims1};
use crac_gpu::{LaunchConfig, Stream};

const ILLEGAL_ADDRESS: i32 = 700;
const LAUNCH_FAILURE: i32 = 719;
const ASSERT: i32 = 710;
const INVALID_CONFIGURATION: i32 = 9;

/// Every ordinary call now fails with `code`; the checkpoint hooks still work.
fn assert_sticky(gpu: &Gpu, code: i32, survivor: crac_gpu::DevicePtr) {
    let dev = gpu.dev();
    let e = dev
        .device_synchronize()
        .expect_err("synchronize after a fault");
    assert_eq!(e.code(), code, "{e}");
    assert!(e.is_sticky());
    let e = dev.device_synchronize().expect_err("the fault is sticky");
    assert_eq!(e.code(), code, "second synchronize: {e}");
    let e = dev.malloc(256).expect_err("malloc after a fault");
    assert_eq!(e.code(), code, "malloc: {e}");
    let e = dev
        .memcpy_htod_sync(survivor, &[1, 2, 3, 4], Stream::NULL)
        .expect_err("memcpy");
    assert_eq!(e.code(), code, "memcpy: {e}");
    let mut buf = [0u8; 4];
    let e = dev
        .memcpy_dtoh(&mut buf, survivor, Stream::NULL)
        .expect_err("memcpy back");
    assert_eq!(e.code(), code, "memcpy back: {e}");
    // Checkpoint hooks keep working so a failed program can still be inspected.
    let allocs = dev.allocations().expect("allocations after a fault");
    assert!(
        allocs.iter().any(|a| a.ptr == survivor),
        "live allocation listed"
    );
    dev.read_device(survivor, &mut buf)
        .expect("read_device after a fault");
}

#[test]
fn out_of_bounds_write_is_illegal_address_and_sticky() {
    let gpu = Gpu::new();
    let module = gpu.load("errors");
    let oob = gpu.func(module, "write_oob");
    let touch = gpu.func(module, "touch");
    let p = gpu.zeroed::<i32>(16);
    // In bounds first: element 15 is the last one and must work.
    gpu.run(oob, &dims1(1, 32), &[p.into(), 15i64.into()]);
    assert_eq!(gpu.download::<i32>(p, 16)[15], 42);
    // 1 GiB past the end of a 64-byte allocation: nothing is mapped there.
    let launched = gpu.launch(oob, &dims1(1, 32), &[p.into(), (1i64 << 28).into()]);
    // Launches are asynchronous: the fault surfaces at the next synchronising call.
    assert!(
        launched.is_ok(),
        "the launch itself must succeed: {launched:?}"
    );
    assert_sticky(&gpu, ILLEGAL_ADDRESS, p);
    let e = gpu
        .launch(touch, &dims1(1, 16), &[p.into()])
        .expect_err("launch after a fault");
    assert_eq!(e.code(), ILLEGAL_ADDRESS, "{e}");
}

#[test]
fn negative_offset_write_is_illegal_address() {
    let gpu = Gpu::new();
    let oob = gpu.kernel("errors", "write_oob");
    let p = gpu.zeroed::<i32>(16);
    gpu.launch(oob, &dims1(1, 32), &[p.into(), (-4096i64).into()])
        .expect("launch");
    let e = gpu.dev().device_synchronize().expect_err("fault");
    assert_eq!(e.code(), ILLEGAL_ADDRESS, "{e}");
}

#[test]
fn out_of_bounds_read_is_illegal_address() {
    let gpu = Gpu::new();
    let module = gpu.load("errors");
    let read = gpu.func(module, "read_oob");
    let p = gpu.upload(&[5i32, 6, 7, 8]);
    // In bounds: p[0] = p[3].
    gpu.run(read, &dims1(1, 1), &[p.into(), 3i64.into()]);
    assert_eq!(gpu.download::<i32>(p, 4), [8, 6, 7, 8]);
    // 1 GiB away: unmapped on a real device too (the sim also faults just past the requested
    // size, which a real GPU would not notice, so that is not what this test relies on).
    gpu.launch(read, &dims1(1, 1), &[p.into(), (1i64 << 28).into()])
        .expect("launch");
    assert_sticky(&gpu, ILLEGAL_ADDRESS, p);
}

#[test]
fn trap_is_launch_failure_and_sticky() {
    let gpu = Gpu::new();
    let f = gpu.kernel("errors", "do_trap");
    let p = gpu.zeroed::<i32>(32);
    gpu.launch(f, &dims1(1, 32), &[p.into()]).expect("launch");
    assert_sticky(&gpu, LAUNCH_FAILURE, p);
}

#[test]
fn failed_device_assert_is_cuda_error_assert_and_sticky() {
    let gpu = Gpu::new();
    let f = gpu.kernel("errors", "assert_below");
    let p = gpu.zeroed::<i32>(32);
    gpu.run(f, &dims1(1, 32), &[p.into(), 32i32.into()]);
    gpu.launch(f, &dims1(1, 32), &[p.into(), 8i32.into()])
        .expect("launch");
    assert_sticky(&gpu, ASSERT, p);
}

#[test]
fn bad_launch_shapes_are_invalid_configuration_and_not_sticky() {
    let gpu = Gpu::new();
    let f = gpu.kernel("errors", "touch");
    let p = gpu.zeroed::<i32>(4096);
    let shape = |grid: [u32; 3], block: [u32; 3]| LaunchConfig {
        grid,
        block,
        dynamic_shared: 0,
        stream: Stream::NULL,
    };
    let bad = [
        shape([1, 1, 1], [2048, 1, 1]),  // over 1024 threads
        shape([1, 1, 1], [1024, 2, 1]),  // 2048 threads in two dimensions
        shape([1, 1, 1], [1, 1, 65]),    // z over 64
        shape([0, 1, 1], [32, 1, 1]),    // empty grid
        shape([1, 1, 1], [0, 1, 1]),     // empty block
        shape([1, 65536, 1], [1, 1, 1]), // grid y over 65535
    ];
    for cfg in bad {
        let e = gpu
            .launch(f, &cfg, &[p.into()])
            .expect_err("bad shape must be refused");
        assert_eq!(e.code(), INVALID_CONFIGURATION, "{cfg:?}: {e}");
        assert!(!e.is_sticky());
    }
    // Nothing ran, and the context is still good: a 1024-thread block works.
    assert_eq!(gpu.download::<i32>(p, 4096), vec![0; 4096]);
    gpu.run(f, &shape([4, 1, 1], [1024, 1, 1]), &[p.into()]);
    assert_eq!(gpu.download::<i32>(p, 4096), vec![1; 4096]);
}

#[test]
fn unknown_kernel_is_invalid_device_function() {
    let gpu = Gpu::new();
    let module = gpu.load("errors");
    let e = gpu
        .dev()
        .register_function(module, "no_such_kernel")
        .expect_err("unknown kernel");
    assert_eq!(e.code(), 98, "{e}");
}

#[test]
fn short_parameter_buffer_is_refused() {
    let gpu = Gpu::new();
    let f = gpu.kernel("errors", "write_oob");
    // write_oob takes a pointer and a 64-bit offset: 16 bytes.
    let e = gpu
        .dev()
        .launch(f, &dims1(1, 1), &[0u8; 8])
        .expect_err("short params");
    assert!(!e.is_sticky(), "{e}");
    gpu.dev().device_synchronize().expect("context still good");
}

#[test]
fn out_of_memory_is_memory_allocation_and_not_sticky() {
    let gpu = Gpu::new();
    let dev = gpu.dev();
    let (free, total) = dev.mem_get_info().expect("memory info");
    assert!(free <= total);
    let e = dev.malloc(total + 1).expect_err("more than the device has");
    assert_eq!(e.code(), 2, "{e}");
    assert!(!e.is_sticky());
    // Still usable, and the free memory shrinks by what a real allocation takes.
    let p = dev.malloc(1 << 20).expect("a modest allocation");
    let (free_after, _) = dev.mem_get_info().expect("memory info");
    assert!(
        free_after <= free - (1 << 20),
        "free {free} -> {free_after}"
    );
    dev.free(p).expect("free");
    dev.device_synchronize().expect("context still good");
}
