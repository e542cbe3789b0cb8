//! `crac`: transparent checkpoint-restart for CUDA programs on Linux.
//!
//! One binary, several names: `crac_launch`, `crac_ckpt` and `crac_restart` are the verbs of
//! `crac launch|ckpt|restart`, chosen by the name the binary was started under.

mod build_id;
mod cli;
mod commands;
mod gpu;
mod images;
mod logging;
mod pidns;
mod render;

use std::process::ExitCode;

use cli::Command;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let inv = match cli::parse(argv.clone(), version(&argv)) {
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
        Command::Jupyter(args) => commands::jupyter::run(name, args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("{name}: {}", message(&e));
        ExitCode::FAILURE
    })
}

/// `VERSION (build-id HEX)` when `argv` may ask for it (`-V`/`--version`), else `VERSION` alone:
/// reading the build-id means reading our own executable, which every launch (twice, with the
/// re-exec) would otherwise pay for a string it never prints. clap keeps a `&'static str`, so
/// the long form is leaked, once per process.
fn version(argv: &[std::ffi::OsString]) -> &'static str {
    if !argv.iter().skip(1).any(|a| a == "--version" || a == "-V") {
        return env!("CARGO_PKG_VERSION");
    }
    let id = match build_id::of_file(std::path::Path::new("/proc/self/exe")) {
        Ok(Some(id)) => id,
        Ok(None) => "none".to_owned(),
        Err(e) => format!("unknown: {e:#}"),
    };
    let text = format!("{} (build-id {id})", env!("CARGO_PKG_VERSION"));
    Box::leak(text.into_boxed_str())
}

/// `e` and its causes joined by `: `, leaving out a cause whose text the message already holds
/// (many errors name their source in their own message and also report it as their cause).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(libc::EPIPE);
        let send = crac_agent::client::ClientError::Send { pid: 7, source: io };
        let e = anyhow::Error::from(send).context("status failed");
        assert_eq!(
            message(&e),
            "status failed: cannot send the request to process 7: Broken pipe (os error 32)"
        );
    }
}
