//! [`CudaBackend`]: device memory (placed by crac in its window), copies, memset, and
//! registered host memory.
#![allow(unsafe_code)]

use super::context::{handle, stream, usize_of};
use super::{CudaBackend, lock};
use crate::{Allocation, DevicePtr, GpuError, Result, Stream};

impl CudaBackend {
    pub(super) fn malloc(&self, size: u64) -> Result<DevicePtr> {
        if size == 0 {
            return Ok(DevicePtr(0));
        }
        let mut place = lock(&self.place);
        let (ptr, new) = place.alloc(size).map_err(|_| GpuError::MemoryAllocation {
            size,
            reason: "the device window is full".into(),
        })?;
        self.realise(&mut place, new)?;
        Ok(DevicePtr(ptr))
    }

    pub(super) fn malloc_at(&self, ptr: DevicePtr, size: u64) -> Result<()> {
        let mut place = lock(&self.place);
        let new = place
            .alloc_at(ptr.0, size)
            .map_err(|_| GpuError::MemoryAllocation {
                size,
                reason: format!("{ptr:#x} is taken, misaligned or outside the device window"),
            })?;
        self.realise(&mut place, new)
    }

    pub(super) fn find_allocation(&self, ptr: DevicePtr) -> Result<Option<Allocation>> {
        if let Some((start, size)) = lock(&self.place).find(ptr.0) {
            return Ok(Some(Allocation {
                ptr: DevicePtr(start),
                size,
            }));
        }
        let live = lock(&self.live);
        Ok(live
            .modules
            .values()
            .flatten()
            .find_map(|(_, at, size, _)| {
                (ptr.0 >= *at && ptr.0 < at + size).then_some(Allocation {
                    ptr: DevicePtr(*at),
                    size: *size,
                })
            }))
    }

    pub(super) fn free(&self, ptr: DevicePtr) -> Result<()> {
        if ptr.0 == 0 {
            return Ok(());
        }
        self.device_synchronize()?;
        let unmap = lock(&self.place)
            .free(ptr.0)
            .map_err(|_| GpuError::InvalidValue(format!("{ptr:#x} is not an allocation")))?;
        match unmap {
            Some((at, len, h)) => self.unmap(at, len, h),
            None => Ok(()),
        }
    }

    pub(super) fn memcpy_htod(&self, dst: DevicePtr, src: &[u8], stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: `src` is a live slice of that length. The driver stages pageable memory
            // before the call returns; page-locked memory it reads later, on the stream. Only
            // program memory is ever page-locked (`host_register` is given program ranges, never
            // crac's), and CUDA's contract makes the program keep it unchanged and mapped until
            // the stream reaches the copy, as with NVIDIA's runtime.
            unsafe {
                (api.memcpy_htod_async)(dst.0, src.as_ptr().cast(), src.len(), self::stream(stream))
            },
            "cuMemcpyHtoDAsync",
        )
    }

    pub(super) fn memcpy_dtoh(&self, dst: &mut [u8], src: DevicePtr, stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        let s = self::stream(stream);
        Self::check(
            // SAFETY: `dst` is a live, exclusively borrowed buffer of that length; the stream is
            // synchronised below before the borrow ends.
            unsafe { (api.memcpy_dtoh_async)(dst.as_mut_ptr().cast(), src.0, dst.len(), s) },
            "cuMemcpyDtoHAsync",
        )?;
        Self::check(
            // SAFETY: a stream handle the backend knows.
            unsafe { (api.stream_synchronize)(s) },
            "cuStreamSynchronize",
        )
    }

    pub(super) fn memcpy_dtod(
        &self,
        dst: DevicePtr,
        src: DevicePtr,
        len: u64,
        stream: Stream,
    ) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: device addresses only; the driver checks them.
            unsafe { (api.memcpy_dtod_async)(dst.0, src.0, usize_of(len)?, self::stream(stream)) },
            "cuMemcpyDtoDAsync",
        )
    }

    pub(super) fn memset(&self, dst: DevicePtr, value: u8, len: u64, stream: Stream) -> Result<()> {
        self.stream_known(stream)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a device address; the driver checks it.
            unsafe { (api.memset_d8_async)(dst.0, value, usize_of(len)?, self::stream(stream)) },
            "cuMemsetD8Async",
        )
    }

    pub(super) fn host_register(&self, addr: u64, len: u64) -> Result<()> {
        let api = self.current()?;
        Self::check(
            // SAFETY: the caller names program memory it owns for the registration's lifetime;
            // flags 0 is CU_MEMHOSTREGISTER_DEFAULT (portable mapping is always on with UVA).
            unsafe { (api.mem_host_register)(handle(addr), usize_of(len)?, 0) },
            "cuMemHostRegister",
        )?;
        lock(&self.live).host.insert(addr);
        Ok(())
    }

    pub(super) fn host_unregister(&self, addr: u64) -> Result<()> {
        if !lock(&self.live).host.remove(&addr) {
            return Err(GpuError::HostMemoryNotRegistered(addr));
        }
        let api = self.current()?;
        Self::check(
            // SAFETY: a range registered by `host_register`.
            unsafe { (api.mem_host_unregister)(handle(addr)) },
            "cuMemHostUnregister",
        )
    }

    pub(super) fn allocations(&self) -> Result<Vec<Allocation>> {
        Ok(lock(&self.place)
            .allocations()
            .into_iter()
            .map(|(at, size)| Allocation {
                ptr: DevicePtr(at),
                size,
            })
            .collect())
    }

    pub(super) fn read_device(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()> {
        let api = self.current()?;
        Self::check(
            // SAFETY: `dst` is a live, exclusively borrowed buffer of that length.
            unsafe { (api.memcpy_dtoh)(dst.as_mut_ptr().cast(), src.0, dst.len()) },
            "cuMemcpyDtoH",
        )
    }

    pub(super) fn write_device(&self, dst: DevicePtr, src: &[u8]) -> Result<()> {
        let api = self.current()?;
        Self::check(
            // SAFETY: `src` is a live slice of that length.
            unsafe { (api.memcpy_htod)(dst.0, src.as_ptr().cast(), src.len()) },
            "cuMemcpyHtoD",
        )
    }
}
