//! An image's CUDA section (`crac inspect`): the backend and device it was taken on, the
//! objects its replay log holds (decoded with `crac_replay::describe`), and the device memory
//! saved, as text and as JSON.

use std::fmt::Write;

use crac_core::image::{CudaRecord, DeviceFingerprint, ImageMeta};

use super::size;

/// The CUDA block of `crac inspect`'s text (nothing for an image without CUDA state).
pub fn write_text(out: &mut String, meta: &ImageMeta) -> std::fmt::Result {
    let Some(c) = &meta.cuda else {
        return Ok(());
    };
    let device = meta.header.fingerprints.device.as_ref();
    let device_bytes: u64 = c.buffers.iter().map(|b| b.len).sum();
    writeln!(out, "CUDA: {}", device_text(device))?;
    match crac_replay::describe(&c.log) {
        Ok(log) => {
            writeln!(
                out,
                "  replay log: {} entries, {} objects, {}",
                log.entries,
                log.objects.len(),
                size(c.log.len() as u64)
            )?;
            for o in &log.objects {
                let bytes = if o.size > 0 {
                    size(o.size)
                } else {
                    "-".to_owned()
                };
                let line = format!("  {:<15} {:#014x} {bytes:>10}  {}", o.kind, o.id, o.detail);
                writeln!(out, "{}", line.trim_end())?;
            }
        }
        Err(e) => writeln!(
            out,
            "  replay log ({}): cannot be read: {e}",
            size(c.log.len() as u64)
        )?,
    }
    writeln!(
        out,
        "  device memory: {} in {} buffers",
        size(device_bytes),
        c.buffers.len()
    )?;
    for b in &c.buffers {
        writeln!(
            out,
            "  {:#014x} {:>10}  {} (checksum {:016x})",
            b.addr,
            size(b.len),
            b.label,
            b.payload.checksum
        )?;
    }
    Ok(())
}

/// "sim backend, NAME (compute 8.0), driver N", or what is known.
fn device_text(device: Option<&DeviceFingerprint>) -> String {
    match device {
        Some(d) => format!(
            "{} backend, {} (compute {}.{}){}",
            d.backend,
            d.name,
            d.compute_capability / 10,
            d.compute_capability % 10,
            if d.driver_version > 0 {
                format!(", driver {}", d.driver_version)
            } else {
                String::new()
            }
        ),
        None => "device unknown".to_owned(),
    }
}

/// The CUDA section as JSON (`null` without one): backend and device, the log's entries and
/// objects (or the error decoding it), and each device buffer.
pub fn json(meta: &ImageMeta) -> serde_json::Value {
    let Some(c) = &meta.cuda else {
        return serde_json::Value::Null;
    };
    let device = meta.header.fingerprints.device.as_ref();
    let (entries, objects, error) = match crac_replay::describe(&c.log) {
        Ok(log) => (
            serde_json::json!(log.entries),
            serde_json::to_value(&log.objects).unwrap_or(serde_json::Value::Null),
            serde_json::Value::Null,
        ),
        Err(e) => (
            serde_json::Value::Null,
            serde_json::Value::Null,
            serde_json::json!(e.to_string()),
        ),
    };
    serde_json::json!({
        "backend": device.map(|d| d.backend.clone()),
        "device": device.map(|d| d.name.clone()),
        "compute_capability": device.map(|d| d.compute_capability),
        "driver_version": device.map(|d| d.driver_version),
        "log_bytes": c.log.len(),
        "log_entries": entries,
        "log_error": error,
        "objects": objects,
        "device_bytes": device_bytes(c),
        "buffers": c.buffers.iter().map(|b| serde_json::json!({
            "addr": b.addr,
            "len": b.len,
            "label": b.label,
            "checksum": format!("{:016x}", b.payload.checksum),
        })).collect::<Vec<_>>(),
    })
}

fn device_bytes(c: &CudaRecord) -> u64 {
    c.buffers.iter().map(|b| b.len).sum()
}

/// For `crac inspect --verify`: the replay log decodes (the payloads' checksums are the
/// image reader's).
pub fn verify(meta: &ImageMeta) -> Result<(), String> {
    match &meta.cuda {
        Some(c) => crac_replay::describe(&c.log)
            .map(drop)
            .map_err(|e| format!("its CUDA replay log cannot be read: {e}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::image::DeviceBuffer;

    fn meta_with(log: Vec<u8>) -> ImageMeta {
        let mut meta = ImageMeta {
            cuda: Some(CudaRecord {
                log,
                buffers: vec![DeviceBuffer {
                    addr: 0x7e00_0000_0000,
                    len: 3 << 20,
                    label: "malloc".into(),
                    ..DeviceBuffer::default()
                }],
            }),
            ..ImageMeta::default()
        };
        meta.header.fingerprints.device = Some(DeviceFingerprint {
            backend: "sim".into(),
            name: "crac sim".into(),
            compute_capability: 80,
            driver_version: 0,
        });
        meta
    }

    #[test]
    fn an_image_without_cuda_has_no_block() {
        let mut out = String::new();
        write_text(&mut out, &ImageMeta::default()).expect("text");
        assert_eq!(out, "");
        assert_eq!(json(&ImageMeta::default()), serde_json::Value::Null);
        assert!(verify(&ImageMeta::default()).is_ok());
    }

    #[test]
    fn a_damaged_log_is_named_and_the_buffers_still_listed() {
        let meta = meta_with(vec![0xde, 0xad]);
        let mut out = String::new();
        write_text(&mut out, &meta).expect("text");
        assert!(
            out.starts_with("CUDA: sim backend, crac sim (compute 8.0)\n"),
            "{out}"
        );
        assert!(out.contains("cannot be read"), "{out}");
        assert!(out.contains("0x7e0000000000"), "{out}");
        assert!(out.contains("3 MiB in 1 buffers"), "{out}");
        let j = json(&meta);
        assert_eq!(j["device_bytes"], 3 << 20);
        assert_eq!(j["backend"], "sim");
        assert!(j["log_error"].is_string(), "{j}");
        assert!(verify(&meta).is_err());
    }
}
