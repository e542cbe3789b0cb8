//! The neutral `#[repr(C)]` structs of `crac_abi` as bytes, for writing into the program's
//! memory: each field at its `offset_of!`, so the bytes match the compiler's layout without
//! any unsafe code.

use std::mem::{offset_of, size_of};

use crac_abi::{DeviceProps, FuncAttributes, HostCallback, PointerAttributes};

/// A zeroed byte image of one struct, filled field by field.
struct Image(Vec<u8>);

impl Image {
    fn of<T>() -> Image {
        Image(vec![0; size_of::<T>()])
    }

    fn bytes(&mut self, at: usize, b: &[u8]) {
        self.0[at..at + b.len()].copy_from_slice(b);
    }

    fn u32(&mut self, at: usize, v: u32) {
        self.bytes(at, &v.to_le_bytes());
    }

    fn i32(&mut self, at: usize, v: i32) {
        self.bytes(at, &v.to_le_bytes());
    }

    fn u64(&mut self, at: usize, v: u64) {
        self.bytes(at, &v.to_le_bytes());
    }

    fn u32s(&mut self, at: usize, v: &[u32]) {
        for (i, x) in v.iter().enumerate() {
            self.u32(at + 4 * i, *x);
        }
    }
}

/// The bytes of the struct `$ty`: each `kind field: value` line writes `value` with
/// `Image::kind` at `offset_of!($ty, field)`; fields not named stay zero.
macro_rules! image {
    ($ty:ty { $($kind:ident $field:ident: $value:expr),* $(,)? }) => {{
        let mut img = Image::of::<$ty>();
        $(img.$kind(offset_of!($ty, $field), $value);)*
        img.0
    }};
}

/// `crac_abi::DeviceProps` filled from the backend's properties.
pub(crate) fn device_props(p: &crac_gpu::DeviceProps) -> Vec<u8> {
    let mut name = [0u8; 256];
    let n = p.name.len().min(255);
    name[..n].copy_from_slice(&p.name.as_bytes()[..n]);
    let b = u32::from;
    let [pci_domain, pci_bus, pci_device] = p.pci_domain_bus_device;
    let (priority_least, priority_greatest) = p.stream_priority_range;
    image!(DeviceProps {
        bytes name: &name,
        bytes uuid: &p.uuid,
        u64 total_global_mem: p.total_global_mem,
        u64 shared_mem_per_block: p.shared_mem_per_block,
        u64 shared_mem_per_block_optin: p.shared_mem_per_block_optin,
        u64 shared_mem_per_multiprocessor: p.shared_mem_per_multiprocessor,
        u64 mem_pitch: p.mem_pitch,
        u64 total_const_mem: p.total_const_mem,
        u64 texture_alignment: p.texture_alignment,
        u32 regs_per_block: p.regs_per_block,
        u32 regs_per_multiprocessor: p.regs_per_multiprocessor,
        u32 warp_size: p.warp_size,
        u32 max_threads_per_block: p.max_threads_per_block,
        u32s max_threads_dim: &p.max_threads_dim,
        u32s max_grid_size: &p.max_grid_size,
        u32 max_threads_per_multiprocessor: p.max_threads_per_multiprocessor,
        u32 max_blocks_per_multiprocessor: p.max_blocks_per_multiprocessor,
        u32 major: p.major,
        u32 minor: p.minor,
        u32 clock_rate_khz: p.clock_rate_khz,
        u32 memory_clock_rate_khz: p.memory_clock_rate_khz,
        u32 memory_bus_width: p.memory_bus_width,
        u32 l2_cache_size: p.l2_cache_size,
        u32 multiprocessor_count: p.multiprocessor_count,
        u32 concurrent_kernels: b(p.concurrent_kernels),
        u32 async_engine_count: p.async_engine_count,
        u32 unified_addressing: b(p.unified_addressing),
        u32 managed_memory: b(p.managed_memory),
        u32 can_map_host_memory: b(p.can_map_host_memory),
        u32 integrated: b(p.integrated),
        u32 ecc_enabled: b(p.ecc_enabled),
        u32 pci_domain_id: pci_domain,
        u32 pci_bus_id: pci_bus,
        u32 pci_device_id: pci_device,
        i32 stream_priority_least: priority_least,
        i32 stream_priority_greatest: priority_greatest,
    })
}

/// `crac_abi::FuncAttributes` from the backend's.
pub(crate) fn func_attributes(a: &crac_gpu::FuncAttributes) -> Vec<u8> {
    let max_dynamic_shared = u32::try_from(a.max_dynamic_shared_size_bytes).unwrap_or(u32::MAX);
    image!(FuncAttributes {
        u64 shared_size_bytes: a.shared_size_bytes,
        u64 const_size_bytes: a.const_size_bytes,
        u64 local_size_bytes: a.local_size_bytes,
        u32 max_threads_per_block: a.max_threads_per_block,
        u32 num_regs: a.num_regs,
        u32 ptx_version: a.ptx_version,
        u32 binary_version: a.binary_version,
        u32 max_dynamic_shared_size_bytes: max_dynamic_shared,
        i32 preferred_shmem_carveout: -1,
    })
}

/// `crac_abi::PointerAttributes`.
pub(crate) fn pointer_attributes(a: &PointerAttributes) -> Vec<u8> {
    image!(PointerAttributes {
        u32 memory_type: a.memory_type,
        i32 device: a.device,
        u64 device_pointer: a.device_pointer,
        u64 host_pointer: a.host_pointer,
    })
}

/// `crac_abi::HostCallback`.
pub(crate) fn host_callback(c: &HostCallback) -> Vec<u8> {
    image!(HostCallback {
        u64 func: c.func,
        u64 user_data: c.user_data,
        u64 stream: c.stream,
        u64 token: c.token,
        u32 kind: c.kind,
        u32 status: c.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_have_the_struct_sizes_and_fields_where_the_compiler_puts_them() {
        let p = crac_gpu::DeviceProps::sim(1 << 30);
        let img = device_props(&p);
        assert_eq!(img.len(), size_of::<DeviceProps>());
        assert_eq!(&img[..p.name.len()], p.name.as_bytes());
        assert_eq!(img[p.name.len()], 0);
        let at = offset_of!(DeviceProps, warp_size);
        assert_eq!(&img[at..at + 4], &32u32.to_le_bytes());
        let at = offset_of!(DeviceProps, stream_priority_greatest);
        assert_eq!(&img[at..at + 4], &(-5i32).to_le_bytes());

        let cb = HostCallback {
            func: 1,
            user_data: 2,
            stream: 3,
            token: 4,
            kind: 5,
            status: 6,
        };
        let img = host_callback(&cb);
        assert_eq!(img.len(), size_of::<HostCallback>());
        assert_eq!(
            &img[offset_of!(HostCallback, status)..][..4],
            &6u32.to_le_bytes()
        );
        assert_eq!(
            func_attributes(&Default::default()).len(),
            size_of::<FuncAttributes>()
        );
        assert_eq!(
            pointer_attributes(&Default::default()).len(),
            size_of::<PointerAttributes>()
        );
    }
}
