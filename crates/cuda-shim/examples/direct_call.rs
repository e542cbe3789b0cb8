//! The baseline of `bench/shim.sh`: the lower half's runtime entry (`crac_replay::Runtime::call`
//! over the `sim` backend) called directly in-process, on one thread, with no shim and no fs
//! switch: what a CUDA call would cost if the program could call crac's runtime directly.
//! Prints the median nanoseconds per `cudaGetDevice` over many batches.
//!
//! Usage: cargo run --release -p crac-cuda-shim --example direct_call [BATCHES] [CALLS]

use std::time::Instant;

use crac_abi::{MAX_ARGS, Op};
use crac_replay::{HostFault, HostMemory, Runtime};

/// Program memory at real addresses, as the loader's table entry gives the runtime (no lock,
/// no copy): only the bench's own locals are ever named.
struct Direct;

impl HostMemory for Direct {
    fn with_bytes(&self, addr: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), HostFault> {
        let n = usize::try_from(len).map_err(|_| HostFault::NotHost { addr, len })?;
        // SAFETY: the only address passed is `&mut device` in `main`, 4 bytes, live and
        // unaliased for the whole call.
        f(unsafe { std::slice::from_raw_parts(addr as *const u8, n) });
        Ok(())
    }

    fn with_bytes_mut(
        &self,
        addr: u64,
        len: u64,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), HostFault> {
        let n = usize::try_from(len).map_err(|_| HostFault::NotHost { addr, len })?;
        // SAFETY: as in `with_bytes`.
        f(unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, n) });
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let calls: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rt = Runtime::new(Box::new(crac_sim::Sim::new(1 << 30)));
    let mut device: i32 = -1;
    let mut words = [0u64; MAX_ARGS];
    words[0] = std::ptr::from_mut(&mut device) as u64;
    let op = Op::GetDevice as u32;
    for _ in 0..calls {
        assert_eq!(rt.call(op, &words, &Direct), 0);
    }
    let mut per_call = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(rt.call(op, std::hint::black_box(&words), &Direct));
        }
        per_call.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(calls));
    }
    assert_eq!(device, 0);
    per_call.sort_by(f64::total_cmp);
    println!("direct: median {:.1} ns/call", per_call[per_call.len() / 2]);
}
