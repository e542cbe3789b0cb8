//! [`describe`]: the objects a log holds, for `crac inspect`.

use std::collections::HashMap;

use serde::Serialize;

use crate::ReplayError;
use crate::log::{self, Entry, PlacedVariable};

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
    // A variable's own place is filled only once the program used it by name
    // (`cudaMemcpyToSymbol`, ...); its loaded module knows where it is either way.
    let modules: HashMap<u64, &[PlacedVariable]> = file
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::FatBinary {
                handle,
                loaded: Some(l),
                ..
            } => Some((*handle, l.variables.as_slice())),
            _ => None,
        })
        .collect();
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
                fatbin,
                name,
                place,
            } => {
                let module = modules.get(fatbin);
                let found = place.or_else(|| {
                    module?
                        .iter()
                        .find(|v| v.name == *name)
                        .map(|v| (v.addr, v.size))
                });
                let detail = match (found, module) {
                    (Some((addr, _)), _) => format!("{name} at {addr:#x}"),
                    (None, Some(_)) => format!("{name} (not in its loaded module)"),
                    (None, None) => format!("{name} (module not loaded)"),
                };
                objects.push(obj(e.kind(), *shadow, found.map_or(0, |p| p.1), detail));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::{Kind, value};
    use crate::log::{Counters, Loaded, LogFile};

    /// Two fat binaries, one loaded (its variable `counter` used only by kernels, so the
    /// variable entry has no place of its own), one never loaded.
    fn log() -> Vec<u8> {
        let loaded = value(Kind::FatBinary, 1);
        let idle = value(Kind::FatBinary, 2);
        let file = LogFile {
            backend: "sim".into(),
            next: Counters {
                fatbin: 3,
                ..Counters::default()
            },
            entries: vec![
                Entry::FatBinary {
                    handle: loaded,
                    wrapper: 0x1000,
                    loaded: Some(Loaded {
                        order: 0,
                        variables: vec![
                            PlacedVariable {
                                name: "counter".into(),
                                addr: 0x7e00_0000_2000,
                                size: 4,
                                constant: false,
                            },
                            PlacedVariable {
                                name: "table".into(),
                                addr: 0x7e00_0000_3000,
                                size: 64,
                                constant: true,
                            },
                        ],
                    }),
                },
                Entry::FatBinary {
                    handle: idle,
                    wrapper: 0x2000,
                    loaded: None,
                },
                Entry::Variable {
                    shadow: 0x3000,
                    fatbin: loaded,
                    name: "counter".into(),
                    place: None,
                },
                Entry::Variable {
                    shadow: 0x3010,
                    fatbin: loaded,
                    name: "table".into(),
                    place: Some((0x7e00_0000_3000, 64)),
                },
                Entry::Variable {
                    shadow: 0x3020,
                    fatbin: idle,
                    name: "other".into(),
                    place: None,
                },
            ],
            ..LogFile::default()
        };
        log::encode(&file).expect("encode")
    }

    fn variable(summary: &LogSummary, shadow: u64) -> &ObjectSummary {
        summary
            .objects
            .iter()
            .find(|o| o.kind == "variable" && o.id == shadow)
            .expect("the variable is listed")
    }

    #[test]
    fn a_variable_of_a_loaded_module_shows_where_it_is_even_if_never_used_by_name() {
        let summary = describe(&log()).expect("describe");
        let counter = variable(&summary, 0x3000);
        assert_eq!(counter.detail, "counter at 0x7e0000002000");
        assert_eq!(counter.size, 4);
        let table = variable(&summary, 0x3010);
        assert_eq!(table.detail, "table at 0x7e0000003000");
        assert_eq!(table.size, 64);
    }

    #[test]
    fn a_variable_of_a_module_never_loaded_says_so() {
        let summary = describe(&log()).expect("describe");
        let other = variable(&summary, 0x3020);
        assert_eq!(other.detail, "other (module not loaded)");
        assert_eq!(other.size, 0);
    }
}
