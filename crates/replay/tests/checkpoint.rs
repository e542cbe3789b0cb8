//! Checkpoint and restart of the lower-half runtime over the sim device: state built through
//! the call entry as the shim builds it, a snapshot and the device bytes saved, a restore into
//! a NEW sim device with the same window, the bytes written back — then the program's handles,
//! addresses, launches and symbol copies must behave as before.
#![allow(clippy::cast_possible_truncation, reason = "small test sizes")]

mod common;

use common::nvcc::{FatbinKind, fatbin};
use common::{Program, Saved};
use crac_abi::Op;
use crac_gpu::{DeviceBackend, DevicePtr};
use crac_replay::{ReplayError, describe};

const INVALID_RESOURCE_HANDLE: u32 = 400;

fn ints(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
        .collect()
}

/// The `variables` module's kernels and variables, registered as nvcc's constructor does.
struct Vars {
    handle: u64,
    apply: u64,
    read_back: u64,
    coeffs: u64,
    accum: u64,
    hits: u64,
}

fn register_vars(p: &Program) -> Vars {
    let handle = p.register_fatbin(&fatbin("variables", FatbinKind::Ptx));
    let v = Vars {
        handle,
        apply: p.register_kernel(handle, "apply_coeffs"),
        read_back: p.register_kernel(handle, "read_back"),
        coeffs: p.register_var(handle, "coeffs", 64, true),
        accum: p.register_var(handle, "accum", 256, false),
        hits: p.register_var(handle, "hits", 4, false),
    };
    p.register_var(handle, "launches_seen", 8, false);
    p.ok(Op::RegisterFatBinaryEnd, &[handle]);
    v
}

/// `out[i] = accum[i] + coeffs[i % 16]` read back through a device buffer.
fn read_back(p: &Program, v: &Vars, stream: u64) -> Vec<i32> {
    let out = p.malloc(256);
    assert_eq!(
        p.launch(v.read_back, 1, 64, &[&out.to_le_bytes()], stream),
        0
    );
    p.ok(Op::StreamSynchronize, &[stream]);
    let host = p.alloc(256);
    p.ok(Op::Memcpy, &[host, out, 256, 2]);
    p.ok(Op::Free, &[out]);
    ints(&p.get(host, 256))
}

fn u32_at(p: &Program, at: u64) -> u32 {
    u32::from_le_bytes(p.get(at, 4).try_into().expect("4"))
}

#[test]
fn every_object_comes_back_under_the_same_handles_and_addresses() {
    let mut p = Program::new();
    let v = register_vars(&p);
    // A second module the program never uses: it stays lazy across the restart.
    let lazy = p.register_fatbin(&fatbin("vector_add", FatbinKind::Ptx));
    let vector_add = p.register_kernel(lazy, "vector_add");
    p.ok(Op::RegisterFatBinaryEnd, &[lazy]);

    // Settings.
    p.ok(Op::DeviceSetLimit, &[2, 64 << 20]);
    p.ok(Op::SetDeviceFlags, &[4]);
    p.ok(Op::DeviceSetCacheConfig, &[2]);
    p.ok(Op::FuncSetAttribute, &[v.apply, 8, 64 << 10]);

    // Allocations with a hole, and a pitch allocation.
    let a = p.malloc(4096);
    let hole = p.malloc(1000);
    let b = p.malloc(3 << 20);
    p.ok(Op::Free, &[hole]);
    let (pitched, pitch) = (p.alloc(8), p.alloc(8));
    p.ok(Op::MallocPitch, &[pitched, pitch, 100, 7]);
    let (pitched, pitch) = (p.u64_at(pitched), p.u64_at(pitch));
    assert_eq!(pitch, 512);

    // Streams (one destroyed, so the counter matters) and events.
    let s1 = p.out_u64(Op::StreamCreateWithPriority, &[1, (-1i64) as u64]);
    let gone = p.out_u64(Op::StreamCreate, &[]);
    let s2 = p.out_u64(Op::StreamCreate, &[]);
    p.ok(Op::StreamDestroy, &[gone]);
    let e_start = p.out_u64(Op::EventCreate, &[]);
    let e_end = p.out_u64(Op::EventCreate, &[]);
    let e_never = p.out_u64(Op::EventCreate, &[]);
    let e_untimed = p.out_u64(Op::EventCreateWithFlags, &[2]);

    // Pinned host memory: allocated by the shim, and the program's own registered.
    let pinned = p.alloc(8192);
    p.ok(Op::PinnedAlloc, &[pinned, 8192, 0]);
    let registered = p.alloc(4096);
    p.ok(Op::HostRegister, &[registered, 4096, 0]);

    // Work: symbol copies, kernels on both streams, events around it, device data.
    let table: Vec<u8> = (0..16i32).flat_map(|i| (10 * i).to_le_bytes()).collect();
    let src = p.put(&table);
    p.ok(Op::MemcpyToSymbol, &[v.coeffs, src, 64, 0, 1]);
    p.ok(Op::EventRecord, &[e_start, s1]);
    assert_eq!(p.launch(v.apply, 1, 64, &[&2i32.to_le_bytes()], s1), 0);
    p.ok(Op::EventRecord, &[e_end, s1]);
    p.ok(Op::EventRecord, &[e_untimed, s2]);
    p.ok(Op::MemsetAsync, &[b, 0x5a, 3 << 20, s2]);
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let hdata = p.put(&data);
    p.ok(Op::MemcpyAsync, &[a, hdata, 4096, 1, s2]);
    p.ok(Op::Memset, &[pitched, 3, pitch * 7]);

    let before = read_back(&p, &v, s1);
    let want: Vec<i32> = (0..64).map(|i| 3 * 10 * (i % 16)).collect();
    assert_eq!(before, want);
    let symbol_addr = p.out_u64(Op::GetSymbolAddress, &[v.accum]);
    let handles = (
        p.rt.fat_binaries(),
        p.rt.stream_handles(),
        p.rt.event_handles(),
    );
    let live = p.rt.log_len();
    // 2 fat binaries + 3 kernels + 4 variables + 3 allocations + 2 streams + 4 events + 2
    // host ranges.
    assert_eq!(live, 20);
    let allocations = p.rt.backend().allocations().expect("allocations");
    let variables = p.rt.backend().module_variables().expect("variables");

    let saved = p.restart();
    assert!(
        saved.snapshot.log.len() < 4096,
        "{} bytes",
        saved.snapshot.log.len()
    );
    let labels: Vec<&str> = saved
        .snapshot
        .buffers
        .iter()
        .map(|r| r.label.as_str())
        .collect();
    assert_eq!(labels.iter().filter(|l| **l == "malloc").count(), 2);
    assert_eq!(labels.iter().filter(|l| **l == "malloc pitch").count(), 1);
    assert_eq!(
        labels.iter().filter(|l| l.starts_with("variable ")).count(),
        4
    );
    let summary = describe(&saved.snapshot.log).expect("describe");
    assert_eq!(summary.entries, live);
    assert_eq!(summary.backend, "sim");
    assert!(
        summary
            .objects
            .iter()
            .any(|o| o.kind == "module variable" && o.detail == "__constant__ coeffs"),
        "{:?}",
        summary.objects
    );

    // Same handles, same addresses, same state: the restored runtime's log is the log it was
    // restored from.
    assert_eq!(p.rt.log_len(), live);
    assert_eq!(p.rt.snapshot().expect("snapshot").log, saved.snapshot.log);
    assert_eq!(
        (
            p.rt.fat_binaries(),
            p.rt.stream_handles()
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            p.rt.event_handles().iter().map(|e| e.0).collect::<Vec<_>>(),
        ),
        (
            handles.0.clone(),
            handles.1.iter().map(|s| s.0).collect(),
            handles.2.iter().map(|e| e.0).collect(),
        )
    );
    assert!(!p.rt.fat_binaries()[1].2, "the unused module is still lazy");
    assert_eq!(
        p.rt.backend().allocations().expect("allocations"),
        allocations
    );
    let mut now = p.rt.backend().module_variables().expect("variables");
    let mut then = variables.clone();
    now.iter_mut()
        .chain(then.iter_mut())
        .for_each(|v| v.module = crac_gpu::ModuleId(0));
    assert_eq!(now, then);
    assert_eq!(p.out_u64(Op::GetSymbolAddress, &[v.accum]), symbol_addr);
    for (r, bytes) in saved.snapshot.buffers.iter().zip(&saved.contents) {
        let mut back = vec![0; bytes.len()];
        p.rt.backend()
            .read_device(DevicePtr(r.addr), &mut back)
            .expect("read");
        assert_eq!(&back, bytes, "{}", r.label);
    }

    // The program goes on: kernels see the restored variables and keep counting.
    assert_eq!(read_back(&p, &v, s1), want);
    assert_eq!(p.launch(v.apply, 1, 64, &[&1i32.to_le_bytes()], s2), 0);
    let after: Vec<i32> = (0..64).map(|i| 4 * 10 * (i % 16)).collect();
    assert_eq!(read_back(&p, &v, s2), after);
    let hits = p.alloc(4);
    p.ok(Op::MemcpyFromSymbol, &[hits, v.hits, 4, 0, 2]);
    assert_eq!(
        u32_at(&p, hits),
        64 * 2,
        "two launches of 64 counting threads"
    );
    let back = p.alloc(4096);
    p.ok(Op::Memcpy, &[back, a, 4096, 2]);
    assert_eq!(p.get(back, 4096), data);
    // The lazy module loads on first use.
    let n = 16u32;
    assert_eq!(
        p.launch(
            vector_add,
            1,
            16,
            &[
                &a.to_le_bytes(),
                &a.to_le_bytes(),
                &b.to_le_bytes(),
                &n.to_le_bytes()
            ],
            0
        ),
        0
    );
    p.ok(Op::DeviceSynchronize, &[]);
    assert!(p.rt.fat_binaries()[1].2);

    // Streams keep flags and priority; events read as complete; timing across the restart is
    // about zero; a never-recorded one still has no time.
    let out = p.alloc(4);
    p.ok(Op::StreamGetFlags, &[s1, out]);
    assert_eq!(p.i32_at(out), 1);
    p.ok(Op::StreamGetPriority, &[s1, out]);
    assert_eq!(p.i32_at(out), -1);
    assert_eq!(p.call(Op::StreamQuery, &[gone]), INVALID_RESOURCE_HANDLE);
    for e in [e_start, e_end, e_never, e_untimed] {
        p.ok(Op::EventQuery, &[e]);
        p.ok(Op::EventSynchronize, &[e]);
    }
    p.ok(Op::EventElapsedTime, &[out, e_start, e_end]);
    let ms = f32::from_bits(u32_at(&p, out));
    assert!((0.0..100.0).contains(&ms), "{ms}");
    assert_eq!(
        p.call(Op::EventElapsedTime, &[out, e_start, e_never]),
        INVALID_RESOURCE_HANDLE
    );
    assert_eq!(
        p.call(Op::EventElapsedTime, &[out, e_start, e_untimed]),
        INVALID_RESOURCE_HANDLE
    );
    // New handles never repeat an old one, destroyed ones included.
    let s3 = p.out_u64(Op::StreamCreate, &[]);
    assert!(![s1, s2, gone].contains(&s3));
    let e5 = p.out_u64(Op::EventCreate, &[]);
    assert!(![e_start, e_end, e_never, e_untimed].contains(&e5));

    // Settings and the kernel attribute.
    let lim = p.alloc(8);
    p.ok(Op::DeviceGetLimit, &[lim, 2]);
    assert_eq!(p.u64_at(lim), 64 << 20);
    p.ok(Op::GetDeviceFlags, &[out]);
    assert_eq!(u32_at(&p, out) & !0x8, 4);
    let attrs = p.alloc(std::mem::size_of::<crac_abi::FuncAttributes>() as u64);
    p.ok(Op::FuncGetAttributes, &[attrs, v.apply]);
    let at = std::mem::offset_of!(crac_abi::FuncAttributes, max_dynamic_shared_size_bytes);
    assert_eq!(u32_at(&p, attrs + at as u64), 64 << 10);

    // Pinned memory is registered again: pointer attributes, free and unregister work.
    p.ok(Op::PointerGetAttributes, &[attrs, pinned + 100]);
    assert_eq!(p.i32_at(attrs), 1, "cudaMemoryTypeHost");
    assert_eq!(
        p.rt.pinned_ranges(),
        vec![(pinned, 8192, true), (registered, 4096, false)]
    );
    let size = p.alloc(8);
    p.ok(Op::PinnedFree, &[pinned, size]);
    assert_eq!(p.u64_at(size), 8192);
    p.ok(Op::HostUnregister, &[registered]);

    // New allocations avoid the restored ones; freeing restored ones works.
    let c = p.malloc(4096);
    assert!(![a, b, pitched].contains(&c));
    p.ok(Op::Free, &[a]);
    p.ok(Op::Free, &[pitched]);
    p.ok(Op::UnregisterFatBinary, &[v.handle]);
    p.ok(Op::UnregisterFatBinary, &[lazy]);
}

#[test]
fn restart_then_checkpoint_again_three_times() {
    let mut p = Program::new();
    let v = register_vars(&p);
    let s = p.out_u64(Op::StreamCreateWithFlags, &[1]);
    let ev = p.out_u64(Op::EventCreate, &[]);
    for round in 1..=3 {
        assert_eq!(p.launch(v.apply, 1, 64, &[&1i32.to_le_bytes()], s), 0);
        p.ok(Op::EventRecord, &[ev, s]);
        p.restart();
        p.ok(Op::StreamWaitEvent, &[0, ev, 0]);
        let want: Vec<i32> = (0..64)
            .map(|i| {
                (round + 1)
                    * [
                        1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597,
                    ][i % 16]
            })
            .collect();
        assert_eq!(read_back(&p, &v, s), want, "round {round}");
    }
    let seen = p.alloc(8);
    let launches =
        p.rt.variable_names()
            .into_iter()
            .find(|(_, n)| n == "launches_seen");
    let (shadow, _) = launches.expect("registered");
    p.ok(Op::MemcpyFromSymbol, &[seen, shadow, 8, 0, 2]);
    assert_eq!(
        p.u64_at(seen),
        3,
        "one count per apply_coeffs launch, across three restarts"
    );
}

#[test]
fn the_log_follows_live_objects_not_calls() {
    let p = Program::new();
    let empty = p.rt.snapshot().expect("snapshot").log.len();
    let keep: Vec<u64> = (0..8).map(|i| p.malloc(256 << i)).collect();
    let mut live = Vec::new();
    for i in 0..100_000u64 {
        let size = 1 + (i * 7919) % (1 << 16);
        live.push(p.malloc(size));
        if live.len() > 4 {
            let at = (i as usize * 31) % live.len();
            p.ok(Op::Free, &[live.swap_remove(at)]);
        }
    }
    for i in 0..10_000 {
        let s = p.out_u64(Op::StreamCreate, &[]);
        let e = p.out_u64(Op::EventCreate, &[]);
        p.ok(Op::EventRecord, &[e, s]);
        p.ok(Op::EventDestroy, &[e]);
        p.ok(Op::StreamDestroy, &[s]);
        if i % 1000 == 0 {
            assert_eq!(p.rt.log_len(), keep.len() + live.len());
        }
    }
    assert_eq!(p.rt.log_len(), keep.len() + live.len());
    // Failed frees change nothing: a pointer inside an allocation, one freed twice.
    assert_eq!(p.call(Op::Free, &[keep[1] + 256]), 1);
    let once = p.malloc(64);
    p.ok(Op::Free, &[once]);
    assert_eq!(p.call(Op::Free, &[once]), 1);
    assert_eq!(p.rt.log_len(), keep.len() + live.len());
    let snap = p.rt.snapshot().expect("snapshot");
    assert_eq!(snap.buffers.len(), keep.len() + live.len());
    // A few bytes per live object, nothing per call.
    assert!(
        snap.log.len() < empty + 32 * p.rt.log_len(),
        "{} bytes for {} objects",
        snap.log.len(),
        p.rt.log_len()
    );
    assert_eq!(
        describe(&snap.log).expect("describe").entries,
        p.rt.log_len()
    );
    // cudaDeviceReset frees every allocation, stream and event: their entries go too.
    p.ok(Op::DeviceReset, &[]);
    assert_eq!(p.rt.log_len(), 0);
    assert!(p.rt.snapshot().expect("snapshot").buffers.is_empty());
}

#[test]
fn an_address_taken_on_the_new_device_is_an_error_naming_it() {
    let mut p = Program::new();
    let v = register_vars(&p);
    let a = p.malloc(4096);
    assert_eq!(p.launch(v.apply, 1, 64, &[&1i32.to_le_bytes()], 0), 0);
    let saved = p.checkpoint();

    // An allocation's address.
    let sim = crac_sim::Sim::new(256 << 20);
    sim.malloc_at(DevicePtr(a), 256).expect("take the address");
    let e = p.restore_onto(&saved, Box::new(sim)).unwrap_err();
    assert!(matches!(e, ReplayError::Recreate { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{a:#x}")) && msg.contains("sim"),
        "{msg}"
    );

    // A module variable's address.
    let accum = saved
        .snapshot
        .buffers
        .iter()
        .find(|r| r.label == "variable accum")
        .expect("accum saved")
        .addr;
    let sim = crac_sim::Sim::new(256 << 20);
    sim.malloc_at(DevicePtr(accum), 256)
        .expect("take the address");
    let e = p.restore_onto(&saved, Box::new(sim)).unwrap_err();
    assert!(matches!(e, ReplayError::LoadModule { .. }), "{e:?}");

    // A backend that loads modules anywhere it likes: the check after replay catches it and
    // names the variable and both addresses.
    let e = p
        .restore_onto(&saved, Box::new(Misplacing(crac_sim::Sim::new(256 << 20))))
        .unwrap_err();
    let ReplayError::AddressMismatch {
        object,
        saved: at,
        found,
    } = &e
    else {
        panic!("{e:?}");
    };
    assert!(object.contains("variable"), "{e}");
    assert!(
        found.starts_with("0x") && *found != format!("{at:#x}"),
        "{e}"
    );

    // A damaged log.
    let mut bad = Saved {
        snapshot: saved.snapshot.clone(),
        contents: saved.contents.clone(),
    };
    let last = bad.snapshot.log.len() - 1;
    bad.snapshot.log.truncate(last);
    let e = p
        .restore_onto(&bad, Box::new(crac_sim::Sim::new(256 << 20)))
        .unwrap_err();
    assert!(matches!(e, ReplayError::CorruptLog { .. }), "{e:?}");
    assert!(describe(&bad.snapshot.log).is_err());

    // Nothing was replaced: the program still runs on its own runtime.
    assert_eq!(read_back(&p, &v, 0).len(), 64);
}

#[test]
fn a_module_without_ptx_cannot_resume_on_sim_and_says_so() {
    let mut p = Program::new();
    // Register by hand, keeping the wrapper's address.
    let data = p.put(&fatbin("variables", FatbinKind::Ptx));
    let mut w = 0x4662_43B1u32.to_le_bytes().to_vec();
    w.extend(1u32.to_le_bytes());
    w.extend(data.to_le_bytes());
    w.extend(0u64.to_le_bytes());
    let wrapper = p.put(&w);
    let h = p.out_u64(Op::RegisterFatBinary, &[wrapper]);
    p.ok(Op::InitModule, &[h]);
    let saved = p.checkpoint();
    // As if the image came from a --gpu cuda run whose module was a cubin: the program's
    // fat binary has no PTX.
    let cubin = p.put(&fatbin("variables", FatbinKind::CubinOnly));
    use crac_replay::HostMemory;
    p.mem
        .write(wrapper + 8, &cubin.to_le_bytes())
        .expect("patch");
    let e = p
        .restore_onto(&saved, Box::new(crac_sim::Sim::new(256 << 20)))
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("cannot be resumed on --gpu sim"), "{msg}");
    assert!(msg.contains("no PTX"), "{msg}");
}

macro_rules! forward {
    ($($name:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
        $(fn $name(&self, $($a: $t),*) -> $r { self.0.$name($($a),*) })*
    };
}

/// The backend methods both test backends below pass straight to their sim.
macro_rules! forward_common {
    () => {
        forward! {
            name() -> &'static str;
            device_count() -> crac_gpu::Result<u32>;
            device_props(o: u32) -> crac_gpu::Result<crac_gpu::DeviceProps>;
            mem_get_info() -> crac_gpu::Result<(u64, u64)>;
            device_synchronize() -> crac_gpu::Result<()>;
            device_reset() -> crac_gpu::Result<()>;
            malloc(s: u64) -> crac_gpu::Result<DevicePtr>;
            malloc_at(p: DevicePtr, s: u64) -> crac_gpu::Result<()>;
            find_allocation(p: DevicePtr) -> crac_gpu::Result<Option<crac_gpu::Allocation>>;
            free(p: DevicePtr) -> crac_gpu::Result<()>;
            memcpy_htod(d: DevicePtr, s: &[u8], st: crac_gpu::Stream) -> crac_gpu::Result<()>;
            memcpy_dtoh(d: &mut [u8], s: DevicePtr, st: crac_gpu::Stream) -> crac_gpu::Result<()>;
            memcpy_dtod(d: DevicePtr, s: DevicePtr, l: u64, st: crac_gpu::Stream) -> crac_gpu::Result<()>;
            memset(d: DevicePtr, v: u8, l: u64, st: crac_gpu::Stream) -> crac_gpu::Result<()>;
            stream_create(f: crac_gpu::StreamFlags, p: i32) -> crac_gpu::Result<crac_gpu::Stream>;
            stream_destroy(s: crac_gpu::Stream) -> crac_gpu::Result<()>;
            stream_query(s: crac_gpu::Stream) -> crac_gpu::Result<bool>;
            stream_synchronize(s: crac_gpu::Stream) -> crac_gpu::Result<()>;
            stream_info(s: crac_gpu::Stream) -> crac_gpu::Result<(crac_gpu::StreamFlags, i32)>;
            stream_wait_event(s: crac_gpu::Stream, e: crac_gpu::Event) -> crac_gpu::Result<()>;
            launch_host_func(s: crac_gpu::Stream, f: crac_gpu::HostFn) -> crac_gpu::Result<()>;
            event_create(f: crac_gpu::EventFlags) -> crac_gpu::Result<crac_gpu::Event>;
            event_destroy(e: crac_gpu::Event) -> crac_gpu::Result<()>;
            event_record(e: crac_gpu::Event, s: crac_gpu::Stream) -> crac_gpu::Result<()>;
            event_query(e: crac_gpu::Event) -> crac_gpu::Result<bool>;
            event_synchronize(e: crac_gpu::Event) -> crac_gpu::Result<()>;
            event_elapsed_ms(a: crac_gpu::Event, b: crac_gpu::Event) -> crac_gpu::Result<f32>;
            register_fatbin(i: &[u8]) -> crac_gpu::Result<crac_gpu::ModuleId>;
            unregister_module(m: crac_gpu::ModuleId) -> crac_gpu::Result<()>;
            register_function(m: crac_gpu::ModuleId, n: &str) -> crac_gpu::Result<crac_gpu::FunctionId>;
            function_attributes(f: crac_gpu::FunctionId) -> crac_gpu::Result<crac_gpu::FuncAttributes>;
            function_set_max_dynamic_shared(f: crac_gpu::FunctionId, b: u64) -> crac_gpu::Result<()>;
            launch(f: crac_gpu::FunctionId, c: &crac_gpu::LaunchConfig, p: &[u8]) -> crac_gpu::Result<()>;
            function_params(f: crac_gpu::FunctionId) -> crac_gpu::Result<Vec<crac_gpu::ParamLayout>>;
            allocations() -> crac_gpu::Result<Vec<crac_gpu::Allocation>>;
            read_device(s: DevicePtr, d: &mut [u8]) -> crac_gpu::Result<()>;
            write_device(d: DevicePtr, s: &[u8]) -> crac_gpu::Result<()>;
        }
    };
}

/// A sim device that, like the real driver, lists only the module variables it was asked about
/// (the driver has no call that enumerates a module's globals).
struct AskedOnly(crac_sim::Sim, std::sync::Mutex<Vec<u64>>);

#[test]
fn variables_only_kernels_touch_are_saved_even_when_the_backend_cannot_list_them() {
    let backend = AskedOnly(crac_sim::Sim::new(256 << 20), std::sync::Mutex::default());
    let p = Program::over(crac_replay::Runtime::new(Box::new(backend)));
    let v = register_vars(&p);
    // The program only launches kernels: no symbol copy ever asks where `hits` or `accum` are.
    assert_eq!(p.launch(v.apply, 1, 64, &[&2i32.to_le_bytes()], 0), 0);
    p.ok(Op::DeviceSynchronize, &[]);
    let saved = p.checkpoint();
    let labels: Vec<&str> = saved
        .snapshot
        .buffers
        .iter()
        .map(|b| b.label.as_str())
        .collect();
    for name in ["coeffs", "accum", "hits", "launches_seen"] {
        assert!(
            labels.iter().any(|l| *l == format!("variable {name}")),
            "{name} not saved: {labels:?}"
        );
    }
}

impl DeviceBackend for AskedOnly {
    fn register_variable(
        &self,
        m: crac_gpu::ModuleId,
        n: &str,
    ) -> crac_gpu::Result<(DevicePtr, u64)> {
        let placed = self.0.register_variable(m, n)?;
        self.1.lock().expect("asked").push(placed.0.0);
        Ok(placed)
    }

    fn module_variables(&self) -> crac_gpu::Result<Vec<crac_gpu::VariableRecord>> {
        let asked = self.1.lock().expect("asked").clone();
        let mut all = self.0.module_variables()?;
        all.retain(|v| asked.contains(&v.ptr.0));
        Ok(all)
    }

    fn register_fatbin_at(
        &self,
        image: &[u8],
        vars: &[crac_gpu::VariablePlacement],
    ) -> crac_gpu::Result<crac_gpu::ModuleId> {
        self.0.register_fatbin_at(image, vars)
    }

    forward_common!();
}

/// A sim device that ignores where modules' variables should go.
struct Misplacing(crac_sim::Sim);

impl DeviceBackend for Misplacing {
    fn register_fatbin_at(
        &self,
        image: &[u8],
        _: &[crac_gpu::VariablePlacement],
    ) -> crac_gpu::Result<crac_gpu::ModuleId> {
        // Something first, so the module's variables cannot land where they were.
        self.0.malloc(4096)?;
        self.0.register_fatbin(image)
    }

    forward! {
        register_variable(m: crac_gpu::ModuleId, n: &str) -> crac_gpu::Result<(DevicePtr, u64)>;
        module_variables() -> crac_gpu::Result<Vec<crac_gpu::VariableRecord>>;
    }
    forward_common!();
}

#[test]
fn threads_allocating_and_freeing_at_once_leave_a_consistent_log() {
    let p = Program::new();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let p = &p;
            scope.spawn(move || {
                let mut mine = Vec::new();
                for i in 0..5_000u64 {
                    mine.push(p.malloc(1 + (i * 131 + t) % 4096));
                    if mine.len() > 3 {
                        p.ok(Op::Free, &[mine.remove(0)]);
                    }
                }
            });
        }
    });
    assert_eq!(p.rt.log_len(), 4 * 3);
    // The snapshot checks the runtime's allocations against the device's.
    assert_eq!(p.rt.snapshot().expect("consistent").buffers.len(), 12);
}

#[test]
fn draining_waits_for_host_callbacks_the_shim_runs() {
    let p = Program::new();
    let s = p.out_u64(Op::StreamCreate, &[]);
    p.ok(Op::LaunchHostFunc, &[s, 0x1234, 0x5678]);
    let drained = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            p.rt.synchronize_all().expect("drain");
            drained.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // The callback is handed to the shim's thread; the drain waits until it is done.
        let cb = p.next_callback();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!drained.load(std::sync::atomic::Ordering::SeqCst));
        let token = u64::from_le_bytes(
            cb[std::mem::offset_of!(crac_abi::HostCallback, token)..][..8]
                .try_into()
                .expect("8"),
        );
        p.ok(Op::HostCallbackDone, &[token]);
    });
    assert!(drained.load(std::sync::atomic::Ordering::SeqCst));
    p.ok(Op::StreamQuery, &[s]);
}

/// A log with every kind of entry, from a small program.
fn rich_log() -> (Program, Vec<u8>) {
    let p = Program::new();
    let v = register_vars(&p);
    let lazy = p.register_fatbin(&fatbin("vector_add", FatbinKind::Ptx));
    p.register_kernel(lazy, "vector_add");
    p.malloc(4096);
    p.ok(Op::FuncSetAttribute, &[v.apply, 8, 1024]);
    assert_eq!(p.launch(v.apply, 1, 64, &[&1i32.to_le_bytes()], 0), 0);
    let s = p.out_u64(Op::StreamCreateWithFlags, &[1]);
    let e = p.out_u64(Op::EventCreate, &[]);
    p.ok(Op::EventRecord, &[e, s]);
    let pinned = p.alloc(4096);
    p.ok(Op::PinnedAlloc, &[pinned, 4096, 0]);
    p.rt.synchronize_all().expect("drain");
    let log = p.rt.snapshot().expect("snapshot").log;
    (p, log)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// A damaged log restores into a fresh device or fails with an error; never a panic.
    #[test]
    fn damaged_logs_restore_or_fail_cleanly(
        flips in proptest::collection::vec((0usize..1 << 16, 1u8..=255), 1..4),
    ) {
        static LOG: std::sync::OnceLock<(Program, Vec<u8>)> = std::sync::OnceLock::new();
        let (p, log) = LOG.get_or_init(rich_log);
        let mut bad = log.clone();
        for (at, v) in flips {
            let at = at % bad.len();
            bad[at] ^= v;
        }
        let sim = crac_sim::Sim::new(256 << 20);
        let _ = crac_replay::Runtime::restore(Box::new(sim), std::sync::Arc::default(), &bad, &p.mem);
        let _ = describe(&bad);
    }
}
