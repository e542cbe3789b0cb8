//! Keeps the lower half's malloc and mmap exports in the dynamic symbol table of this crate's
//! examples and test binaries, as `crates/cli/build.rs` does for `crac`.

fn main() {
    for sym in [
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
    ] {
        println!("cargo:rustc-link-arg-examples=-Wl,--export-dynamic-symbol={sym}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
