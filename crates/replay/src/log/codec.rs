//! The log's bytes: [`MAGIC`], [`FORMAT_VERSION`] (little-endian `u32`), then the [`LogFile`]
//! in bincode 2's standard configuration.
//!
//! Decoding trusts nothing: the length is capped first, bincode runs under a byte limit chosen
//! from the input's length (a length field can never make it allocate more than a few times the
//! input), every byte must be used, and the decoded values are checked (caps on counts and
//! names, handles of the right kind, ranges that do not wrap, no object twice) before a restart
//! acts on them. Garbage is an error, never a panic.

use std::collections::HashSet;

use bincode::config;

use super::{Entry, LogFile};
use crate::ReplayError;
use crate::handles::Kind;

/// The first bytes of an encoded log.
pub const MAGIC: [u8; 8] = *b"CRACCUDA";
/// The log's format version; bumped on any change to [`LogFile`]'s encoding.
pub const FORMAT_VERSION: u32 = 1;

/// Most bytes an encoded log may have.
const MAX_LOG_BYTES: usize = 1 << 30;
/// Most entries.
const MAX_ENTRIES: usize = 1 << 24;
/// Most variables of one module.
const MAX_MODULE_VARIABLES: usize = 1 << 20;
/// Longest name (the runtime reads at most this much of a registration's name).
const MAX_NAME: usize = 64 << 10;
/// Most `cudaLimit` values.
const MAX_LIMITS: usize = 64;
/// Longest backend name.
const MAX_BACKEND_NAME: usize = 64;

fn corrupt(reason: impl Into<String>) -> ReplayError {
    ReplayError::CorruptLog {
        reason: reason.into(),
    }
}

/// Encodes `log`.
pub(crate) fn encode(log: &LogFile) -> Result<Vec<u8>, ReplayError> {
    let mut out = Vec::with_capacity(64 + log.entries.len() * 32);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bincode::serde::encode_into_std_write(log, &mut out, config::standard())
        .map_err(|source| ReplayError::EncodeLog { source })?;
    Ok(out)
}

/// Decodes and checks an encoded log.
pub(crate) fn decode(bytes: &[u8]) -> Result<LogFile, ReplayError> {
    if bytes.len() > MAX_LOG_BYTES {
        return Err(corrupt(format!(
            "{} bytes is more than a log can have ({MAX_LOG_BYTES})",
            bytes.len()
        )));
    }
    let head = MAGIC.len() + 4;
    if bytes.len() < head || bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("it does not start with crac's CUDA log magic"));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[MAGIC.len()..head]);
    let version = u32::from_le_bytes(v);
    if version != FORMAT_VERSION {
        return Err(ReplayError::LogVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let body = &bytes[head..];
    let need = body.len().saturating_mul(4);
    let decoded = if need <= 1 << 16 {
        decode_limited::<{ 1 << 16 }>(body)
    } else if need <= 1 << 20 {
        decode_limited::<{ 1 << 20 }>(body)
    } else if need <= 1 << 24 {
        decode_limited::<{ 1 << 24 }>(body)
    } else if need <= 1 << 28 {
        decode_limited::<{ 1 << 28 }>(body)
    } else {
        decode_limited::<{ 1 << 32 }>(body)
    };
    let (log, used) = decoded.map_err(|e| ReplayError::undecodable(&e))?;
    if used != body.len() {
        return Err(corrupt(format!(
            "{} bytes follow its end",
            body.len() - used
        )));
    }
    check(&log)?;
    Ok(log)
}

fn decode_limited<const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(LogFile, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, config::standard().with_limit::<LIMIT>())
}

fn check_name(what: &str, name: &str) -> Result<(), ReplayError> {
    if name.is_empty() || name.len() > MAX_NAME || name.contains('\0') {
        return Err(corrupt(format!(
            "a {what} has an empty, over-long or NUL-holding name"
        )));
    }
    Ok(())
}

fn check_range(what: &str, start: u64, len: u64) -> Result<(), ReplayError> {
    if start == 0 || len == 0 || start.checked_add(len).is_none() {
        return Err(corrupt(format!(
            "a {what} at {start:#x} of {len} bytes is empty, null or wraps the address space"
        )));
    }
    Ok(())
}

fn check_handle(what: &str, kind: Kind, v: u64, next: u64) -> Result<(), ReplayError> {
    let n = crate::handles::sequence(kind, v);
    if n.is_none_or(|n| n == 0 || n >= next) {
        return Err(corrupt(format!(
            "{v:#x} is no {what} handle this log could have handed out"
        )));
    }
    Ok(())
}

/// Checks a decoded log's values: what a restart relies on.
fn check(log: &LogFile) -> Result<(), ReplayError> {
    if log.backend.len() > MAX_BACKEND_NAME {
        return Err(corrupt("its backend name is over-long"));
    }
    if log.entries.len() > MAX_ENTRIES {
        return Err(corrupt(format!("{} entries", log.entries.len())));
    }
    if log.settings.limits.len() > MAX_LIMITS {
        return Err(corrupt(format!(
            "{} device limits",
            log.settings.limits.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut fatbins = HashSet::new();
    let mut orders = HashSet::new();
    for e in &log.entries {
        // One entry per object: the kind and its key.
        let key = match e {
            Entry::Allocation { addr, size, pitch } => {
                check_range("allocation", *addr, *size)?;
                if pitch.is_some_and(|p| p == 0 || p > *size) {
                    return Err(corrupt(format!(
                        "the allocation at {addr:#x} has a bad pitch"
                    )));
                }
                *addr
            }
            Entry::FatBinary { handle, loaded, .. } => {
                check_handle("fat binary", Kind::FatBinary, *handle, log.next.fatbin)?;
                fatbins.insert(*handle);
                if let Some(l) = loaded {
                    if !orders.insert(l.order) {
                        return Err(corrupt("two modules share a load order"));
                    }
                    if l.variables.len() > MAX_MODULE_VARIABLES {
                        return Err(corrupt("a module has too many variables"));
                    }
                    for v in &l.variables {
                        check_name("module variable", &v.name)?;
                        check_range("module variable", v.addr, v.size)?;
                    }
                }
                *handle
            }
            Entry::Kernel {
                stub, fatbin, name, ..
            } => {
                check_name("kernel", name)?;
                if !fatbins.contains(fatbin) {
                    return Err(corrupt(format!(
                        "kernel {name} belongs to no fat binary before it"
                    )));
                }
                *stub
            }
            Entry::Variable {
                shadow,
                fatbin,
                name,
                place,
            } => {
                check_name("variable", name)?;
                if !fatbins.contains(fatbin) {
                    return Err(corrupt(format!(
                        "variable {name} belongs to no fat binary before it"
                    )));
                }
                if let Some((addr, size)) = place {
                    check_range("variable", *addr, *size)?;
                }
                *shadow
            }
            Entry::Stream { handle, flags, .. } => {
                check_handle("stream", Kind::Stream, *handle, log.next.stream)?;
                if *flags & !1 != 0 {
                    return Err(corrupt(format!("stream flags {flags:#x}")));
                }
                *handle
            }
            Entry::Event { handle, flags, .. } => {
                check_handle("event", Kind::Event, *handle, log.next.event)?;
                if *flags & !crac_gpu::EventFlags::ALL != 0 {
                    return Err(corrupt(format!("event flags {flags:#x}")));
                }
                *handle
            }
            Entry::HostMemory { start, len, .. } => {
                check_range("host range", *start, *len)?;
                *start
            }
        };
        if !seen.insert((e.kind(), key)) {
            return Err(corrupt(format!("the {} {key:#x} appears twice", e.kind())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Counters, Loaded, PlacedVariable, Settings};

    pub(crate) fn sample() -> LogFile {
        let fb = crate::handles::value(Kind::FatBinary, 1);
        LogFile {
            backend: "sim".into(),
            settings: Settings {
                flags: 4,
                limits: vec![1024, 1 << 20],
                cache_config: 1,
            },
            next: Counters {
                stream: 3,
                event: 2,
                fatbin: 2,
            },
            entries: vec![
                Entry::Allocation {
                    addr: 0x7e00_0000_0000,
                    size: 4096,
                    pitch: Some(512),
                },
                Entry::FatBinary {
                    handle: fb,
                    wrapper: 0x1000,
                    loaded: Some(Loaded {
                        order: 0,
                        variables: vec![PlacedVariable {
                            name: "counter".into(),
                            addr: 0x7e00_0000_2000,
                            size: 4,
                            constant: false,
                        }],
                    }),
                },
                Entry::Kernel {
                    stub: 0x2000,
                    fatbin: fb,
                    name: "_Z3addPii".into(),
                    max_dynamic_shared: Some(70000),
                },
                Entry::Variable {
                    shadow: 0x3000,
                    fatbin: fb,
                    name: "counter".into(),
                    place: Some((0x7e00_0000_2000, 4)),
                },
                Entry::Stream {
                    handle: crate::handles::value(Kind::Stream, 2),
                    flags: 1,
                    priority: -1,
                },
                Entry::Event {
                    handle: crate::handles::value(Kind::Event, 1),
                    flags: 2,
                    recorded: true,
                },
                Entry::HostMemory {
                    start: 0x5000,
                    len: 8192,
                    flags: 0,
                    allocated: true,
                },
            ],
        }
    }

    #[test]
    fn a_log_round_trips() {
        let log = sample();
        let bytes = encode(&log).unwrap();
        assert_eq!(&bytes[..8], b"CRACCUDA");
        assert_eq!(decode(&bytes).unwrap(), log);
    }

    #[test]
    fn damage_is_refused_with_its_own_error() {
        let bytes = encode(&sample()).unwrap();
        let mut bad_magic = bytes.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(
            decode(&bad_magic),
            Err(ReplayError::CorruptLog { .. })
        ));
        let mut newer = bytes.clone();
        newer[8] = 9;
        assert!(matches!(
            decode(&newer),
            Err(ReplayError::LogVersion { found: 9, .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing),
            Err(ReplayError::CorruptLog { .. })
        ));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn values_a_restart_relies_on_are_checked() {
        let mut twice = sample();
        twice.entries.push(twice.entries[0].clone());
        let e = decode(&encode(&twice).unwrap()).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");

        let mut orphan = sample();
        orphan.entries.remove(1);
        let e = decode(&encode(&orphan).unwrap()).unwrap_err();
        assert!(e.to_string().contains("no fat binary"), "{e}");

        let mut future = sample();
        future.next.stream = 1;
        assert!(decode(&encode(&future).unwrap()).is_err());

        let mut wraps = sample();
        wraps.entries[0] = Entry::Allocation {
            addr: u64::MAX - 10,
            size: 4096,
            pitch: None,
        };
        assert!(decode(&encode(&wraps).unwrap()).is_err());
    }

    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,20}"
    }

    /// Valid logs: unique objects, handles below their counters, kernels and variables of a
    /// fat binary listed before them.
    fn logs() -> impl Strategy<Value = LogFile> {
        let fatbins = prop::collection::vec(
            (
                any::<u64>(),
                prop::option::of(prop::collection::vec(
                    (name(), 1u64..1 << 20, any::<bool>()),
                    0..4,
                )),
            ),
            1..4,
        );
        let kernels = prop::collection::vec(
            (name(), any::<usize>(), prop::option::of(0u64..1 << 17)),
            0..6,
        );
        let allocs = prop::collection::vec((1u64..1 << 30, prop::option::of(1u64..512)), 0..8);
        let streams = prop::collection::vec((0u32..2, -5i32..5), 0..4);
        let events = prop::collection::vec((0u32..8, any::<bool>()), 0..4);
        let hosts = prop::collection::vec((1u64..1 << 20, any::<u32>(), any::<bool>()), 0..3);
        (
            fatbins,
            kernels,
            allocs,
            streams,
            events,
            hosts,
            any::<u32>(),
            prop::collection::vec(any::<u64>(), 0..8),
        )
            .prop_map(
                |(fatbins, kernels, allocs, streams, events, hosts, flags, limits)| {
                    let mut entries = Vec::new();
                    for (i, (size, pitch)) in allocs.iter().enumerate() {
                        let addr = 0x7e00_0000_0000 + ((i as u64) << 32);
                        entries.push(Entry::Allocation {
                            addr,
                            size: *size,
                            pitch: pitch.map(|p| p.min(*size)),
                        });
                    }
                    let mut handles = Vec::new();
                    for (i, (wrapper, vars)) in fatbins.iter().enumerate() {
                        let handle = crate::handles::value(Kind::FatBinary, i as u64 + 1);
                        handles.push(handle);
                        entries.push(Entry::FatBinary {
                            handle,
                            wrapper: *wrapper,
                            loaded: vars.as_ref().map(|vars| Loaded {
                                order: i as u64,
                                variables: vars
                                    .iter()
                                    .enumerate()
                                    .map(|(j, (name, size, constant))| PlacedVariable {
                                        name: name.clone(),
                                        addr: 0x7f00_0000_0000
                                            + ((i as u64) << 32)
                                            + ((j as u64) << 24),
                                        size: *size,
                                        constant: *constant,
                                    })
                                    .collect(),
                            }),
                        });
                    }
                    for (i, (name, fatbin, max)) in kernels.iter().enumerate() {
                        entries.push(Entry::Kernel {
                            stub: 0x40_0000 + i as u64 * 16,
                            fatbin: handles[fatbin % handles.len()],
                            name: name.clone(),
                            max_dynamic_shared: *max,
                        });
                        entries.push(Entry::Variable {
                            shadow: 0x80_0000 + i as u64 * 16,
                            fatbin: handles[fatbin % handles.len()],
                            name: name.clone(),
                            place: max.map(|m| (0x7f80_0000_0000 + i as u64 * 4096, m + 1)),
                        });
                    }
                    for (i, (flags, priority)) in streams.iter().enumerate() {
                        entries.push(Entry::Stream {
                            handle: crate::handles::value(Kind::Stream, i as u64 + 1),
                            flags: *flags,
                            priority: *priority,
                        });
                    }
                    for (i, (flags, recorded)) in events.iter().enumerate() {
                        entries.push(Entry::Event {
                            handle: crate::handles::value(Kind::Event, i as u64 + 1),
                            flags: *flags & crac_gpu::EventFlags::ALL,
                            recorded: *recorded,
                        });
                    }
                    for (i, (len, flags, allocated)) in hosts.iter().enumerate() {
                        entries.push(Entry::HostMemory {
                            start: 0x1000_0000 + ((i as u64) << 24),
                            len: *len,
                            flags: *flags,
                            allocated: *allocated,
                        });
                    }
                    LogFile {
                        backend: "sim".into(),
                        settings: Settings {
                            flags,
                            limits,
                            cache_config: 0,
                        },
                        next: Counters {
                            stream: streams.len() as u64 + 1,
                            event: events.len() as u64 + 1,
                            fatbin: fatbins.len() as u64 + 1,
                        },
                        entries,
                    }
                },
            )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn valid_logs_round_trip(log in logs()) {
            let bytes = encode(&log).unwrap();
            prop_assert_eq!(decode(&bytes).unwrap(), log);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_logs_never_panic(
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..8),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut bytes = encode(&sample()).unwrap();
            for (at, v) in flips {
                let at = at % bytes.len();
                bytes[at] ^= v;
            }
            let _ = decode(&bytes);
            let keep = cut % (bytes.len() + 1);
            let _ = decode(&bytes[..keep]);
        }
    }
}
