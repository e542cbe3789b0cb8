//! crac's `libcudart` shim: the upper half's CUDA runtime.
//!
//! Linked by `scripts/link-shim.sh` into `libcudart.so.12` and `libcudart.so.13`, with
//! NVIDIA's SONAMEs and symbol versions, and preloaded by `crac_launch --gpu`. It exports every
//! function NVIDIA's runtime exports; the implemented ones ([`exports`]) cross to crac's lower
//! half through the call table of `crac_abi` ([`switch`], which also holds them at the API
//! gate while a checkpoint runs), the rest name themselves once on stderr and return
//! `cudaErrorNotSupported`. It also interposes `sigaction`/`signal` so a signal that lands
//! while a thread is in the lower half runs the program's handler with the program's fs.
//!
//! Only `arch/`, `sys/`, `switch.rs` and `exports/` hold unsafe code.

pub mod arch;
pub mod errors;
pub mod exports;
pub mod fsmap;
pub mod layout;
pub mod preload;
pub mod state;
pub mod switch;
pub mod sys;

pub use exports::generated::IMPLEMENTED;

/// `docs/cuda-coverage.md` as the code says it should read: the NVIDIA exports crac
/// implements, generated from the exports themselves (`build.rs` lists them).
pub fn coverage_doc() -> String {
    let count = |list: &str| list.lines().filter(|l| !l.is_empty()).count();
    let n12 = count(include_str!("../symbols/libcudart.so.12.txt"));
    let n13 = count(include_str!("../symbols/libcudart.so.13.txt"));
    let mut doc = String::from(
        "# CUDA runtime coverage\n\n\
         Generated from `crates/cuda-shim/src/exports/` by the shim's unit tests; do not edit \
         (regenerate with `CRAC_BLESS=1 cargo test -p crac-cuda-shim coverage`).\n\n\
         crac's `libcudart` shim exports every function NVIDIA's runtime exports",
    );
    doc.push_str(&format!(
        " ({n12} in `libcudart.so.12`, {n13} in `libcudart.so.13`). The {} below are \
         implemented; every other export names itself once on stderr and returns \
         `cudaErrorNotSupported` (801).\n\n",
        IMPLEMENTED.len()
    ));
    for name in IMPLEMENTED {
        doc.push_str(&format!("- `{name}`\n"));
    }
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn coverage_doc_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cuda-coverage.md");
        let want = super::coverage_doc();
        if std::env::var_os("CRAC_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "docs/cuda-coverage.md is stale: run CRAC_BLESS=1 cargo test -p crac-cuda-shim coverage"
        );
    }

    #[test]
    fn the_implemented_list_holds_the_launch_path_and_no_unimplemented_name() {
        for name in [
            "__cudaRegisterFatBinary",
            "__cudaLaunchKernel",
            "cudaLaunchKernel",
            "cudaMalloc",
            // Defined together by the exports macros, all named on one `fn` line.
            "__cudaLaunchKernel_ptsz",
            "cudaMemcpy2D_ptds",
            "cudaMemcpy2DAsync_ptsz",
            "__cudaRegisterManagedVar",
        ] {
            assert!(super::IMPLEMENTED.contains(&name), "{name}");
        }
        for name in super::exports::generated::UNIMPLEMENTED {
            assert!(!super::IMPLEMENTED.contains(&name), "{name}");
        }
    }
}
