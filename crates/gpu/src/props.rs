//! Device properties: what `cudaGetDeviceProperties` and `cudaDeviceGetAttribute` report.

/// Properties of one device, with the fields `cudaDeviceProp` needs. The shim fills the C struct
/// from this; fields CUDA has and this lacks are zero there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProps {
    /// Marketing name (`cudaDeviceProp::name`, at most 255 bytes used).
    pub name: String,
    /// 16-byte device UUID.
    pub uuid: [u8; 16],
    /// Bytes of global memory.
    pub total_global_mem: u64,
    /// Bytes of shared memory per block without opting in.
    pub shared_mem_per_block: u64,
    /// Bytes of shared memory per block with `cudaFuncAttributeMaxDynamicSharedMemorySize`.
    pub shared_mem_per_block_optin: u64,
    /// Bytes of shared memory per multiprocessor.
    pub shared_mem_per_multiprocessor: u64,
    /// 32-bit registers per block.
    pub regs_per_block: u32,
    /// 32-bit registers per multiprocessor.
    pub regs_per_multiprocessor: u32,
    /// Threads per warp.
    pub warp_size: u32,
    /// Largest pitch `cudaMallocPitch` allows.
    pub mem_pitch: u64,
    /// Most threads in one block.
    pub max_threads_per_block: u32,
    /// Most threads along x, y, z of a block.
    pub max_threads_dim: [u32; 3],
    /// Most blocks along x, y, z of a grid.
    pub max_grid_size: [u32; 3],
    /// Most resident threads per multiprocessor.
    pub max_threads_per_multiprocessor: u32,
    /// Most resident blocks per multiprocessor.
    pub max_blocks_per_multiprocessor: u32,
    /// Bytes of constant memory.
    pub total_const_mem: u64,
    /// Compute capability, major.
    pub major: u32,
    /// Compute capability, minor.
    pub minor: u32,
    /// Core clock in kHz.
    pub clock_rate_khz: u32,
    /// Memory clock in kHz.
    pub memory_clock_rate_khz: u32,
    /// Memory bus width in bits.
    pub memory_bus_width: u32,
    /// Bytes of L2 cache.
    pub l2_cache_size: u32,
    /// Alignment `cudaMalloc` guarantees and texture base addresses need.
    pub texture_alignment: u64,
    /// Multiprocessors on the device.
    pub multiprocessor_count: u32,
    /// Whether kernels from different streams may run concurrently.
    pub concurrent_kernels: bool,
    /// Copy engines (`asyncEngineCount`).
    pub async_engine_count: u32,
    /// Whether the device shares one address space with the host (UVA).
    pub unified_addressing: bool,
    /// Whether `cudaMallocManaged` is supported.
    pub managed_memory: bool,
    /// Whether host memory can be mapped into the device address space.
    pub can_map_host_memory: bool,
    /// Whether the device is integrated with the host memory.
    pub integrated: bool,
    /// Whether ECC is on.
    pub ecc_enabled: bool,
    /// PCI domain, bus and device ids.
    pub pci_domain_bus_device: [u32; 3],
    /// Stream priority range as (least, greatest); numerically the greatest is the smallest.
    pub stream_priority_range: (i32, i32),
}

impl DeviceProps {
    /// The compute capability as `major * 10 + minor` (e.g. 80 for 8.0), as PTX targets write it.
    pub fn sm(&self) -> u32 {
        self.major * 10 + self.minor
    }

    /// The properties of the `sim` CPU model: a modest sm_80-class device with `total_global_mem`
    /// bytes of memory. Limits match a real sm_80 part so programs take their usual paths.
    pub fn sim(total_global_mem: u64) -> DeviceProps {
        DeviceProps {
            name: "crac sim (CPU model of an sm_80 device)".into(),
            uuid: *b"crac-sim-device0",
            total_global_mem,
            shared_mem_per_block: 48 << 10,
            shared_mem_per_block_optin: 163 << 10,
            shared_mem_per_multiprocessor: 164 << 10,
            regs_per_block: 65536,
            regs_per_multiprocessor: 65536,
            warp_size: 32,
            mem_pitch: i32::MAX as u64,
            max_threads_per_block: 1024,
            max_threads_dim: [1024, 1024, 64],
            max_grid_size: [i32::MAX as u32, 65535, 65535],
            max_threads_per_multiprocessor: 2048,
            max_blocks_per_multiprocessor: 32,
            total_const_mem: 64 << 10,
            major: 8,
            minor: 0,
            clock_rate_khz: 1_410_000,
            memory_clock_rate_khz: 1_215_000,
            memory_bus_width: 5120,
            l2_cache_size: 40 << 20,
            texture_alignment: 512,
            multiprocessor_count: 4,
            concurrent_kernels: true,
            async_engine_count: 2,
            unified_addressing: true,
            managed_memory: false,
            can_map_host_memory: false,
            integrated: false,
            ecc_enabled: false,
            pci_domain_bus_device: [0, 0, 0],
            stream_priority_range: (0, -5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_props_are_sm80_shaped() {
        let p = DeviceProps::sim(1 << 30);
        assert_eq!(p.sm(), 80);
        assert_eq!(p.total_global_mem, 1 << 30);
        assert_eq!(p.warp_size, 32);
        assert!(
            p.max_threads_dim
                .iter()
                .all(|&d| d <= p.max_threads_per_block)
        );
        assert!(p.stream_priority_range.1 <= p.stream_priority_range.0);
    }
}
