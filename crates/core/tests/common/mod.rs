//! Shared by the image tests: a fixed sample image's metadata, proptest strategies for every
//! record, and helpers to write an image to memory.
#![allow(dead_code, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::io::Cursor;

use crac_core::image::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// One payload to write: bytes and encoding.
pub type PayloadSpec = (Vec<u8>, Encoding);

/// Writes `payloads`, lets `make_meta` build the metadata from their references, and returns
/// the image bytes and that metadata.
pub fn write_image(
    payloads: &[PayloadSpec],
    make_meta: impl FnOnce(&[PayloadRef]) -> ImageMeta,
) -> (Vec<u8>, ImageMeta) {
    let mut w = ImageWriter::new(Cursor::new(Vec::new())).unwrap();
    let mut refs = Vec::new();
    for (bytes, enc) in payloads {
        w.set_encoding(*enc);
        // Streamed in uneven pieces, as the engine does.
        let mut sink = w.begin_payload().unwrap();
        for piece in bytes.chunks(3 * 4096 + 17) {
            std::io::Write::write_all(&mut sink, piece).unwrap();
        }
        refs.push(sink.finish().unwrap());
    }
    let meta = make_meta(&refs);
    let out = w.finish(&meta).unwrap().into_inner();
    (out, meta)
}

/// A payload's contents: compressible for even `seed`, noisy for odd.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            if seed % 2 == 0 {
                (i / 512) as u8 ^ seed as u8
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

/// The metadata of the golden sample: every section present, every fd kind, two runs (one raw,
/// one zstd) and a device buffer.
pub fn sample_meta(refs: &[PayloadRef]) -> ImageMeta {
    let s = |v: &str| v.to_string();
    ImageMeta {
        header: ImageHeader {
            build_id: s("0123456789abcdef0123456789abcdef01234567"),
            crac_version: s("0.1.0"),
            created_unix: 1_764_000_000,
            generation: 2,
            fingerprints: Fingerprints {
                kernel_release: s("6.18.0"),
                machine: s("x86_64"),
                xsave_size: 2696,
                xsave_features: 0x2e7,
                libc_version: s("2.36"),
                vdso: VdsoRecord {
                    vdso_start: 0x7fff_f7fc_1000,
                    vdso_end: 0x7fff_f7fc_3000,
                    vvar_start: 0x7fff_f7fb_d000,
                    vvar_end: 0x7fff_f7fc_1000,
                    hash: 0xdead_beef_cafe_f00d,
                },
                device: Some(DeviceFingerprint {
                    backend: s("sim"),
                    name: s("crac sim device"),
                    compute_capability: 90,
                    driver_version: 0,
                }),
            },
        },
        process: ProcessRecord {
            pid: 4242,
            comm: s("sample"),
            program: s("/opt/sample/bin/sample"),
            argv: vec![s("sample"), s("--steps"), s("1000"), s("ünïcode ✓")],
            cwd: s("/home/user/run"),
            umask: 0o022,
            rlimits: vec![
                Rlimit {
                    resource: 7,
                    soft: 1024,
                    hard: 524_288,
                },
                Rlimit {
                    resource: 3,
                    soft: 8 << 20,
                    hard: u64::MAX,
                },
            ],
            mm: MmRecord {
                start_code: 0x40_0000,
                end_code: 0x40_1000,
                start_data: 0x40_2000,
                end_data: 0x40_3000,
                start_brk: 0x40_4000,
                brk: 0x40_4000,
                start_stack: 0x7fff_ffff_e000,
                arg_start: 0x7fff_ffff_e100,
                arg_end: 0x7fff_ffff_e200,
                env_start: 0x7fff_ffff_e200,
                env_end: 0x7fff_ffff_e800,
                auxv: vec![6, 4096, 25, 0x7fff_ffff_e900, 0, 0],
            },
            tid_offset: Some(720),
            policy: CheckpointPolicy {
                dir: s("/scratch/ckpt"),
                interval_secs: Some(3600),
                keep: Some(3),
                signal: Some(10),
                exit_after_ckpt: true,
            },
        },
        threads: vec![
            ThreadRecord {
                tid: 4242,
                is_main: true,
                name: s("sample"),
                fs_base: 0x7fff_f7d8_0740,
                ucontext: 0x7fff_ffff_d000,
                altstack: AltStack {
                    sp: 0,
                    size: 0,
                    flags: 2,
                },
                pending: 0,
                robust_list: (0x7fff_f7d8_0a20, 24),
                blocked_syscall: None,
            },
            ThreadRecord {
                tid: 4243,
                is_main: false,
                name: s("worker"),
                fs_base: 0x7fff_f758_06c0,
                ucontext: 0x7fff_f757_e000,
                altstack: AltStack {
                    sp: 0x7fff_f000_0000,
                    size: 65536,
                    flags: 0,
                },
                pending: 1 << 9,
                robust_list: (0x7fff_f758_09a0, 24),
                blocked_syscall: Some(230),
            },
        ],
        signals: SignalRecord {
            actions: vec![
                SigAction {
                    signo: 2,
                    handler: 0x40_1234,
                    flags: 0x0400_0004,
                    restorer: 0x7fff_f7e0_0000,
                    mask: 1 << 14,
                },
                SigAction {
                    signo: 13,
                    handler: 1,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                },
            ],
            shared_pending: 1 << 16,
        },
        fds: sample_fds(),
        regions: vec![
            RegionRecord {
                start: 0x40_0000,
                end: 0x40_4000,
                prot: 3,
                kind: RegionKind::Private,
                name: s("/opt/sample/bin/sample"),
                runs: vec![PageRun {
                    addr: 0x40_0000,
                    len: 2 * 4096,
                    payload: refs[0],
                }],
            },
            RegionRecord {
                start: 0x7fff_f000_0000,
                end: 0x7fff_f010_0000,
                prot: 3,
                kind: RegionKind::SharedAnon,
                name: s("/dev/zero (deleted)"),
                runs: vec![PageRun {
                    addr: 0x7fff_f000_0000,
                    len: 4 * 4096,
                    payload: refs[1],
                }],
            },
            RegionRecord {
                start: 0x7fff_f100_0000,
                end: 0x7fff_f100_2000,
                prot: 1,
                kind: RegionKind::SharedFile {
                    path: s("/data/table.bin"),
                    offset: 8192,
                },
                name: s("/data/table.bin"),
                runs: vec![],
            },
        ],
        cuda: Some(CudaRecord {
            log: vec![1, 2, 3, 4, 5, 0, 255],
            buffers: vec![DeviceBuffer {
                addr: 0x7e00_0000_0000,
                len: 1000,
                label: s("malloc"),
                payload: refs[2],
            }],
        }),
    }
}

/// The payloads of [`sample_meta`]: a raw 2-page run, a zstd 4-page run, a raw device buffer.
pub fn sample_payloads() -> Vec<PayloadSpec> {
    vec![
        (pattern(2 * 4096, 1), Encoding::Raw),
        (pattern(4 * 4096, 2), Encoding::Zstd),
        (pattern(1000, 3), Encoding::Raw),
    ]
}

fn sample_fds() -> Vec<FdRecord> {
    let s = |v: &str| v.to_string();
    let kinds = vec![
        FdKind::Stdio,
        FdKind::File {
            path: s("/home/user/run/out.log"),
            flags: 0o2101,
            offset: 12345,
            size: 12345,
        },
        FdKind::Pipe {
            pipe_id: 9,
            read_end: true,
            flags: 0o4000,
            capacity: 65536,
            data: b"in flight".to_vec(),
            peer_outside: false,
        },
        FdKind::Device {
            path: s("/dev/null"),
            flags: 2,
        },
        FdKind::EventFd { count: 3, flags: 1 },
        FdKind::Epoll {
            watches: vec![EpollWatch {
                fd: 5,
                events: 1,
                data: u64::MAX,
            }],
        },
        FdKind::TimerFd {
            clock: 1,
            flags: 0,
            value_ns: 1_000_000,
            interval_ns: 500,
        },
        FdKind::SignalFd {
            mask: 1 << 16,
            flags: 0,
        },
        FdKind::ListenSocket {
            domain: 1,
            ty: 1,
            protocol: 0,
            addr: b"\x01\x00/run/app.sock\0".to_vec(),
            flags: 0,
        },
        FdKind::DeadSocket {
            domain: 2,
            ty: 1,
            flags: 0,
        },
        FdKind::AgentReply {
            reply: b"{\"restarted\":true}".to_vec(),
        },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| FdRecord {
            fd: i as i32,
            cloexec: i % 2 == 1,
            description: i as u32 / 2,
            kind,
        })
        .collect()
}

// ---- proptest strategies ----

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn header() -> impl Strategy<Value = ImageHeader> {
    let vdso = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(a, b, c, d, hash)| VdsoRecord {
            vdso_start: a,
            vdso_end: b,
            vvar_start: c,
            vvar_end: d,
            hash,
        });
    let device = option::of((text(), text(), any::<u32>(), any::<i32>()).prop_map(
        |(backend, name, compute_capability, driver_version)| DeviceFingerprint {
            backend,
            name,
            compute_capability,
            driver_version,
        },
    ));
    let fingerprints = (
        text(),
        text(),
        any::<u32>(),
        any::<u64>(),
        text(),
        vdso,
        device,
    )
        .prop_map(
            |(kernel_release, machine, xsave_size, xsave_features, libc_version, vdso, device)| {
                Fingerprints {
                    kernel_release,
                    machine,
                    xsave_size,
                    xsave_features,
                    libc_version,
                    vdso,
                    device,
                }
            },
        );
    (text(), text(), any::<u64>(), any::<u32>(), fingerprints).prop_map(
        |(build_id, crac_version, created_unix, generation, fingerprints)| ImageHeader {
            build_id,
            crac_version,
            created_unix,
            generation,
            fingerprints,
        },
    )
}

fn process() -> impl Strategy<Value = ProcessRecord> {
    let rlimit =
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(resource, soft, hard)| Rlimit {
            resource,
            soft,
            hard,
        });
    let mm = (vec(any::<u64>(), 11), vec(any::<u64>(), 0..8)).prop_map(|(f, auxv)| MmRecord {
        start_code: f[0],
        end_code: f[1],
        start_data: f[2],
        end_data: f[3],
        start_brk: f[4],
        brk: f[5],
        start_stack: f[6],
        arg_start: f[7],
        arg_end: f[8],
        env_start: f[9],
        env_end: f[10],
        auxv,
    });
    let policy = (
        text(),
        option::of(any::<u64>()),
        option::of(any::<u32>()),
        option::of(any::<i32>()),
        any::<bool>(),
    )
        .prop_map(
            |(dir, interval_secs, keep, signal, exit_after_ckpt)| CheckpointPolicy {
                dir,
                interval_secs,
                keep,
                signal,
                exit_after_ckpt,
            },
        );
    (
        (
            any::<i32>(),
            text(),
            text(),
            vec(text(), 0..4),
            text(),
            any::<u32>(),
        ),
        vec(rlimit, 0..4),
        mm,
        option::of(any::<u32>()),
        policy,
    )
        .prop_map(
            |((pid, comm, program, argv, cwd, umask), rlimits, mm, tid_offset, policy)| {
                ProcessRecord {
                    pid,
                    comm,
                    program,
                    argv,
                    cwd,
                    umask,
                    rlimits,
                    mm,
                    tid_offset,
                    policy,
                }
            },
        )
}

fn thread() -> impl Strategy<Value = ThreadRecord> {
    (
        (
            any::<i32>(),
            any::<bool>(),
            text(),
            any::<u64>(),
            any::<u64>(),
        ),
        (any::<u64>(), any::<u64>(), any::<i32>()),
        any::<u64>(),
        (any::<u64>(), any::<u64>()),
        option::of(any::<i64>()),
    )
        .prop_map(
            |(
                (tid, is_main, name, fs_base, ucontext),
                (sp, size, flags),
                pending,
                robust_list,
                blocked_syscall,
            )| {
                ThreadRecord {
                    tid,
                    is_main,
                    name,
                    fs_base,
                    ucontext,
                    altstack: AltStack { sp, size, flags },
                    pending,
                    robust_list,
                    blocked_syscall,
                }
            },
        )
}

fn signals() -> impl Strategy<Value = SignalRecord> {
    let action = (
        any::<i32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(signo, handler, flags, restorer, mask)| SigAction {
            signo,
            handler,
            flags,
            restorer,
            mask,
        });
    (vec(action, 0..6), any::<u64>()).prop_map(|(actions, shared_pending)| SignalRecord {
        actions,
        shared_pending,
    })
}

fn fd_kind() -> impl Strategy<Value = FdKind> {
    let i = any::<i32>;
    prop_oneof![
        Just(FdKind::Stdio),
        (text(), i(), any::<u64>(), any::<u64>()).prop_map(|(path, flags, offset, size)| {
            FdKind::File {
                path,
                flags,
                offset,
                size,
            }
        }),
        (
            any::<u64>(),
            any::<bool>(),
            i(),
            any::<u32>(),
            bytes(64),
            any::<bool>()
        )
            .prop_map(|(pipe_id, read_end, flags, capacity, data, peer_outside)| {
                FdKind::Pipe {
                    pipe_id,
                    read_end,
                    flags,
                    capacity,
                    data,
                    peer_outside,
                }
            }),
        (text(), i()).prop_map(|(path, flags)| FdKind::Device { path, flags }),
        (any::<u64>(), i()).prop_map(|(count, flags)| FdKind::EventFd { count, flags }),
        vec(
            (i(), any::<u32>(), any::<u64>()).prop_map(|(fd, events, data)| EpollWatch {
                fd,
                events,
                data
            }),
            0..4
        )
        .prop_map(|watches| FdKind::Epoll { watches }),
        (i(), i(), any::<u64>(), any::<u64>()).prop_map(|(clock, flags, value_ns, interval_ns)| {
            FdKind::TimerFd {
                clock,
                flags,
                value_ns,
                interval_ns,
            }
        }),
        (any::<u64>(), i()).prop_map(|(mask, flags)| FdKind::SignalFd { mask, flags }),
        (i(), i(), i(), bytes(32), i()).prop_map(|(domain, ty, protocol, addr, flags)| {
            FdKind::ListenSocket {
                domain,
                ty,
                protocol,
                addr,
                flags,
            }
        }),
        (i(), i(), i()).prop_map(|(domain, ty, flags)| FdKind::DeadSocket { domain, ty, flags }),
        bytes(64).prop_map(|reply| FdKind::AgentReply { reply }),
        (any::<u64>(), any::<bool>(), i(), i(), bytes(64)).prop_map(
            |(pair_id, first, ty, flags, data)| FdKind::SocketPair {
                pair_id,
                first,
                ty,
                flags,
                data,
            }
        ),
    ]
}

fn fd() -> impl Strategy<Value = FdRecord> {
    (any::<i32>(), any::<bool>(), any::<u32>(), fd_kind()).prop_map(
        |(fd, cloexec, description, kind)| FdRecord {
            fd,
            cloexec,
            description,
            kind,
        },
    )
}

fn region_kind() -> impl Strategy<Value = RegionKind> {
    prop_oneof![
        Just(RegionKind::Private),
        Just(RegionKind::SharedAnon),
        (text(), any::<u64>()).prop_map(|(path, offset)| RegionKind::SharedFile { path, offset }),
    ]
}

/// Metadata whose page runs and device buffers refer to `refs` (each used at most once, in
/// order; the owner's length is the payload's uncompressed length from `lens`).
pub fn meta_for(refs: Vec<PayloadRef>, lens: Vec<u64>) -> impl Strategy<Value = ImageMeta> {
    let n = refs.len();
    (
        header(),
        process(),
        vec(thread(), 0..4),
        signals(),
        vec(fd(), 0..6),
        vec(
            (
                any::<u64>(),
                any::<u64>(),
                any::<u32>(),
                region_kind(),
                text(),
            ),
            0..4,
        ),
        option::of(bytes(64)),
        0..=n,
        any::<u64>(),
    )
        .prop_map(
            move |(header, process, threads, signals, fds, regions, cuda_log, split, base)| {
                let mut regions: Vec<RegionRecord> = regions
                    .into_iter()
                    .map(|(start, end, prot, kind, name)| RegionRecord {
                        start,
                        end,
                        prot,
                        kind,
                        name,
                        runs: Vec::new(),
                    })
                    .collect();
                let mut buffers = Vec::new();
                for (i, (r, len)) in refs.iter().zip(&lens).enumerate() {
                    let addr = base.wrapping_add(i as u64 * 0x10_0000);
                    if i < split && !regions.is_empty() {
                        let at = i % regions.len();
                        regions[at].runs.push(PageRun {
                            addr,
                            len: *len,
                            payload: *r,
                        });
                    } else {
                        buffers.push(DeviceBuffer {
                            addr,
                            len: *len,
                            label: format!("buffer {i}"),
                            payload: *r,
                        });
                    }
                }
                let cuda = match (cuda_log, buffers.is_empty()) {
                    (None, true) => None,
                    (log, _) => Some(CudaRecord {
                        log: log.unwrap_or_default(),
                        buffers,
                    }),
                };
                ImageMeta {
                    header,
                    process,
                    threads,
                    signals,
                    fds,
                    regions,
                    cuda,
                }
            },
        )
}

/// Payload specs: up to `max` payloads of up to `max_len` bytes, raw or zstd.
pub fn payload_specs(max: usize, max_len: usize) -> impl Strategy<Value = Vec<PayloadSpec>> {
    vec(
        (0..max_len, any::<u64>(), any::<bool>()).prop_map(|(len, seed, zstd)| {
            let enc = if zstd { Encoding::Zstd } else { Encoding::Raw };
            (pattern(len, seed), enc)
        }),
        0..max,
    )
}

/// Writes `h` (valid checksum) over the image's header page.
pub fn put_header(bytes: &mut [u8], h: &FixedHeader) {
    let (magic, page) = h.encode().unwrap();
    bytes[..4096].copy_from_slice(&page[..]);
    bytes[..8].copy_from_slice(&magic);
}

/// Lays the metadata sections out again after the payload area of `bytes`, one body per entry
/// of `orig`'s table in order, and fixes every checksum and the header: only the contents can
/// then be wrong.
pub fn relay_sections(bytes: &[u8], orig: &FixedHeader, bodies: Vec<Vec<u8>>) -> Vec<u8> {
    let mut h = orig.clone();
    let mut out = bytes[..orig.payload_end as usize].to_vec();
    for (s, body) in h.sections.iter_mut().zip(bodies) {
        s.offset = out.len() as u64;
        s.len = body.len() as u64;
        s.checksum = xxhash_rust::xxh3::xxh3_64(&body);
        out.extend_from_slice(&body);
    }
    h.file_len = out.len() as u64;
    put_header(&mut out, &h);
    out
}
