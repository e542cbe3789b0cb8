//! What an ELF file links against and defines, read from its section headers: the
//! `DT_NEEDED` libraries of its dynamic section, whether its symbol tables (`.symtab`,
//! `.dynsym`) define given names, and its section names. Pure: the caller supplies the bytes
//! through a reader, so large files need not be read whole.
//!
//! `crac_launch --gpu` uses it to tell a program that links the CUDA runtime statically (no
//! `libcudart.so.*` needed, but `cudaLaunchKernel`/`__cudaRegisterFatBinary` defined or an
//! `.nvFatBinSegment` present) from one that loads it dynamically.

use thiserror::Error;

/// Largest section (symbol or string table) read.
const MAX_SECTION: u64 = 512 << 20;
/// Size of one `Elf64_Shdr`.
const SHDR_SIZE: u64 = 64;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

/// Why the link information could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LinksError {
    /// The reader could not give bytes the headers point at.
    #[error(
        "cannot read {what} ({len} bytes at offset {offset}): the file is truncated or corrupt"
    )]
    Read {
        /// The structure.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// A header field is impossible.
    #[error("bad ELF section data: {0}")]
    Bad(&'static str),
}

/// What [`read_links`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// The names asked about that a symbol table defines.
    pub defined: Vec<String>,
    /// Names of all sections.
    pub sections: Vec<String>,
}

#[derive(Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The NUL-terminated string at `at` of a string table (lossy UTF-8); empty if out of range.
fn str_at(table: &[u8], at: u64) -> String {
    let Some(rest) = usize::try_from(at).ok().and_then(|a| table.get(a..)) else {
        return String::new();
    };
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

/// Reads the link information of the ELF file whose bytes `read(offset, len)` returns (exactly
/// `len` bytes, or `None`), reporting which of `wanted` its symbol tables define. A file
/// without section headers (stripped of them) has none of these: empty lists.
pub fn read_links(
    read: &mut dyn FnMut(u64, u64) -> Option<Vec<u8>>,
    wanted: &[&str],
) -> Result<Links, LinksError> {
    let mut get = |what: &'static str, offset: u64, len: u64| {
        if len > MAX_SECTION {
            return Err(LinksError::Bad("a section is larger than 512 MiB"));
        }
        read(offset, len)
            .filter(|b| b.len() as u64 == len)
            .ok_or(LinksError::Read { what, offset, len })
    };
    let ehdr = get("the ELF header", 0, 64)?;
    if &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return Err(LinksError::Bad("not a 64-bit little-endian ELF file"));
    }
    let shoff = u64_at(&ehdr, 0x28);
    let shentsize = u64::from(u16_at(&ehdr, 0x3a));
    let shnum = u64::from(u16_at(&ehdr, 0x3c));
    let shstrndx = usize::from(u16_at(&ehdr, 0x3e));
    if shoff == 0 || shnum == 0 {
        return Ok(Links::default());
    }
    if shentsize != SHDR_SIZE {
        return Err(LinksError::Bad("section header size is not 64"));
    }
    let table = get("the section header table", shoff, shnum * SHDR_SIZE)?;
    let sections: Vec<Section> = table
        .chunks_exact(64)
        .map(|s| Section {
            name: u32_at(s, 0),
            kind: u32_at(s, 4),
            offset: u64_at(s, 0x18),
            size: u64_at(s, 0x20),
            link: u32_at(s, 0x28),
        })
        .collect();
    let mut load = |what: &'static str, s: &Section| get(what, s.offset, s.size);
    let mut links = Links::default();
    if let Some(shstr) = sections.get(shstrndx) {
        let names = load("the section name table", shstr)?;
        links.sections = sections
            .iter()
            .map(|s| str_at(&names, u64::from(s.name)))
            .collect();
    }
    let linked = |s: &Section| {
        usize::try_from(s.link)
            .ok()
            .and_then(|l| sections.get(l))
            .copied()
            .ok_or(LinksError::Bad("a section links to a missing string table"))
    };
    for s in &sections {
        match s.kind {
            SHT_DYNAMIC => {
                let strtab = load("the dynamic string table", &linked(s)?)?;
                let dynamic = load("the dynamic section", s)?;
                for entry in dynamic.chunks_exact(16) {
                    match u64_at(entry, 0) {
                        DT_NULL => break,
                        DT_NEEDED => links.needed.push(str_at(&strtab, u64_at(entry, 8))),
                        _ => {}
                    }
                }
            }
            SHT_SYMTAB | SHT_DYNSYM => {
                let strtab = load("a symbol string table", &linked(s)?)?;
                let symbols = load("a symbol table", s)?;
                for sym in symbols.chunks_exact(24) {
                    // st_shndx 0 (SHN_UNDEF): a reference, not a definition.
                    if u16_at(sym, 6) == 0 {
                        continue;
                    }
                    let name = str_at(&strtab, u64::from(u32_at(sym, 0)));
                    if wanted.contains(&name.as_str()) && !links.defined.contains(&name) {
                        links.defined.push(name);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file(path: &str, wanted: &[&str]) -> Result<Links, LinksError> {
        let bytes = std::fs::read(path).expect("read a system binary");
        read_links(
            &mut |off, len| {
                let (o, l) = (usize::try_from(off).ok()?, usize::try_from(len).ok()?);
                bytes.get(o..o.checked_add(l)?).map(<[u8]>::to_vec)
            },
            wanted,
        )
    }

    #[test]
    fn a_dynamic_program_needs_libc_and_libc_defines_malloc() {
        let ls = from_file("/bin/ls", &["main"]).expect("ls");
        assert!(ls.needed.iter().any(|n| n.starts_with("libc.so")), "{ls:?}");
        assert!(ls.sections.iter().any(|s| s == ".dynamic"));
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("libc.so"))
            .expect("libc in our own maps");
        let links = from_file(libc, &["malloc", "no_such_symbol"]).expect("libc");
        assert_eq!(links.defined, vec!["malloc".to_string()]);
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let bytes = std::fs::read("/bin/ls").expect("ls");
        for cut in [0, 10, 64, 200, bytes.len() / 2] {
            let head = &bytes[..cut];
            let _ = read_links(
                &mut |off, len| {
                    let (o, l) = (usize::try_from(off).ok()?, usize::try_from(len).ok()?);
                    head.get(o..o.checked_add(l)?).map(<[u8]>::to_vec)
                },
                &["main"],
            );
        }
        assert!(matches!(
            read_links(&mut |_, _| None, &[]),
            Err(LinksError::Read { .. })
        ));
    }
}
