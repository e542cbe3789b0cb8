//! [`Runtime::call`]: one operation of `crac_abi::ops`, decoded from its argument words.
//!
//! `a[i]` is the i-th C parameter as a word (a by-value `dim3` takes two); out-parameters are
//! program addresses written through [`HostMemory`]. Every result is a `cudaError_t`.

use crac_abi::{CALLBACK_HOST_FUNC, CALLBACK_STREAM, Dim3, MAX_ARGS, Op};
use crac_gpu::{GpuError, Stream};

use super::memory::{Pinned, SymbolEnd};
use super::{NOT_SUPPORTED, Runtime, UNKNOWN, code, out};
use crate::host::{HostMemory, write_u32, write_u64};

/// A 32-bit C `int` argument (the low half of its word).
fn int(w: u64) -> i32 {
    i32::from_le_bytes(uint(w).to_le_bytes())
}

/// A 32-bit C `unsigned` argument.
fn uint(w: u64) -> u32 {
    let [a, b, c, d, ..] = w.to_le_bytes();
    u32::from_le_bytes([a, b, c, d])
}

fn put_i32(mem: &dyn HostMemory, at: u64, v: i32) -> Result<(), GpuError> {
    Ok(write_u32(mem, at, u32::from_le_bytes(v.to_le_bytes()))?)
}

/// Writes the handle or pointer `make` creates to the program's out-parameter `at`, which is
/// checked first: a bad out-pointer fails the call before anything is created, so no
/// allocation or handle leaks unseen by the program (NVIDIA's runtime answers
/// `cudaErrorInvalidValue` for a null one the same way).
fn out_u64(
    mem: &dyn HostMemory,
    at: u64,
    make: impl FnOnce() -> Result<u64, GpuError>,
) -> Result<(), GpuError> {
    write_u64(mem, at, 0)?;
    let v = make()?;
    Ok(write_u64(mem, at, v)?)
}

impl Runtime {
    /// Runs operation `op` with argument words `args`, reading and writing program memory
    /// through `mem`; returns the `cudaError_t`. Never unwinds: a panic (a crac bug) is logged
    /// and answered `cudaErrorUnknown`.
    pub fn call(&self, op: u32, args: &[u64; MAX_ARGS], mem: &dyn HostMemory) -> u32 {
        let Some(op) = Op::from_u32(op) else {
            return NOT_SUPPORTED;
        };
        let run = std::panic::AssertUnwindSafe(|| self.run(op, args, mem));
        match std::panic::catch_unwind(run) {
            Ok(r) => code(r),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(
                    "{} panicked in crac's lower half ({what}); please report this bug",
                    op.c_name()
                );
                UNKNOWN
            }
        }
    }

    fn run(&self, op: Op, a: &[u64; MAX_ARGS], mem: &dyn HostMemory) -> Result<(), GpuError> {
        let b = &self.backend;
        match op {
            // ---- devices ----
            Op::GetDeviceCount => {
                let n = b.device_count()?;
                put_i32(mem, a[0], i32::try_from(n).unwrap_or(i32::MAX))
            }
            Op::GetDevice => put_i32(mem, a[0], 0),
            Op::SetDevice => self.set_device(int(a[0])),
            Op::GetDeviceProperties => {
                let p = self.device_props(int(a[1]))?;
                Ok(mem.write(a[0], &out::device_props(&p))?)
            }
            Op::DeviceGetAttribute => {
                let v = self.device_attribute(int(a[1]), int(a[2]))?;
                put_i32(mem, a[0], v)
            }
            Op::DeviceSynchronize => b.device_synchronize(),
            Op::DeviceReset => self.device_reset(),
            Op::DriverGetVersion => {
                let v = b.driver_version()?;
                put_i32(mem, a[0], i32::try_from(v).unwrap_or(i32::MAX))
            }
            Op::MemGetInfo => {
                let (free, total) = b.mem_get_info()?;
                if a[0] != 0 {
                    write_u64(mem, a[0], free)?;
                }
                if a[1] != 0 {
                    write_u64(mem, a[1], total)?;
                }
                Ok(())
            }
            Op::DeviceGetStreamPriorityRange => {
                let (least, greatest) = b.device_props(0)?.stream_priority_range;
                if a[0] != 0 {
                    put_i32(mem, a[0], least)?;
                }
                if a[1] != 0 {
                    put_i32(mem, a[1], greatest)?;
                }
                Ok(())
            }
            Op::SetDeviceFlags => self.set_device_flags(uint(a[0])),
            Op::GetDeviceFlags => Ok(write_u32(mem, a[0], self.device_flags())?),
            Op::DeviceSetCacheConfig => self.set_cache_config(int(a[0])),
            Op::DeviceGetLimit => {
                let v = self.limit(int(a[1]))?;
                Ok(write_u64(mem, a[0], v)?)
            }
            Op::DeviceSetLimit => self.set_limit(int(a[0]), a[1]),

            // ---- memory ----
            Op::Malloc => out_u64(mem, a[0], || self.malloc(a[1])),
            Op::Free => self.free(a[0]),
            Op::MallocPitch => {
                write_u64(mem, a[1], 0)?;
                let mut pitch = 0;
                out_u64(mem, a[0], || {
                    let (p, pi) = self.malloc_pitch(a[2], a[3])?;
                    pitch = pi;
                    Ok(p)
                })?;
                Ok(write_u64(mem, a[1], pitch)?)
            }
            Op::HostRegister => self.host_register(a[0], a[1], uint(a[2]), Pinned::Registered),
            Op::HostUnregister => self.host_unregister(a[0], Pinned::Registered).map(drop),
            Op::Memcpy => {
                let dir = self.direction(int(a[3]), a[0], a[1])?;
                self.copy(mem, a[0], a[1], a[2], dir, Stream::NULL, true)
            }
            Op::MemcpyAsync => {
                let dir = self.direction(int(a[3]), a[0], a[1])?;
                let s = self.stream(a[4])?;
                self.copy(mem, a[0], a[1], a[2], dir, s, false)
            }
            Op::Memcpy2D | Op::Memcpy2DAsync => {
                let (s, sync) = if op == Op::Memcpy2D {
                    (Stream::NULL, true)
                } else {
                    (self.stream(a[7])?, false)
                };
                let (dst, src) = ((a[0], a[1]), (a[2], a[3]));
                self.copy_2d(mem, dst, src, a[4], a[5], int(a[6]), s, sync)
            }
            Op::Memset => self.memset(a[0], int(a[1]), a[2], Stream::NULL, true),
            Op::MemsetAsync => {
                let s = self.stream(a[3])?;
                self.memset(a[0], int(a[1]), a[2], s, false)
            }
            Op::MemcpyToSymbol
            | Op::MemcpyFromSymbol
            | Op::MemcpyToSymbolAsync
            | Op::MemcpyFromSymbolAsync => {
                let (s, sync) = match op {
                    Op::MemcpyToSymbol | Op::MemcpyFromSymbol => (Stream::NULL, true),
                    _ => (self.stream(a[5])?, false),
                };
                let end = match op {
                    Op::MemcpyToSymbol | Op::MemcpyToSymbolAsync => SymbolEnd::Dst,
                    _ => SymbolEnd::Src,
                };
                self.copy_symbol(mem, end, (a[0], a[1]), a[2], a[3], int(a[4]), s, sync)
            }
            Op::GetSymbolAddress => {
                let p = self.symbol_at(a[1], 0, 0)?;
                Ok(write_u64(mem, a[0], p)?)
            }
            Op::GetSymbolSize => {
                let (_, size) = self.variable(a[1])?;
                Ok(write_u64(mem, a[0], size)?)
            }
            Op::PointerGetAttributes => {
                let attrs = self.pointer_attributes(a[1])?;
                Ok(mem.write(a[0], &out::pointer_attributes(&attrs))?)
            }

            // ---- streams ----
            Op::StreamCreate => out_u64(mem, a[0], || self.stream_create(0, 0)),
            Op::StreamCreateWithFlags => out_u64(mem, a[0], || self.stream_create(uint(a[1]), 0)),
            Op::StreamCreateWithPriority => {
                out_u64(mem, a[0], || self.stream_create(uint(a[1]), int(a[2])))
            }
            Op::StreamDestroy => self.stream_destroy(a[0]),
            Op::StreamSynchronize => b.stream_synchronize(self.stream(a[0])?),
            Op::StreamQuery => self.stream_query(a[0]),
            Op::StreamWaitEvent => {
                let s = self.stream(a[0])?;
                b.stream_wait_event(s, self.event(a[1])?)
            }
            Op::StreamGetPriority => {
                let (_, priority) = self.stream_info(a[0])?;
                put_i32(mem, a[1], priority)
            }
            Op::StreamGetFlags => {
                let (flags, _) = self.stream_info(a[0])?;
                Ok(write_u32(mem, a[1], flags)?)
            }
            Op::LaunchHostFunc => self.add_callback(a[0], a[1], a[2], CALLBACK_HOST_FUNC),
            Op::StreamAddCallback => {
                if a[3] != 0 {
                    return Err(GpuError::InvalidValue(
                        "cudaStreamAddCallback flags must be 0".into(),
                    ));
                }
                self.add_callback(a[0], a[1], a[2], CALLBACK_STREAM)
            }

            // ---- events ----
            Op::EventCreate => out_u64(mem, a[0], || self.event_create(0)),
            Op::EventCreateWithFlags => out_u64(mem, a[0], || self.event_create(uint(a[1]))),
            Op::EventRecord => self.event_record(a[0], a[1]),
            Op::EventSynchronize => b.event_synchronize(self.event(a[0])?),
            Op::EventQuery => self.event_query(a[0]),
            Op::EventElapsedTime => {
                let ms = self.event_elapsed(a[1], a[2])?;
                Ok(write_u32(mem, a[0], ms.to_bits())?)
            }
            Op::EventDestroy => self.event_destroy(a[0]),

            // ---- modules and launches ----
            Op::RegisterFatBinary => out_u64(mem, a[0], || self.register_fatbin(mem, a[1])),
            Op::RegisterFatBinaryEnd => self.fatbin_end(a[0]),
            Op::InitModule => self.init_module(a[0]),
            Op::UnregisterFatBinary => self.unregister_fatbin(a[0]),
            Op::RegisterFunction => self.register_function(mem, a[0], a[1], a[3]),
            Op::RegisterVar => self.register_variable(mem, a[0], a[1], a[3]),
            Op::RegisterManagedVar => Err(GpuError::NotSupported(
                "__managed__ variables (managed memory) are not supported by crac yet".into(),
            )),
            Op::LaunchKernel => self.launch(
                mem,
                a[0],
                Dim3::from_words(a[1], a[2]),
                Dim3::from_words(a[3], a[4]),
                a[5],
                a[6],
                a[7],
            ),
            Op::FuncGetAttributes => {
                let attrs = self.func_attributes(a[1])?;
                Ok(mem.write(a[0], &out::func_attributes(&attrs))?)
            }
            Op::FuncSetAttribute => self.func_set_attribute(a[0], int(a[1]), int(a[2])),
            Op::FuncSetCacheConfig => self.func_set_cache_config(a[0], int(a[1])),
            Op::OccupancyMaxActiveBlocksPerMultiprocessor
            | Op::OccupancyMaxActiveBlocksPerMultiprocessorWithFlags => {
                let n = self.occupancy(a[1], int(a[2]), a[3])?;
                put_i32(mem, a[0], i32::try_from(n).unwrap_or(i32::MAX))
            }
            Op::OccupancyAvailableDynamicSMemPerBlock => {
                let n = self.available_dynamic_shared(a[1], int(a[2]), int(a[3]))?;
                Ok(write_u64(mem, a[0], n)?)
            }

            // ---- crac-internal ----
            Op::PinnedAlloc => self.host_register(a[0], a[1], uint(a[2]), Pinned::Allocated),
            Op::PinnedFree => {
                let len = self.host_unregister(a[0], Pinned::Allocated)?;
                Ok(write_u64(mem, a[1], len)?)
            }
            Op::HostCallbackNext => {
                // Check the out-record before taking a callback: one taken and then lost would
                // hold its stream forever.
                let blank = out::host_callback(&crac_abi::HostCallback::default());
                mem.write(a[0], &blank)?;
                match self.callbacks.next() {
                    Some(cb) => Ok(mem.write(a[0], &out::host_callback(&cb))?),
                    None => Err(GpuError::NotReady),
                }
            }
            Op::HostCallbackDone => self.callbacks.done(a[0]),
            Op::PrintfTake => {
                let cap = usize::try_from(a[1]).unwrap_or(usize::MAX);
                // Validate the out-pointer before taking bytes that could then be lost.
                write_u64(mem, a[2], 0)?;
                let bytes = self.printf.take(cap);
                mem.write(a[0], &bytes)?;
                Ok(write_u64(mem, a[2], bytes.len() as u64)?)
            }
            // An operation appended to the list after this build's decoder was written.
            #[allow(unreachable_patterns)]
            other => Err(GpuError::NotSupported(format!(
                "{} is not implemented by crac's lower half yet",
                other.c_name()
            ))),
        }
    }
}
