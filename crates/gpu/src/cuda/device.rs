//! [`CudaBackend`]: the device itself (count, properties, memory info, synchronisation, reset,
//! driver version).
#![allow(unsafe_code)]

use std::ffi::c_int;

use super::context::handle;
use super::{CudaBackend, lock};
use crate::{DeviceProps, GpuError, Result};

impl CudaBackend {
    pub(super) fn device_count(&self) -> Result<u32> {
        let api = self.current()?;
        let mut n: c_int = 0;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.device_get_count)(&mut n) },
            "cuDeviceGetCount",
        )?;
        Ok(u32::try_from(n).unwrap_or(0))
    }

    pub(super) fn device_props(&self, ordinal: u32) -> Result<DeviceProps> {
        if ordinal != 0 {
            return Err(GpuError::InvalidDevice(ordinal));
        }
        let api = self.current()?;
        let mut name = [0u8; 256];
        Self::check(
            // SAFETY: the buffer holds 256 bytes, as passed.
            unsafe { (api.device_get_name)(name.as_mut_ptr().cast(), 256, self.device) },
            "cuDeviceGetName",
        )?;
        let end = name.iter().position(|b| *b == 0).unwrap_or(255);
        let mut uuid = [0u8; 16];
        Self::check(
            // SAFETY: CUuuid is 16 bytes.
            unsafe { (api.device_get_uuid)(uuid.as_mut_ptr(), self.device) },
            "cuDeviceGetUuid",
        )?;
        let mut total = 0usize;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.device_total_mem)(&mut total, self.device) },
            "cuDeviceTotalMem",
        )?;
        let (mut least, mut greatest) = (0, 0);
        Self::check(
            // SAFETY: out-pointers to live locals.
            unsafe { (api.ctx_stream_priority_range)(&mut least, &mut greatest) },
            "cuCtxGetStreamPriorityRange",
        )?;
        // An attribute this driver does not know (some are retired between majors) reads as 0
        // rather than failing the whole query; a sticky error still fails it.
        let u = |a: c_int| -> Result<u32> {
            match self.attr(a) {
                Ok(v) => Ok(u32::try_from(v).unwrap_or(0)),
                Err(e) if e.is_sticky() => Err(e),
                Err(_) => Ok(0),
            }
        };
        let w = |a: c_int| -> Result<u64> { Ok(u64::from(u(a)?)) };
        Ok(DeviceProps {
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
            uuid,
            total_global_mem: total as u64,
            shared_mem_per_block: w(8)?,
            shared_mem_per_block_optin: w(97)?,
            shared_mem_per_multiprocessor: w(81)?,
            regs_per_block: u(12)?,
            regs_per_multiprocessor: u(82)?,
            warp_size: u(10)?,
            mem_pitch: w(11)?,
            max_threads_per_block: u(1)?,
            max_threads_dim: [u(2)?, u(3)?, u(4)?],
            max_grid_size: [u(5)?, u(6)?, u(7)?],
            max_threads_per_multiprocessor: u(39)?,
            max_blocks_per_multiprocessor: u(106)?,
            total_const_mem: w(9)?,
            major: u(75)?,
            minor: u(76)?,
            clock_rate_khz: u(13)?,
            memory_clock_rate_khz: u(36)?,
            memory_bus_width: u(37)?,
            l2_cache_size: u(38)?,
            texture_alignment: w(14)?,
            multiprocessor_count: u(16)?,
            concurrent_kernels: u(31)? != 0,
            async_engine_count: u(40)?,
            unified_addressing: u(41)? != 0,
            managed_memory: u(83)? != 0,
            can_map_host_memory: u(19)? != 0,
            integrated: u(18)? != 0,
            ecc_enabled: u(32)? != 0,
            pci_domain_bus_device: [u(50)?, u(33)?, u(34)?],
            stream_priority_range: (least, greatest),
        })
    }

    pub(super) fn mem_get_info(&self) -> Result<(u64, u64)> {
        let api = self.current()?;
        let (mut free, mut total) = (0usize, 0usize);
        Self::check(
            // SAFETY: out-pointers to live locals.
            unsafe { (api.mem_get_info)(&mut free, &mut total) },
            "cuMemGetInfo",
        )?;
        Ok((free as u64, total as u64))
    }

    pub(super) fn device_synchronize(&self) -> Result<()> {
        let api = self.current()?;
        // SAFETY: no arguments.
        Self::check(unsafe { (api.ctx_synchronize)() }, "cuCtxSynchronize")
    }

    pub(super) fn device_reset(&self) -> Result<()> {
        self.device_synchronize()?;
        let maps = lock(&self.place).clear();
        for (at, len, h) in maps {
            self.unmap(at, len, h)?;
        }
        let (streams, events) = {
            let mut live = lock(&self.live);
            (
                std::mem::take(&mut live.streams),
                std::mem::take(&mut live.events),
            )
        };
        let api = self.current()?;
        for s in streams {
            // SAFETY: a stream this backend created and has not destroyed.
            unsafe { (api.stream_destroy)(handle(s)) };
        }
        for e in events {
            // SAFETY: an event this backend created and has not destroyed.
            unsafe { (api.event_destroy)(handle(e)) };
        }
        Ok(())
    }

    pub(super) fn driver_version(&self) -> Result<u32> {
        let api = self.current()?;
        let mut v: c_int = 0;
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.driver_get_version)(&mut v) },
            "cuDriverGetVersion",
        )?;
        Ok(u32::try_from(v).unwrap_or(0))
    }
}
