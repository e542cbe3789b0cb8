//! [`describe`]: the objects a log holds, for `crac inspect`.

use serde::Serialize;

use crate::ReplayError;
use crate::log::{self, Entry};

/// The objects a log holds (`crac inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogSummary {
    /// The backend it was taken on.
    pub backend: String,
    /// Live entries (objects).
    pub entries: usize,
    /// One line per object, module variables included.
    pub objects: Vec<ObjectSummary>,
}

/// One object of a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectSummary {
    /// `allocation`, `fat binary`, `module variable`, `kernel`, `variable`, `stream`, `event`,
    /// `host memory`, `device`.
    pub kind: String,
    /// Its address or virtual handle.
    pub id: u64,
    /// Bytes (0 where it has none).
    pub size: u64,
    /// Name, flags, or whatever else identifies it.
    pub detail: String,
}

/// The objects the encoded log `log` holds, for `crac inspect`.
pub fn describe(log: &[u8]) -> Result<LogSummary, ReplayError> {
    let file = log::decode(log)?;
    let mut objects = Vec::with_capacity(file.entries.len() + 1);
    let obj = |kind: &str, id: u64, size: u64, detail: String| ObjectSummary {
        kind: kind.into(),
        id,
        size,
        detail,
    };
    for e in &file.entries {
        match e {
            Entry::Allocation { addr, size, pitch } => objects.push(obj(
                e.kind(),
                *addr,
                *size,
                pitch.map_or_else(String::new, |p| format!("pitch {p}")),
            )),
            Entry::FatBinary {
                handle,
                wrapper,
                loaded,
            } => {
                let state = match loaded {
                    Some(l) => format!("loaded ({} variables)", l.variables.len()),
                    None => "not loaded".into(),
                };
                objects.push(obj(
                    e.kind(),
                    *handle,
                    0,
                    format!("wrapper {wrapper:#x}, {state}"),
                ));
                for v in loaded.iter().flat_map(|l| &l.variables) {
                    let space = if v.constant {
                        "__constant__"
                    } else {
                        "__device__"
                    };
                    objects.push(obj(
                        "module variable",
                        v.addr,
                        v.size,
                        format!("{space} {}", v.name),
                    ));
                }
            }
            Entry::Kernel {
                stub,
                name,
                max_dynamic_shared,
                ..
            } => objects.push(obj(
                e.kind(),
                *stub,
                0,
                match max_dynamic_shared {
                    Some(b) => format!("{name} (dynamic shared memory up to {b} bytes)"),
                    None => name.clone(),
                },
            )),
            Entry::Variable {
                shadow,
                name,
                place,
                ..
            } => objects.push(obj(
                e.kind(),
                *shadow,
                place.map_or(0, |p| p.1),
                match place {
                    Some((addr, _)) => format!("{name} at {addr:#x}"),
                    None => format!("{name} (module not loaded)"),
                },
            )),
            Entry::Stream {
                handle,
                flags,
                priority,
            } => objects.push(obj(
                e.kind(),
                *handle,
                0,
                format!("flags {flags:#x}, priority {priority}"),
            )),
            Entry::Event {
                handle,
                flags,
                recorded,
            } => objects.push(obj(
                e.kind(),
                *handle,
                0,
                format!(
                    "flags {flags:#x}, {}",
                    if *recorded {
                        "recorded"
                    } else {
                        "never recorded"
                    }
                ),
            )),
            Entry::HostMemory {
                start,
                len,
                flags,
                allocated,
            } => objects.push(obj(
                e.kind(),
                *start,
                *len,
                format!(
                    "{}, flags {flags:#x}",
                    if *allocated {
                        "cudaMallocHost/cudaHostAlloc"
                    } else {
                        "cudaHostRegister"
                    }
                ),
            )),
        }
    }
    let s = &file.settings;
    objects.push(obj(
        "device",
        0,
        0,
        format!(
            "flags {:#x}, limits {:?}, cache config {}",
            s.flags, s.limits, s.cache_config
        ),
    ));
    Ok(LogSummary {
        backend: file.backend,
        entries: file.entries.len(),
        objects,
    })
}
