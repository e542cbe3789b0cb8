//! The checkpoint hooks end to end on the sim device: run kernels, save every allocation and
//! module variable through the hooks, start a fresh device, put everything back at the same
//! addresses (`malloc_at`, `register_fatbin_at`, `write_device`), and continue: the results
//! must equal an uninterrupted run, bit for bit.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants"
)]

mod common;

use common::{Gpu, Rng, dims1, fatbin};
use crac_gpu::{DevicePtr, FunctionId, LaunchConfig, Stream, VariablePlacement};

const W: usize = 24;
const H: usize = 20;

fn stencil_cfg() -> LaunchConfig {
    LaunchConfig {
        grid: [W.div_ceil(16) as u32, H.div_ceil(16) as u32, 1],
        block: [16, 16, 1],
        dynamic_shared: 0,
        stream: Stream::NULL,
    }
}

fn steps(gpu: &Gpu, f: FunctionId, bufs: [DevicePtr; 2], from: usize, to: usize) {
    for s in from..to {
        let (src, dst) = (bufs[s % 2], bufs[(s + 1) % 2]);
        gpu.launch(
            f,
            &stencil_cfg(),
            &[src.into(), dst.into(), (W as i32).into(), (H as i32).into()],
        )
        .expect("stencil launch");
    }
    gpu.dev().device_synchronize().expect("stencil steps");
}

fn reference(mut grid: Vec<f32>, n: usize) -> Vec<f32> {
    let mut out = grid.clone();
    for _ in 0..n {
        for y in 0..H {
            for x in 0..W {
                let i = y * W + x;
                out[i] = if x == 0 || y == 0 || x == W - 1 || y == H - 1 {
                    grid[i]
                } else {
                    0.2f32 * ((((grid[i] + grid[i - W]) + grid[i + W]) + grid[i - 1]) + grid[i + 1])
                };
            }
        }
        std::mem::swap(&mut grid, &mut out);
    }
    grid
}

/// What a checkpoint holds for the device: allocation contents and module variables.
struct Saved {
    allocations: Vec<(DevicePtr, Vec<u8>)>,
    /// (kernel file, name, address, bytes) of every module variable.
    variables: Vec<(&'static str, String, DevicePtr, Vec<u8>)>,
}

fn save(gpu: &Gpu, modules: &[(crac_gpu::ModuleId, &'static str)]) -> Saved {
    let dev = gpu.dev();
    dev.device_synchronize().expect("synchronize before saving");
    let allocations = dev
        .allocations()
        .expect("allocations")
        .into_iter()
        .map(|a| {
            let mut bytes = vec![0u8; a.size as usize];
            dev.read_device(a.ptr, &mut bytes).expect("read allocation");
            (a.ptr, bytes)
        })
        .collect();
    let variables = dev
        .module_variables()
        .expect("module variables")
        .into_iter()
        .map(|v| {
            let file = modules
                .iter()
                .find(|(m, _)| *m == v.module)
                .map(|(_, f)| *f)
                .expect("variable of a module this test loaded");
            let mut bytes = vec![0u8; v.size as usize];
            dev.read_device(v.ptr, &mut bytes).expect("read variable");
            (file, v.name, v.ptr, bytes)
        })
        .collect();
    Saved {
        allocations,
        variables,
    }
}

/// Loads `file` on `gpu` with its variables where `saved` had them.
fn restore_module(gpu: &Gpu, saved: &Saved, file: &'static str) -> crac_gpu::ModuleId {
    let placements: Vec<VariablePlacement> = saved
        .variables
        .iter()
        .filter(|v| v.0 == file)
        .map(|v| VariablePlacement {
            name: v.1.clone(),
            ptr: v.2,
        })
        .collect();
    let image = fatbin(file, common::FatbinKind::Ptx);
    let module = gpu
        .dev()
        .register_fatbin_at(&image, &placements)
        .expect("register at the saved addresses");
    for v in saved.variables.iter().filter(|v| v.0 == file) {
        let (ptr, size) = gpu.dev().register_variable(module, &v.1).expect("variable");
        assert_eq!((ptr, size), (v.2, v.3.len() as u64), "{} moved", v.1);
        gpu.dev()
            .write_device(ptr, &v.3)
            .expect("write variable back");
    }
    module
}

#[test]
fn device_state_survives_save_and_restore_into_a_fresh_device() {
    let grid0 = Rng::new(91).f32s(W * H, 0.0, 10.0);
    let first = Gpu::new();
    let stencil = first.load("stencil");
    let vars = first.load("variables");
    // A freed allocation between live ones, so live addresses are not simply consecutive.
    let hole = first.alloc_bytes(4096);
    let bufs = [first.upload(&grid0), first.upload(&grid0)];
    first.dev().free(hole).expect("free");
    let scratch = first.upload(&[7u64, 8, 9]);
    let (f, apply) = (
        first.func(stencil, "stencil5"),
        first.func(vars, "apply_coeffs"),
    );
    steps(&first, f, bufs, 0, 400);
    for _ in 0..3 {
        first.run(apply, &dims1(1, 64), &[2i32.into()]);
    }
    let saved = save(&first, &[(stencil, "stencil"), (vars, "variables")]);
    drop(first);

    let second = Gpu::new();
    let stencil = restore_module(&second, &saved, "stencil");
    let vars = restore_module(&second, &saved, "variables");
    for (ptr, bytes) in &saved.allocations {
        second
            .dev()
            .malloc_at(*ptr, bytes.len() as u64)
            .expect("allocate at the saved address");
        second
            .dev()
            .write_device(*ptr, bytes)
            .expect("write allocation back");
    }
    assert_eq!(second.download::<u64>(scratch, 3), [7, 8, 9]);
    let (f, apply) = (
        second.func(stencil, "stencil5"),
        second.func(vars, "apply_coeffs"),
    );
    steps(&second, f, bufs, 400, 1000);
    for _ in 0..2 {
        second.run(apply, &dims1(1, 64), &[2i32.into()]);
    }

    let got: Vec<f32> = second.download(bufs[1000 % 2], W * H);
    let want = reference(grid0, 1000);
    assert!(
        got.iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits()),
        "stencil after restore differs from an uninterrupted run"
    );
    let read = |name: &str| {
        let (ptr, size) = second
            .dev()
            .register_variable(vars, name)
            .expect("variable");
        let mut b = vec![0u8; size as usize];
        second
            .dev()
            .memcpy_dtoh(&mut b, ptr, Stream::NULL)
            .expect("read variable");
        b
    };
    assert_eq!(common::from_bytes::<u64>(&read("launches_seen")), [5]);
    assert_eq!(common::from_bytes::<u32>(&read("hits")), [5 * 64]);
    let fib = [
        1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597,
    ];
    let accum: Vec<i32> = (0..64).map(|i| fib[i % 16] * 2 * 5).collect();
    assert_eq!(common::from_bytes::<i32>(&read("accum")), accum);
}

#[test]
fn placement_on_a_taken_address_fails_loudly() {
    let first = Gpu::new();
    let vars = first.load("variables");
    let (ptr, _) = first.dev().register_variable(vars, "accum").expect("accum");
    drop(first);

    let second = Gpu::new();
    // Something else already lives where `accum` must go.
    let aligned = DevicePtr(ptr.0 & !255);
    second
        .dev()
        .malloc_at(aligned, 512)
        .expect("take the address first");
    let image = fatbin("variables", common::FatbinKind::Ptx);
    let e = second
        .dev()
        .register_fatbin_at(
            &image,
            &[VariablePlacement {
                name: "accum".into(),
                ptr,
            }],
        )
        .expect_err("a taken address must be refused, not moved");
    assert_eq!(e.code(), 2, "{e}");
}

#[test]
fn module_string_constants_are_restored_with_their_module() {
    // printf.cu's format strings and literals are module variables named `$str`, `$str$1`, …
    let first = Gpu::new();
    // An allocation first, so the module's strings do not sit where a fresh device would put
    // them by default: only the placements can bring them back to these addresses.
    let _before = first.alloc_bytes(1 << 16);
    let module = first.load("printf");
    let mut saved = save(&first, &[(module, "printf")]);
    saved.allocations.clear();
    assert!(
        saved.variables.iter().any(|v| v.1.starts_with("$str")),
        "string constants are module variables: {:?}",
        saved.variables.iter().map(|v| &v.1).collect::<Vec<_>>()
    );
    drop(first);

    let second = Gpu::new();
    let module = restore_module(&second, &saved, "printf");
    let out = second.sim().capture_printf();
    let f = second.func(module, "say");
    let tag = second.upload(b"back\0");
    second.run(f, &dims1(1, 2), &[1i32.into(), 1.0f32.into(), tag.into()]);
    assert_eq!(
        out.text(),
        "block 0 thread 0: 0.000000 back 0 4000000000 0 even 100%\n"
    );
}
