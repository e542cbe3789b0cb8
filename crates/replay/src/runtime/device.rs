//! The device: properties, attributes, limits and flags, kernels' attributes, occupancy, and
//! the launch itself.

use std::sync::Mutex;

use crac_gpu::{DeviceProps, FuncAttributes, GpuError, LaunchConfig};

use super::{Runtime, lock};
use crate::host::HostMemory;

/// `cudaLimit` values a program may read back: stack size, printf FIFO, malloc heap,
/// sync depth, pending launches, L2 fetch granularity, persisting L2.
const LIMIT_DEFAULTS: [u64; 7] = [1024, 1 << 20, 8 << 20, 2, 2048, 64, 0];

/// What the program set on the device (flags, limits, cache preference).
#[derive(Debug)]
pub(crate) struct DeviceSettings {
    flags: Mutex<u32>,
    limits: Mutex<[u64; 7]>,
    cache_config: Mutex<i32>,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            flags: Mutex::new(0),
            limits: Mutex::new(LIMIT_DEFAULTS),
            cache_config: Mutex::new(0),
        }
    }
}

impl DeviceSettings {
    /// (flags, limits, cache preference), for the checkpoint's log.
    pub(crate) fn get(&self) -> (u32, Vec<u64>, i32) {
        (
            *lock(&self.flags),
            lock(&self.limits).to_vec(),
            *lock(&self.cache_config),
        )
    }

    /// Puts back what [`Self::get`] read (restart). Limits this build does not know are
    /// ignored; ones the log lacks keep their defaults.
    pub(crate) fn set(&self, flags: u32, limits: &[u64], cache_config: i32) {
        *lock(&self.flags) = flags;
        for (slot, v) in lock(&self.limits).iter_mut().zip(limits) {
            *slot = *v;
        }
        *lock(&self.cache_config) = cache_config;
    }
}

fn bad_limit(limit: i32) -> GpuError {
    GpuError::NotSupported(format!("cudaLimit {limit}"))
}

/// The one device ordinal crac drives.
fn check_ordinal(rt: &Runtime, device: i32) -> Result<u32, GpuError> {
    let count = rt.backend.device_count()?;
    match u32::try_from(device) {
        Ok(d) if d < count => Ok(d),
        _ => Err(GpuError::InvalidDevice(
            u32::try_from(device).unwrap_or(u32::MAX),
        )),
    }
}

/// `cudaDeviceGetAttribute` from the properties (`cudaDeviceAttr` numbers of driver_types.h).
pub(crate) fn attribute(p: &DeviceProps, attr: i32) -> Option<i64> {
    let u = |v: u32| Some(i64::from(v));
    let b = |v: bool| Some(i64::from(v));
    let big = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    match attr {
        1 => u(p.max_threads_per_block),
        2..=4 => u(p.max_threads_dim[usize::try_from(attr - 2).ok()?]),
        5..=7 => u(p.max_grid_size[usize::try_from(attr - 5).ok()?]),
        8 => big(p.shared_mem_per_block),
        9 => big(p.total_const_mem),
        10 => u(p.warp_size),
        11 => big(p.mem_pitch),
        12 => u(p.regs_per_block),
        13 => u(p.clock_rate_khz),
        14 => big(p.texture_alignment),
        15 => b(p.async_engine_count > 0),
        16 => u(p.multiprocessor_count),
        17 => Some(0),
        18 => b(p.integrated),
        19 => b(p.can_map_host_memory),
        20 => Some(0),
        30 => big(p.texture_alignment),
        31 => b(p.concurrent_kernels),
        32 => b(p.ecc_enabled),
        33 => u(p.pci_domain_bus_device[1]),
        34 => u(p.pci_domain_bus_device[2]),
        35 => Some(0),
        36 => u(p.memory_clock_rate_khz),
        37 => u(p.memory_bus_width),
        38 => u(p.l2_cache_size),
        39 => u(p.max_threads_per_multiprocessor),
        40 => u(p.async_engine_count),
        41 => b(p.unified_addressing),
        50 => u(p.pci_domain_bus_device[0]),
        51 => Some(32),
        75 => u(p.major),
        76 => u(p.minor),
        78 => b(p.stream_priority_range.0 != p.stream_priority_range.1),
        79 | 80 => Some(1),
        81 => big(p.shared_mem_per_multiprocessor),
        82 => u(p.regs_per_multiprocessor),
        83 => b(p.managed_memory),
        84 | 85 => Some(0),
        86..=89 => Some(0),
        90 => Some(1),
        91 => Some(0),
        95 => Some(1),
        97 => big(p.shared_mem_per_block_optin),
        98 => Some(0),
        99 => Some(1),
        100 | 101 => Some(0),
        106 => u(p.max_blocks_per_multiprocessor),
        108 | 109 => Some(0),
        111 => Some(0),
        115 => Some(0),
        120 => b(p.major >= 9),
        _ => None,
    }
}

impl Runtime {
    /// `cudaSetDevice`: only an existing ordinal; crac drives one device, ordinal 0.
    pub(crate) fn set_device(&self, device: i32) -> Result<(), GpuError> {
        match check_ordinal(self, device)? {
            0 => Ok(()),
            d => Err(GpuError::NotSupported(format!(
                "device {d}: crac drives one device per process (ordinal 0); select the GPU \
                 with CUDA_VISIBLE_DEVICES"
            ))),
        }
    }

    /// `cudaGetDeviceProperties`.
    pub(crate) fn device_props(&self, device: i32) -> Result<DeviceProps, GpuError> {
        let d = check_ordinal(self, device)?;
        self.backend.device_props(d)
    }

    /// `cudaDeviceGetAttribute`.
    pub(crate) fn device_attribute(&self, attr: i32, device: i32) -> Result<i32, GpuError> {
        let p = self.device_props(device)?;
        let v = attribute(&p, attr)
            .ok_or_else(|| GpuError::InvalidValue(format!("unknown device attribute {attr}")))?;
        Ok(i32::try_from(v).unwrap_or(i32::MAX))
    }

    /// `cudaSetDeviceFlags`.
    pub(crate) fn set_device_flags(&self, flags: u32) -> Result<(), GpuError> {
        // cudaDeviceScheduleMask (0x7), MapHost (0x8), LmemResizeToMax (0x10), SyncMemops (0x80).
        if flags & !(0x7 | 0x8 | 0x10 | 0x80) != 0 {
            return Err(GpuError::InvalidValue(format!(
                "unknown device flags {flags:#x}"
            )));
        }
        *lock(&self.device.flags) = flags;
        Ok(())
    }

    /// `cudaGetDeviceFlags` (mapped host memory is always on, as on current CUDA).
    pub(crate) fn device_flags(&self) -> u32 {
        *lock(&self.device.flags) | 0x8
    }

    /// `cudaDeviceSetCacheConfig`: a preference, kept (and restored) but not acted on.
    pub(crate) fn set_cache_config(&self, config: i32) -> Result<(), GpuError> {
        if !(0..=3).contains(&config) {
            return Err(GpuError::InvalidValue(format!("cudaFuncCache {config}")));
        }
        *lock(&self.device.cache_config) = config;
        Ok(())
    }

    /// `cudaDeviceGetLimit`.
    pub(crate) fn limit(&self, limit: i32) -> Result<u64, GpuError> {
        let i = usize::try_from(limit).map_err(|_| bad_limit(limit))?;
        lock(&self.device.limits)
            .get(i)
            .copied()
            .ok_or_else(|| bad_limit(limit))
    }

    /// `cudaDeviceSetLimit`.
    pub(crate) fn set_limit(&self, limit: i32, value: u64) -> Result<(), GpuError> {
        let i = usize::try_from(limit).map_err(|_| bad_limit(limit))?;
        let mut limits = lock(&self.device.limits);
        let slot = limits.get_mut(i).ok_or_else(|| bad_limit(limit))?;
        *slot = value;
        Ok(())
    }

    /// `cudaFuncGetAttributes`.
    pub(crate) fn func_attributes(&self, stub: u64) -> Result<FuncAttributes, GpuError> {
        let (f, _) = self.function(stub)?;
        self.backend.function_attributes(f)
    }

    /// `cudaFuncSetAttribute`.
    pub(crate) fn func_set_attribute(
        &self,
        stub: u64,
        attr: i32,
        value: i32,
    ) -> Result<(), GpuError> {
        let (f, _) = self.function(stub)?;
        match attr {
            // cudaFuncAttributeMaxDynamicSharedMemorySize
            8 => {
                let bytes = u64::try_from(value).map_err(|_| {
                    GpuError::InvalidValue(format!("{value} bytes of shared memory"))
                })?;
                self.backend.function_set_max_dynamic_shared(f, bytes)?;
                self.registry.note_max_dynamic_shared(stub, bytes);
                Ok(())
            }
            // cudaFuncAttributePreferredSharedMemoryCarveout: a hint.
            9 if (-1..=100).contains(&value) => Ok(()),
            // Non-portable cluster sizes and cluster scheduling: hints.
            14 | 15 => Ok(()),
            _ => Err(GpuError::InvalidValue(format!(
                "cudaFuncAttribute {attr} = {value} is not supported"
            ))),
        }
    }

    /// `cudaFuncSetCacheConfig`: a hint; only checks the kernel exists.
    pub(crate) fn func_set_cache_config(&self, stub: u64, config: i32) -> Result<(), GpuError> {
        self.function(stub)?;
        if !(0..=3).contains(&config) {
            return Err(GpuError::InvalidValue(format!("cudaFuncCache {config}")));
        }
        Ok(())
    }

    /// Blocks of `block_size` threads with `dynamic` bytes of shared memory that fit one
    /// multiprocessor: limited by threads, blocks, shared memory and (when the backend knows
    /// them) registers.
    pub(crate) fn occupancy(
        &self,
        stub: u64,
        block_size: i32,
        dynamic: u64,
    ) -> Result<u32, GpuError> {
        let a = self.func_attributes(stub)?;
        let p = self.backend.device_props(0)?;
        let threads = u32::try_from(block_size)
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| GpuError::InvalidValue(format!("block size {block_size}")))?;
        if threads > a.max_threads_per_block.min(p.max_threads_per_block)
            || dynamic > a.max_dynamic_shared_size_bytes
        {
            return Ok(0);
        }
        let warp_threads = threads.div_ceil(p.warp_size.max(1)) * p.warp_size.max(1);
        let mut blocks =
            (p.max_threads_per_multiprocessor / warp_threads).min(p.max_blocks_per_multiprocessor);
        let shared = a.shared_size_bytes + dynamic;
        if let Some(fit) = p.shared_mem_per_multiprocessor.checked_div(shared) {
            blocks = blocks.min(u32::try_from(fit).unwrap_or(u32::MAX));
        }
        if a.num_regs > 0 {
            let per_block = u64::from(a.num_regs) * u64::from(warp_threads);
            blocks = blocks.min(
                u32::try_from(u64::from(p.regs_per_multiprocessor) / per_block).unwrap_or(u32::MAX),
            );
        }
        Ok(blocks)
    }

    /// `cudaOccupancyAvailableDynamicSMemPerBlock`.
    pub(crate) fn available_dynamic_shared(
        &self,
        stub: u64,
        num_blocks: i32,
        block_size: i32,
    ) -> Result<u64, GpuError> {
        let a = self.func_attributes(stub)?;
        let p = self.backend.device_props(0)?;
        let n = u64::try_from(num_blocks)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| GpuError::InvalidValue(format!("{num_blocks} blocks")))?;
        if self.occupancy(stub, block_size, 0)? < u32::try_from(n).unwrap_or(u32::MAX) {
            return Ok(0);
        }
        let per_block = (p.shared_mem_per_multiprocessor / n).saturating_sub(a.shared_size_bytes);
        Ok(per_block.min(a.max_dynamic_shared_size_bytes))
    }

    /// `cudaLaunchKernel`: packs the program's `void **args` with the kernel's parameter
    /// layout and launches on `stream`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn launch(
        &self,
        mem: &dyn HostMemory,
        stub: u64,
        grid: crac_abi::Dim3,
        block: crac_abi::Dim3,
        args: u64,
        shared: u64,
        stream: u64,
    ) -> Result<(), GpuError> {
        let (function, params) = self.function(stub)?;
        let stream = self.stream(stream)?;
        let size = params
            .iter()
            .map(|p| p.offset.checked_add(p.size).ok_or_else(too_many_params))
            .try_fold(0, |max, end| end.map(|end| max.max(end)))?;
        let mut packed = vec![0u8; usize::try_from(size).map_err(|_| too_many_params())?];
        if !params.is_empty() && args == 0 {
            return Err(GpuError::InvalidValue(
                "the kernel takes parameters but args is null".into(),
            ));
        }
        let mut pointers = vec![0u8; params.len() * 8];
        if !params.is_empty() {
            mem.read(args, &mut pointers)?;
        }
        for (i, p) in params.iter().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&pointers[i * 8..i * 8 + 8]);
            let at = usize::try_from(p.offset).map_err(|_| too_many_params())?;
            let len = usize::try_from(p.size).map_err(|_| too_many_params())?;
            mem.read(u64::from_le_bytes(w), &mut packed[at..at + len])?;
        }
        let config = LaunchConfig {
            grid: [grid.x, grid.y, grid.z],
            block: [block.x, block.y, block.z],
            dynamic_shared: u32::try_from(shared).map_err(|_| {
                GpuError::InvalidConfiguration(format!("{shared} bytes of dynamic shared memory"))
            })?,
            stream,
        };
        self.backend.launch(function, &config, &packed)
    }
}

fn too_many_params() -> GpuError {
    GpuError::InvalidValue("kernel parameters larger than the address space".into())
}
