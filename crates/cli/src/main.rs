//! `crac`: transparent checkpoint-restart for CUDA programs on Linux.
//!
//! One binary, several names: `crac_launch`, `crac_ckpt` and `crac_restart` are the verbs of
//! `crac launch|ckpt|restart`, chosen by the name the binary was started under.

mod build_id;
mod cli;
mod commands;
mod logging;
mod render;

use std::process::ExitCode;

use cli::Command;

fn main() -> ExitCode {
    let inv = match cli::parse(std::env::args_os().collect(), version()) {
        Ok(inv) => inv,
        Err(e) => e.exit(),
    };
    let name = inv.name;
    logging::init(name);
    let result = match inv.command {
        Command::Launch(args) => commands::launch::run(name, args),
        Command::Ckpt(args) => commands::ckpt::run(name, args),
        Command::Restart(args) => commands::restart::run(name, args),
        Command::Inspect(args) => commands::inspect::run(name, args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("{name}: {e:#}");
        ExitCode::FAILURE
    })
}

/// `VERSION (build-id HEX)`, computed once: clap keeps a `&'static str`, so the string is
/// leaked, once per process.
fn version() -> &'static str {
    let id = match build_id::of_file(std::path::Path::new("/proc/self/exe")) {
        Ok(Some(id)) => id,
        Ok(None) => "none".to_owned(),
        Err(e) => format!("unknown: {e:#}"),
    };
    let text = format!("{} (build-id {id})", env!("CARGO_PKG_VERSION"));
    Box::leak(text.into_boxed_str())
}
