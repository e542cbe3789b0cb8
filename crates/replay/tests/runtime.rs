//! The lower-half runtime driven through its call entry, as the shim drives it, over the sim
//! device with fat binaries nvcc builds from `tests/cuda/kernels/`.
#![allow(clippy::cast_possible_truncation, reason = "small test sizes")]

mod common;

use common::nvcc::{FatbinKind, fatbin};
use common::{Program, f32s, from_f32s};
use crac_abi::Op;
use crac_replay::handles::Kind;

const INVALID_VALUE: u32 = 1;
const INVALID_CONFIGURATION: u32 = 9;
const INVALID_SYMBOL: u32 = 13;
const INVALID_MEMCPY_DIRECTION: u32 = 21;
const INVALID_DEVICE_FUNCTION: u32 = 98;
const INVALID_DEVICE: u32 = 101;
const INVALID_RESOURCE_HANDLE: u32 = 400;
const NOT_READY: u32 = 600;
const NOT_SUPPORTED: u32 = 801;

#[test]
fn registration_launch_and_copies_round_trip() {
    let p = Program::new();
    let h = p.register_fatbin(&fatbin("vector_add", FatbinKind::Ptx));
    let stub = p.register_kernel(h, "vector_add");
    p.ok(Op::RegisterFatBinaryEnd, &[h]);
    let n = 1000u32;
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| 0.5 * i as f32).collect();
    let bytes = u64::from(n) * 4;
    let (da, db, dc) = (p.malloc(bytes), p.malloc(bytes), p.malloc(bytes));
    assert!(crac_gpu::Window::DEFAULT.contains(da, bytes));
    let (ha, hb) = (p.put(&f32s(&a)), p.put(&f32s(&b)));
    p.ok(Op::Memcpy, &[da, ha, bytes, 1]);
    // cudaMemcpyDefault finds the direction from the pointers.
    p.ok(Op::Memcpy, &[db, hb, bytes, 4]);
    let err = p.launch(
        stub,
        n.div_ceil(128),
        128,
        &[
            &da.to_le_bytes(),
            &db.to_le_bytes(),
            &dc.to_le_bytes(),
            &n.to_le_bytes(),
        ],
        0,
    );
    assert_eq!(err, 0);
    let hc = p.alloc(bytes);
    p.ok(Op::Memcpy, &[hc, dc, bytes, 2]);
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(from_f32s(&p.get(hc, bytes as usize)), want);
    // A device-to-device copy and a memset, then back.
    p.ok(Op::Memcpy, &[da, dc, bytes, 3]);
    p.ok(Op::Memset, &[db, 0, bytes]);
    let out = p.alloc(bytes);
    p.ok(Op::Memcpy, &[out, da, bytes, 2]);
    assert_eq!(from_f32s(&p.get(out, bytes as usize)), want);
    p.ok(Op::Memcpy, &[out, db, bytes, 2]);
    assert!(p.get(out, bytes as usize).iter().all(|b| *b == 0));
    p.ok(Op::Free, &[da]);
    p.ok(Op::UnregisterFatBinary, &[h]);
    assert_eq!(p.launch(stub, 1, 1, &[], 0), INVALID_DEVICE_FUNCTION);
}

#[test]
fn symbols_are_named_by_their_host_shadow() {
    let p = Program::new();
    let h = p.register_fatbin(&fatbin("variables", FatbinKind::Ptx));
    let apply = p.register_kernel(h, "apply_coeffs");
    let read_back = p.register_kernel(h, "read_back");
    let coeffs = p.register_var(h, "coeffs", 64, true);
    let accum = p.register_var(h, "accum", 256, false);
    p.ok(Op::RegisterFatBinaryEnd, &[h]);
    // Modules load on first use, as CUDA's do by default.
    assert_eq!(p.rt.fat_binaries().len(), 1);
    assert!(!p.rt.fat_binaries()[0].2, "not loaded before first use");
    assert!(p.rt.backend().module_variables().expect("vars").is_empty());
    // Replace coeffs with 0..16 through cudaMemcpyToSymbol (offset 0) and its last four
    // entries through an offset copy.
    let table: Vec<u8> = (0..16i32).flat_map(|i| i.to_le_bytes()).collect();
    let src = p.put(&table);
    p.ok(Op::MemcpyToSymbol, &[coeffs, src, 64, 0, 1]);
    assert!(p.rt.fat_binaries()[0].2, "a symbol copy loads the module");
    let hundred = p.put(&100i32.to_le_bytes());
    p.ok(Op::MemcpyToSymbol, &[coeffs, hundred, 4, 60, 1]);
    assert_eq!(p.launch(apply, 1, 64, &[&2i32.to_le_bytes()], 0), 0);
    let out = p.malloc(256);
    assert_eq!(p.launch(read_back, 1, 64, &[&out.to_le_bytes()], 0), 0);
    let host = p.alloc(256);
    p.ok(Op::Memcpy, &[host, out, 256, 2]);
    let got: Vec<i32> = p
        .get(host, 256)
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    let coef = |i: usize| if i % 16 == 15 { 100 } else { (i % 16) as i32 };
    let want: Vec<i32> = (0..64).map(|i| 3 * coef(i)).collect();
    assert_eq!(got, want);
    // cudaMemcpyFromSymbol of the __device__ array, its address and size.
    let acc = p.alloc(256);
    p.ok(Op::MemcpyFromSymbol, &[acc, accum, 256, 0, 2]);
    assert_eq!(
        i32::from_le_bytes(p.get(acc + 4, 4).try_into().expect("4")),
        2
    );
    let addr = p.out_u64(Op::GetSymbolAddress, &[accum]);
    assert!(crac_gpu::Window::DEFAULT.contains(addr, 256));
    assert_eq!(p.out_u64(Op::GetSymbolSize, &[accum]), 256);
    // The asynchronous forms on a stream, device to device through a symbol and back: the
    // first four coefficients, at an offset, into accum's second word.
    let s = p.out_u64(Op::StreamCreate, &[]);
    let dev = p.malloc(16);
    p.ok(Op::MemcpyFromSymbolAsync, &[dev, coeffs, 16, 0, 3, s]);
    p.ok(Op::MemcpyToSymbolAsync, &[accum, dev, 16, 4, 3, s]);
    p.ok(Op::StreamSynchronize, &[s]);
    p.ok(Op::MemcpyFromSymbol, &[acc, accum, 20, 0, 4]);
    let words: Vec<i32> = p
        .get(acc, 20)
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    assert_eq!(words[1..], [0, 1, 2, 3]);
    // Past the end, an unknown symbol, the wrong direction, an unknown stream.
    #[rustfmt::skip]
    let failures: [(Op, &[u64], u32); 6] = [
        (Op::MemcpyToSymbol, &[coeffs, src, 64, 4, 1], INVALID_VALUE),
        (Op::MemcpyToSymbol, &[src, src, 4, 0, 1], INVALID_SYMBOL),
        (Op::MemcpyToSymbol, &[coeffs, src, 4, 0, 2], INVALID_MEMCPY_DIRECTION),
        (Op::MemcpyFromSymbol, &[acc, accum, 4, 0, 1], INVALID_MEMCPY_DIRECTION),
        (Op::MemcpyFromSymbol, &[acc, accum, 8, 252, 2], INVALID_VALUE),
        (Op::MemcpyToSymbolAsync, &[accum, dev, 4, 0, 3, 0xbad], INVALID_RESOURCE_HANDLE),
    ];
    for (op, args, code) in failures {
        assert_eq!(p.call(op, args), code, "{op:?} {args:x?}");
    }
}

#[test]
fn error_paths_return_cuda_codes() {
    let p = Program::new();
    let h = p.register_fatbin(&fatbin("vector_add", FatbinKind::Ptx));
    let stub = p.register_kernel(h, "vector_add");
    assert_eq!(p.rt.call(10_000, &[0; 16], &p.mem), NOT_SUPPORTED);
    // Unregistered stub, bad block shape.
    assert_eq!(p.launch(0x1234, 1, 1, &[], 0), INVALID_DEVICE_FUNCTION);
    let d = p.malloc(64);
    let n = 16u32.to_le_bytes();
    let ptr = d.to_le_bytes();
    assert_eq!(
        p.launch(stub, 1, 2048, &[&ptr, &ptr, &ptr, &n], 0),
        INVALID_CONFIGURATION
    );
    // Out-of-range copy, use after free, a bad kind, a null out-pointer.
    let host = p.alloc(128);
    assert_eq!(p.call(Op::Memcpy, &[d, host, 128, 1]), INVALID_VALUE);
    p.ok(Op::Free, &[d]);
    assert_eq!(p.call(Op::Memcpy, &[host, d, 64, 2]), INVALID_VALUE);
    assert_eq!(p.call(Op::Free, &[d]), INVALID_VALUE);
    assert_eq!(
        p.call(Op::Memcpy, &[host, host, 8, 9]),
        INVALID_MEMCPY_DIRECTION
    );
    assert_eq!(p.call(Op::Malloc, &[0, 64]), INVALID_VALUE);
    let (ptr, pitch) = (p.alloc(8), p.alloc(8));
    assert_eq!(
        p.call(Op::MallocPitch, &[ptr, pitch, u64::MAX, 1]),
        INVALID_VALUE,
        "a row width that overflows the pitch rounding"
    );
    assert_eq!(p.call(Op::SetDevice, &[1]), INVALID_DEVICE);
    p.ok(Op::SetDevice, &[0]);
    // A host pointer outside program memory is refused, not dereferenced.
    assert_eq!(p.call(Op::Memcpy, &[d, 0x10, 8, 1]), INVALID_VALUE);
}

#[test]
fn a_fat_binary_without_ptx_fails_at_launch_not_at_registration() {
    let p = Program::new();
    let h = p.register_fatbin(&fatbin("vector_add", FatbinKind::CubinOnly));
    let stub = p.register_kernel(h, "vector_add");
    p.ok(Op::RegisterFatBinaryEnd, &[h]);
    let err = p.call(Op::InitModule, &[h]);
    assert_ne!(err, 0, "__cudaInitModule reports the module status");
    let launch = p.launch(stub, 1, 1, &[&[0; 8], &[0; 8], &[0; 8], &[0; 4]], 0);
    assert_eq!(launch, err);
    assert_eq!(
        p.call(Op::RegisterFatBinaryEnd, &[0x1234]),
        INVALID_RESOURCE_HANDLE
    );
}

#[test]
fn streams_and_events_are_virtual_handles() {
    let p = Program::new();
    let s = p.out_u64(Op::StreamCreateWithPriority, &[1, (-3i64) as u64]);
    assert!(s > 2, "never a predefined stream value");
    let flags = p.alloc(4);
    p.ok(Op::StreamGetFlags, &[s, flags]);
    assert_eq!(p.i32_at(flags), 1);
    let prio = p.alloc(4);
    p.ok(Op::StreamGetPriority, &[s, prio]);
    assert_eq!(p.i32_at(prio), -3);
    let (e0, e1) = (
        p.out_u64(Op::EventCreate, &[]),
        p.out_u64(Op::EventCreate, &[]),
    );
    assert_ne!(e0, s);
    p.ok(Op::EventRecord, &[e0, s]);
    let d = p.malloc(1 << 16);
    p.ok(Op::MemsetAsync, &[d, 7, 1 << 16, s]);
    p.ok(Op::EventRecord, &[e1, s]);
    p.ok(Op::StreamWaitEvent, &[0, e1, 0]);
    p.ok(Op::EventSynchronize, &[e1]);
    p.ok(Op::EventQuery, &[e1]);
    let ms = p.alloc(4);
    p.ok(Op::EventElapsedTime, &[ms, e0, e1]);
    assert!(f32::from_le_bytes(p.get(ms, 4).try_into().expect("4")) >= 0.0);
    // Predefined streams need no handle; destroyed ones are gone.
    for predefined in [0, 1, 2] {
        p.ok(Op::StreamSynchronize, &[predefined]);
        assert_eq!(
            p.call(Op::StreamDestroy, &[predefined]),
            INVALID_RESOURCE_HANDLE
        );
    }
    p.ok(Op::StreamDestroy, &[s]);
    assert_eq!(p.call(Op::StreamSynchronize, &[s]), INVALID_RESOURCE_HANDLE);
    // An event handle is not a stream handle.
    assert_eq!(
        p.call(Op::StreamSynchronize, &[e0]),
        INVALID_RESOURCE_HANDLE
    );
    p.ok(Op::EventDestroy, &[e0]);
    assert_eq!(p.call(Op::EventQuery, &[e0]), INVALID_RESOURCE_HANDLE);
    assert_eq!(p.rt.stream_handles(), vec![]);
    assert_eq!(p.rt.event_handles().len(), 1, "e1 is still live");
    // cudaDeviceReset drops every stream and event.
    let s2 = p.out_u64(Op::StreamCreate, &[]);
    p.ok(Op::DeviceReset, &[]);
    assert_eq!(p.call(Op::StreamQuery, &[s2]), INVALID_RESOURCE_HANDLE);
    assert_eq!(p.call(Op::EventQuery, &[e1]), INVALID_RESOURCE_HANDLE);
}

#[test]
fn host_callbacks_hold_their_stream_until_done() {
    let p = Program::new();
    let s = p.out_u64(Op::StreamCreate, &[]);
    let d = p.malloc(4096);
    p.ok(Op::LaunchHostFunc, &[s, 0xf00, 0xda7a]);
    p.ok(Op::MemsetAsync, &[d, 1, 4096, s]);
    // Until the callback is reported done, the memset behind it cannot have run.
    let got = p.next_callback();
    let word = |i: usize| u64::from_le_bytes(got[i * 8..i * 8 + 8].try_into().expect("8"));
    assert_eq!((word(0), word(1), word(2)), (0xf00, 0xda7a, s));
    assert_eq!(p.call(Op::StreamQuery, &[s]), NOT_READY);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(p.call(Op::StreamQuery, &[s]), NOT_READY);
    p.ok(Op::HostCallbackDone, &[word(3)]);
    p.ok(Op::StreamSynchronize, &[s]);
    assert_eq!(p.call(Op::HostCallbackDone, &[word(3)]), INVALID_VALUE);
    // A stream callback needs flags 0 and a function.
    assert_eq!(
        p.call(Op::StreamAddCallback, &[s, 0xf00, 0, 1]),
        INVALID_VALUE
    );
    assert_eq!(p.call(Op::LaunchHostFunc, &[s, 0, 0]), INVALID_VALUE);
}

#[test]
fn per_thread_default_streams_work_from_many_threads() {
    let p = Program::new();
    let h = p.register_fatbin(&fatbin("vector_add", FatbinKind::Ptx));
    let stub = p.register_kernel(h, "vector_add_u32");
    std::thread::scope(|scope| {
        for t in 0..4u32 {
            let p = &p;
            scope.spawn(move || {
                let n = 256u32;
                let bytes = u64::from(n) * 4;
                let v: Vec<u8> = (0..n).flat_map(|i| (i * t).to_le_bytes()).collect();
                let (a, c) = (p.malloc(bytes), p.malloc(bytes));
                let src = p.put(&v);
                p.ok(Op::MemcpyAsync, &[a, src, bytes, 1, 2]);
                let args: [&[u8]; 4] = [
                    &a.to_le_bytes(),
                    &a.to_le_bytes(),
                    &c.to_le_bytes(),
                    &n.to_le_bytes(),
                ];
                assert_eq!(p.launch(stub, 2, 128, &args, 2), 0);
                let out = p.alloc(bytes);
                p.ok(Op::MemcpyAsync, &[out, c, bytes, 2, 2]);
                p.ok(Op::StreamSynchronize, &[2]);
                let want: Vec<u8> = (0..n).flat_map(|i| (2 * i * t).to_le_bytes()).collect();
                assert_eq!(p.get(out, bytes as usize), want);
            });
        }
    });
}

#[test]
fn pinned_memory_is_registered_and_reported() {
    let p = Program::new();
    let host = p.alloc(8192);
    p.ok(Op::PinnedAlloc, &[host, 8192, 0]);
    assert_eq!(p.call(Op::HostRegister, &[host + 4096, 16, 0]), 712);
    let attrs = p.alloc(24);
    p.ok(Op::PointerGetAttributes, &[attrs, host + 100]);
    assert_eq!(p.i32_at(attrs), 1, "cudaMemoryTypeHost");
    let d = p.malloc(16);
    p.ok(Op::PointerGetAttributes, &[attrs, d]);
    assert_eq!(p.i32_at(attrs), 2, "cudaMemoryTypeDevice");
    assert_eq!(p.u64_at(attrs + 8), d);
    let other = p.alloc(16);
    p.ok(Op::PointerGetAttributes, &[attrs, other]);
    assert_eq!((p.i32_at(attrs), p.i32_at(attrs + 4)), (0, -2));
    assert_eq!(p.rt.pinned_ranges(), vec![(host, 8192, true)]);
    let size = p.alloc(8);
    assert_eq!(
        p.call(Op::HostUnregister, &[host]),
        713,
        "not cudaHostRegister'ed"
    );
    p.ok(Op::PinnedFree, &[host, size]);
    assert_eq!(p.u64_at(size), 8192);
    assert_eq!(p.call(Op::PinnedFree, &[host, size]), INVALID_VALUE);
    p.ok(Op::HostRegister, &[other, 16, 0]);
    p.ok(Op::HostUnregister, &[other]);
}

#[test]
fn device_queries_attributes_and_occupancy() {
    let p = Program::new();
    let count = p.alloc(4);
    p.ok(Op::GetDeviceCount, &[count]);
    assert_eq!(p.i32_at(count), 1);
    let props = p.alloc(std::mem::size_of::<crac_abi::DeviceProps>() as u64);
    p.ok(Op::GetDeviceProperties, &[props, 0]);
    assert!(p.get(props, 9).starts_with(b"crac sim"));
    let v = p.alloc(4);
    for (attr, want) in [(1, 1024), (10, 32), (75, 8), (76, 0), (16, 4)] {
        p.ok(Op::DeviceGetAttribute, &[v, attr, 0]);
        assert_eq!(p.i32_at(v), want, "attribute {attr}");
    }
    assert_eq!(p.call(Op::DeviceGetAttribute, &[v, 9999, 0]), INVALID_VALUE);
    assert_eq!(p.call(Op::DeviceGetAttribute, &[v, 1, 3]), INVALID_DEVICE);
    p.ok(Op::DriverGetVersion, &[v]);
    assert!(p.i32_at(v) >= 12000);
    let lim = p.alloc(8);
    p.ok(Op::DeviceSetLimit, &[2, 64 << 20]);
    p.ok(Op::DeviceGetLimit, &[lim, 2]);
    assert_eq!(p.u64_at(lim), 64 << 20);

    let h = p.register_fatbin(&fatbin("vector_add", FatbinKind::Ptx));
    let stub = p.register_kernel(h, "vector_add");
    let attrs = p.alloc(std::mem::size_of::<crac_abi::FuncAttributes>() as u64);
    p.ok(Op::FuncGetAttributes, &[attrs, stub]);
    let max_threads = i32::from_le_bytes(
        p.get(
            attrs + std::mem::offset_of!(crac_abi::FuncAttributes, max_threads_per_block) as u64,
            4,
        )
        .try_into()
        .expect("4"),
    );
    assert_eq!(max_threads, 1024);
    // 2048 resident threads per SM: 16 blocks of 128, 2 of 1024, none of 2048.
    for (block, want) in [(128, 16), (1024, 2), (2048, 0), (32, 32)] {
        p.ok(
            Op::OccupancyMaxActiveBlocksPerMultiprocessor,
            &[v, stub, block, 0],
        );
        assert_eq!(p.i32_at(v), want, "block {block}");
    }
    // Shared memory limits too: 164 KiB per SM, 48 KiB asked per block → 3 blocks.
    p.ok(Op::FuncSetAttribute, &[stub, 8, 64 << 10]);
    p.ok(
        Op::OccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
        &[v, stub, 128, 48 << 10, 0],
    );
    assert_eq!(p.i32_at(v), 3);
    assert_eq!(
        p.call(
            Op::OccupancyMaxActiveBlocksPerMultiprocessor,
            &[v, stub, 0, 0]
        ),
        INVALID_VALUE
    );
    assert_eq!(
        p.call(Op::FuncGetAttributes, &[attrs, 0x99]),
        INVALID_DEVICE_FUNCTION
    );
}

#[test]
fn device_printf_waits_for_the_shim_once_it_asks() {
    let printf = std::sync::Arc::new(crac_replay::DevicePrintf::default());
    let p = Program::with_printf(&printf);
    let h = p.register_fatbin(&fatbin("printf", FatbinKind::Ptx));
    let say = p.register_kernel(h, "say");
    let buf = p.alloc(4096);
    let len = p.alloc(8);
    // The shim's first take switches output from fd 1 to the buffer.
    p.ok(Op::PrintfTake, &[buf, 0, len]);
    assert_eq!(p.u64_at(len), 0);
    let tag = p.malloc(8);
    let text = p.put(b"tag\0");
    p.ok(Op::Memcpy, &[tag, text, 4, 1]);
    let launch = p.launch(
        say,
        1,
        32,
        &[
            &2i32.to_le_bytes(),
            &1.5f32.to_le_bytes(),
            &tag.to_le_bytes(),
        ],
        0,
    );
    assert_eq!(launch, 0);
    p.ok(Op::DeviceSynchronize, &[]);
    p.ok(Op::PrintfTake, &[buf, 4096, len]);
    let out = String::from_utf8(p.get(buf, p.u64_at(len) as usize)).expect("utf-8");
    assert!(
        out.starts_with("block 0 thread 0: 0.000000 tag 0 4000000000 0 even 100%\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    p.ok(Op::PrintfTake, &[buf, 4096, len]);
    assert_eq!(p.u64_at(len), 0, "taken once");
}

#[test]
fn a_bad_out_pointer_creates_nothing_and_loses_no_callback() {
    let p = Program::new();
    let bad = 0x10;
    assert_eq!(p.call(Op::Malloc, &[bad, 4096]), INVALID_VALUE);
    assert_eq!(
        p.call(Op::MallocPitch, &[bad, p.alloc(8), 100, 4]),
        INVALID_VALUE
    );
    assert_eq!(
        p.call(Op::MallocPitch, &[p.alloc(8), bad, 100, 4]),
        INVALID_VALUE
    );
    assert!(
        p.rt.backend()
            .allocations()
            .expect("allocations")
            .is_empty(),
        "no allocation was made for a pointer the program cannot receive"
    );
    assert_eq!(p.call(Op::StreamCreate, &[bad]), INVALID_VALUE);
    assert_eq!(p.call(Op::EventCreate, &[bad]), INVALID_VALUE);
    // The next handles handed out are the first of their kinds: none was made and lost.
    let s = p.out_u64(Op::StreamCreate, &[]);
    let e = p.out_u64(Op::EventCreate, &[]);
    let mut fresh = crac_replay::handles::VirtualTable::<u64>::new(Kind::Stream);
    assert_eq!(s, fresh.insert(0));
    let mut fresh = crac_replay::handles::VirtualTable::<u64>::new(Kind::Event);
    assert_eq!(e, fresh.insert(0));
    // A callback is not taken for a record the shim cannot receive; it is still there after.
    p.ok(Op::LaunchHostFunc, &[s, 0xf00, 0]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(p.call(Op::HostCallbackNext, &[bad]), INVALID_VALUE);
    let got = p.next_callback();
    assert_eq!(u64::from_le_bytes(got[..8].try_into().expect("8")), 0xf00);
    p.ok(
        Op::HostCallbackDone,
        &[u64::from_le_bytes(got[24..32].try_into().expect("8"))],
    );
    p.ok(Op::StreamSynchronize, &[s]);
}
