//! Mapping the program's ELF images and its stack, as the kernel's `binfmt_elf` does. These
//! mappings belong to the upper half: they go through raw system calls, never the recording
//! `mmap` export.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crac_core::elf::{Elf, ElfType, PAGE_SIZE, PF_R, PF_W, PF_X};

use super::{PAGE, mmap_anon, mmap_raw, mprotect, munmap_raw, page_down, page_up, zero_at};
use crate::LoadError;

fn prot_of(flags: u32) -> i32 {
    let mut prot = libc::PROT_NONE;
    if flags & PF_R != 0 {
        prot |= libc::PROT_READ;
    }
    if flags & PF_W != 0 {
        prot |= libc::PROT_WRITE;
    }
    if flags & PF_X != 0 {
        prot |= libc::PROT_EXEC;
    }
    prot
}

fn to_usize(v: u64) -> io::Result<usize> {
    usize::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// Reserves the image's span: at its own addresses for ET_EXEC (failing if taken), anywhere
/// for ET_DYN (aligned to the largest segment alignment). Returns the load bias.
fn reserve(elf: &Elf, path: &Path) -> Result<u64, LoadError> {
    let (lo, hi) = elf.span();
    let len = to_usize(hi - lo).map_err(|source| map_err("the address span", path, source))?;
    let noreserve = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    if elf.header.kind == ElfType::Exec {
        let flags = noreserve | libc::MAP_FIXED_NOREPLACE;
        let start = to_usize(lo).map_err(|source| map_err("the address span", path, source))?;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        return match unsafe { mmap_raw(start, len, libc::PROT_NONE, flags, -1, 0) } {
            Ok(got) if got == start => Ok(0),
            Ok(got) => {
                // SAFETY: the mapping just made at the wrong place is ours and unused.
                let _ = unsafe { munmap_raw(got, len) };
                Err(LoadError::AddressInUse {
                    path: path.into(),
                    start: lo,
                    end: hi,
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Err(LoadError::AddressInUse {
                path: path.into(),
                start: lo,
                end: hi,
            }),
            Err(source) => Err(map_err("the address span", path, source)),
        };
    }
    let align = elf
        .loads()
        .map(|p| p.align)
        .max()
        .unwrap_or(PAGE_SIZE)
        .clamp(PAGE_SIZE, 1 << 30);
    let align = to_usize(align).map_err(|source| map_err("the address span", path, source))?;
    let total = len + align - PAGE;
    let got = mmap_anon(total, libc::PROT_NONE, libc::MAP_NORESERVE)
        .map_err(|source| map_err("the address span", path, source))?;
    let start = got.next_multiple_of(align);
    // SAFETY: the head and tail trimmed off are parts of the reservation just made, unused.
    unsafe {
        if start > got {
            let _ = munmap_raw(got, start - got);
        }
        if got + total > start + len {
            let _ = munmap_raw(start + len, got + total - start - len);
        }
    }
    Ok((start as u64).wrapping_sub(lo))
}

fn map_err(what: &'static str, path: &Path, source: io::Error) -> LoadError {
    LoadError::Map {
        what,
        path: path.into(),
        source,
    }
}

/// Maps every `PT_LOAD` segment of `elf` from `file`; returns the load bias (0 for ET_EXEC).
/// Like the kernel: file pages `MAP_PRIVATE`, the tail of the last file page zeroed, anonymous
/// pages for the rest of the bss, and the holes between segments unmapped.
pub(crate) fn map_image(file: &File, elf: &Elf, path: &Path) -> Result<u64, LoadError> {
    let bias = reserve(elf, path)?;
    let fd = file.as_raw_fd();
    let fail = |source| map_err("a segment", path, source);
    let mut prev_end: Option<u64> = None;
    for ph in elf.loads() {
        let prot = prot_of(ph.flags);
        let seg = bias.wrapping_add(ph.vaddr);
        let map_start = page_down(seg);
        let file_end = seg + ph.filesz;
        let mem_end = seg + ph.memsz;
        let partial = ph.memsz > ph.filesz && file_end % PAGE_SIZE != 0 && ph.filesz > 0;
        if ph.filesz > 0 {
            let len = to_usize(page_up(file_end) - map_start).map_err(fail)?;
            let extra = if partial { libc::PROT_WRITE } else { 0 };
            let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
            // SAFETY: the range is inside the span reserved above for this image.
            unsafe {
                mmap_raw(
                    to_usize(map_start).map_err(fail)?,
                    len,
                    prot | extra,
                    flags,
                    fd,
                    page_down(ph.offset),
                )
            }
            .map_err(fail)?;
            if partial {
                let zero_len = page_up(file_end) - file_end;
                // SAFETY: the page was just mapped writable and private; the bytes past the
                // segment's file part are bss and must read as zero.
                unsafe {
                    zero_at(
                        to_usize(file_end).map_err(fail)?,
                        to_usize(zero_len).map_err(fail)?,
                    )
                };
                if extra != 0 && prot & libc::PROT_WRITE == 0 {
                    // SAFETY: back to the segment's own protection; nothing runs there yet.
                    unsafe { mprotect(to_usize(map_start).map_err(fail)?, len, prot) }
                        .map_err(fail)?;
                }
            }
        }
        let anon_start = if ph.filesz > 0 {
            page_up(file_end)
        } else {
            map_start
        };
        let anon_end = page_up(mem_end);
        if anon_end > anon_start {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
            let len = to_usize(anon_end - anon_start).map_err(fail)?;
            // SAFETY: the range is inside the span reserved above for this image.
            unsafe { mmap_raw(to_usize(anon_start).map_err(fail)?, len, prot, flags, -1, 0) }
                .map_err(fail)?;
        }
        if let Some(prev) = prev_end.filter(|p| *p < map_start) {
            // SAFETY: a hole of our own reservation between two segments.
            let _ = unsafe {
                munmap_raw(
                    to_usize(prev).map_err(fail)?,
                    to_usize(map_start - prev).map_err(fail)?,
                )
            };
        }
        prev_end = Some(prev_end.map_or(anon_end, |p| p.max(anon_end)));
    }
    Ok(bias)
}

/// Maps a fresh stack of `size` bytes plus a PROT_NONE guard page below it; returns its top.
pub(crate) fn map_stack(size: usize, exec: bool, path: &Path) -> Result<u64, LoadError> {
    let mut prot = libc::PROT_READ | libc::PROT_WRITE;
    if exec {
        prot |= libc::PROT_EXEC;
    }
    let fail = |source| map_err("the stack", path, source);
    let low = mmap_anon(size + PAGE, prot, libc::MAP_NORESERVE | libc::MAP_STACK).map_err(fail)?;
    // SAFETY: the lowest page of the stack mapping just made becomes its guard; nothing uses it.
    unsafe { mprotect(low, PAGE, libc::PROT_NONE) }.map_err(fail)?;
    Ok((low + PAGE + size) as u64)
}

/// Copies the stack image to `sp` in the stack mapped by [`map_stack`].
pub(crate) fn write_stack(sp: u64, bytes: &[u8]) -> io::Result<()> {
    let sp = to_usize(sp)?;
    // SAFETY: `sp..sp+len` is the top of the stack mapping made by map_stack (the caller built
    // the image for that top), writable and used by nothing yet.
    unsafe { super::write_at(sp, bytes) };
    Ok(())
}

/// crac's own auxiliary vector, as the kernel gave it.
pub(crate) fn own_auxv() -> io::Result<Vec<(u64, u64)>> {
    let raw = std::fs::read("/proc/self/auxv")?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let mut k = [0u8; 8];
            let mut v = [0u8; 8];
            k.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            (u64::from_le_bytes(k), u64::from_le_bytes(v))
        })
        .collect())
}

/// The `AT_PLATFORM` string of crac's own auxv.
pub(crate) fn platform() -> Option<Vec<u8>> {
    // SAFETY: getauxval has no preconditions.
    let p = unsafe { libc::getauxval(libc::AT_PLATFORM) };
    if p == 0 {
        return None;
    }
    // SAFETY: the kernel put a NUL-terminated string there, on crac's original stack, which
    // stays mapped for the life of the process.
    Some(
        unsafe { std::ffi::CStr::from_ptr(p as *const libc::c_char) }
            .to_bytes()
            .to_vec(),
    )
}

/// 16 fresh random bytes for `AT_RANDOM`.
pub(crate) fn random16() -> io::Result<[u8; 16]> {
    let mut buf = [0u8; 16];
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most the given length into a valid buffer.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            done += n.unsigned_abs();
        }
    }
    Ok(buf)
}

/// Restores the personality crac was started with (ASLR for the program's own children).
pub(crate) fn restore_personality(p: u32) {
    let _ = super::personality(Some(p));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_core::interval::Interval;

    #[test]
    fn program_images_are_mapped_like_the_kernel_and_never_lower() {
        // The start-up snapshot must precede the program's mappings, as in crac_launch.
        crate::startup::init_lower_half().expect("init");
        let path = Path::new("/bin/true");
        let file = File::open(path).expect("open /bin/true");
        let bytes = std::fs::read(path).expect("read");
        let elf = Elf::parse(&bytes).expect("parse");
        let bias = map_image(&file, &elf, path).expect("map");
        let (lo, hi) = elf.span();
        let span = Interval::new(bias + lo, bias + hi);
        assert!(
            crate::lower::intervals().intersect(&span).is_empty(),
            "program image counted as lower"
        );
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let entries = crac_core::procfs::parse_maps(&maps).expect("parse maps");
        for ph in elf.loads() {
            let start = page_down(bias + ph.vaddr);
            let e = entries
                .iter()
                .find(|e| e.range.contains(start))
                .expect("segment mapped");
            assert_eq!(e.perms.read, ph.flags & PF_R != 0);
            assert_eq!(e.perms.write, ph.flags & PF_W != 0);
            assert_eq!(e.perms.exec, ph.flags & PF_X != 0);
            if ph.filesz > 0 {
                assert!(
                    e.path.ends_with("true"),
                    "{} maps {}",
                    e.path,
                    path.display()
                );
                let at = usize::try_from(bias + ph.vaddr).expect("address");
                let off = usize::try_from(ph.offset).expect("offset");
                // SAFETY: the first byte of the segment was just mapped readable from the file.
                let first = unsafe { *(at as *const u8) };
                assert_eq!(first, bytes[off], "segment content");
            }
            if ph.memsz > ph.filesz && ph.flags & PF_W != 0 {
                let end = usize::try_from(bias + ph.vaddr + ph.memsz).expect("address");
                // SAFETY: the last bss byte is mapped (zeroed anonymous or zeroed file tail).
                assert_eq!(unsafe { *((end - 1) as *const u8) }, 0, "bss zeroed");
            }
        }
        let top = map_stack(1 << 20, false, path).expect("stack");
        assert!(
            !crate::lower::intervals().contains(top - 8),
            "program stack counted as lower"
        );
    }
}
