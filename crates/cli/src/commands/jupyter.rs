//! `crac jupyter install|uninstall`: the "Python 3 (crac)" kernelspec.
//!
//! `install` writes `KERNELS/NAME/kernel.json`, whose argv runs `PYTHON -m crac_jupyter.relay
//! -f {connection_file}` with `PYTHONPATH` pointing at the `crac_jupyter` package and `CRAC_BIN`
//! at this crac. The relay then runs ipykernel under `crac launch` (see `python/crac_jupyter`).
//!
//! - KERNELS: with `--user` (the default) `$JUPYTER_DATA_DIR/kernels`, else
//!   `$XDG_DATA_HOME/jupyter/kernels`, else `~/.local/share/jupyter/kernels` (where jupyter_core
//!   looks on Linux); with `--sys-prefix`, `sys.prefix/share/jupyter/kernels` of PYTHON.
//! - PYTHON: `--python`, else `python3` on `PATH`, written as the `sys.executable` it reports
//!   (a wrapper script such as pyenv's shim would `exec` the real interpreter, which leaves crac
//!   behind). It must import ipykernel and zmq.
//! - The package: `$CRAC_JUPYTER_PYTHONPATH`, else `BIN/../lib/crac/python` (where
//!   scripts/install.sh puts it, BIN being this executable's directory), else the source tree's
//!   `python/` for a development build (`target/debug/crac`).
//!
//! `install --gpu sim|cuda` writes a kernel whose CUDA calls go to that device backend: its
//! kernelspec sets `CRAC_JUPYTER_LAUNCH_ARGS` to `--gpu BACKEND` (the relay passes it to `crac
//! launch`), which replaces a value the server's environment has (add other `crac launch`
//! options to the kernelspec's `env` instead). Its display name says which backend, and its
//! directory name defaults to `python3-crac-BACKEND`, so it sits beside the plain kernel.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use serde_json::json;

use crate::cli::{JupyterAction, JupyterArgs, JupyterInstallArgs, JupyterUninstallArgs};
use crate::gpu::GpuKind;

/// The name the kernel has in Jupyter's launcher and kernel menus.
pub const DISPLAY_NAME: &str = "Python 3 (crac)";
/// The kernelspec's directory name without `--gpu`.
const DEFAULT_NAME: &str = "python3-crac";
/// The variable whose `crac launch` options the relay passes on (`crac_jupyter.inner`).
const LAUNCH_ARGS_VAR: &str = "CRAC_JUPYTER_LAUNCH_ARGS";
/// The module a kernelspec runs; also how `uninstall` recognises a kernelspec of ours.
const RELAY_MODULE: &str = "crac_jupyter.relay";

/// Runs `crac jupyter`.
pub fn run(name: &str, args: JupyterArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        JupyterAction::Install(a) => install(name, &a),
        JupyterAction::Uninstall(a) => uninstall(name, &a),
    }
}

/// What a Python says about itself.
struct PythonInfo {
    executable: PathBuf,
    prefix: PathBuf,
}

/// Asks `python` (with `pythonpath` on its path) for its executable and prefix, checking that it
/// can run the relay (ipykernel, zmq and crac_jupyter import).
fn probe_python(python: &Path, pythonpath: Option<&Path>) -> anyhow::Result<PythonInfo> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys\nmissing = []\nfor m in ('ipykernel', 'zmq', 'crac_jupyter.relay'):\n    \
         try:\n        __import__(m)\n    except Exception as e:\n        missing.append(f'{m} ({e})')\n\
         print(sys.executable)\nprint(sys.prefix)\nprint('; '.join(missing))",
    ]);
    if let Some(p) = pythonpath {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().with_context(|| {
        format!(
            "cannot run {}; name a Python with --python PATH",
            python.display()
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (Some(exe), Some(prefix), missing) = (lines.next(), lines.next(), lines.next()) else {
        bail!(
            "{} did not run: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    };
    if let Some(m) = missing.filter(|m| !m.is_empty()) {
        bail!(
            "{} cannot run the crac kernel: it cannot import {m}; install ipykernel into it \
             (`{} -m pip install ipykernel`) or name another Python with --python",
            python.display(),
            python.display()
        );
    }
    Ok(PythonInfo {
        executable: PathBuf::from(exe),
        prefix: PathBuf::from(prefix),
    })
}

/// Jupyter's per-user data directory, as jupyter_core finds it on Linux.
fn user_data_dir() -> anyhow::Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = var("XDG_DATA_HOME") {
        return Ok(PathBuf::from(d).join("jupyter"));
    }
    let home = var("HOME").context("HOME is not set; set JUPYTER_DATA_DIR")?;
    Ok(PathBuf::from(home).join(".local/share/jupyter"))
}

/// Where the `crac_jupyter` package is, for this crac executable at `exe`.
fn package_root(exe: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CRAC_JUPYTER_PYTHONPATH").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let bin = exe.parent().context("crac's own path has no directory")?;
    let mut candidates = vec![bin.join("../lib/crac/python")];
    // A development build: REPO/target/{debug,release}/crac.
    if let Some(repo) = bin.parent().and_then(Path::parent) {
        candidates.push(repo.join("python"));
    }
    for c in &candidates {
        if c.join("crac_jupyter/relay.py").is_file() {
            return c
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", c.display()));
        }
    }
    bail!(
        "cannot find the crac_jupyter package (looked in {}); reinstall crac with \
         scripts/install.sh or set CRAC_JUPYTER_PYTHONPATH to the directory holding crac_jupyter",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The backend's name as `--gpu` spells it (`sim`, `cuda`).
fn gpu_name(gpu: GpuKind) -> &'static str {
    match gpu {
        GpuKind::Sim => "sim",
        GpuKind::Cuda => "cuda",
    }
}

/// The kernel's name in Jupyter's menus.
fn display_name(gpu: Option<GpuKind>) -> String {
    match gpu {
        None => DISPLAY_NAME.to_string(),
        Some(GpuKind::Sim) => "Python 3 (crac, GPU sim)".to_string(),
        Some(GpuKind::Cuda) => "Python 3 (crac, CUDA)".to_string(),
    }
}

/// The kernelspec's directory name when `--name` does not give one.
fn default_name(gpu: Option<GpuKind>) -> String {
    match gpu {
        None => DEFAULT_NAME.to_string(),
        Some(g) => format!("{DEFAULT_NAME}-{}", gpu_name(g)),
    }
}

/// The kernelspec's `kernel.json`.
fn kernel_json(
    python: &Path,
    pythonpath: &Path,
    crac: &Path,
    gpu: Option<GpuKind>,
) -> serde_json::Value {
    let mut env = json!({
        "PYTHONPATH": pythonpath,
        "CRAC_BIN": crac,
    });
    let mut crac_meta = json!({ "version": env!("CARGO_PKG_VERSION") });
    if let Some(g) = gpu {
        env[LAUNCH_ARGS_VAR] = json!(format!("--gpu {}", gpu_name(g)));
        crac_meta["gpu"] = json!(gpu_name(g));
    }
    json!({
        "argv": [python, "-m", RELAY_MODULE, "-f", "{connection_file}"],
        "display_name": display_name(gpu),
        "language": "python",
        "interrupt_mode": "signal",
        "env": env,
        "metadata": { "debugger": false, "crac": crac_meta },
    })
}

/// The kernels directory the flags name.
fn kernels_dir(sys_prefix: bool, python: Option<&PythonInfo>) -> anyhow::Result<PathBuf> {
    match (sys_prefix, python) {
        (true, Some(p)) => Ok(p.prefix.join("share/jupyter/kernels")),
        (true, None) => bail!("--sys-prefix needs the Python's prefix"),
        (false, _) => Ok(user_data_dir()?.join("kernels")),
    }
}

/// Refuses a name Jupyter would not accept as a kernelspec directory.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!("kernelspec name {name:?} must be letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

fn install(name: &str, args: &JupyterInstallArgs) -> anyhow::Result<ExitCode> {
    let spec_name = args.name.clone().unwrap_or_else(|| default_name(args.gpu));
    check_name(&spec_name)?;
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .context("cannot find crac's own executable")?;
    let pkg = package_root(&exe)?;
    let python = args.python.clone().unwrap_or_else(|| "python3".into());
    let info = probe_python(&python, Some(&pkg))?;
    let dir = kernels_dir(args.sys_prefix, Some(&info))?.join(&spec_name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let spec = kernel_json(&info.executable, &pkg, &exe, args.gpu);
    let mut text = serde_json::to_string_pretty(&spec).context("cannot encode kernel.json")?;
    text.push('\n');
    let file = dir.join("kernel.json");
    let tmp = dir.join(".kernel.json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "{name}: installed the \"{}\" kernel ({}) running {}",
        display_name(args.gpu),
        dir.display(),
        info.executable.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn uninstall(name: &str, args: &JupyterUninstallArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let info = if args.sys_prefix {
        let python = args.python.clone().unwrap_or_else(|| "python3".into());
        Some(probe_prefix(&python)?)
    } else {
        None
    };
    let dir = kernels_dir(args.sys_prefix, info.as_ref())?.join(&args.name);
    let file = dir.join("kernel.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("there is no kernelspec {} in {}", args.name, dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    if !text.contains(RELAY_MODULE) {
        bail!(
            "{} was not written by crac jupyter install; remove it with `jupyter kernelspec \
             remove {}` if you mean to",
            dir.display(),
            args.name
        );
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    println!("{name}: removed the kernelspec {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// A Python's prefix alone (uninstall does not need ipykernel to be importable).
fn probe_prefix(python: &Path) -> anyhow::Result<PythonInfo> {
    let out = Command::new(python)
        .args(["-c", "import sys; print(sys.executable); print(sys.prefix)"])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(exe), Some(prefix)) => Ok(PythonInfo {
            executable: PathBuf::from(exe),
            prefix: PathBuf::from(prefix),
        }),
        _ => bail!("{} did not say where its prefix is", python.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernelspec_runs_the_relay_with_the_package_and_crac_in_its_environment() {
        let spec = kernel_json(
            Path::new("/v/bin/python"),
            Path::new("/p/lib/crac/python"),
            Path::new("/p/bin/crac"),
            None,
        );
        assert_eq!(
            spec["argv"],
            json!([
                "/v/bin/python",
                "-m",
                "crac_jupyter.relay",
                "-f",
                "{connection_file}"
            ])
        );
        assert_eq!(spec["display_name"], DISPLAY_NAME);
        assert_eq!(spec["interrupt_mode"], "signal");
        assert_eq!(spec["env"]["PYTHONPATH"], "/p/lib/crac/python");
        assert_eq!(spec["env"]["CRAC_BIN"], "/p/bin/crac");
        assert!(spec["env"].get(LAUNCH_ARGS_VAR).is_none());
    }

    #[test]
    fn a_gpu_kernelspec_launches_the_kernel_on_its_backend_under_its_own_name() {
        let spec = kernel_json(
            Path::new("/v/bin/python"),
            Path::new("/p"),
            Path::new("/p/bin/crac"),
            Some(GpuKind::Sim),
        );
        assert_eq!(spec["env"][LAUNCH_ARGS_VAR], "--gpu sim");
        assert_eq!(spec["display_name"], "Python 3 (crac, GPU sim)");
        assert_eq!(spec["metadata"]["crac"]["gpu"], "sim");
        assert_eq!(default_name(Some(GpuKind::Sim)), "python3-crac-sim");
        assert_eq!(default_name(Some(GpuKind::Cuda)), "python3-crac-cuda");
        assert_eq!(default_name(None), "python3-crac");
        assert_ne!(display_name(Some(GpuKind::Cuda)), display_name(None));
    }

    #[test]
    fn names_that_are_not_one_plain_directory_are_refused() {
        assert!(check_name("python3-crac").is_ok());
        for bad in ["", "../x", "a/b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sys_prefix_kernels_live_under_the_pythons_prefix() {
        let info = PythonInfo {
            executable: "/v/bin/python".into(),
            prefix: "/v".into(),
        };
        assert_eq!(
            kernels_dir(true, Some(&info)).unwrap(),
            PathBuf::from("/v/share/jupyter/kernels")
        );
    }

    #[test]
    fn the_package_is_found_in_the_source_tree_for_a_development_build() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("python/crac_jupyter")).unwrap();
        std::fs::write(repo.path().join("python/crac_jupyter/relay.py"), "").unwrap();
        std::fs::create_dir_all(repo.path().join("target/debug")).unwrap();
        // The override wins when the environment running the tests sets it.
        if std::env::var_os("CRAC_JUPYTER_PYTHONPATH").is_some() {
            return;
        }
        let found = package_root(&repo.path().join("target/debug/crac")).unwrap();
        assert_eq!(found, repo.path().join("python").canonicalize().unwrap());
    }
}
