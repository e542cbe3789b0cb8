//! `crac inspect IMAGE [--json] [--verify]`: describe an image for people or scripts, and
//! optionally check every payload's checksum (device memory included) and that the CUDA replay
//! log decodes.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::InspectArgs;
use crate::{images, render};

/// Runs `crac inspect`.
pub fn run(name: &str, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut reader = match images::open(&args.image) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let path = args.image.display().to_string();
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&render::image::json(
            &path,
            reader.header(),
            reader.meta(),
        ))
        .context("cannot encode the image as JSON")?;
        t.push('\n');
        t
    } else {
        render::image::text(&path, reader.header(), reader.meta())
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    if !args.verify {
        return Ok(ExitCode::SUCCESS);
    }
    let tty = std::io::stderr().is_terminal();
    let mut last = u64::MAX;
    let result = reader.verify_payloads(&mut |done, total| {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        if tty && percent != last {
            last = percent;
            eprint!(
                "\r\x1b[Kverifying: {percent:>3}% of {}",
                render::size(total)
            );
        }
    });
    if tty {
        eprint!("\r\x1b[K");
    }
    let result = result
        .map_err(|e| e.to_string())
        .and_then(|()| render::cuda::verify(reader.meta()));
    match result {
        Ok(()) => {
            eprintln!("{name}: every payload checksum of {path} matches");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{name}: {path} is damaged: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
