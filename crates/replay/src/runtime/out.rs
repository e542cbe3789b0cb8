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

    fn bytes(&mut self, at: usize, b: &[u8]) -> &mut Image {
        self.0[at..at + b.len()].copy_from_slice(b);
        self
    }

    fn u32(&mut self, at: usize, v: u32) -> &mut Image {
        self.bytes(at, &v.to_le_bytes())
    }

    fn i32(&mut self, at: usize, v: i32) -> &mut Image {
        self.bytes(at, &v.to_le_bytes())
    }

    fn u64(&mut self, at: usize, v: u64) -> &mut Image {
        self.bytes(at, &v.to_le_bytes())
    }

    fn u32s(&mut self, at: usize, v: &[u32]) -> &mut Image {
        for (i, x) in v.iter().enumerate() {
            self.u32(at + 4 * i, *x);
        }
        self
    }
}

/// `crac_abi::DeviceProps` filled from the backend's properties.
pub(crate) fn device_props(p: &crac_gpu::DeviceProps) -> Vec<u8> {
    let mut name = [0u8; 256];
    let n = p.name.len().min(255);
    name[..n].copy_from_slice(&p.name.as_bytes()[..n]);
    let b = u32::from;
    let mut img = Image::of::<DeviceProps>();
    img.bytes(offset_of!(DeviceProps, name), &name)
        .bytes(offset_of!(DeviceProps, uuid), &p.uuid)
        .u64(
            offset_of!(DeviceProps, total_global_mem),
            p.total_global_mem,
        )
        .u64(
            offset_of!(DeviceProps, shared_mem_per_block),
            p.shared_mem_per_block,
        )
        .u64(
            offset_of!(DeviceProps, shared_mem_per_block_optin),
            p.shared_mem_per_block_optin,
        )
        .u64(
            offset_of!(DeviceProps, shared_mem_per_multiprocessor),
            p.shared_mem_per_multiprocessor,
        )
        .u64(offset_of!(DeviceProps, mem_pitch), p.mem_pitch)
        .u64(offset_of!(DeviceProps, total_const_mem), p.total_const_mem)
        .u64(
            offset_of!(DeviceProps, texture_alignment),
            p.texture_alignment,
        )
        .u32(offset_of!(DeviceProps, regs_per_block), p.regs_per_block)
        .u32(
            offset_of!(DeviceProps, regs_per_multiprocessor),
            p.regs_per_multiprocessor,
        )
        .u32(offset_of!(DeviceProps, warp_size), p.warp_size)
        .u32(
            offset_of!(DeviceProps, max_threads_per_block),
            p.max_threads_per_block,
        )
        .u32s(offset_of!(DeviceProps, max_threads_dim), &p.max_threads_dim)
        .u32s(offset_of!(DeviceProps, max_grid_size), &p.max_grid_size)
        .u32(
            offset_of!(DeviceProps, max_threads_per_multiprocessor),
            p.max_threads_per_multiprocessor,
        )
        .u32(
            offset_of!(DeviceProps, max_blocks_per_multiprocessor),
            p.max_blocks_per_multiprocessor,
        )
        .u32(offset_of!(DeviceProps, major), p.major)
        .u32(offset_of!(DeviceProps, minor), p.minor)
        .u32(offset_of!(DeviceProps, clock_rate_khz), p.clock_rate_khz)
        .u32(
            offset_of!(DeviceProps, memory_clock_rate_khz),
            p.memory_clock_rate_khz,
        )
        .u32(
            offset_of!(DeviceProps, memory_bus_width),
            p.memory_bus_width,
        )
        .u32(offset_of!(DeviceProps, l2_cache_size), p.l2_cache_size)
        .u32(
            offset_of!(DeviceProps, multiprocessor_count),
            p.multiprocessor_count,
        )
        .u32(
            offset_of!(DeviceProps, concurrent_kernels),
            b(p.concurrent_kernels),
        )
        .u32(
            offset_of!(DeviceProps, async_engine_count),
            p.async_engine_count,
        )
        .u32(
            offset_of!(DeviceProps, unified_addressing),
            b(p.unified_addressing),
        )
        .u32(offset_of!(DeviceProps, managed_memory), b(p.managed_memory))
        .u32(
            offset_of!(DeviceProps, can_map_host_memory),
            b(p.can_map_host_memory),
        )
        .u32(offset_of!(DeviceProps, integrated), b(p.integrated))
        .u32(offset_of!(DeviceProps, ecc_enabled), b(p.ecc_enabled))
        .u32(
            offset_of!(DeviceProps, pci_domain_id),
            p.pci_domain_bus_device[0],
        )
        .u32(
            offset_of!(DeviceProps, pci_bus_id),
            p.pci_domain_bus_device[1],
        )
        .u32(
            offset_of!(DeviceProps, pci_device_id),
            p.pci_domain_bus_device[2],
        )
        .i32(
            offset_of!(DeviceProps, stream_priority_least),
            p.stream_priority_range.0,
        )
        .i32(
            offset_of!(DeviceProps, stream_priority_greatest),
            p.stream_priority_range.1,
        );
    img.0
}

/// `crac_abi::FuncAttributes` from the backend's.
pub(crate) fn func_attributes(a: &crac_gpu::FuncAttributes) -> Vec<u8> {
    let mut img = Image::of::<FuncAttributes>();
    img.u64(
        offset_of!(FuncAttributes, shared_size_bytes),
        a.shared_size_bytes,
    )
    .u64(
        offset_of!(FuncAttributes, const_size_bytes),
        a.const_size_bytes,
    )
    .u64(
        offset_of!(FuncAttributes, local_size_bytes),
        a.local_size_bytes,
    )
    .u32(
        offset_of!(FuncAttributes, max_threads_per_block),
        a.max_threads_per_block,
    )
    .u32(offset_of!(FuncAttributes, num_regs), a.num_regs)
    .u32(offset_of!(FuncAttributes, ptx_version), a.ptx_version)
    .u32(offset_of!(FuncAttributes, binary_version), a.binary_version)
    .u32(
        offset_of!(FuncAttributes, max_dynamic_shared_size_bytes),
        u32::try_from(a.max_dynamic_shared_size_bytes).unwrap_or(u32::MAX),
    )
    .i32(offset_of!(FuncAttributes, preferred_shmem_carveout), -1);
    img.0
}

/// `crac_abi::PointerAttributes`.
pub(crate) fn pointer_attributes(a: &PointerAttributes) -> Vec<u8> {
    let mut img = Image::of::<PointerAttributes>();
    img.u32(offset_of!(PointerAttributes, memory_type), a.memory_type)
        .i32(offset_of!(PointerAttributes, device), a.device)
        .u64(
            offset_of!(PointerAttributes, device_pointer),
            a.device_pointer,
        )
        .u64(offset_of!(PointerAttributes, host_pointer), a.host_pointer);
    img.0
}

/// `crac_abi::HostCallback`.
pub(crate) fn host_callback(c: &HostCallback) -> Vec<u8> {
    let mut img = Image::of::<HostCallback>();
    img.u64(offset_of!(HostCallback, func), c.func)
        .u64(offset_of!(HostCallback, user_data), c.user_data)
        .u64(offset_of!(HostCallback, stream), c.stream)
        .u64(offset_of!(HostCallback, token), c.token)
        .u32(offset_of!(HostCallback, kind), c.kind)
        .u32(offset_of!(HostCallback, status), c.status);
    img.0
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
