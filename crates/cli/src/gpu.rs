//! `crac_launch --gpu sim|cuda`: set up the lower half's device backend and the program's
//! environment so that its CUDA runtime calls land in crac's shim.
//!
//! [`prepare_launch`] runs after `exec::resolve` and before `exec::enter`: it refuses (with the
//! remedy) a program that links the CUDA runtime statically, starts the chosen backend,
//! reserves the device-address window, installs the call table and passes its address in the
//! program's auxv, and puts the shim matching the program's CUDA major into `env`'s
//! `LD_PRELOAD` (the shim removes itself from it, so the program's children do not load it).
//!
//! [`restart_backend`] is `crac_restart`'s side of the same choice: the factory the restorer
//! calls (after the program's memory is back) to start the backend the image's CUDA state is
//! rebuilt on.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use crac_core::elf::links::{Links, read_links};
use crac_loader::exec::Target;
use crac_replay::{DevicePrintf, Runtime};
use std::sync::Arc;

/// Which device backend the program's CUDA calls go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuKind {
    /// crac's CPU model of a CUDA device (no GPU needed).
    Sim,
    /// The real CUDA runtime and driver, loaded at run time.
    Cuda,
}

/// Symbols only a CUDA runtime defines.
const RUNTIME_SYMBOLS: [&str; 3] = ["cudaLaunchKernel", "__cudaRegisterFatBinary", "cudaMalloc"];

/// The CUDA runtime majors crac has shims for.
const MAJORS: [u32; 2] = [12, 13];

/// Which shim the program needs, from what it links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// It needs `libcudart.so.N`.
    Major(u32),
    /// It does not link the runtime; a script or an interpreter may load it later.
    Maybe,
    /// It does not link the runtime and is no interpreter: no shim.
    Nothing,
}

/// What the program needs, or the refusal for a statically linked runtime.
fn need(program: &Path, links: &Links, interpreter_like: bool) -> anyhow::Result<Need> {
    let cudart: Vec<&String> = links
        .needed
        .iter()
        .filter(|n| n.starts_with("libcudart.so"))
        .collect();
    if let Some(name) = cudart.first() {
        let major = name
            .strip_prefix("libcudart.so.")
            .and_then(|m| m.split('.').next())
            .and_then(|m| m.parse::<u32>().ok());
        return match major {
            Some(m) if MAJORS.contains(&m) => Ok(Need::Major(m)),
            _ => bail!(
                "{} needs {name}; crac supports the CUDA 12 and 13 runtimes (libcudart.so.12, \
                 libcudart.so.13): rebuild it with CUDA 12 or 13",
                program.display()
            ),
        };
    }
    let fatbin = links
        .sections
        .iter()
        .any(|s| s == ".nvFatBinSegment" || s == ".nv_fatbin");
    if !links.defined.is_empty() || fatbin {
        bail!(
            "{} links the CUDA runtime statically; rebuild it with `nvcc -cudart shared` \
             (CMake: CUDA_RUNTIME_LIBRARY Shared)",
            program.display()
        );
    }
    Ok(if interpreter_like {
        Need::Maybe
    } else {
        Need::Nothing
    })
}

/// Reads `program`'s link information.
fn links_of(program: &Path) -> anyhow::Result<Links> {
    let file = std::fs::File::open(program)
        .with_context(|| format!("cannot read {}", program.display()))?;
    let mut read = |offset: u64, len: u64| {
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    };
    read_links(&mut read, &RUNTIME_SYMBOLS)
        .with_context(|| format!("cannot read the dynamic section of {}", program.display()))
}

/// Whether the program is an interpreter that may load the CUDA runtime itself (Python, a
/// shell running a CUDA program is a different process and needs no shim here).
fn interpreter_like(target: &Target) -> bool {
    let name = target
        .path()
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    target.is_script() || name.starts_with(b"python")
}

/// Where the shim libraries may be, in order: `$CRAC_SHIM_DIR`, `<dir of crac>/crac-shim`
/// (build trees), `<prefix>/lib/crac` (installed as `<prefix>/bin/crac`).
fn shim_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("CRAC_SHIM_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("crac-shim"));
        if let Some(prefix) = exe_dir.parent() {
            dirs.push(prefix.join("lib/crac"));
        }
    }
    dirs
}

/// The shim for CUDA `major`.
fn find_shim(major: u32) -> anyhow::Result<PathBuf> {
    let name = format!("libcudart.so.{major}");
    let dirs = shim_dirs();
    dirs.iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .with_context(|| {
            let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "cannot find crac's {name} shim (looked in {}); build it with \
                 scripts/link-shim.sh, or set CRAC_SHIM_DIR",
                tried.join(", ")
            )
        })
}

/// `env` with `shim` first in `LD_PRELOAD`.
fn preload(env: &mut Vec<OsString>, shim: &Path) {
    const KEY: &[u8] = b"LD_PRELOAD=";
    let mut value = shim.as_os_str().to_owned();
    if let Some(pos) = env.iter().position(|e| e.as_bytes().starts_with(KEY)) {
        let old = &env[pos].as_bytes()[KEY.len()..];
        if !old.is_empty() {
            value.push(":");
            value.push(std::ffi::OsStr::from_bytes(old));
        }
        env.remove(pos);
    }
    let mut entry = OsString::from("LD_PRELOAD=");
    entry.push(value);
    env.push(entry);
}

/// Bytes of memory the sim device reports: half the machine's RAM, at most 16 GiB.
fn sim_memory() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(8 << 20);
    (total_kib * 1024 / 2).clamp(1 << 30, 16 << 30)
}

/// Starts the backend of `kind`; the sim's device window is reserved here, the real
/// backend's by the driver. The sim's kernel `printf` output goes through `printf`, to reach
/// the program's own `stdout` stream.
fn start_backend(
    kind: GpuKind,
    printf: &Arc<DevicePrintf>,
) -> anyhow::Result<Box<dyn crac_gpu::DeviceBackend>> {
    match kind {
        GpuKind::Sim => {
            crac_loader::table::reserve_device_window(crac_gpu::Window::DEFAULT)?;
            let sim = crac_sim::Sim::new(sim_memory());
            sim.set_printf(Box::new(printf.writer()));
            Ok(Box::new(sim))
        }
        GpuKind::Cuda => match crac_gpu::cuda::CudaBackend::open(crac_gpu::Window::DEFAULT) {
            Ok(backend) => Ok(Box::new(backend)),
            Err(e) => {
                if let crac_gpu::cuda::CudaError::NoDriver(why) = &e {
                    tracing::debug!("loading libcuda.so.1 failed: {why}");
                }
                Err(e.into())
            }
        },
    }
}

impl GpuKind {
    /// The backend's name, as images record it.
    pub fn name(self) -> &'static str {
        match self {
            GpuKind::Sim => "sim",
            GpuKind::Cuda => "cuda",
        }
    }
}

/// `crac_restart`'s backend factory ([`crac_agent::restore::cuda::BackendFactory`]): starts
/// the backend named `kind` (`sim` reserves its device window here) with a fresh device
/// `printf` channel; the error is a sentence for the user.
pub fn restart_backend(
    kind: &str,
) -> Result<(Box<dyn crac_gpu::DeviceBackend>, Arc<DevicePrintf>), String> {
    let gpu = match kind {
        "sim" => GpuKind::Sim,
        "cuda" => GpuKind::Cuda,
        other => {
            return Err(format!(
                "the image was taken on the device backend {other:?}, which this crac does not \
                 know; restart with --gpu sim or --gpu cuda"
            ));
        }
    };
    let printf = Arc::new(DevicePrintf::default());
    start_backend(gpu, &printf)
        .map(|backend| (backend, printf))
        .map_err(|e| match e.downcast_ref::<crac_gpu::cuda::CudaError>() {
            Some(crac_gpu::cuda::CudaError::NoDriver(_)) => {
                "there is no CUDA driver on this machine (libcuda.so.1 cannot be loaded); \
                 restart with --gpu sim, which runs the program's kernels from the PTX in its \
                 fat binaries"
                    .to_owned()
            }
            _ => format!("{e:#}"),
        })
}

/// Prepares the lower half and the program's environment for `kind`.
pub fn prepare_launch(
    kind: GpuKind,
    target: &Target,
    env: &mut Vec<OsString>,
) -> anyhow::Result<()> {
    let links = links_of(target.path())?;
    let shim = match need(target.path(), &links, interpreter_like(target))? {
        Need::Major(m) => Some(find_shim(m)?),
        Need::Maybe => {
            tracing::debug!(
                "{} does not link the CUDA runtime; preloading the CUDA 13 shim in case it \
                 loads libcudart.so.13 itself",
                target.path().display()
            );
            find_shim(13).ok()
        }
        Need::Nothing => None,
    };
    let printf = Arc::new(DevicePrintf::default());
    let backend = start_backend(kind, &printf)?;
    let runtime = Runtime::new(backend).with_device_printf(printf);
    let table = crac_loader::table::install(runtime)?;
    crac_loader::exec::set_extra_auxv(&[(crac_abi::AT_CRAC_TABLE, table)]);
    if let Some(shim) = shim {
        tracing::debug!("preloading {}", shim.display());
        preload(env, &shim);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(needed: &[&str], defined: &[&str], sections: &[&str]) -> Links {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Links {
            needed: s(needed),
            defined: s(defined),
            sections: s(sections),
        }
    }

    #[test]
    fn the_runtime_major_comes_from_dt_needed() {
        let p = Path::new("app");
        let l = links(&["libcudart.so.13", "libc.so.6"], &[], &[]);
        assert_eq!(need(p, &l, false).expect("13"), Need::Major(13));
        let l = links(&["libcudart.so.12"], &[], &[".nv_fatbin"]);
        assert_eq!(need(p, &l, false).expect("12"), Need::Major(12));
        let e = need(p, &links(&["libcudart.so.11.0"], &[], &[]), false).expect_err("11");
        assert!(e.to_string().contains("CUDA 12 and 13"), "{e}");
        assert_eq!(
            need(p, &links(&["libc.so.6"], &[], &[]), false).expect("none"),
            Need::Nothing
        );
        assert_eq!(
            need(p, &links(&[], &[], &[]), true).expect("maybe"),
            Need::Maybe
        );
    }

    #[test]
    fn a_statically_linked_runtime_is_refused_with_the_remedy() {
        let p = Path::new("/x/app");
        for l in [
            links(&["libc.so.6"], &["cudaLaunchKernel"], &[]),
            links(&["libc.so.6"], &[], &[".nvFatBinSegment"]),
        ] {
            let e = need(p, &l, false).expect_err("static");
            assert_eq!(
                e.to_string(),
                "/x/app links the CUDA runtime statically; rebuild it with `nvcc -cudart shared` \
                 (CMake: CUDA_RUNTIME_LIBRARY Shared)"
            );
        }
    }

    #[test]
    fn the_shim_goes_first_in_ld_preload() {
        let mut env = vec![OsString::from("A=1")];
        preload(&mut env, Path::new("/s/libcudart.so.13"));
        assert_eq!(env, ["A=1", "LD_PRELOAD=/s/libcudart.so.13"]);
        let mut env = vec![OsString::from("LD_PRELOAD=/x.so"), OsString::from("B=2")];
        preload(&mut env, Path::new("/s/libcudart.so.12"));
        assert_eq!(env, ["B=2", "LD_PRELOAD=/s/libcudart.so.12:/x.so"]);
    }

    #[test]
    fn a_static_nvcc_binary_is_refused() {
        // nvcc links the runtime statically by default; build such a binary when nvcc is set up.
        let nvcc = nvcc().expect("nvcc not found: run scripts/setup.sh (or set CRAC_TOOLS)");
        // The wheel keeps its libraries (libcudart_static.a among them) beside bin/.
        let lib = nvcc
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("lib"))
            .expect("nvcc's lib dir");
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("k.cu");
        std::fs::write(
            &src,
            "__global__ void k(int *p) { *p = 1; }\nint main() { int *p; cudaMalloc(&p, 4); \
             k<<<1, 1>>>(p); return cudaDeviceSynchronize(); }\n",
        )
        .expect("write source");
        let bin = dir.path().join("k");
        let out = std::process::Command::new(&nvcc)
            .args(["-arch=compute_75", "-code=compute_75", "-L"])
            .arg(&lib)
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("run nvcc");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let l = links_of(&bin).expect("links");
        assert!(
            !l.needed.iter().any(|n| n.starts_with("libcudart")),
            "{l:?}"
        );
        let e = need(&bin, &l, false).expect_err("static runtime");
        assert!(
            e.to_string().contains("links the CUDA runtime statically"),
            "{e}"
        );
    }

    /// The nvcc `scripts/setup.sh` recorded, if any.
    fn nvcc() -> Option<PathBuf> {
        let tools = std::env::var_os("CRAC_TOOLS")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/crac-tools"))
            })?;
        let p = PathBuf::from(
            std::fs::read_to_string(tools.join("nvcc-path"))
                .ok()?
                .trim(),
        );
        p.is_file().then_some(p)
    }
}
