//! Payload bytes: checksumming while writing, and the zstd chunk framing.
//!
//! A raw payload is the bytes themselves. A zstd payload is a sequence of chunks, each
//! `raw_len: u32, stored_len: u32` (little-endian) followed by one zstd frame of `stored_len`
//! bytes that decompresses to `raw_len` bytes; every chunk but the last holds
//! [`ZSTD_CHUNK`] raw bytes. The checksum is always the xxh3-64 of the uncompressed bytes.

use std::io::{self, Read, Write};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use ruzstd::encoding::{CompressionLevel, compress};
use xxhash_rust::xxh3::Xxh3Default;

/// Raw bytes per zstd chunk (the reader's scratch buffers are this size).
pub const ZSTD_CHUNK: usize = 1 << 20;
/// Largest compressed chunk a reader accepts (a zstd frame of incompressible data is a little
/// larger than its input).
pub const ZSTD_CHUNK_STORED_CAP: usize = ZSTD_CHUNK + ZSTD_CHUNK / 8 + 4096;
/// Bytes of a zstd chunk's header.
pub const ZSTD_CHUNK_HEADER: usize = 8;

/// Writes at or above this size are hashed on a second thread while they are written.
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// Writes `buf` to `w` and adds it to `hasher`; a large `buf` is hashed on a scoped thread
/// while the calling thread writes it, so the checksum costs no wall time (the bytes are never
/// copied).
pub(crate) fn write_hashed<W: Write>(
    w: &mut W,
    hasher: &mut Xxh3Default,
    buf: &[u8],
    parallel: bool,
) -> io::Result<()> {
    if !parallel || buf.len() < PARALLEL_HASH_MIN {
        hasher.update(buf);
        return w.write_all(buf);
    }
    std::thread::scope(|scope| {
        let mut copy = hasher.clone();
        let hashing = std::thread::Builder::new()
            .name("crac-hash".into())
            .stack_size(64 * 1024)
            .spawn_scoped(scope, move || {
                copy.update(buf);
                copy
            });
        match hashing {
            Ok(hashing) => {
                let written = w.write_all(buf);
                *hasher = hashing
                    .join()
                    .map_err(|_| io::Error::other("the payload checksum thread panicked"))?;
                written
            }
            // No thread to be had (a thread limit): hash here.
            Err(_) => {
                hasher.update(buf);
                w.write_all(buf)
            }
        }
    })
}

/// Compresses one chunk (at most [`ZSTD_CHUNK`] bytes) into `out` as a framed chunk.
pub(crate) fn compress_chunk(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0u8; ZSTD_CHUNK_HEADER]);
    compress(raw, &mut *out, CompressionLevel::Fastest);
    let stored = out.len() - ZSTD_CHUNK_HEADER;
    // Both fit: raw.len() <= ZSTD_CHUNK, and a frame of it is far below 4 GiB.
    let raw_len = u32::try_from(raw.len()).unwrap_or(u32::MAX);
    let stored_len = u32::try_from(stored).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&raw_len.to_le_bytes());
    out[4..8].copy_from_slice(&stored_len.to_le_bytes());
}

/// Most chunks compressed at once (one thread each).
const MAX_COMPRESS_THREADS: usize = 8;

/// How many chunks [`compress_chunks`] compresses at once here: one per CPU this process may
/// use (cgroup quotas included), at most eight, and one on machines of fewer than four CPUs,
/// where extra threads measured slower (they only contend for the same CPU time).
pub(crate) fn compress_parallelism() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 4 {
        1
    } else {
        cpus.min(MAX_COMPRESS_THREADS)
    }
}

/// Compresses `batch` in [`ZSTD_CHUNK`] pieces into `outs` (one framed chunk each, in order),
/// one thread per piece; a piece whose thread cannot be had is compressed here.
pub(crate) fn compress_chunks(batch: &[u8], outs: &mut Vec<Vec<u8>>) -> io::Result<()> {
    let chunks: Vec<&[u8]> = batch.chunks(ZSTD_CHUNK).collect();
    outs.resize_with(chunks.len(), Vec::new);
    let mut missed = Vec::new();
    let mut panicked = false;
    std::thread::scope(|scope| {
        let mut jobs = Vec::with_capacity(chunks.len());
        for (i, (chunk, out)) in chunks.iter().zip(outs.iter_mut()).enumerate() {
            let spawned = std::thread::Builder::new()
                .name("crac-zstd".into())
                .spawn_scoped(scope, move || compress_chunk(chunk, out));
            match spawned {
                Ok(job) => jobs.push(job),
                Err(_) => missed.push(i),
            }
        }
        for job in jobs {
            panicked |= job.join().is_err();
        }
    });
    if panicked {
        return Err(io::Error::other("a payload compression thread panicked"));
    }
    for i in missed {
        compress_chunk(chunks[i], &mut outs[i]);
    }
    Ok(())
}

/// A chunk header read back: how many raw bytes the frame decompresses to and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkHeader {
    pub raw_len: usize,
    pub stored_len: usize,
}

impl ChunkHeader {
    /// Parses and caps a chunk header; `left` is how many payload bytes follow it.
    pub(crate) fn parse(bytes: [u8; ZSTD_CHUNK_HEADER], left: u64) -> Result<Self, String> {
        let raw_len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let stored_len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if raw_len == 0 || raw_len > ZSTD_CHUNK {
            return Err(format!(
                "a chunk of {raw_len} bytes (1..={ZSTD_CHUNK} allowed)"
            ));
        }
        if stored_len > ZSTD_CHUNK_STORED_CAP || stored_len as u64 > left {
            return Err(format!(
                "a compressed chunk of {stored_len} bytes with {left} bytes left"
            ));
        }
        Ok(Self {
            raw_len,
            stored_len,
        })
    }
}

/// Largest zstd window a frame may ask for: the decoder reserves the window up front, so a
/// forged frame header must not make it reserve more. Our frames decompress to at most
/// [`ZSTD_CHUNK`] bytes, so they never need more.
pub const ZSTD_WINDOW_CAP: u64 = 8 << 20;

const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// The window size a zstd frame header asks for (RFC 8878 §3.1.1.1), or why it is refused.
fn frame_window(frame: &[u8]) -> Result<u64, String> {
    let short = || "a zstd frame header cut short".to_string();
    let magic = frame.get(..4).ok_or_else(short)?;
    if u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) != ZSTD_MAGIC {
        return Err("a chunk that is not a zstd frame".into());
    }
    let descriptor = *frame.get(4).ok_or_else(short)?;
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let wd = *frame.get(5).ok_or_else(short)?;
        let log = 10 + u32::from(wd >> 3);
        if log > 40 {
            return Err(format!("a zstd window of 2^{log} bytes"));
        }
        let base = 1u64 << log;
        return Ok(base + base / 8 * u64::from(wd & 7));
    }
    // Single segment: the window is the frame content size, after the dictionary id.
    let dict_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let fcs_len = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let at = 5 + dict_len;
    let fcs = frame.get(at..at + fcs_len).ok_or_else(short)?;
    let mut le = [0u8; 8];
    le[..fcs_len].copy_from_slice(fcs);
    let size = u64::from_le_bytes(le);
    Ok(if fcs_len == 2 { size + 256 } else { size })
}

/// Decompresses one chunk, which must be exactly one zstd frame whose window is at most
/// [`ZSTD_WINDOW_CAP`], into `dst`, which must be exactly its raw length.
pub(crate) fn decompress_chunk(
    decoder: &mut FrameDecoder,
    frame: &[u8],
    dst: &mut [u8],
) -> Result<(), String> {
    let window = frame_window(frame)?;
    if window > ZSTD_WINDOW_CAP {
        return Err(format!(
            "a zstd frame asking for a {window}-byte window (at most {ZSTD_WINDOW_CAP})"
        ));
    }
    let zstd = |e: ruzstd::decoding::errors::FrameDecoderError| format!("zstd: {e}");
    let mut input = frame;
    decoder.init(&mut input).map_err(zstd)?;
    let mut filled = 0;
    loop {
        decoder
            .decode_blocks(&mut input, BlockDecodingStrategy::UptoBytes(ZSTD_CHUNK))
            .map_err(zstd)?;
        filled += decoder
            .read(&mut dst[filled..])
            .map_err(|e| format!("zstd: {e}"))?;
        if decoder.can_collect() != 0 {
            return Err(format!(
                "a chunk decompressing to more than {} bytes",
                dst.len()
            ));
        }
        if decoder.is_finished() {
            break;
        }
    }
    if !input.is_empty() {
        return Err(format!("{} bytes after a chunk's zstd frame", input.len()));
    }
    if filled != dst.len() {
        return Err(format!(
            "a chunk decompressed to {filled} bytes instead of {}",
            dst.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn parallel_and_serial_hashes_agree() {
        let data: Vec<u8> = (0..3 * PARALLEL_HASH_MIN + 5)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut h = Xxh3Default::new();
        let mut out = Vec::new();
        write_hashed(&mut out, &mut h, &data[..10], true).unwrap();
        write_hashed(&mut out, &mut h, &data[10..], true).unwrap();
        assert_eq!(out, data);
        assert_eq!(h.digest(), xxhash_rust::xxh3::xxh3_64(&data));
        let mut serial = Xxh3Default::new();
        write_hashed(&mut Vec::new(), &mut serial, &data, false).unwrap();
        assert_eq!(serial.digest(), h.digest());
    }

    #[test]
    fn a_chunk_round_trips() {
        let raw: Vec<u8> = (0..ZSTD_CHUNK).map(|i| (i / 300) as u8).collect();
        let mut framed = Vec::new();
        compress_chunk(&raw, &mut framed);
        assert!(framed.len() < raw.len() / 4, "{} bytes", framed.len());
        let mut header = [0u8; ZSTD_CHUNK_HEADER];
        header.copy_from_slice(&framed[..ZSTD_CHUNK_HEADER]);
        let h = ChunkHeader::parse(header, (framed.len() - ZSTD_CHUNK_HEADER) as u64).unwrap();
        assert_eq!(h.raw_len, raw.len());
        assert!(frame_window(&framed[8..]).unwrap() <= ZSTD_WINDOW_CAP);
        let mut back = vec![0u8; h.raw_len];
        decompress_chunk(&mut FrameDecoder::new(), &framed[8..], &mut back).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn chunks_compressed_in_parallel_equal_chunks_compressed_one_by_one() {
        let raw: Vec<u8> = (0..3 * ZSTD_CHUNK + 777)
            .map(|i| (i / 1000) as u8)
            .collect();
        let mut outs = Vec::new();
        compress_chunks(&raw, &mut outs).unwrap();
        assert_eq!(outs.len(), 4);
        for (chunk, out) in raw.chunks(ZSTD_CHUNK).zip(&outs) {
            let mut one = Vec::new();
            compress_chunk(chunk, &mut one);
            assert!(&one == out);
        }
    }

    #[test]
    fn frames_asking_for_huge_windows_are_refused() {
        let mut framed = Vec::new();
        compress_chunk(&[7u8; 5000], &mut framed);
        let mut frame = framed[8..].to_vec();
        let mut dst = vec![0u8; 5000];
        decompress_chunk(&mut FrameDecoder::new(), &frame, &mut dst).unwrap();
        // A 2^30-byte window, single-segment off.
        frame[4] &= !0x20 & !0xc0;
        frame.insert(5, 20 << 3);
        let err = decompress_chunk(&mut FrameDecoder::new(), &frame, &mut dst).unwrap_err();
        assert!(err.contains("window"), "{err}");
        assert!(frame_window(&frame[..5]).is_err());
        assert_eq!(frame_window(b"\x28\xb5\x2f\xfd\x00\x00"), Ok(1024));
        assert!(frame_window(b"\x28\xb5\x2f\xfd\x00\xff").is_err());
    }

    #[test]
    fn chunk_headers_are_capped() {
        let header = |raw: u32, stored: u32| {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&raw.to_le_bytes());
            b[4..].copy_from_slice(&stored.to_le_bytes());
            b
        };
        assert!(ChunkHeader::parse(header(0, 10), 100).is_err());
        assert!(ChunkHeader::parse(header(ZSTD_CHUNK as u32 + 1, 10), 100).is_err());
        assert!(ChunkHeader::parse(header(10, 101), 100).is_err());
        assert!(ChunkHeader::parse(header(10, u32::MAX), u64::MAX).is_err());
        assert!(ChunkHeader::parse(header(10, 100), 100).is_ok());
    }
}
