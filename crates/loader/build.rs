//! Keeps the lower half's malloc and mmap exports in the dynamic symbol table of this crate's
//! examples, as `crates/cli/build.rs` does for `crac`; both read `exported-symbols.txt`.

fn main() {
    let list = include_str!("exported-symbols.txt");
    for sym in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        println!("cargo:rustc-link-arg-examples=-Wl,--export-dynamic-symbol={sym}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=exported-symbols.txt");
}
