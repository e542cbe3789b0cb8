//! Plain C data the operations pass by pointer: neutral forms of the CUDA structs whose layout
//! differs between CUDA 12 and 13 (the shim converts to its own major's layout), `dim3`, and
//! the host-callback record.
//!
//! Booleans are `u32` 0 or 1; nothing here has padding the two sides could read differently.

/// A `cudaStream_t` as it crosses: `0`/`1` the legacy default stream, `2` the per-thread one.
pub type StreamHandle = u64;

/// A `cudaEvent_t` as it crosses.
pub type EventHandle = u64;

/// CUDA's `dim3` (also `uint3`): passed by value it takes two argument words, `x | (y << 32)`
/// then `z`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dim3 {
    /// x extent.
    pub x: u32,
    /// y extent.
    pub y: u32,
    /// z extent.
    pub z: u32,
}

impl Dim3 {
    /// The two argument words of a by-value `dim3`.
    pub fn words(self) -> [u64; 2] {
        [
            u64::from(self.x) | (u64::from(self.y) << 32),
            u64::from(self.z),
        ]
    }

    /// The `dim3` from its two argument words.
    pub fn from_words(xy: u64, z: u64) -> Dim3 {
        Dim3 {
            x: (xy & 0xffff_ffff) as u32,
            y: (xy >> 32) as u32,
            z: (z & 0xffff_ffff) as u32,
        }
    }
}

/// What `cudaGetDeviceProperties` reports, independent of the CUDA major version. Fields CUDA's
/// `cudaDeviceProp` has and this lacks are zero in the program's struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceProps {
    /// NUL-terminated marketing name.
    pub name: [u8; 256],
    /// 16-byte device UUID.
    pub uuid: [u8; 16],
    /// Bytes of global memory.
    pub total_global_mem: u64,
    /// Bytes of shared memory per block without opting in.
    pub shared_mem_per_block: u64,
    /// Bytes of shared memory per block with opt-in.
    pub shared_mem_per_block_optin: u64,
    /// Bytes of shared memory per multiprocessor.
    pub shared_mem_per_multiprocessor: u64,
    /// Largest pitch `cudaMallocPitch` allows.
    pub mem_pitch: u64,
    /// Bytes of constant memory.
    pub total_const_mem: u64,
    /// Alignment for textures.
    pub texture_alignment: u64,
    /// 32-bit registers per block.
    pub regs_per_block: u32,
    /// 32-bit registers per multiprocessor.
    pub regs_per_multiprocessor: u32,
    /// Threads per warp.
    pub warp_size: u32,
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
    /// Compute capability, major.
    pub major: u32,
    /// Compute capability, minor.
    pub minor: u32,
    /// Core clock in kHz (reported by `cudaDeviceGetAttribute` only in CUDA 13).
    pub clock_rate_khz: u32,
    /// Memory clock in kHz.
    pub memory_clock_rate_khz: u32,
    /// Memory bus width in bits.
    pub memory_bus_width: u32,
    /// Bytes of L2 cache.
    pub l2_cache_size: u32,
    /// Multiprocessors.
    pub multiprocessor_count: u32,
    /// Whether kernels of different streams may run concurrently (0/1).
    pub concurrent_kernels: u32,
    /// Copy engines.
    pub async_engine_count: u32,
    /// Whether the device shares one address space with the host (0/1).
    pub unified_addressing: u32,
    /// Whether `cudaMallocManaged` is supported (0/1).
    pub managed_memory: u32,
    /// Whether host memory can be mapped into the device's address space (0/1).
    pub can_map_host_memory: u32,
    /// Whether the device is integrated (0/1).
    pub integrated: u32,
    /// Whether ECC is on (0/1).
    pub ecc_enabled: u32,
    /// PCI domain id.
    pub pci_domain_id: u32,
    /// PCI bus id.
    pub pci_bus_id: u32,
    /// PCI device id.
    pub pci_device_id: u32,
    /// Least stream priority (numerically the largest).
    pub stream_priority_least: i32,
    /// Greatest stream priority (numerically the smallest).
    pub stream_priority_greatest: i32,
}

impl DeviceProps {
    /// All zero (the lower half fills it).
    pub const fn zeroed() -> DeviceProps {
        DeviceProps {
            name: [0; 256],
            uuid: [0; 16],
            total_global_mem: 0,
            shared_mem_per_block: 0,
            shared_mem_per_block_optin: 0,
            shared_mem_per_multiprocessor: 0,
            mem_pitch: 0,
            total_const_mem: 0,
            texture_alignment: 0,
            regs_per_block: 0,
            regs_per_multiprocessor: 0,
            warp_size: 0,
            max_threads_per_block: 0,
            max_threads_dim: [0; 3],
            max_grid_size: [0; 3],
            max_threads_per_multiprocessor: 0,
            max_blocks_per_multiprocessor: 0,
            major: 0,
            minor: 0,
            clock_rate_khz: 0,
            memory_clock_rate_khz: 0,
            memory_bus_width: 0,
            l2_cache_size: 0,
            multiprocessor_count: 0,
            concurrent_kernels: 0,
            async_engine_count: 0,
            unified_addressing: 0,
            managed_memory: 0,
            can_map_host_memory: 0,
            integrated: 0,
            ecc_enabled: 0,
            pci_domain_id: 0,
            pci_bus_id: 0,
            pci_device_id: 0,
            stream_priority_least: 0,
            stream_priority_greatest: 0,
        }
    }
}

/// What `cudaFuncGetAttributes` reports, independent of the CUDA major version.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FuncAttributes {
    /// Bytes of static shared memory.
    pub shared_size_bytes: u64,
    /// Bytes of constant memory.
    pub const_size_bytes: u64,
    /// Bytes of local memory per thread.
    pub local_size_bytes: u64,
    /// Most threads per block this kernel can be launched with.
    pub max_threads_per_block: u32,
    /// Registers per thread.
    pub num_regs: u32,
    /// PTX version times ten.
    pub ptx_version: u32,
    /// Binary architecture times ten.
    pub binary_version: u32,
    /// Most dynamic shared memory a launch may ask for.
    pub max_dynamic_shared_size_bytes: u32,
    /// Preferred shared-memory carveout in percent (-1 none).
    pub preferred_shmem_carveout: i32,
}

/// What `cudaPointerGetAttributes` reports (`memory_type`: 0 unregistered, 1 host, 2 device,
/// 3 managed, as `cudaMemoryType`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PointerAttributes {
    /// `cudaMemoryType`.
    pub memory_type: u32,
    /// Device ordinal (-2 for unregistered host memory, as CUDA reports).
    pub device: i32,
    /// Address the device sees (0 if none).
    pub device_pointer: u64,
    /// Address the host sees (0 if none).
    pub host_pointer: u64,
}

/// `HostCallback::kind`: `void (*)(void *user_data)` (`cudaLaunchHostFunc`).
pub const CALLBACK_HOST_FUNC: u32 = 0;
/// `HostCallback::kind`: `void (*)(cudaStream_t, cudaError_t, void *user_data)`
/// (`cudaStreamAddCallback`).
pub const CALLBACK_STREAM: u32 = 1;

/// One host callback that is due, filled by `__crac_host_callback_next`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCallback {
    /// The program's function, as it passed it.
    pub func: u64,
    /// The program's `user_data`.
    pub user_data: u64,
    /// The stream it was queued on, as the program named it.
    pub stream: u64,
    /// Identifies the callback to `__crac_host_callback_done`.
    pub token: u64,
    /// [`CALLBACK_HOST_FUNC`] or [`CALLBACK_STREAM`].
    pub kind: u32,
    /// `cudaError_t` passed to a stream callback (the stream's error so far, or 0).
    pub status: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dim3_words_round_trip() {
        let d = Dim3 {
            x: 0xdead_beef,
            y: 7,
            z: u32::MAX,
        };
        let [a, b] = d.words();
        assert_eq!(Dim3::from_words(a, b), d);
        assert_eq!(a, 0x7_dead_beef);
    }

    #[test]
    fn dim3_is_twelve_bytes_like_c() {
        assert_eq!(std::mem::size_of::<Dim3>(), 12);
        assert_eq!(std::mem::align_of::<Dim3>(), 4);
    }
}
