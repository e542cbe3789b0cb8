//! Linker arguments for the `crac` binary: it is the lower half, and it exports the malloc and
//! mmap families (defined in `crac-loader`) so its own libraries (libc's internal allocations,
//! the dlopened CUDA runtime) use the lower arena and have their mappings recorded. Check with
//! `readelf --dyn-syms target/debug/crac`.

/// Must match `crac_loader::EXPORTED_SYMBOLS` (a build script cannot depend on the crate).
const EXPORTED: [&str; 15] = [
    "malloc",
    "free",
    "calloc",
    "realloc",
    "memalign",
    "aligned_alloc",
    "posix_memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "mmap",
    "mmap64",
    "munmap",
    "mremap",
    "pthread_create",
];

fn main() {
    for sym in EXPORTED {
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol={sym}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
