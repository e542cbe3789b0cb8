//! Launching kernels on the `sim` device: shape checks, the job the worker runs, and where a
//! kernel's `printf` output and statistics go.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crac_gpu::{DeviceProps, FunctionId, GpuError, LaunchConfig, Result};
use crac_ptx::{DeviceMemory, LaunchDims, LaunchError};

use crate::engine::{KernelJob, lock};
use crate::memory::DeviceMem;
use crate::module::Modules;

/// Where `printf` output of kernels goes.
pub(crate) type Printf = Arc<Mutex<Box<dyn Write + Send>>>;

/// What the device's kernels have done so far ([`crate::Sim::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Kernels that ran to completion.
    pub launches: u64,
    /// Kernels that failed while running.
    pub failed_launches: u64,
    /// Warp-instructions issued, summed over completed kernels.
    pub warp_instructions: u64,
    /// Thread-instructions executed, summed over completed kernels.
    pub thread_instructions: u64,
    /// Wall time spent running kernels.
    pub kernel_time: Duration,
}

/// Where a kernel's side outputs go: `printf` text and the statistics.
#[derive(Clone)]
pub(crate) struct Sinks {
    pub(crate) printf: Printf,
    pub(crate) stats: Arc<Mutex<SimStats>>,
}

fn launch_error(e: LaunchError) -> GpuError {
    match e {
        LaunchError::NoSuchKernel(k) => GpuError::InvalidDeviceFunction(k),
        LaunchError::InvalidConfig(m) => GpuError::InvalidConfiguration(m),
        LaunchError::BadParams { .. } => GpuError::InvalidValue(e.to_string()),
        LaunchError::UnresolvedSymbol(s) => GpuError::InvalidSymbol(s),
        LaunchError::IllegalAddress { .. } => GpuError::IllegalAddress(e.to_string()),
        LaunchError::Trap { .. } => GpuError::LaunchFailure(e.to_string()),
        LaunchError::Assert { .. } => GpuError::Assert(e.to_string()),
        LaunchError::Unsupported { .. } => GpuError::LaunchFailure(format!(
            "{e}: not supported yet by the sim device's PTX interpreter"
        )),
    }
}

impl Modules {
    /// Checks a launch and builds the job the worker runs.
    pub(crate) fn prepare_launch(
        &self,
        f: FunctionId,
        cfg: &LaunchConfig,
        params: &[u8],
        props: &DeviceProps,
        sinks: &Sinks,
    ) -> Result<KernelJob> {
        let func = self.function(f)?;
        let loaded = func.loaded.clone();
        let k = &loaded.ptx.kernels()[func.kernel];
        check_shape(cfg, props, k.max_threads)?;
        let dynamic = u64::from(cfg.dynamic_shared);
        let limit = Self::dynamic_limit(func, k.static_shared, props);
        if dynamic > limit
            || k.static_shared.saturating_add(dynamic) > props.shared_mem_per_block_optin
        {
            return Err(GpuError::InvalidConfiguration(format!(
                "{dynamic} bytes of dynamic shared memory asked, kernel {} allows {limit}",
                k.name
            )));
        }
        let need = k
            .params
            .iter()
            .map(|p| p.offset + p.size)
            .max()
            .unwrap_or(0);
        if (params.len() as u64) < need {
            return Err(GpuError::InvalidValue(format!(
                "parameter buffer is {} bytes, kernel {} needs {need}",
                params.len(),
                k.name
            )));
        }
        let externs: HashMap<String, u64> = if loaded.has_extern {
            self.modules
                .values()
                .flat_map(|m| m.vars.iter().map(|v| (v.name.clone(), v.ptr)))
                .collect()
        } else {
            HashMap::new()
        };
        let name = k.name.clone();
        let dims = LaunchDims {
            grid: cfg.grid,
            block: cfg.block,
            dynamic_shared: cfg.dynamic_shared,
        };
        let params = params.to_vec();
        let sinks = sinks.clone();
        Ok(Box::new(move |mem: &mut DeviceMem| {
            let resolve = |s: &str| loaded.symbol(s).or_else(|| externs.get(s).copied());
            let mut out = lock(&sinks.printf);
            let mem: &mut dyn DeviceMemory = mem;
            let start = Instant::now();
            let result =
                crac_ptx::launch(&loaded.ptx, &name, &dims, &params, &resolve, mem, &mut *out);
            // printf output is best effort, as on a GPU: a broken writer never fails a kernel.
            let _ = out.flush();
            let mut stats = lock(&sinks.stats);
            stats.kernel_time += start.elapsed();
            match result {
                Ok(ran) => {
                    stats.launches += 1;
                    stats.warp_instructions += ran.warp_instructions;
                    stats.thread_instructions += ran.thread_instructions;
                    Ok(())
                }
                Err(e) => {
                    stats.failed_launches += 1;
                    Err(launch_error(e))
                }
            }
        }))
    }
}

fn check_shape(cfg: &LaunchConfig, props: &DeviceProps, max_threads: Option<u32>) -> Result<()> {
    let bad = |why: String| Err(GpuError::InvalidConfiguration(why));
    for axis in 0..3 {
        if cfg.grid[axis] == 0 || cfg.grid[axis] > props.max_grid_size[axis] {
            return bad(format!(
                "grid {:?} outside 1..={:?}",
                cfg.grid, props.max_grid_size
            ));
        }
        if cfg.block[axis] == 0 || cfg.block[axis] > props.max_threads_dim[axis] {
            return bad(format!(
                "block {:?} outside 1..={:?}",
                cfg.block, props.max_threads_dim
            ));
        }
    }
    let threads: u64 = cfg.block.iter().map(|&d| u64::from(d)).product();
    let limit = max_threads.map_or(props.max_threads_per_block, |m| {
        m.min(props.max_threads_per_block)
    });
    if threads > u64::from(limit) {
        return bad(format!(
            "block of {threads} threads, at most {limit} allowed"
        ));
    }
    Ok(())
}
