//! Device memory, copies in every direction, symbols, and registered (pinned) host memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crac_abi::PointerAttributes;
use crac_gpu::{DevicePtr, GpuError, Stream};

use super::{Runtime, lock};
use crate::host::HostMemory;

/// `cudaMemcpyKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    HostToHost,
    HostToDevice,
    DeviceToHost,
    DeviceToDevice,
}

/// Which end of a symbol copy (`cudaMemcpyToSymbol`, `cudaMemcpyFromSymbol`) is the
/// `__device__` variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SymbolEnd {
    /// Copied to the symbol.
    Dst,
    /// Copied from the symbol.
    Src,
}

/// How a range of host memory was registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pinned {
    /// Allocated by the shim for `cudaMallocHost`/`cudaHostAlloc` (freed by `cudaFreeHost`).
    Allocated,
    /// The program's own memory, `cudaHostRegister`ed.
    Registered,
}

/// Registered host ranges by start address: (length, how, flags).
#[derive(Debug, Default)]
pub(crate) struct HostRegistrations(Mutex<BTreeMap<u64, (u64, Pinned, u32)>>);

impl HostRegistrations {
    /// The registered range holding `addr`, as (start, length).
    fn find(&self, addr: u64) -> Option<(u64, u64)> {
        let map = lock(&self.0);
        let (start, (len, _, _)) = map.range(..=addr).next_back()?;
        (addr < start + len).then_some((*start, *len))
    }

    /// Every registered range, as (start, length, allocated by the shim).
    fn ranges(&self) -> Vec<(u64, u64, bool)> {
        lock(&self.0)
            .iter()
            .map(|(s, (l, how, _))| (*s, *l, *how == Pinned::Allocated))
            .collect()
    }

    /// Every registered range, as (start, length, flags, allocated by the shim).
    pub(crate) fn entries(&self) -> Vec<(u64, u64, u32, bool)> {
        lock(&self.0)
            .iter()
            .map(|(s, (l, how, f))| (*s, *l, *f, *how == Pinned::Allocated))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

/// Live device allocations by address: (size, row pitch of a pitch allocation). The backend
/// knows them too; this table is what a checkpoint's log is read from.
#[derive(Debug, Default)]
pub(crate) struct Allocations(Mutex<BTreeMap<u64, (u64, Option<u64>)>>);

impl Allocations {
    pub(crate) fn insert(&self, addr: u64, size: u64, pitch: Option<u64>) {
        lock(&self.0).insert(addr, (size, pitch));
    }

    fn remove(&self, addr: u64) -> Option<(u64, Option<u64>)> {
        lock(&self.0).remove(&addr)
    }

    pub(crate) fn clear(&self) {
        lock(&self.0).clear();
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// Every allocation as (address, size, pitch), by address.
    pub(crate) fn entries(&self) -> Vec<(u64, u64, Option<u64>)> {
        lock(&self.0)
            .iter()
            .map(|(a, (s, p))| (*a, *s, *p))
            .collect()
    }
}

/// Pitch `cudaMallocPitch` rounds rows to.
const PITCH_ALIGN: u64 = 512;

impl Runtime {
    /// Registered host memory as (start, length, allocated by the shim): the ranges a restart
    /// registers again (their contents are the program's memory, saved with it).
    pub fn pinned_ranges(&self) -> Vec<(u64, u64, bool)> {
        self.host.ranges()
    }

    /// `cudaMalloc`.
    pub(crate) fn malloc(&self, size: u64) -> Result<u64, GpuError> {
        self.malloc_with_pitch(size, None)
    }

    fn malloc_with_pitch(&self, size: u64, pitch: Option<u64>) -> Result<u64, GpuError> {
        let p = self.backend.malloc(size)?.0;
        if p != 0 {
            self.allocations.insert(p, size, pitch);
        }
        Ok(p)
    }

    /// `cudaFree`. The entry goes first: once the backend has freed the address another
    /// thread's `cudaMalloc` may get it, and its entry must not be the one removed. A failed
    /// free puts the entry back if the allocation is still there (two threads freeing the same
    /// pointer: one of them fails, and the allocation is gone).
    pub(crate) fn free(&self, ptr: u64) -> Result<(), GpuError> {
        let entry = self.allocations.remove(ptr);
        let freed = self.backend.free(DevicePtr(ptr));
        if let (Err(_), Some((size, pitch))) = (&freed, entry) {
            let still = self.backend.find_allocation(DevicePtr(ptr));
            if matches!(still, Ok(Some(a)) if a.ptr.0 == ptr) {
                self.allocations.insert(ptr, size, pitch);
            }
        }
        freed
    }

    /// `cudaMallocPitch`: rows rounded up to 512 bytes; returns (pointer, pitch).
    pub(crate) fn malloc_pitch(&self, width: u64, height: u64) -> Result<(u64, u64), GpuError> {
        let overflow = || GpuError::InvalidValue(format!("{width} x {height} bytes overflows"));
        let pitch = width
            .max(1)
            .checked_next_multiple_of(PITCH_ALIGN)
            .ok_or_else(overflow)?;
        let size = pitch.checked_mul(height).ok_or_else(overflow)?;
        Ok((self.malloc_with_pitch(size, Some(pitch))?, pitch))
    }

    /// Whether `ptr` is device memory (an allocation or a module variable).
    fn is_device(&self, ptr: u64) -> Result<bool, GpuError> {
        Ok(self.backend.find_allocation(DevicePtr(ptr))?.is_some())
    }

    /// The direction of a copy: `kind` as CUDA numbers it, `cudaMemcpyDefault` (4) inferred
    /// from where the pointers are.
    pub(crate) fn direction(&self, kind: i32, dst: u64, src: u64) -> Result<Direction, GpuError> {
        Ok(match kind {
            0 => Direction::HostToHost,
            1 => Direction::HostToDevice,
            2 => Direction::DeviceToHost,
            3 => Direction::DeviceToDevice,
            4 => match (self.is_device(dst)?, self.is_device(src)?) {
                (false, false) => Direction::HostToHost,
                (true, false) => Direction::HostToDevice,
                (false, true) => Direction::DeviceToHost,
                (true, true) => Direction::DeviceToDevice,
            },
            k => {
                return Err(GpuError::InvalidMemcpyDirection(format!(
                    "{k} is not a cudaMemcpyKind (0 to 4)"
                )));
            }
        })
    }

    /// One linear copy of `len` bytes on `stream`; `sync` waits for it as `cudaMemcpy` does.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy(
        &self,
        mem: &dyn HostMemory,
        dst: u64,
        src: u64,
        len: u64,
        dir: Direction,
        stream: Stream,
        sync: bool,
    ) -> Result<(), GpuError> {
        if len == 0 {
            return Ok(());
        }
        match dir {
            Direction::HostToHost => {
                // Host copies are ordered like the rest of the stream's work: wait first.
                self.backend.stream_synchronize(stream)?;
                let mut staged = vec![0u8; usize::try_from(len).map_err(too_big)?];
                mem.read(src, &mut staged)?;
                mem.write(dst, &staged)?;
                Ok(())
            }
            Direction::HostToDevice => {
                let mut result = Ok(());
                mem.with_bytes(src, len, &mut |bytes| {
                    result = if sync {
                        self.backend.memcpy_htod_sync(DevicePtr(dst), bytes, stream)
                    } else {
                        self.backend.memcpy_htod(DevicePtr(dst), bytes, stream)
                    };
                })?;
                result
            }
            Direction::DeviceToHost => {
                let mut result = Ok(());
                mem.with_bytes_mut(dst, len, &mut |bytes| {
                    result = self.backend.memcpy_dtoh(bytes, DevicePtr(src), stream);
                })?;
                result
            }
            Direction::DeviceToDevice => {
                if sync {
                    self.backend
                        .memcpy_dtod_sync(DevicePtr(dst), DevicePtr(src), len, stream)
                } else {
                    self.backend
                        .memcpy_dtod(DevicePtr(dst), DevicePtr(src), len, stream)
                }
            }
        }
    }

    /// `cudaMemcpy2D[Async]`: `height` rows of `width` bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy_2d(
        &self,
        mem: &dyn HostMemory,
        (dst, dpitch): (u64, u64),
        (src, spitch): (u64, u64),
        width: u64,
        height: u64,
        kind: i32,
        stream: Stream,
        sync: bool,
    ) -> Result<(), GpuError> {
        if width > dpitch || width > spitch {
            return Err(GpuError::InvalidValue(format!(
                "row width {width} is larger than a pitch ({dpitch}, {spitch})"
            )));
        }
        let dir = self.direction(kind, dst, src)?;
        for row in 0..height {
            let at = |base: u64, pitch: u64| {
                row.checked_mul(pitch)
                    .and_then(|o| base.checked_add(o))
                    .ok_or_else(|| GpuError::InvalidValue("2D copy wraps the address space".into()))
            };
            self.copy(
                mem,
                at(dst, dpitch)?,
                at(src, spitch)?,
                width,
                dir,
                stream,
                false,
            )?;
        }
        if sync {
            self.backend.stream_synchronize(stream)?;
        }
        Ok(())
    }

    /// `cudaMemset[Async]`.
    pub(crate) fn memset(
        &self,
        dst: u64,
        value: i32,
        len: u64,
        stream: Stream,
        sync: bool,
    ) -> Result<(), GpuError> {
        if len == 0 {
            return Ok(());
        }
        // CUDA uses the low byte of the value.
        let byte = value.to_le_bytes()[0];
        if sync {
            self.backend.memset_sync(DevicePtr(dst), byte, len, stream)
        } else {
            self.backend.memset(DevicePtr(dst), byte, len, stream)
        }
    }

    /// The device address `offset` bytes into the variable `symbol`, checked for `len` bytes.
    pub(crate) fn symbol_at(&self, symbol: u64, offset: u64, len: u64) -> Result<u64, GpuError> {
        let (ptr, size) = self.variable(symbol)?;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(GpuError::InvalidValue(format!(
                "{len} bytes at offset {offset} do not fit the {size}-byte symbol"
            )));
        }
        Ok(ptr.0 + offset)
    }

    /// `cudaMemcpyToSymbol[Async]` (`end` = [`SymbolEnd::Dst`], `(symbol, src)`) and
    /// `cudaMemcpyFromSymbol[Async]` ([`SymbolEnd::Src`], `(dst, symbol)`): `len` bytes at
    /// `offset` into the variable; the other end is host or device memory as `kind` says.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy_symbol(
        &self,
        mem: &dyn HostMemory,
        end: SymbolEnd,
        (dst, src): (u64, u64),
        len: u64,
        offset: u64,
        kind: i32,
        stream: Stream,
        sync: bool,
    ) -> Result<(), GpuError> {
        // The symbol's end resolved to its device address; besides device to device, the one
        // direction with host memory at the other end.
        let (dst, src, with_host, way) = match end {
            SymbolEnd::Dst => (
                self.symbol_at(dst, offset, len)?,
                src,
                Direction::HostToDevice,
                "to",
            ),
            SymbolEnd::Src => (
                dst,
                self.symbol_at(src, offset, len)?,
                Direction::DeviceToHost,
                "from",
            ),
        };
        let dir = match self.direction(kind, dst, src)? {
            d if d == with_host || d == Direction::DeviceToDevice => d,
            _ => {
                return Err(GpuError::InvalidMemcpyDirection(format!(
                    "kind {kind} cannot copy {way} a symbol"
                )));
            }
        };
        self.copy(mem, dst, src, len, dir, stream, sync)
    }

    /// `cudaPointerGetAttributes`.
    pub(crate) fn pointer_attributes(&self, ptr: u64) -> Result<PointerAttributes, GpuError> {
        if self.is_device(ptr)? {
            return Ok(PointerAttributes {
                memory_type: 2,
                device: 0,
                device_pointer: ptr,
                host_pointer: 0,
            });
        }
        if self.host.find(ptr).is_some() {
            return Ok(PointerAttributes {
                memory_type: 1,
                device: 0,
                device_pointer: ptr,
                host_pointer: ptr,
            });
        }
        Ok(PointerAttributes {
            memory_type: 0,
            device: -2,
            device_pointer: 0,
            host_pointer: ptr,
        })
    }

    /// `__crac_pinned_alloc` (`how` = allocated) and `cudaHostRegister` (registered).
    pub(crate) fn host_register(
        &self,
        addr: u64,
        len: u64,
        flags: u32,
        how: Pinned,
    ) -> Result<(), GpuError> {
        if addr == 0 || len == 0 || addr.checked_add(len).is_none() {
            return Err(GpuError::InvalidValue(format!(
                "cannot register {len} bytes of host memory at {addr:#x}"
            )));
        }
        let mut map = lock(&self.host.0);
        let overlaps = map
            .range(..addr + len)
            .next_back()
            .is_some_and(|(s, (l, _, _))| s + l > addr);
        if overlaps {
            return Err(GpuError::HostMemoryAlreadyRegistered(addr));
        }
        self.backend.host_register(addr, len)?;
        map.insert(addr, (len, how, flags));
        Ok(())
    }

    /// `__crac_pinned_free` (`how` = allocated: returns the length) and `cudaHostUnregister`.
    pub(crate) fn host_unregister(&self, addr: u64, how: Pinned) -> Result<u64, GpuError> {
        let mut map = lock(&self.host.0);
        match map.get(&addr) {
            Some((len, h, _)) if *h == how => {
                let len = *len;
                self.backend.host_unregister(addr)?;
                map.remove(&addr);
                Ok(len)
            }
            _ if how == Pinned::Allocated => Err(GpuError::InvalidValue(format!(
                "{addr:#x} was not allocated by cudaMallocHost or cudaHostAlloc"
            ))),
            _ => Err(GpuError::HostMemoryNotRegistered(addr)),
        }
    }
}

fn too_big(_: std::num::TryFromIntError) -> GpuError {
    GpuError::InvalidValue("copy larger than the address space".into())
}
