//! A minimal `crac_launch` without the agent: `minilaunch PROGRAM [ARGS…]` runs PROGRAM the
//! way crac does (no-ASLR re-exec, lower-half start-up, kernel-style load and jump), so the
//! launch can be tested and timed before the CLI exists. With `MINILAUNCH_THREAD=1` it first
//! starts a registered lower-half thread, as the agent would be.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::exit;

fn main() {
    if let Err(e) = crac_loader::startup::ensure_no_aslr() {
        eprintln!("minilaunch: {e}");
        exit(1);
    }
    if let Err(e) = crac_loader::startup::init_lower_half() {
        eprintln!("minilaunch: {e}");
        exit(1);
    }
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: minilaunch PROGRAM [ARGS...]");
        exit(2);
    };
    let rest: Vec<OsString> = args.collect();
    if std::env::var_os("MINILAUNCH_THREAD").is_some() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            crac_loader::lower::register_current_thread();
            let _ = tx.send(());
            loop {
                std::thread::park();
            }
        });
        let _ = rx.recv();
    }
    let target = match crac_loader::exec::resolve(&program, &rest) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("minilaunch: {e}");
            exit(e.exit_code());
        }
    };
    let env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| !k.to_string_lossy().starts_with("__CRAC_") && k != "MINILAUNCH_THREAD")
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            OsString::from_vec(kv)
        })
        .collect();
    match crac_loader::exec::enter(target, env) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("minilaunch: {e}");
            exit(126);
        }
    }
}
