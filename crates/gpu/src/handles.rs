//! Plain-integer handles for device objects, and the small value types the trait passes.
//!
//! Nothing here owns anything: a handle is a number the backend hands out and later looks up, so
//! it can cross the C ABI as a `cudaStream_t`, `cudaEvent_t`, … and be virtualised by the replay
//! layer.

/// A device address (what `cudaMalloc` returns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevicePtr(pub u64);

impl DevicePtr {
    /// The address `offset` bytes further on, or `None` on overflow.
    pub fn checked_add(self, offset: u64) -> Option<DevicePtr> {
        self.0.checked_add(offset).map(DevicePtr)
    }
}

impl std::fmt::LowerHex for DevicePtr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// A stream. `0` and `1` are the legacy default stream, `2` the calling thread's per-thread
/// default stream; backends hand out created streams above [`Stream::FIRST_CREATED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stream(pub u64);

impl Stream {
    /// `NULL` / `0`: the legacy default stream (as the app sees it without `--default-stream
    /// per-thread`).
    pub const NULL: Stream = Stream(0);
    /// `cudaStreamLegacy` (`0x1`): the legacy default stream, explicitly.
    pub const LEGACY: Stream = Stream(1);
    /// `cudaStreamPerThread` (`0x2`): the calling thread's own default stream.
    pub const PER_THREAD: Stream = Stream(2);
    /// Lowest value a backend gives a created stream (keeps clear of the predefined ones).
    pub const FIRST_CREATED: u64 = 0x1000;

    /// Whether this is the legacy default stream (`0` or `1`).
    pub fn is_legacy(self) -> bool {
        self == Stream::NULL || self == Stream::LEGACY
    }

    /// Whether this is the per-thread default stream.
    pub fn is_per_thread(self) -> bool {
        self == Stream::PER_THREAD
    }
}

/// Flags of a created stream (`cudaStreamCreateWithFlags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StreamFlags(pub u32);

impl StreamFlags {
    /// `cudaStreamDefault`: a blocking stream (synchronises with the legacy default stream).
    pub const DEFAULT: StreamFlags = StreamFlags(0);
    /// `cudaStreamNonBlocking`: does not synchronise with the legacy default stream.
    pub const NON_BLOCKING: StreamFlags = StreamFlags(1);

    /// Whether `cudaStreamNonBlocking` is set.
    pub fn non_blocking(self) -> bool {
        self.0 & Self::NON_BLOCKING.0 != 0
    }
}

/// An event (`cudaEvent_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event(pub u64);

/// Flags of an event (`cudaEventCreateWithFlags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventFlags(pub u32);

impl EventFlags {
    /// `cudaEventDefault`.
    pub const DEFAULT: EventFlags = EventFlags(0);
    /// `cudaEventBlockingSync`: synchronising waits block instead of spinning.
    pub const BLOCKING_SYNC: EventFlags = EventFlags(1);
    /// `cudaEventDisableTiming`: no timestamps; `elapsed` on it fails.
    pub const DISABLE_TIMING: EventFlags = EventFlags(2);
    /// `cudaEventInterprocess`: shareable across processes (needs `DISABLE_TIMING`).
    pub const INTERPROCESS: EventFlags = EventFlags(4);
    /// Every flag CUDA defines; other bits are `cudaErrorInvalidValue`.
    pub const ALL: u32 = 1 | 2 | 4;

    /// Whether timing is disabled.
    pub fn timing_disabled(self) -> bool {
        self.0 & Self::DISABLE_TIMING.0 != 0
    }
}

/// A loaded module (one registered fat binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleId(pub u64);

/// A kernel of a loaded module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionId(pub u64);

/// Shape and stream of one kernel launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchConfig {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Bytes of dynamic shared memory per block.
    pub dynamic_shared: u32,
    /// Stream the launch is ordered on.
    pub stream: Stream,
}

/// A live device allocation (checkpoint hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// First byte.
    pub ptr: DevicePtr,
    /// Bytes requested by the app (the backend may have rounded its reservation up).
    pub size: u64,
}

/// A module variable (`__device__` or `__constant__`) with its device address (checkpoint hook).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableRecord {
    /// Module that defines it.
    pub module: ModuleId,
    /// Mangled name, as registered.
    pub name: String,
    /// Device address.
    pub ptr: DevicePtr,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is `__constant__`.
    pub constant: bool,
}

/// Where a module variable must go when a module is registered again at restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariablePlacement {
    /// Mangled name.
    pub name: String,
    /// Device address it had before the checkpoint.
    pub ptr: DevicePtr,
}

/// Where one kernel parameter sits in the packed parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// Byte offset.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What `cudaFuncGetAttributes` reports about a kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FuncAttributes {
    /// Bytes of static shared memory.
    pub shared_size_bytes: u64,
    /// Bytes of constant memory the module uses.
    pub const_size_bytes: u64,
    /// Bytes of local memory per thread.
    pub local_size_bytes: u64,
    /// Most threads per block this kernel can be launched with.
    pub max_threads_per_block: u32,
    /// Registers per thread.
    pub num_regs: u32,
    /// PTX ISA version the kernel came from, times ten (e.g. 90 for 9.0); 0 if unknown.
    pub ptx_version: u32,
    /// Architecture the code runs as, times ten (e.g. 80 for sm_80).
    pub binary_version: u32,
    /// Most dynamic shared memory a launch may ask for.
    pub max_dynamic_shared_size_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_streams_are_recognised() {
        assert!(Stream::NULL.is_legacy());
        assert!(Stream::LEGACY.is_legacy());
        assert!(!Stream::PER_THREAD.is_legacy());
        assert!(Stream::PER_THREAD.is_per_thread());
        assert!(!Stream(Stream::FIRST_CREATED).is_legacy());
    }

    #[test]
    fn flags_decode() {
        assert!(StreamFlags::NON_BLOCKING.non_blocking());
        assert!(!StreamFlags::DEFAULT.non_blocking());
        assert!(EventFlags(3).timing_disabled());
        assert!(!EventFlags::BLOCKING_SYNC.timing_disabled());
    }

    #[test]
    fn device_ptr_add_checks_overflow() {
        assert_eq!(DevicePtr(10).checked_add(5), Some(DevicePtr(15)));
        assert_eq!(DevicePtr(u64::MAX).checked_add(1), None);
        assert_eq!(format!("{:#x}", DevicePtr(255)), "0xff");
    }
}
