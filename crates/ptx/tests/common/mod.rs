//! A simple in-test device: allocations in a map, module variables allocated from their
//! initializers, and a builder that packs parameters.
#![allow(dead_code, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::HashMap;

use crac_ptx::{DeviceMemory, Fault, LaunchDims, LaunchError, LaunchStats, Module};

/// Device memory made of separate allocations.
#[derive(Default)]
pub struct Mem {
    allocs: Vec<(u64, Vec<u8>)>,
    next: u64,
}

impl Mem {
    pub fn alloc(&mut self, bytes: &[u8]) -> u64 {
        if self.next == 0 {
            self.next = 0x7f00_0000_0000;
        }
        let base = self.next;
        self.next += (bytes.len() as u64).div_ceil(256) * 256 + 256;
        self.allocs.push((base, bytes.to_vec()));
        base
    }
    fn find(&self, addr: u64, len: usize) -> Option<(usize, usize)> {
        self.allocs.iter().enumerate().find_map(|(i, (b, v))| {
            (addr >= *b && addr - b + len as u64 <= v.len() as u64)
                .then(|| (i, (addr - b) as usize))
        })
    }
    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let (i, o) = self.find(addr, len).unwrap();
        self.allocs[i].1[o..o + len].to_vec()
    }
    pub fn f32s(&self, addr: u64, n: usize) -> Vec<f32> {
        self.get(addr, n * 4)
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub fn f64s(&self, addr: u64, n: usize) -> Vec<f64> {
        self.get(addr, n * 8)
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub fn u32s(&self, addr: u64, n: usize) -> Vec<u32> {
        self.get(addr, n * 4)
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    pub fn i32s(&self, addr: u64, n: usize) -> Vec<i32> {
        self.u32s(addr, n).into_iter().map(|v| v as i32).collect()
    }
}

impl DeviceMemory for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let (i, o) = self.find(addr, buf.len()).ok_or(Fault {
            addr,
            len: buf.len() as u64,
        })?;
        buf.copy_from_slice(&self.allocs[i].1[o..o + buf.len()]);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let (i, o) = self.find(addr, data.len()).ok_or(Fault {
            addr,
            len: data.len() as u64,
        })?;
        self.allocs[i].1[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
}

pub fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn bytes_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Packs kernel parameters with natural alignment.
#[derive(Default)]
pub struct Params(pub Vec<u8>);

impl Params {
    fn push(mut self, b: &[u8]) -> Self {
        while self.0.len() % b.len() != 0 {
            self.0.push(0);
        }
        self.0.extend_from_slice(b);
        self
    }
    pub fn u64(self, v: u64) -> Self {
        self.push(&v.to_le_bytes())
    }
    pub fn u32(self, v: u32) -> Self {
        self.push(&v.to_le_bytes())
    }
    pub fn i32(self, v: i32) -> Self {
        self.push(&v.to_le_bytes())
    }
    pub fn f32(self, v: f32) -> Self {
        self.push(&v.to_le_bytes())
    }
    pub fn f64(self, v: f64) -> Self {
        self.push(&v.to_le_bytes())
    }
}

/// A module loaded on a [`Mem`], its variables allocated.
pub struct Dev {
    pub module: Module,
    pub mem: Mem,
    pub syms: HashMap<String, u64>,
    pub out: Vec<u8>,
}

impl Dev {
    pub fn new(ptx: &str) -> Dev {
        let module = Module::parse(ptx).unwrap();
        let mut mem = Mem::default();
        let mut syms = HashMap::new();
        for v in module.variables() {
            syms.insert(v.name.clone(), mem.alloc(&v.init));
        }
        for v in module.variables() {
            for r in &v.relocs {
                let at = syms[&v.name] + r.offset;
                let val = syms[&r.symbol].wrapping_add(r.addend as u64);
                mem.write(at, &val.to_le_bytes()).unwrap();
            }
        }
        Dev {
            module,
            mem,
            syms,
            out: Vec::new(),
        }
    }

    pub fn launch(
        &mut self,
        kernel: &str,
        grid: [u32; 3],
        block: [u32; 3],
        dynamic_shared: u32,
        params: Params,
    ) -> Result<LaunchStats, LaunchError> {
        let dims = LaunchDims {
            grid,
            block,
            dynamic_shared,
        };
        let syms = &self.syms;
        crac_ptx::launch(
            &self.module,
            kernel,
            &dims,
            &params.0,
            &|n| syms.get(n).copied(),
            &mut self.mem,
            &mut self.out,
        )
    }
}

pub const KERNELS_SM75: &str = include_str!("../data/kernels_sm75.ptx");
pub const KERNELS_SM90: &str = include_str!("../data/kernels_sm90.ptx");
