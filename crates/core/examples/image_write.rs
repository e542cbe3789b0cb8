//! Writer throughput: streams SIZE MiB through [`ImageWriter`] in CHUNK-MiB slices (as the
//! checkpoint engine does) and prints MB/s, to compare with `dd` on the same disk:
//!
//! ```text
//! cargo run --release -p crac-core --example image_write -- FILE [SIZE_MIB [CHUNK_MIB [raw|zstd [sync|nosync [serial]]]]]
//! dd if=/dev/zero of=FILE bs=8M count=128 [conv=fsync]
//! ```
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::fs::File;
use std::io::Write;
use std::time::Instant;

use crac_core::image::{Encoding, ImageMeta, ImageWriter, PageRun, RegionRecord};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .expect("usage: image_write FILE [SIZE_MIB [CHUNK_MIB [raw|zstd [sync|nosync [serial]]]]]");
    let size_mib: usize = args.get(1).map_or(1024, |s| s.parse().unwrap());
    let chunk_mib: usize = args.get(2).map_or(8, |s| s.parse().unwrap());
    let encoding = match args.get(3).map(String::as_str) {
        Some("zstd") => Encoding::Zstd,
        _ => Encoding::Raw,
    };
    let sync = args.get(4).is_some_and(|s| s == "sync");
    let serial = args.get(5).is_some_and(|s| s == "serial");
    // Memory-like contents: not all zero, partly compressible.
    let chunk: Vec<u8> = (0..chunk_mib << 20)
        .map(|i| (i / 64) as u8 ^ (i % 7) as u8)
        .collect();

    let start = Instant::now();
    let mut w = ImageWriter::new(File::create(path).unwrap())
        .unwrap()
        .with_encoding(encoding);
    w.set_helper_threads(!serial);
    let mut sink = w.begin_payload().unwrap();
    for _ in 0..size_mib / chunk_mib {
        sink.write_all(&chunk).unwrap();
    }
    let payload = sink.finish().unwrap();
    let len = (size_mib / chunk_mib * chunk_mib) as u64 * (1 << 20);
    let meta = ImageMeta {
        regions: vec![RegionRecord {
            start: 0x1000_0000,
            end: 0x1000_0000 + len,
            runs: vec![PageRun {
                addr: 0x1000_0000,
                len,
                payload,
            }],
            ..RegionRecord::default()
        }],
        ..ImageMeta::default()
    };
    let file = w.finish(&meta).unwrap();
    if sync {
        file.sync_all().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} MiB in {:.3} s: {:.0} MB/s ({:?}, {} MiB slices{}{})",
        len >> 20,
        secs,
        len as f64 / secs / 1e6,
        encoding,
        chunk_mib,
        if sync { ", fsync" } else { "" },
        if serial { ", no helper threads" } else { "" }
    );
}
