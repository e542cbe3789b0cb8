//! A fake program for driving [`Runtime`] through its call entry: program memory is a
//! [`BufferMemory`], values are placed in it with a bump allocator, and each call passes its
//! argument words as the shim would.
#![allow(dead_code)]

#[path = "../../../sim/tests/common/nvcc.rs"]
pub mod nvcc;

use std::sync::atomic::{AtomicU64, Ordering};

use crac_abi::{MAX_ARGS, Op};
use crac_replay::{BufferMemory, HostMemory, Runtime};

/// Where the fake program's memory starts.
pub const BASE: u64 = 0x1000_0000;

/// A runtime over a sim device and a fake program's memory.
pub struct Program {
    pub rt: Runtime,
    pub mem: BufferMemory,
    next: AtomicU64,
}

impl Program {
    pub fn new() -> Program {
        let sim = crac_sim::Sim::new(256 << 20);
        Program::over(Runtime::new(Box::new(sim)))
    }

    /// A program whose sim device's `printf` output goes to `printf`.
    pub fn with_printf(printf: &std::sync::Arc<crac_replay::DevicePrintf>) -> Program {
        let sim = crac_sim::Sim::new(256 << 20);
        sim.set_printf(Box::new(printf.writer()));
        Program::over(Runtime::new(Box::new(sim)).with_device_printf(printf.clone()))
    }

    /// A program over `rt`.
    pub fn over(rt: Runtime) -> Program {
        Program {
            rt,
            mem: BufferMemory::new(BASE, 64 << 20),
            next: AtomicU64::new(BASE + 0x1000),
        }
    }

    /// `len` zeroed bytes of program memory, 16-byte aligned.
    pub fn alloc(&self, len: u64) -> u64 {
        self.next
            .fetch_add(len.next_multiple_of(16).max(16), Ordering::Relaxed)
    }

    /// `data` placed in program memory.
    pub fn put(&self, data: &[u8]) -> u64 {
        let at = self.alloc(data.len() as u64);
        self.mem.write(at, data).expect("write program memory");
        at
    }

    /// A NUL-terminated string in program memory.
    pub fn cstr(&self, s: &str) -> u64 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(&b)
    }

    pub fn get(&self, at: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.mem.read(at, &mut b).expect("read program memory");
        b
    }

    pub fn u64_at(&self, at: u64) -> u64 {
        u64::from_le_bytes(self.get(at, 8).try_into().expect("8 bytes"))
    }

    pub fn i32_at(&self, at: u64) -> i32 {
        i32::from_le_bytes(self.get(at, 4).try_into().expect("4 bytes"))
    }

    /// Calls `op` with `args` (the rest zero); returns the cudaError_t.
    pub fn call(&self, op: Op, args: &[u64]) -> u32 {
        let mut a = [0u64; MAX_ARGS];
        a[..args.len()].copy_from_slice(args);
        self.rt.call(op as u32, &a, &self.mem)
    }

    /// Calls `op`, which must succeed.
    pub fn ok(&self, op: Op, args: &[u64]) {
        assert_eq!(self.call(op, args), 0, "{op:?} failed");
    }

    /// Calls an op whose first argument is an out-pointer to a u64; returns what it wrote.
    pub fn out_u64(&self, op: Op, rest: &[u64]) -> u64 {
        let out = self.alloc(8);
        let mut args = vec![out];
        args.extend_from_slice(rest);
        self.ok(op, &args);
        self.u64_at(out)
    }

    /// Waits for the next due host callback and returns its record's bytes.
    pub fn next_callback(&self) -> Vec<u8> {
        let size = std::mem::size_of::<crac_abi::HostCallback>();
        let cb = self.alloc(size as u64);
        loop {
            match self.call(Op::HostCallbackNext, &[cb]) {
                0 => return self.get(cb, size),
                // cudaErrorNotReady: nothing due yet.
                600 => continue,
                e => panic!("callback_next failed with {e}"),
            }
        }
    }

    /// Registers the fat binary `fatbin` as nvcc's constructor does; returns the handle.
    pub fn register_fatbin(&self, fatbin: &[u8]) -> u64 {
        let data = self.put(fatbin);
        let mut wrapper = 0x4662_43B1u32.to_le_bytes().to_vec();
        wrapper.extend(1u32.to_le_bytes());
        wrapper.extend(data.to_le_bytes());
        wrapper.extend(0u64.to_le_bytes());
        let wrapper = self.put(&wrapper);
        self.out_u64(Op::RegisterFatBinary, &[wrapper])
    }

    /// Registers kernel `name` of `handle` under a fresh host stub address; returns the stub.
    pub fn register_kernel(&self, handle: u64, name: &str) -> u64 {
        let stub = self.alloc(16);
        let n = self.cstr(name);
        self.ok(
            Op::RegisterFunction,
            &[handle, stub, n, n, u64::MAX, 0, 0, 0, 0, 0],
        );
        stub
    }

    /// Registers variable `name` of `handle` under a fresh host shadow of `size` bytes.
    pub fn register_var(&self, handle: u64, name: &str, size: u64, constant: bool) -> u64 {
        let shadow = self.alloc(size);
        let n = self.cstr(name);
        self.ok(
            Op::RegisterVar,
            &[handle, shadow, n, n, 0, size, u64::from(constant), 0],
        );
        shadow
    }

    /// `cudaMalloc`.
    pub fn malloc(&self, size: u64) -> u64 {
        self.out_u64(Op::Malloc, &[size])
    }

    /// Launches `stub` on a 1-D grid with the parameter values `params` (each placed in
    /// program memory, pointed to by a `void **` array); returns the error.
    pub fn launch(&self, stub: u64, grid: u32, block: u32, params: &[&[u8]], stream: u64) -> u32 {
        let mut ptrs = Vec::new();
        for p in params {
            ptrs.extend(self.put(p).to_le_bytes());
        }
        let args = if ptrs.is_empty() { 0 } else { self.put(&ptrs) };
        let g = crac_abi::Dim3 {
            x: grid,
            y: 1,
            z: 1,
        }
        .words();
        let b = crac_abi::Dim3 {
            x: block,
            y: 1,
            z: 1,
        }
        .words();
        self.call(
            Op::LaunchKernel,
            &[stub, g[0], g[1], b[0], b[1], args, 0, stream],
        )
    }
}

pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// A checkpoint's device part and the saved bytes of each region.
pub struct Saved {
    pub snapshot: crac_replay::Snapshot,
    pub contents: Vec<Vec<u8>>,
}

impl Program {
    /// What a checkpoint takes: drain the device, snapshot, read every region.
    pub fn checkpoint(&self) -> Saved {
        self.rt.synchronize_all().expect("drain the device");
        let snapshot = self.rt.snapshot().expect("snapshot");
        let contents = snapshot
            .buffers
            .iter()
            .map(|r| {
                let mut b = vec![0u8; r.len as usize];
                self.rt
                    .backend()
                    .read_device(crac_gpu::DevicePtr(r.addr), &mut b)
                    .expect("read a region");
                b
            })
            .collect();
        Saved { snapshot, contents }
    }

    /// What a restart does, onto `backend`: replay the log (program memory is kept, as a
    /// restart maps it back first), write every region back, and use the new runtime.
    pub fn restore_onto(
        &mut self,
        saved: &Saved,
        backend: Box<dyn crac_gpu::DeviceBackend>,
    ) -> Result<(), crac_replay::ReplayError> {
        let printf = std::sync::Arc::default();
        let rt = Runtime::restore(backend, printf, &saved.snapshot.log, &self.mem)?;
        for (r, bytes) in saved.snapshot.buffers.iter().zip(&saved.contents) {
            rt.backend()
                .write_device(crac_gpu::DevicePtr(r.addr), bytes)
                .expect("write a region back");
        }
        self.rt = rt;
        Ok(())
    }

    /// Checkpoint, then restart onto a fresh sim device with the same window.
    pub fn restart(&mut self) -> Saved {
        let saved = self.checkpoint();
        self.restore_onto(&saved, Box::new(crac_sim::Sim::new(256 << 20)))
            .expect("restore");
        saved
    }
}
