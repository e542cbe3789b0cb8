//! The GNU build-id of an ELF file (the `NT_GNU_BUILD_ID` note), which identifies this exact
//! crac build: `crac --version` prints it, and restart will compare it with the image's.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;
use crac_core::elf::notes::{find_build_id, hex};
use crac_core::elf::{self, EHDR_SIZE};

/// `p_type` of a note segment.
const PT_NOTE: u32 = 4;
/// Largest note segment read (build-id notes are a few dozen bytes).
const MAX_NOTES: u64 = 64 * 1024;

/// The build-id of the ELF file at `path`, as lower-case hex, if it has one.
pub fn of_file(path: &Path) -> anyhow::Result<Option<String>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let read = |offset: u64, len: usize| -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    };
    let context = || format!("cannot read the ELF headers of {}", path.display());
    let header =
        elf::parse_header(&read(0, EHDR_SIZE).with_context(context)?).with_context(context)?;
    let (offset, len) = header.phdr_table();
    let phdrs = elf::parse_program_headers(&read(offset, len).with_context(context)?, &header)
        .with_context(context)?;
    for ph in phdrs.iter().filter(|p| p.kind == PT_NOTE) {
        let len = usize::try_from(ph.filesz.min(MAX_NOTES)).unwrap_or(0);
        let notes = read(ph.offset, len).with_context(context)?;
        if let Some(id) = find_build_id(&notes, ph.align) {
            return Ok(Some(hex(id)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_binary() {
        // Debian builds its binaries with build-ids; crac's own test binary has one too when the
        // toolchain's linker adds it, so accept None there but not an error.
        let id = of_file(Path::new("/bin/sh")).unwrap();
        assert!(id.is_some_and(|s| s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit())));
        assert!(of_file(&std::env::current_exe().unwrap()).is_ok());
        assert!(of_file(Path::new("/proc/self/status")).is_err());
    }
}
