//! Support shared by the `sim` device's kernel tests: builds the CUDA kernels in
//! `tests/cuda/kernels/` with nvcc (see [`nvcc`]) and drives the [`Sim`] device through the
//! `crac_gpu` trait exactly as the cudart shim does: register the fat binary, look kernels and
//! variables up by mangled name, allocate, copy, launch with a packed parameter buffer,
//! synchronise, copy back.
//!
//! Each test binary includes this module with `mod common;` and uses a part of it.
#![allow(dead_code)]

pub mod nvcc;

pub use nvcc::{FatbinKind, fatbin};

use crac_gpu::{DeviceBackend, DevicePtr, FunctionId, LaunchConfig, ModuleId, Stream};
use crac_sim::Sim;

/// A value with a fixed little-endian byte form, as device memory stores it.
pub trait Scalar: Copy {
    /// Size in bytes.
    const SIZE: usize;
    /// Appends the value's bytes.
    fn put(self, out: &mut Vec<u8>);
    /// Reads a value from exactly `SIZE` bytes.
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("scalar byte count"))
            }
        }
    )*};
}
scalar!(u8, i8, u16, u32, i32, u64, i64, f32, f64);

/// The bytes of a slice of scalars.
pub fn to_bytes<T: Scalar>(data: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * T::SIZE);
    for &v in data {
        v.put(&mut out);
    }
    out
}

/// Scalars from bytes (the length must be a multiple of the scalar size).
pub fn from_bytes<T: Scalar>(bytes: &[u8]) -> Vec<T> {
    assert_eq!(
        bytes.len() % T::SIZE,
        0,
        "byte count is not a whole number of scalars"
    );
    bytes.chunks_exact(T::SIZE).map(T::get).collect()
}

/// One kernel argument, packed at the offset the kernel's parameter layout gives.
#[derive(Clone, Debug)]
pub enum Arg {
    /// `.u8`/`.s8`-sized argument (`char`).
    B8(u8),
    /// `.u16`/`.s16`-sized argument (`short`).
    B16(u16),
    /// `.u32`/`.s32`-sized argument.
    B32(u32),
    /// `.u64`/`.s64`/pointer-sized argument.
    B64(u64),
    /// Any other argument (a struct by value), as its bytes.
    Bytes(Vec<u8>),
}

impl Arg {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Arg::B8(v) => vec![*v],
            Arg::B16(v) => v.to_le_bytes().to_vec(),
            Arg::B32(v) => v.to_le_bytes().to_vec(),
            Arg::B64(v) => v.to_le_bytes().to_vec(),
            Arg::Bytes(v) => v.clone(),
        }
    }
}

impl From<u8> for Arg {
    fn from(v: u8) -> Arg {
        Arg::B8(v)
    }
}
impl From<i8> for Arg {
    fn from(v: i8) -> Arg {
        Arg::B8(v.to_le_bytes()[0])
    }
}
impl From<i16> for Arg {
    fn from(v: i16) -> Arg {
        Arg::B16(u16::from_le_bytes(v.to_le_bytes()))
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Arg {
        Arg::B32(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::B32(u32::from_le_bytes(v.to_le_bytes()))
    }
}
impl From<f32> for Arg {
    fn from(v: f32) -> Arg {
        Arg::B32(v.to_bits())
    }
}
impl From<u64> for Arg {
    fn from(v: u64) -> Arg {
        Arg::B64(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::B64(u64::from_le_bytes(v.to_le_bytes()))
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::B64(v.to_bits())
    }
}
impl From<DevicePtr> for Arg {
    fn from(v: DevicePtr) -> Arg {
        Arg::B64(v.0)
    }
}

/// A small deterministic generator (SplitMix64) for test inputs.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A float uniformly in `[lo, hi)` (24 random mantissa bits).
    pub fn f32_in(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// A double uniformly in `[lo, hi)` (53 random mantissa bits).
    pub fn f64_in(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    /// `n` floats in `[lo, hi)`.
    pub fn f32s(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32_in(lo, hi)).collect()
    }

    /// `n` random 32-bit values.
    pub fn u32s(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.next_u32()).collect()
    }
}

/// A 1-D launch shape: `grid` blocks of `block` threads, no dynamic shared memory, legacy
/// default stream.
pub fn dims1(grid: u32, block: u32) -> LaunchConfig {
    LaunchConfig {
        grid: [grid, 1, 1],
        block: [block, 1, 1],
        dynamic_shared: 0,
        stream: Stream::NULL,
    }
}

/// Blocks of `block` threads needed to cover `n` items.
pub fn blocks_for(n: usize, block: u32) -> u32 {
    u32::try_from(n.div_ceil(block as usize)).expect("grid fits in u32")
}

/// A `Sim` device plus the small conveniences the tests share. Everything goes through the
/// [`DeviceBackend`] trait ([`Gpu::dev`]).
pub struct Gpu {
    sim: Sim,
}

impl Gpu {
    /// A fresh `Sim` device with 256 MiB of memory.
    pub fn new() -> Gpu {
        Gpu {
            sim: Sim::new(256 << 20),
        }
    }

    /// The device, as the shim sees it.
    pub fn dev(&self) -> &dyn DeviceBackend {
        &self.sim
    }

    /// The concrete `Sim` (for what only the sim has, such as its printf writer).
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Registers `tests/cuda/kernels/<file>.cu` built as a compressed PTX-only fat binary.
    pub fn load(&self, file: &str) -> ModuleId {
        self.load_kind(file, FatbinKind::Ptx)
    }

    /// Registers `tests/cuda/kernels/<file>.cu` built as `kind`.
    pub fn load_kind(&self, file: &str, kind: FatbinKind) -> ModuleId {
        let image = fatbin(file, kind);
        self.dev()
            .register_fatbin(&image)
            .unwrap_or_else(|e| panic!("register the fat binary of {file}.cu: {e}"))
    }

    /// Looks a kernel up by its mangled name.
    pub fn func(&self, module: ModuleId, name: &str) -> FunctionId {
        self.dev()
            .register_function(module, name)
            .unwrap_or_else(|e| panic!("register function {name}: {e}"))
    }

    /// Registers `file` and looks `name` up in it.
    pub fn kernel(&self, file: &str, name: &str) -> FunctionId {
        let module = self.load(file);
        self.func(module, name)
    }

    /// Allocates device memory for `data` and copies it there (synchronously).
    pub fn upload<T: Scalar>(&self, data: &[T]) -> DevicePtr {
        let bytes = to_bytes(data);
        let ptr = self.alloc_bytes(bytes.len());
        self.dev()
            .memcpy_htod_sync(ptr, &bytes, Stream::NULL)
            .expect("copy host to device");
        ptr
    }

    /// Allocates `n` zeroed scalars of type `T`.
    pub fn zeroed<T: Scalar>(&self, n: usize) -> DevicePtr {
        let ptr = self.alloc_bytes(n * T::SIZE);
        self.dev()
            .memset_sync(ptr, 0, (n * T::SIZE) as u64, Stream::NULL)
            .expect("memset");
        ptr
    }

    /// Allocates `len` bytes (contents unspecified).
    pub fn alloc_bytes(&self, len: usize) -> DevicePtr {
        self.dev().malloc(len as u64).expect("device malloc")
    }

    /// Copies `n` scalars back from the device (synchronously, legacy stream).
    pub fn download<T: Scalar>(&self, ptr: DevicePtr, n: usize) -> Vec<T> {
        let mut bytes = vec![0u8; n * T::SIZE];
        self.dev()
            .memcpy_dtoh(&mut bytes, ptr, Stream::NULL)
            .expect("copy device to host");
        from_bytes(&bytes)
    }

    /// Packs `args` with the kernel's parameter layout, as the shim packs `void **args`: each
    /// argument at its layout offset; the argument's size must be the parameter's.
    pub fn pack(&self, function: FunctionId, args: &[Arg]) -> Vec<u8> {
        let layout = self
            .dev()
            .function_params(function)
            .expect("kernel parameter layout");
        assert_eq!(
            layout.len(),
            args.len(),
            "kernel takes {} parameters, test passes {}",
            layout.len(),
            args.len()
        );
        let end = layout.iter().map(|p| p.offset + p.size).max().unwrap_or(0);
        let mut buf = vec![0u8; usize::try_from(end).expect("parameter buffer size")];
        for (i, (p, a)) in layout.iter().zip(args).enumerate() {
            let bytes = a.bytes();
            assert_eq!(p.size, bytes.len() as u64, "parameter {i}: size mismatch");
            let at = usize::try_from(p.offset).expect("parameter offset");
            buf[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        buf
    }

    /// Launches `function` with `args` (no wait).
    pub fn launch(
        &self,
        function: FunctionId,
        config: &LaunchConfig,
        args: &[Arg],
    ) -> crac_gpu::Result<()> {
        let params = self.pack(function, args);
        self.dev().launch(function, config, &params)
    }

    /// Launches and waits, panicking with the device's error if either fails.
    pub fn run(&self, function: FunctionId, config: &LaunchConfig, args: &[Arg]) {
        self.launch(function, config, args).expect("launch");
        self.dev()
            .device_synchronize()
            .expect("kernel ran to completion");
    }
}
