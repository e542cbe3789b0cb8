//! Interpreter throughput: runs the compute-bound `bench` kernel (tests/data/bench.cu, a loop
//! of FMAs and integer mixing, compiled by nvcc 13 to tests/data/bench.ptx) over a grid on an
//! in-memory device and prints thread-instructions per second.
//!
//! `cargo run --release -p crac-ptx --example ptx_bench [blocks] [iters]`
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::Instant;

use crac_ptx::{DeviceMemory, Fault, LaunchDims, LaunchStats, Module, launch};

const PTX: &str = include_str!("../tests/data/bench.ptx");
const BASE: u64 = 0x7f00_0000_0000;

/// One flat allocation at `BASE`.
struct Flat(Vec<u8>);

impl DeviceMemory for Flat {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let fault = Fault {
            addr,
            len: buf.len() as u64,
        };
        let o = usize::try_from(addr.checked_sub(BASE).ok_or(fault)?).map_err(|_| fault)?;
        buf.copy_from_slice(self.0.get(o..o + buf.len()).ok_or(fault)?);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let fault = Fault {
            addr,
            len: data.len() as u64,
        };
        let o = usize::try_from(addr.checked_sub(BASE).ok_or(fault)?).map_err(|_| fault)?;
        self.0
            .get_mut(o..o + data.len())
            .ok_or(fault)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// Runs `kernel` once and returns what it executed and how long it took, in seconds.
fn timed(
    module: &Module,
    kernel: &str,
    dims: &LaunchDims,
    params: &[u8],
    mem: &mut Flat,
) -> (LaunchStats, f64) {
    let t = Instant::now();
    let stats = launch(
        module,
        kernel,
        dims,
        params,
        &|_| None,
        mem,
        &mut std::io::sink(),
    )
    .unwrap();
    (stats, t.elapsed().as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let blocks: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let iters: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let threads = 256u32;
    let n = (blocks * threads) as usize;
    let t0 = Instant::now();
    let module = Module::parse(PTX).unwrap();
    let parse = t0.elapsed();
    let mut mem = Flat(vec![0; n * 8]);
    let mut params = Vec::new();
    params.extend_from_slice(&BASE.to_le_bytes());
    params.extend_from_slice(&(BASE + n as u64 * 4).to_le_bytes());
    params.extend_from_slice(&iters.to_le_bytes());
    let dims = LaunchDims {
        grid: [blocks, 1, 1],
        block: [threads, 1, 1],
        dynamic_shared: 0,
    };
    let (stats, secs) = timed(&module, "bench", &dims, &params, &mut mem);
    // Check one thread against a CPU model of the same loop.
    let i = n as u32 - 1;
    let (mut a, b, mut c) = (i as f32 * 0.001, 1.0001f32, 0.5f32);
    let mut h = i.wrapping_mul(2_654_435_761);
    for k in 0..iters {
        a = a.mul_add(b, c);
        c = c.mul_add(0.999, a * 1e-6);
        h = (h ^ (h >> 15)).wrapping_mul(0x2c1b_3c6d).wrapping_add(k);
        h ^= h << 7;
    }
    let got_h = u32::from_le_bytes(mem.0[n * 4 + (n - 1) * 4..][..4].try_into().unwrap());
    let got_f = f32::from_le_bytes(mem.0[(n - 1) * 4..][..4].try_into().unwrap());
    println!("parse: {:.2} ms", parse.as_secs_f64() * 1e3);
    println!(
        "grid {blocks}x{threads} threads, {iters} iterations: {:.3} s",
        secs
    );
    println!(
        "{} thread-instructions, {} warp-instructions",
        stats.thread_instructions, stats.warp_instructions
    );
    println!(
        "{:.1} M thread-instructions/s (one core)",
        stats.thread_instructions as f64 / secs / 1e6
    );
    println!(
        "check: hash {} float {}",
        if got_h == h { "ok" } else { "MISMATCH" },
        if got_f == a + c { "ok" } else { "MISMATCH" }
    );
    matmul();
}

/// Shared-memory tiled matmul (loads, stores, barriers): a memory-heavy mix.
fn matmul() {
    let module = Module::parse(include_str!("../tests/data/kernels_sm75.ptx")).unwrap();
    let n = 256usize;
    let mut mem = Flat(vec![0; n * n * 12]);
    for i in 0..n * n {
        let (a, b) = ((i % 7) as f32, (i % 5) as f32);
        mem.0[i * 4..i * 4 + 4].copy_from_slice(&a.to_le_bytes());
        mem.0[(n * n + i) * 4..(n * n + i) * 4 + 4].copy_from_slice(&b.to_le_bytes());
    }
    let mut params = Vec::new();
    for k in 0..3u64 {
        params.extend_from_slice(&(BASE + k * (n * n * 4) as u64).to_le_bytes());
    }
    params.extend_from_slice(&(n as u32).to_le_bytes());
    let g = (n / 16) as u32;
    let dims = LaunchDims {
        grid: [g, g, 1],
        block: [16, 16, 1],
        dynamic_shared: 0,
    };
    let (stats, secs) = timed(&module, "matmul", &dims, &params, &mut mem);
    println!(
        "matmul {n}x{n} (16x16 tiles, shared memory, barriers): {:.3} s, {:.1} M thread-instructions/s",
        secs,
        stats.thread_instructions as f64 / secs / 1e6
    );
}
