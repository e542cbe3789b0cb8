//! The C symbols the `crac` executable exports to its own (lower-half) libraries: the malloc
//! family, served from the lower arena, and the mmap family, which records what it maps as
//! lower half. glibc supports replacing malloc this way; the lower libc's internal allocations
//! (stdio, opendir, dlopen, pthread TLS) go through these too. The upper half has its own ld.so
//! and libc and never sees them.
//!
//! These run before `main` and on any lower thread, inside libc: they must not panic (no
//! `unwrap`, no indexing that can fail), must not unwind, and must not call the exported
//! `mmap` from the allocator path. `build.rs` files keep them in the dynamic symbol table
//! (`--export-dynamic-symbol`); [`KEEP`] keeps the linker from dropping their object file.

use std::ffi::c_void;

use super::arena::{self, HEAP};
use crate::lower;

/// Natural malloc alignment on x86-64.
const MIN_ALIGN: usize = 16;

fn set_errno(code: i32) {
    // SAFETY: __errno_location always returns the calling thread's valid errno slot.
    unsafe { *libc::__errno_location() = code };
}

/// The block as C sees it; a null block sets `errno` to `ENOMEM`, as malloc(3) must.
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

fn alloc_aligned(align: usize, size: usize) -> *mut c_void {
    let Some(align) = align.max(MIN_ALIGN).checked_next_power_of_two() else {
        return or_enomem(std::ptr::null_mut());
    };
    // SAFETY: align is a power of two; c_memalign accepts any size.
    or_enomem(HEAP.with(|h| unsafe { h.c_memalign(align, size) }))
}

/// `malloc(3)` from the lower arena.
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    alloc_aligned(MIN_ALIGN, size)
}

/// `free(3)`.
///
/// # Safety
/// `ptr` is null or a live block from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: the caller passes null or a live block from this heap.
    HEAP.with(|h| unsafe { h.c_free(ptr.cast()) });
}

/// `calloc(3)`: zeroed, with the product checked for overflow.
#[unsafe(no_mangle)]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        return or_enomem(std::ptr::null_mut());
    };
    // SAFETY: MIN_ALIGN is the natural alignment, valid for dlmalloc's calloc.
    or_enomem(HEAP.with(|h| unsafe { h.calloc(total, MIN_ALIGN) }))
}

/// `realloc(3)`; `realloc(p, 0)` frees `p` and returns null, as glibc does.
///
/// # Safety
/// `ptr` is null or a live block from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if !ptr.is_null() && size == 0 {
        // SAFETY: forwarded from the caller's contract.
        unsafe { free(ptr) };
        return std::ptr::null_mut();
    }
    // SAFETY: ptr is null or a live block of this heap (caller's contract).
    or_enomem(HEAP.with(|h| unsafe { h.c_realloc(ptr.cast(), size) }))
}

/// `memalign(3)`; a non-power-of-two alignment is rounded up, as glibc does.
#[unsafe(no_mangle)]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    alloc_aligned(align, size)
}

/// `aligned_alloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    alloc_aligned(align, size)
}

/// `posix_memalign(3)`: returns the error instead of setting errno.
///
/// # Safety
/// `out` must be valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || align % std::mem::size_of::<usize>() != 0 {
        return libc::EINVAL;
    }
    let p = alloc_aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a writable out-pointer.
    unsafe { out.write(p) };
    0
}

/// `valloc(3)`: page-aligned.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    alloc_aligned(super::PAGE, size)
}

/// `pvalloc(3)`: page-aligned, size rounded up to whole pages.
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(rounded) = size.checked_next_multiple_of(super::PAGE) else {
        return or_enomem(std::ptr::null_mut());
    };
    alloc_aligned(super::PAGE, rounded.max(super::PAGE))
}

/// `malloc_usable_size(3)`.
///
/// # Safety
/// `ptr` is null or a live block from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: a live block of this heap (caller's contract).
    unsafe { arena::usable_size(ptr.cast()) }
}

fn map_result(ret: std::io::Result<usize>) -> *mut c_void {
    match ret {
        Ok(addr) => addr as *mut c_void,
        Err(e) => {
            set_errno(e.raw_os_error().unwrap_or(libc::EINVAL));
            libc::MAP_FAILED
        }
    }
}

/// `mmap(2)` for the lower half: maps, then records the range as lower half.
///
/// # Safety
/// As `mmap(2)`: with `MAP_FIXED` the caller must own the target range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: i32,
    flags: i32,
    fd: i32,
    off: i64,
) -> *mut c_void {
    // SAFETY: forwarded from the caller's contract; off is reinterpreted as the kernel does.
    let ret = unsafe { super::mmap_raw(addr as usize, len, prot, flags, fd, off as u64) };
    if let Ok(start) = ret {
        lower::record_mapped(start as u64, start as u64 + len as u64);
    }
    map_result(ret)
}

/// `mmap64(2)`: the same as [`mmap`] on 64-bit.
///
/// # Safety
/// As [`mmap`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: i32,
    flags: i32,
    fd: i32,
    off: i64,
) -> *mut c_void {
    // SAFETY: same contract.
    unsafe { mmap(addr, len, prot, flags, fd, off) }
}

/// `munmap(2)`: unmaps, then forgets the range (start-up mappings included).
///
/// # Safety
/// Nothing may still use the range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: usize) -> i32 {
    // SAFETY: forwarded from the caller's contract.
    match unsafe { super::munmap_raw(addr as usize, len) } {
        Ok(()) => {
            lower::unmapped(addr as u64, addr as u64 + len as u64);
            0
        }
        Err(e) => {
            set_errno(e.raw_os_error().unwrap_or(libc::EINVAL));
            -1
        }
    }
}

/// `mremap(2)`. Declared with its five arguments: the fifth is read only with `MREMAP_FIXED`,
/// which is when a variadic caller passes it (the x86-64 ABI passes both alike in registers).
///
/// # Safety
/// As `mremap(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: usize,
    new_len: usize,
    flags: i32,
    new_addr: *mut c_void,
) -> *mut c_void {
    let target = if flags & libc::MREMAP_FIXED != 0 {
        new_addr as usize
    } else {
        0
    };
    // SAFETY: a plain system call with the caller's arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mremap,
            old as usize,
            old_len,
            new_len,
            flags,
            target,
        )
    };
    if ret < 0 {
        set_errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        );
        return libc::MAP_FAILED;
    }
    let start = ret as u64;
    if flags & libc::MREMAP_DONTUNMAP == 0 {
        lower::unmapped(old as u64, old as u64 + old_len as u64);
    }
    lower::record_mapped(start, start + new_len as u64);
    start as *mut c_void
}

/// Addresses of every export, read by `init_lower_half` so their object file is always linked.
pub(crate) fn keep() -> usize {
    let all = [
        malloc as *const () as usize,
        free as *const () as usize,
        calloc as *const () as usize,
        realloc as *const () as usize,
        memalign as *const () as usize,
        aligned_alloc as *const () as usize,
        posix_memalign as *const () as usize,
        valloc as *const () as usize,
        pvalloc as *const () as usize,
        malloc_usable_size as *const () as usize,
        mmap as *const () as usize,
        mmap64 as *const () as usize,
        munmap as *const () as usize,
        mremap as *const () as usize,
    ];
    std::hint::black_box(all)
        .iter()
        .fold(0, |a, b| a.wrapping_add(*b))
}

/// The exported names, one a line: the single list the build scripts (`--export-dynamic-symbol`)
/// and the tests read.
pub const EXPORTED: &str = include_str!("../../exported-symbols.txt");

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::interval::Interval;

    #[test]
    fn c_allocations_are_aligned_sized_and_in_the_arena() {
        let (lo, hi) = arena::reservation().unwrap_or_else(|| {
            drop(Box::new(1u8));
            arena::reservation().expect("arena made by the first allocation")
        });
        let in_arena = move |p: *mut c_void| (p as usize) >= lo && (p as usize) < hi;
        let workers: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut live = Vec::new();
                    for i in 0..2000usize {
                        let size = (i * 37 + t * 11) % 5000 + if i % 97 == 0 { 3 << 20 } else { 0 };
                        let p = malloc(size);
                        assert!(in_arena(p), "malloc({size}) outside the arena");
                        assert_eq!(p as usize % MIN_ALIGN, 0);
                        // SAFETY: p is a live block of at least `size` bytes.
                        unsafe {
                            assert!(malloc_usable_size(p) >= size);
                            std::ptr::write_bytes(p.cast::<u8>(), 0xa5, size);
                        }
                        live.push(p);
                        if i % 3 == 0 {
                            let q = live.swap_remove(i % live.len());
                            // SAFETY: q is a live block from malloc/realloc.
                            let r = unsafe { realloc(q, size / 2 + 1) };
                            assert!(in_arena(r));
                            live.push(r);
                        }
                        if i % 2 == 0 {
                            let q = live.swap_remove(0);
                            // SAFETY: q is a live block.
                            unsafe { free(q) };
                        }
                    }
                    for p in live {
                        // SAFETY: every pointer left is live.
                        unsafe { free(p) };
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        for align in [32usize, 64, 4096, 1 << 16] {
            let p = memalign(align, 100);
            assert_eq!(p as usize % align, 0, "memalign({align})");
            // SAFETY: p is live.
            unsafe { free(p) };
            let mut out = std::ptr::null_mut();
            // SAFETY: out is a valid out-pointer.
            assert_eq!(unsafe { posix_memalign(&mut out, align, 10) }, 0);
            assert_eq!(out as usize % align, 0);
            // SAFETY: out is live.
            unsafe { free(out) };
        }
        let mut out = std::ptr::null_mut();
        // SAFETY: out is a valid out-pointer.
        assert_eq!(unsafe { posix_memalign(&mut out, 24, 10) }, libc::EINVAL);
        // black_box: LLVM knows `calloc` by name and may fold a null check of a fresh block.
        assert!(std::hint::black_box(calloc(std::hint::black_box(usize::MAX), 2)).is_null());
        let z = calloc(1000, 8).cast::<u8>();
        // SAFETY: z is a live zeroed block of 8000 bytes.
        let zeroed = unsafe { std::slice::from_raw_parts(z, 8000) };
        assert!(zeroed.iter().all(|b| *b == 0));
        // SAFETY: z is live; realloc(p, 0) frees it.
        let gone = unsafe { realloc(z.cast(), std::hint::black_box(0)) };
        assert!(std::hint::black_box(gone).is_null());
        assert_eq!(pvalloc(1) as usize % 4096, 0);
    }

    #[test]
    fn the_mmap_export_records_and_forgets() {
        let len = 3 * 4096;
        // SAFETY: a fresh anonymous mapping without MAP_FIXED.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let iv = Interval::new(p as u64, p as u64 + len as u64);
        assert!(lower::intervals().covers(&iv));
        // SAFETY: growing our own mapping, letting it move.
        let q = unsafe { mremap(p, len, 2 * len, libc::MREMAP_MAYMOVE, std::ptr::null_mut()) };
        assert_ne!(q, libc::MAP_FAILED);
        let iv2 = Interval::new(q as u64, q as u64 + 2 * len as u64);
        assert!(lower::intervals().covers(&iv2));
        // SAFETY: unmapping our own mapping.
        assert_eq!(unsafe { munmap(q, 2 * len) }, 0);
        assert!(!crate::lower::tests_support::mapped_covers(&iv2));
    }
}
