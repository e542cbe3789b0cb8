//! The CUDA call log: what a restart must create again, one entry per live object.
//!
//! The log is not a list of calls. Each entry is one object the program holds now — a fat
//! binary, a kernel, a variable, an allocation, a stream, an event, a registered host range —
//! with what is needed to create it again, so destroying an object drops its entry and the log's
//! size follows the number of live objects, never the number of calls made (CRAC logged every
//! launch's configuration, and replayed the program's whole history). Nothing per launch is
//! kept.
//!
//! The runtime's own tables are the source of truth; [`crate::Runtime::snapshot`] reads them
//! into a [`LogFile`] when the gate is closed and the device drained. Replay order does not
//! depend on the order of the program's calls: every object is put back explicitly — device
//! allocations and module variables at their saved addresses, streams and events under their
//! saved virtual values — so there is no allocator determinism to hope for, and each placement
//! is checked.

mod codec;

use serde::{Deserialize, Serialize};

pub use codec::{FORMAT_VERSION, MAGIC};
pub(crate) use codec::{decode, encode};

/// The decoded log: device settings, the virtual tables' counters and the live objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogFile {
    /// The backend the log was taken on (`DeviceBackend::name`).
    pub backend: String,
    /// What the program set on the device.
    pub settings: Settings,
    /// The next value each virtual table would hand out (restored so no value is reused).
    pub next: Counters,
    /// The live objects, in the order they are replayed.
    pub entries: Vec<Entry>,
}

/// Device flags, limits and cache preference (`cudaSetDeviceFlags`, `cudaDeviceSetLimit`,
/// `cudaDeviceSetCacheConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Settings {
    /// `cudaSetDeviceFlags` value.
    pub flags: u32,
    /// Every `cudaLimit` value, by limit number.
    pub limits: Vec<u64>,
    /// `cudaDeviceSetCacheConfig` value.
    pub cache_config: i32,
}

/// The next value of each virtual table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// Streams.
    pub stream: u64,
    /// Events.
    pub event: u64,
    /// Fat binaries.
    pub fatbin: u64,
}

/// A `__device__`/`__constant__` variable of a loaded module, where it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlacedVariable {
    /// Mangled name.
    pub name: String,
    /// Device address.
    pub addr: u64,
    /// Bytes.
    pub size: u64,
    /// `__constant__`.
    pub constant: bool,
}

/// One live object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Entry {
    /// A device allocation (`cudaMalloc`, `cudaMallocPitch`).
    Allocation {
        /// First byte.
        addr: u64,
        /// Bytes.
        size: u64,
        /// Row pitch, for a pitch allocation.
        pitch: Option<u64>,
    },
    /// A registered fat binary (`__cudaRegisterFatBinary`).
    FatBinary {
        /// Its virtual handle.
        handle: u64,
        /// The program's `__fatBinC_Wrapper_t`: the image is read again from program memory.
        wrapper: u64,
        /// Once loaded: the load order and every variable of its module with its address.
        loaded: Option<Loaded>,
    },
    /// A kernel (`__cudaRegisterFunction`), named by its host stub.
    Kernel {
        /// Host stub address.
        stub: u64,
        /// The fat binary's handle.
        fatbin: u64,
        /// Mangled name.
        name: String,
        /// `cudaFuncAttributeMaxDynamicSharedMemorySize`, if the program set it.
        max_dynamic_shared: Option<u64>,
    },
    /// A variable (`__cudaRegisterVar`), named by its host shadow.
    Variable {
        /// Host shadow address.
        shadow: u64,
        /// The fat binary's handle.
        fatbin: u64,
        /// Mangled name.
        name: String,
        /// Device address and size, once its module is loaded.
        place: Option<(u64, u64)>,
    },
    /// A created stream.
    Stream {
        /// Its virtual handle.
        handle: u64,
        /// `cudaStreamCreateWithFlags` flags.
        flags: u32,
        /// The priority asked for (the backend clamps it).
        priority: i32,
    },
    /// A created event.
    Event {
        /// Its virtual handle.
        handle: u64,
        /// `cudaEventCreateWithFlags` flags.
        flags: u32,
        /// Whether it was ever recorded (it is recorded again at restart, so it reads as
        /// complete; the time between two such events is about zero).
        recorded: bool,
    },
    /// Registered (page-locked) host memory: its contents are program memory, saved with it.
    HostMemory {
        /// First byte.
        start: u64,
        /// Bytes.
        len: u64,
        /// `cudaHostAlloc`/`cudaHostRegister` flags.
        flags: u32,
        /// Allocated by the shim (`cudaMallocHost`/`cudaHostAlloc`), not the program's own
        /// memory registered.
        allocated: bool,
    },
}

/// A loaded module's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Loaded {
    /// Position in load order (modules are loaded again in this order, so an initialiser
    /// holding another module's variable's address finds it).
    pub order: u64,
    /// Every variable of the module.
    pub variables: Vec<PlacedVariable>,
}

impl Entry {
    /// The kind's name, as `crac inspect` shows it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Entry::Allocation { .. } => "allocation",
            Entry::FatBinary { .. } => "fat binary",
            Entry::Kernel { .. } => "kernel",
            Entry::Variable { .. } => "variable",
            Entry::Stream { .. } => "stream",
            Entry::Event { .. } => "event",
            Entry::HostMemory { .. } => "host memory",
        }
    }
}
