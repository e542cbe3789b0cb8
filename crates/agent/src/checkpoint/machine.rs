//! Facts about this crac build and this machine that an image records and a restart compares:
//! the build-id, kernel release, CPU xsave layout, C library and vdso.

use crac_core::image::{Fingerprints, VdsoRecord};
use crac_core::procfs::MapsEntry;

use super::procmem::ProcMem;
use crate::sys;

/// The running crac's build-id (hex), read from its own loaded image.
pub fn build_id() -> String {
    sys::process::own_build_id()
}

/// FNV-1a, 64 bits: a cheap content hash for the vdso's bytes.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the vdso and vvar pages are in `maps`, and the vdso's hash (read through `mem`).
pub fn vdso(maps: &[MapsEntry], mem: &ProcMem) -> VdsoRecord {
    let mut rec = VdsoRecord::default();
    for e in maps {
        match e.path.as_str() {
            "[vdso]" => {
                rec.vdso_start = e.range.start;
                rec.vdso_end = e.range.end;
            }
            "[vvar]" | "[vvar_vclock]" => {
                if rec.vvar_start == 0 || e.range.start < rec.vvar_start {
                    rec.vvar_start = e.range.start;
                }
                rec.vvar_end = rec.vvar_end.max(e.range.end);
            }
            _ => {}
        }
    }
    let len = usize::try_from(rec.vdso_end - rec.vdso_start).unwrap_or(0);
    let mut bytes = vec![0u8; len];
    if len > 0 && mem.read(rec.vdso_start, &mut bytes).is_ok() {
        rec.hash = fnv1a(&bytes);
    }
    rec
}

/// This machine's fingerprints (the vdso from `maps`).
pub fn fingerprints(maps: &[MapsEntry], mem: &ProcMem) -> Fingerprints {
    let (kernel_release, machine) = sys::process::uname().unwrap_or_default();
    Fingerprints {
        kernel_release,
        machine,
        xsave_size: crac_loader::arch::x86_64::xsave_size(),
        xsave_features: crac_loader::arch::x86_64::xcr0(),
        // crac's own glibc: on a system where crac and the program use the system glibc, the
        // program's too (the program's own cannot be called from here).
        libc_version: sys::process::libc_version(),
        vdso: vdso(maps, mem),
        device: None,
    }
}

/// What differs between the fingerprints an image was taken with and this machine's, in words;
/// empty when a restart may go on. The vdso's bytes and size must be the same (its address is
/// checked on its own by the restorer, which names the usual cause of a move); the C library
/// version is informative only (the program's own library is in the image). Sizes from the
/// image are not trusted to be ordered.
pub fn differences(saved: &Fingerprints, now: &Fingerprints) -> Vec<String> {
    let mut out = Vec::new();
    if saved.kernel_release != now.kernel_release {
        out.push(format!(
            "kernel release {} (image) vs {} (here)",
            saved.kernel_release, now.kernel_release
        ));
    }
    if saved.machine != now.machine {
        out.push(format!(
            "machine {} (image) vs {} (here)",
            saved.machine, now.machine
        ));
    }
    if saved.xsave_size != now.xsave_size || saved.xsave_features != now.xsave_features {
        out.push(format!(
            "CPU register state (xsave size {} features {:#x} in the image, {} and {:#x} here)",
            saved.xsave_size, saved.xsave_features, now.xsave_size, now.xsave_features
        ));
    }
    let (a, b) = (&saved.vdso, &now.vdso);
    let size = |start: u64, end: u64| end.wrapping_sub(start);
    if a.hash != b.hash || size(a.vdso_start, a.vdso_end) != size(b.vdso_start, b.vdso_end) {
        out.push("the kernel's vdso differs from the one the image was taken with".into());
    } else if size(a.vvar_start, a.vvar_end) != size(b.vvar_start, b.vvar_end) {
        out.push("the kernel's vvar pages differ in size from the image's".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_binary_has_a_build_id_and_a_vdso() {
        assert!(!build_id().is_empty());
        let maps =
            crac_core::procfs::parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap())
                .unwrap();
        let f = fingerprints(&maps, &ProcMem::open_plain().unwrap());
        assert!(f.vdso.vdso_start > 0 && f.vdso.hash != 0);
        assert!(f.xsave_size >= 512);
        assert!(differences(&f, &f).is_empty());
        let mut other = f.clone();
        other.kernel_release.push('x');
        other.vdso.hash ^= 1;
        assert_eq!(differences(&f, &other).len(), 2);
        let mut moved = f.clone();
        moved.vdso.vdso_start += 0x10000;
        moved.vdso.vdso_end += 0x10000;
        assert!(
            differences(&f, &moved).is_empty(),
            "a moved vdso is the restorer's check"
        );
        let mut inverted = f.clone();
        inverted.vdso.vvar_end = 0;
        assert_eq!(differences(&inverted, &f).len(), 1, "no overflow panic");
    }
}
