//! Linker arguments for the `crac` binary: it is the lower half, and it exports the malloc and
//! mmap families (defined in `crac-loader`) so its own libraries (libc's internal allocations,
//! the dlopened CUDA runtime) use the lower arena and have their mappings recorded. Check with
//! `readelf --dyn-syms target/debug/crac`.
//!
//! The list is the loader's `exported-symbols.txt` (a build script cannot depend on the crate
//! that defines the functions, so both read one file).

fn main() {
    let list = include_str!("../loader/exported-symbols.txt");
    for sym in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol={sym}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../loader/exported-symbols.txt");
}
