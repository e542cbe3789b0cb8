//! The program's view of the structs whose layout differs between CUDA 12 and 13: each is
//! built here as bytes from the neutral `crac_abi` struct, by the offsets measured from the
//! headers (`generated.rs`, written by `gen/layouts.py`). Fields the neutral struct lacks stay
//! zero.

mod generated;

use crac_abi::{DeviceProps, FuncAttributes, PointerAttributes};

/// One field of a C struct.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Its name in the header.
    pub name: &'static str,
    /// Byte offset.
    pub offset: usize,
    /// Size in bytes (arrays whole).
    pub size: usize,
}

/// A C struct's size and the fields the shim fills.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// `sizeof`.
    pub size: usize,
    /// Fields, in header order.
    pub fields: &'static [Field],
}

/// The three layouts of one CUDA major version.
#[derive(Clone, Copy, Debug)]
pub struct Layouts {
    /// `cudaDeviceProp`.
    pub device_prop: Layout,
    /// `cudaFuncAttributes`.
    pub func_attributes: Layout,
    /// `cudaPointerAttributes`.
    pub pointer_attributes: Layout,
}

/// The layouts of CUDA `major` (12 or 13; anything else gets 13's).
pub fn for_major(major: u32) -> Layouts {
    if major == 12 {
        Layouts {
            device_prop: generated::DEVICE_PROP_12,
            func_attributes: generated::FUNC_ATTRIBUTES_12,
            pointer_attributes: generated::POINTER_ATTRIBUTES_12,
        }
    } else {
        Layouts {
            device_prop: generated::DEVICE_PROP_13,
            func_attributes: generated::FUNC_ATTRIBUTES_13,
            pointer_attributes: generated::POINTER_ATTRIBUTES_13,
        }
    }
}

/// A struct being filled: zeroed bytes of the layout's size.
struct Builder {
    layout: Layout,
    bytes: Vec<u8>,
}

impl Builder {
    fn new(layout: Layout) -> Builder {
        Builder {
            layout,
            bytes: vec![0; layout.size],
        }
    }

    /// Writes `value` (little-endian, truncated or zero-extended to the field) to `name`, if
    /// this layout has that field.
    fn put(&mut self, name: &str, value: &[u8]) {
        if let Some(f) = self.layout.fields.iter().find(|f| f.name == name) {
            let n = f.size.min(value.len());
            self.bytes[f.offset..f.offset + n].copy_from_slice(&value[..n]);
        }
    }

    fn int(&mut self, name: &str, v: i64) {
        self.put(name, &v.to_le_bytes());
    }

    fn ints(&mut self, name: &str, vs: &[u32]) {
        let b: Vec<u8> = vs.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.put(name, &b);
    }
}

/// `cudaDeviceProp` bytes for `p`.
pub fn device_prop(layout: Layout, p: &DeviceProps) -> Vec<u8> {
    let mut b = Builder::new(layout);
    let mut name = p.name;
    name[255] = 0;
    b.put("name", &name);
    b.put("uuid", &p.uuid);
    let w = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    b.int("totalGlobalMem", w(p.total_global_mem));
    b.int("sharedMemPerBlock", w(p.shared_mem_per_block));
    b.int("regsPerBlock", i64::from(p.regs_per_block));
    b.int("warpSize", i64::from(p.warp_size));
    b.int("memPitch", w(p.mem_pitch));
    b.int("maxThreadsPerBlock", i64::from(p.max_threads_per_block));
    b.ints("maxThreadsDim", &p.max_threads_dim);
    b.ints("maxGridSize", &p.max_grid_size);
    b.int("clockRate", i64::from(p.clock_rate_khz));
    b.int("totalConstMem", w(p.total_const_mem));
    b.int("major", i64::from(p.major));
    b.int("minor", i64::from(p.minor));
    b.int("textureAlignment", w(p.texture_alignment));
    b.int("texturePitchAlignment", 32);
    b.int("deviceOverlap", i64::from(p.async_engine_count > 0));
    b.int("multiProcessorCount", i64::from(p.multiprocessor_count));
    b.int("integrated", i64::from(p.integrated));
    b.int("canMapHostMemory", i64::from(p.can_map_host_memory));
    b.int("concurrentKernels", i64::from(p.concurrent_kernels));
    b.int("ECCEnabled", i64::from(p.ecc_enabled));
    b.int("pciBusID", i64::from(p.pci_bus_id));
    b.int("pciDeviceID", i64::from(p.pci_device_id));
    b.int("pciDomainID", i64::from(p.pci_domain_id));
    b.int("asyncEngineCount", i64::from(p.async_engine_count));
    b.int("unifiedAddressing", i64::from(p.unified_addressing));
    b.int("memoryClockRate", i64::from(p.memory_clock_rate_khz));
    b.int("memoryBusWidth", i64::from(p.memory_bus_width));
    b.int("l2CacheSize", i64::from(p.l2_cache_size));
    b.int(
        "maxThreadsPerMultiProcessor",
        i64::from(p.max_threads_per_multiprocessor),
    );
    b.int(
        "streamPrioritiesSupported",
        i64::from(p.stream_priority_least != p.stream_priority_greatest),
    );
    b.int("globalL1CacheSupported", 1);
    b.int("localL1CacheSupported", 1);
    b.int(
        "sharedMemPerMultiprocessor",
        w(p.shared_mem_per_multiprocessor),
    );
    b.int(
        "regsPerMultiprocessor",
        i64::from(p.regs_per_multiprocessor),
    );
    b.int("managedMemory", i64::from(p.managed_memory));
    b.int("sharedMemPerBlockOptin", w(p.shared_mem_per_block_optin));
    b.int(
        "maxBlocksPerMultiProcessor",
        i64::from(p.max_blocks_per_multiprocessor),
    );
    b.int("hostRegisterSupported", 1);
    b.int("hostNumaId", -1);
    b.bytes
}

/// `cudaFuncAttributes` bytes for `a`.
pub fn func_attributes(layout: Layout, a: &FuncAttributes) -> Vec<u8> {
    let mut b = Builder::new(layout);
    let w = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    b.int("sharedSizeBytes", w(a.shared_size_bytes));
    b.int("constSizeBytes", w(a.const_size_bytes));
    b.int("localSizeBytes", w(a.local_size_bytes));
    b.int("maxThreadsPerBlock", i64::from(a.max_threads_per_block));
    b.int("numRegs", i64::from(a.num_regs));
    b.int("ptxVersion", i64::from(a.ptx_version));
    b.int("binaryVersion", i64::from(a.binary_version));
    b.int(
        "maxDynamicSharedSizeBytes",
        i64::from(a.max_dynamic_shared_size_bytes),
    );
    b.int(
        "preferredShmemCarveout",
        i64::from(a.preferred_shmem_carveout),
    );
    b.bytes
}

/// `cudaPointerAttributes` bytes for `a`.
pub fn pointer_attributes(layout: Layout, a: &PointerAttributes) -> Vec<u8> {
    let mut b = Builder::new(layout);
    b.int("type", i64::from(a.memory_type));
    b.int("device", i64::from(a.device));
    b.int(
        "devicePointer",
        i64::try_from(a.device_pointer).unwrap_or(0),
    );
    b.int("hostPointer", i64::try_from(a.host_pointer).unwrap_or(0));
    b.bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(l: Layout, name: &str) -> Field {
        *l.fields.iter().find(|f| f.name == name).unwrap()
    }

    fn read_i32(bytes: &[u8], f: Field) -> i32 {
        i32::from_le_bytes(bytes[f.offset..f.offset + 4].try_into().unwrap())
    }

    #[test]
    fn device_prop_fields_land_where_each_header_has_them() {
        let mut p = DeviceProps::zeroed();
        p.name[..4].copy_from_slice(b"test");
        p.major = 8;
        p.warp_size = 32;
        p.max_grid_size = [7, 8, 9];
        p.clock_rate_khz = 1234;
        for major in [12, 13] {
            let l = for_major(major).device_prop;
            let bytes = device_prop(l, &p);
            assert_eq!(bytes.len(), l.size);
            assert_eq!(&bytes[..5], b"test\0");
            assert_eq!(read_i32(&bytes, field(l, "major")), 8);
            assert_eq!(read_i32(&bytes, field(l, "warpSize")), 32);
            let g = field(l, "maxGridSize");
            assert_eq!(
                read_i32(&bytes[g.offset + 8..], Field { offset: 0, ..g }),
                9
            );
        }
        // clockRate exists only in CUDA 12's struct.
        let l12 = for_major(12).device_prop;
        assert_eq!(
            read_i32(&device_prop(l12, &p), field(l12, "clockRate")),
            1234
        );
        assert!(
            for_major(13)
                .device_prop
                .fields
                .iter()
                .all(|f| f.name != "clockRate")
        );
    }

    #[test]
    fn the_layouts_differ_between_majors_as_the_headers_do() {
        assert_ne!(
            for_major(12).device_prop.size,
            for_major(13).device_prop.size
        );
        assert_ne!(
            for_major(12).pointer_attributes.size,
            for_major(13).pointer_attributes.size
        );
    }

    #[test]
    fn pointer_attributes_fill_type_and_pointers() {
        let a = PointerAttributes {
            memory_type: 2,
            device: 0,
            device_pointer: 0x7e00_0000_0100,
            host_pointer: 0,
        };
        for major in [12, 13] {
            let l = for_major(major).pointer_attributes;
            let b = device_pointer_bytes(l, &a);
            let f = field(l, "devicePointer");
            assert_eq!(
                u64::from_le_bytes(b[f.offset..f.offset + 8].try_into().unwrap()),
                0x7e00_0000_0100
            );
            assert_eq!(read_i32(&b, field(l, "type")), 2);
        }
    }

    fn device_pointer_bytes(l: Layout, a: &PointerAttributes) -> Vec<u8> {
        pointer_attributes(l, a)
    }
}
