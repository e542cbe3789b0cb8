//! Helpers for the CUDA-aware checkpoint tests: what `crac inspect --json` says about an image's
//! CUDA section, and images rewritten the way a damaged or tampered file would be (a device
//! buffer's byte flipped, the replay log changed) while staying well-formed everywhere else, so
//! a restart meets exactly the fault under test.
//!
//! Rewriting goes through crac's own image reader and writer: every payload is read (its
//! checksum checked), written again in the same order and encoding, the metadata is changed by
//! the caller and written with fresh section checksums. Nothing here needs a test-only hook in
//! crac itself.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crac_core::image::{ImageMeta, ImageReader, ImageWriter};

use crate::run::Cmd;
use crate::{Error, Result, crac_bin, io_err};

/// `crac inspect --json IMAGE`, parsed.
///
/// # Panics
/// When `crac inspect` fails or prints something that is not JSON.
pub fn inspect_json(image: &Path) -> serde_json::Value {
    let out = Cmd::new(crac_bin())
        .args(["inspect", "--json"])
        .arg(image)
        .run()
        .unwrap_or_else(|e| panic!("crac inspect --json {}: {e}", image.display()));
    assert_eq!(out.code(), Some(0), "crac inspect --json failed:\n{out}");
    serde_json::from_str(&out.stdout_text())
        .unwrap_or_else(|e| panic!("crac inspect --json printed no JSON ({e}):\n{out}"))
}

/// The `cuda` object of `crac inspect --json IMAGE`.
///
/// # Panics
/// When the image has no CUDA section.
pub fn cuda_json(image: &Path) -> serde_json::Value {
    let json = inspect_json(image);
    let cuda = json.get("cuda").cloned().unwrap_or_default();
    assert!(
        cuda.is_object(),
        "{} has no CUDA section:\n{json:#}",
        image.display()
    );
    cuda
}

/// The objects of an image's replay log with kind `kind` (`allocation`, `stream`, …), as
/// `(id, size)`: for an allocation the id is its device address.
pub fn log_objects(cuda: &serde_json::Value, kind: &str) -> Vec<(u64, u64)> {
    cuda.get("objects")
        .and_then(serde_json::Value::as_array)
        .map(|objects| {
            objects
                .iter()
                .filter(|o| o.get("kind").and_then(serde_json::Value::as_str) == Some(kind))
                .map(|o| {
                    let n = |k: &str| o.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
                    (n("id"), n("size"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What `crac_ckpt` reported about one checkpoint of a `--gpu` process.
#[derive(Debug)]
pub struct DeviceCheckpoint {
    /// The image.
    pub image: PathBuf,
    /// How long the agent held the program's CUDA calls and drained the device, ms.
    pub drain_ms: u64,
    /// How long writing device memory took, ms.
    pub device_write_ms: u64,
}

/// Checkpoints `pid` into `dir` with `crac_ckpt` (its report logged at `info`) and returns the
/// image and the device timings it reported.
///
/// # Panics
/// When `crac_ckpt` fails or reports no device timings.
pub fn checkpoint_device(pid: u32, dir: &Path) -> DeviceCheckpoint {
    let out = Cmd::new(&crate::tools().ckpt)
        .env("CRAC_LOG", "info")
        .arg("--dir")
        .arg(dir)
        .arg(pid.to_string())
        .timeout(std::time::Duration::from_secs(120))
        .run()
        .unwrap_or_else(|e| panic!("crac_ckpt {pid}: {e}"));
    assert_eq!(out.code(), Some(0), "crac_ckpt {pid} failed:\n{out}");
    let image = PathBuf::from(out.stdout_text().lines().last().unwrap_or_default());
    assert!(image.is_file(), "crac_ckpt printed no image path:\n{out}");
    let stderr = out.stderr_text();
    let line = stderr
        .lines()
        .find(|l| l.contains("device drained in "))
        .unwrap_or_else(|| panic!("crac_ckpt reported no device drain time:\n{out}"));
    let number_after = |what: &str| -> u64 {
        line.split_once(what)
            .and_then(|(_, rest)| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .unwrap_or_else(|| panic!("no number after {what:?} in {line:?}"))
    };
    let drain_ms = number_after("device drained in ");
    let device_write_ms = number_after("ms, written in ");
    DeviceCheckpoint {
        image,
        drain_ms,
        device_write_ms,
    }
}

/// Writes a copy of image `src` at `dst` with its metadata changed by `edit`: every payload is
/// read (checksum checked) and written again in order and encoding, and the metadata sections
/// get fresh checksums. Returns `dst`.
pub fn rewrite_image(src: &Path, dst: &Path, edit: impl FnOnce(&mut ImageMeta)) -> Result<PathBuf> {
    let image_err = |what: &'static str| {
        let path = src.to_owned();
        move |e: crac_core::image::ImageError| Error::Io {
            what,
            path,
            source: std::io::Error::other(e.to_string()),
        }
    };
    let mut reader = ImageReader::open_path(src).map_err(image_err("opening the image"))?;
    let mut meta = reader.meta().clone();
    let file = File::create(dst).map_err(io_err("creating", dst))?;
    let mut writer = ImageWriter::new(BufWriter::new(file)).map_err(image_err("writing"))?;
    let payloads = meta
        .regions
        .iter_mut()
        .flat_map(|r| r.runs.iter_mut().map(|run| (run.len, &mut run.payload)))
        .chain(
            meta.cuda
                .iter_mut()
                .flat_map(|c| c.buffers.iter_mut().map(|b| (b.len, &mut b.payload))),
        );
    for (len, payload) in payloads {
        let len = usize::try_from(len).map_err(|_| Error::Io {
            what: "reading a payload of",
            path: src.to_owned(),
            source: std::io::Error::other("a payload larger than memory"),
        })?;
        let mut bytes = vec![0u8; len];
        reader
            .read_payload(payload, &mut bytes)
            .map_err(image_err("reading a payload of"))?;
        writer.set_encoding(payload.encoding);
        *payload = writer.payload(&bytes).map_err(image_err("writing"))?;
    }
    edit(&mut meta);
    let out = writer
        .finish(&meta)
        .map_err(image_err("finishing"))?
        .into_inner()
        .map_err(|e| Error::Io {
            what: "writing",
            path: dst.to_owned(),
            source: e.into_error(),
        })?;
    out.sync_all().map_err(io_err("syncing", dst))?;
    Ok(dst.to_owned())
}

/// Writes a copy of image `src` at `dst` with one bit of device buffer `index`'s payload
/// flipped in the file (its recorded checksum unchanged: what a bad disk block does). Returns
/// `dst`.
///
/// # Panics
/// When the image has no such device buffer.
pub fn flip_device_byte(src: &Path, dst: &Path, index: usize) -> Result<PathBuf> {
    let reader = ImageReader::open_path(src).map_err(|e| Error::Io {
        what: "opening the image",
        path: src.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let buffer = reader
        .meta()
        .cuda
        .as_ref()
        .and_then(|c| c.buffers.get(index))
        .unwrap_or_else(|| panic!("{} has no device buffer {index}", src.display()))
        .clone();
    drop(reader);
    let mut bytes = std::fs::read(src).map_err(io_err("reading", src))?;
    let at = buffer.payload.offset + buffer.payload.stored_len / 2;
    let at = usize::try_from(at).unwrap_or(usize::MAX);
    let byte = bytes.get_mut(at).unwrap_or_else(|| {
        panic!(
            "device buffer {index} of {} lies past the file's end",
            src.display()
        )
    });
    *byte ^= 0x10;
    let mut out = File::create(dst).map_err(io_err("creating", dst))?;
    out.write_all(&bytes).map_err(io_err("writing", dst))?;
    Ok(dst.to_owned())
}

/// `log` with the first encoding of device address `from` replaced by `to`.
///
/// The replay log is bincode (standard configuration, varint integers): a device address above
/// 4 GiB is the byte `0xfd` and its 8 little-endian bytes, so one address can be moved without
/// changing the log's length or decoding it here (its types are crac's own). Returns `None`
/// when `from` is not in the log.
pub fn replace_log_address(log: &[u8], from: u64, to: u64) -> Option<Vec<u8>> {
    let mut pattern = vec![0xfd];
    pattern.extend_from_slice(&from.to_le_bytes());
    let at = log.windows(pattern.len()).position(|w| w == pattern)?;
    let mut out = log.to_vec();
    out[at + 1..at + 9].copy_from_slice(&to.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_replaced_in_place() {
        let addr = 0x7e00_0000_1000_u64;
        let mut log = b"CRACCUDA\x01\0\0\0\x00".to_vec();
        log.push(0xfd);
        log.extend_from_slice(&addr.to_le_bytes());
        log.push(0x20);
        let moved = replace_log_address(&log, addr, 0x7f00_0000_0000).unwrap();
        assert_eq!(moved.len(), log.len());
        assert_eq!(&moved[14..22], &0x7f00_0000_0000_u64.to_le_bytes());
        assert_eq!(replace_log_address(&log, 0x1234_5678_9abc, 1), None);
    }
}
