//! End-to-end benchmark of the `sim` device (not a test: ignored by default, run by
//! `bench/sim.sh` in release). Runs the 5-point stencil three ways on the same data: through the
//! full device path (fat-binary registration, parameter packing, launch, synchronise), through
//! the bare PTX interpreter (`crac_ptx::launch` on a flat memory: what the device path adds on
//! top), and natively in Rust. Prints throughput and ratios; asserts only correctness.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use std::time::Instant;

use common::{FatbinKind, Gpu, Rng, fatbin, to_bytes};
use crac_gpu::{LaunchConfig, Stream};
use crac_ptx::{DeviceMemory, Fault, LaunchDims, Module};

/// Device address of the flat memory the bare interpreter runs on.
const BASE: u64 = 0x10_0000;

/// One contiguous block of device memory at [`BASE`].
struct Flat(Vec<u8>);

impl Flat {
    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, Fault> {
        let fault = Fault {
            addr,
            len: len as u64,
        };
        let start = usize::try_from(addr.checked_sub(BASE).ok_or(fault)?).map_err(|_| fault)?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.0.len())
            .ok_or(fault)?;
        Ok(start..end)
    }
}

impl DeviceMemory for Flat {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.0[r]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let r = self.range(addr, data.len())?;
        self.0[r].copy_from_slice(data);
        Ok(())
    }
}

/// Runs `steps` stencil launches on the bare interpreter; returns the final grid, the seconds
/// taken and the thread-instructions executed.
fn bare_interpreter(grid: &[f32], w: usize, h: usize, steps: usize) -> (Vec<f32>, f64, u64) {
    let ptx = String::from_utf8(fatbin("stencil", FatbinKind::PtxText)).expect("PTX text");
    let module = Module::parse(&ptx).expect("parse stencil PTX");
    let bytes = to_bytes(grid);
    let mut mem = Flat([bytes.clone(), bytes].concat());
    let bufs = [BASE, BASE + (w * h * 4) as u64];
    let dims = LaunchDims {
        grid: [(w / 16) as u32, (h / 16) as u32, 1],
        block: [16, 16, 1],
        dynamic_shared: 0,
    };
    let mut thread_instructions = 0;
    let t = Instant::now();
    for s in 0..steps {
        let (src, dst) = (bufs[s % 2], bufs[(s + 1) % 2]);
        let mut params = Vec::new();
        params.extend_from_slice(&src.to_le_bytes());
        params.extend_from_slice(&dst.to_le_bytes());
        params.extend_from_slice(&(w as i32).to_le_bytes());
        params.extend_from_slice(&(h as i32).to_le_bytes());
        let stats = crac_ptx::launch(
            &module,
            "stencil5",
            &dims,
            &params,
            &|_| None,
            &mut mem,
            &mut std::io::sink(),
        )
        .expect("interpreter launch");
        thread_instructions += stats.thread_instructions;
    }
    let secs = t.elapsed().as_secs_f64();
    let at = (bufs[steps % 2] - BASE) as usize;
    let out = common::from_bytes(&mem.0[at..at + w * h * 4]);
    (out, secs, thread_instructions)
}

fn native_step(input: &[f32], out: &mut [f32], w: usize, h: usize) {
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            out[i] = if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                input[i]
            } else {
                0.2f32
                    * ((((input[i] + input[i - w]) + input[i + w]) + input[i - 1]) + input[i + 1])
            };
        }
    }
}

#[test]
#[ignore = "benchmark: run with bench/sim.sh (release)"]
fn stencil_throughput() {
    let (w, h) = (256usize, 256usize);
    let steps: usize = std::env::var("CRAC_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let gpu = Gpu::new();
    let f = gpu.kernel("stencil", "stencil5");
    let grid = Rng::new(7).f32s(w * h, 0.0, 1.0);
    let grid0 = grid.clone();
    let bufs = [gpu.upload(&grid), gpu.upload(&grid)];
    let cfg = LaunchConfig {
        grid: [(w / 16) as u32, (h / 16) as u32, 1],
        block: [16, 16, 1],
        dynamic_shared: 0,
        stream: Stream::NULL,
    };
    let t = Instant::now();
    for s in 0..steps {
        let (src, dst) = (bufs[s % 2], bufs[(s + 1) % 2]);
        gpu.launch(
            f,
            &cfg,
            &[src.into(), dst.into(), (w as i32).into(), (h as i32).into()],
        )
        .expect("launch");
    }
    gpu.dev().device_synchronize().expect("synchronize");
    let sim_s = t.elapsed().as_secs_f64();
    let got: Vec<f32> = gpu.download(bufs[steps % 2], w * h);

    let t = Instant::now();
    let (mut a, mut b) = (grid.clone(), grid);
    for _ in 0..steps {
        native_step(&a, &mut b, w, h);
        std::mem::swap(&mut a, &mut b);
    }
    let native_s = t.elapsed().as_secs_f64().max(1e-9);
    assert!(
        got.iter().zip(&a).all(|(g, r)| g.to_bits() == r.to_bits()),
        "sim result differs"
    );

    let (bare, bare_s, thread_instructions) = bare_interpreter(&grid0, w, h, steps);
    assert!(
        bare.iter().zip(&a).all(|(g, r)| g.to_bits() == r.to_bits()),
        "interpreter result differs"
    );
    let ti = thread_instructions as f64;
    let threads = (w * h * steps) as f64;
    println!(
        "stencil {w}x{h}, {steps} launches of {} threads, {thread_instructions} thread-instructions",
        w * h
    );
    println!(
        "  sim device:       {sim_s:.3} s  {:.1} launches/s  {:.1} M thread-instructions/s",
        steps as f64 / sim_s,
        ti / sim_s / 1e6
    );
    println!(
        "  bare interpreter: {bare_s:.3} s  {:.1} M thread-instructions/s",
        ti / bare_s / 1e6
    );
    println!(
        "  native Rust:      {native_s:.4} s  {:.1} M cells/s",
        threads / native_s / 1e6
    );
    println!(
        "  sim device / bare interpreter time: {:.2}x",
        sim_s / bare_s
    );
    println!(
        "  sim device / native time:           {:.0}x",
        sim_s / native_s
    );
}
