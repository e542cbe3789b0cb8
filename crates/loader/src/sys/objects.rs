//! Objects the lower ld.so has loaded (`dl_iterate_phdr`): crac itself, its libraries, and
//! whatever it dlopens later (the real CUDA runtime). The upper half's objects live in another
//! ld.so's list and are never seen here.

use crac_core::interval::Interval;

unsafe extern "C" fn each(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut libc::c_void,
) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info and the `data` we gave, a live Vec.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Interval>>()) };
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers of a loaded object.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    for ph in phdrs.iter().filter(|p| p.p_type == libc::PT_LOAD) {
        let start = info.dlpi_addr.wrapping_add(ph.p_vaddr);
        let end = start.wrapping_add(ph.p_memsz);
        out.push(Interval::new(super::page_down(start), super::page_up(end)));
    }
    0
}

/// Page-rounded load segments of every object the lower ld.so knows now.
pub(crate) fn loaded_segments() -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    // SAFETY: the callback only reads what dl_iterate_phdr hands it and pushes into `out`,
    // which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut out as *mut Vec<Interval>).cast()) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_dlopened_later_is_lower() {
        // ld.so allocates its link map through the exported malloc while it loads this.
        // SAFETY: dlopen of a system library with no constructors that matter here.
        let h = unsafe { libc::dlopen(c"libm.so.6".as_ptr(), libc::RTLD_NOW) };
        assert!(!h.is_null(), "dlopen libm");
        // SAFETY: dlsym on a live handle with a valid name.
        let cos = unsafe { libc::dlsym(h, c"cos".as_ptr()) } as u64;
        assert_ne!(cos, 0);
        assert!(
            crate::lower::intervals().contains(cos),
            "libm's text is lower half"
        );
        assert!(loaded_segments().iter().any(|iv| iv.contains(cos)));
    }
}
