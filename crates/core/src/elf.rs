//! Reading ELF headers from bytes: what the loader needs to map a program and its interpreter.
//!
//! Only 64-bit little-endian x86-64 files are accepted (that is the one architecture crac runs
//! on). Every offset and length read from the file is checked against the bytes given before it
//! is used, and every sum is checked for overflow, so any input gives `Ok` or an `Err` naming
//! the problem, never a panic (the proptest cases at the end feed random and mutated headers).
//!
//! The loader reads a file in two steps, so the reader has two entry points: [`parse_header`]
//! over the first [`EHDR_SIZE`] bytes, then [`parse_program_headers`] over the bytes of the
//! table at [`ElfHeader::phdr_table`]. [`Elf::parse`] does both over a whole file in memory.

pub mod links;
pub mod notes;

use thiserror::Error;

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
pub const PHDR_SIZE: usize = 56;
/// Most program headers accepted (the kernel's limit is 64 KiB of table; real files have < 20).
pub const MAX_PHNUM: u16 = 1024;
/// Longest `PT_INTERP` path accepted (the kernel's `PATH_MAX`).
pub const MAX_INTERP_LEN: u64 = 4096;
/// The page size segments are aligned to.
pub const PAGE_SIZE: u64 = 4096;

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type` of the interpreter path.
pub const PT_INTERP: u32 = 3;
/// `p_type` of the program header table itself.
pub const PT_PHDR: u32 = 6;
/// `p_type` of the stack flags segment.
pub const PT_GNU_STACK: u32 = 0x6474_e551;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;

/// Why bytes are not an ELF file crac can load.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Fewer bytes than the structure being read.
    #[error("file is truncated: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes it needs (from its start in the file).
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The first four bytes are not `\x7fELF`.
    #[error("not an ELF file (bad magic)")]
    BadMagic,
    /// `EI_CLASS` is not ELFCLASS64.
    #[error("32-bit ELF file; crac runs 64-bit x86-64 programs only")]
    Not64Bit,
    /// `EI_DATA` is not little-endian.
    #[error("big-endian ELF file; crac runs little-endian x86-64 programs only")]
    BigEndian,
    /// `EI_CLASS`/`EI_DATA`/`EI_VERSION` hold values no ELF file has.
    #[error("corrupt ELF identification bytes")]
    BadIdent,
    /// `e_machine` is not x86-64.
    #[error("x86-64 needed, found {found}")]
    WrongMachine {
        /// A name for the architecture found.
        found: String,
    },
    /// `e_type` is neither ET_EXEC nor ET_DYN.
    #[error("not an executable (ELF type {0}: {name})", name = type_name(*.0))]
    NotExecutable(u16),
    /// The program header table is missing, empty, too big, or has a wrong entry size.
    #[error("bad program header table: {0}")]
    BadPhdrTable(&'static str),
    /// A program header holds inconsistent values.
    #[error("bad program header {index}: {problem}")]
    BadSegment {
        /// Index in the table.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// There is no `PT_LOAD` segment.
    #[error("no loadable segment")]
    NoLoad,
    /// The `PT_INTERP` path is not a NUL-terminated string.
    #[error("bad interpreter path: {0}")]
    BadInterp(&'static str),
    /// A segment's bytes lie (partly) past the end of the file: mapping it would give the
    /// program SIGBUS instead of its data.
    #[error(
        "program header {index}: {what} needs file bytes up to offset {end}, but the file has \
         only {len} bytes (truncated or corrupt file; rebuild or copy it again)"
    )]
    PastEndOfFile {
        /// Index in the table.
        index: usize,
        /// Which segment kind.
        what: &'static str,
        /// First byte past the segment's file range.
        end: u64,
        /// The file's length.
        len: u64,
    },
}

fn type_name(t: u16) -> &'static str {
    match t {
        0 => "none",
        1 => "relocatable object",
        4 => "core dump",
        _ => "unknown",
    }
}

/// A readable name for an `e_machine` value.
pub fn machine_name(machine: u16) -> String {
    match machine {
        3 => "i386".into(),
        8 => "mips".into(),
        20 => "ppc".into(),
        21 => "ppc64".into(),
        22 => "s390".into(),
        40 => "arm".into(),
        43 => "sparcv9".into(),
        62 => "x86-64".into(),
        183 => "aarch64".into(),
        190 => "cuda".into(),
        243 => "riscv".into(),
        258 => "loongarch".into(),
        other => format!("machine {other}"),
    }
}

/// The kind of ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfType {
    /// `ET_EXEC`: a position-dependent executable, loaded at its own addresses.
    Exec,
    /// `ET_DYN`: a PIE or shared object (ld.so), loaded at a chosen base.
    Dyn,
}

/// The fields of the ELF64 file header the loader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfHeader {
    /// `e_type`.
    pub kind: ElfType,
    /// `e_entry`: the entry point (relative to the load base for ET_DYN).
    pub entry: u64,
    /// `e_phoff`: file offset of the program header table.
    pub phoff: u64,
    /// `e_phnum`: number of program headers.
    pub phnum: u16,
}

impl ElfHeader {
    /// File offset and byte length of the program header table.
    pub fn phdr_table(&self) -> (u64, usize) {
        (self.phoff, usize::from(self.phnum) * PHDR_SIZE)
    }
}

/// One ELF64 program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags` (`PF_R`/`PF_W`/`PF_X`).
    pub flags: u32,
    /// `p_offset`: where the segment's bytes start in the file.
    pub offset: u64,
    /// `p_vaddr`: where it goes in memory (relative to the base for ET_DYN).
    pub vaddr: u64,
    /// `p_filesz`: bytes taken from the file.
    pub filesz: u64,
    /// `p_memsz`: bytes in memory (the rest is zero: bss).
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

fn need(bytes: &[u8], what: &'static str, start: u64, len: u64) -> Result<(), ElfError> {
    let available = bytes.len() as u64;
    let needed = start.checked_add(len).ok_or(ElfError::Truncated {
        what,
        needed: u64::MAX,
        available,
    })?;
    if needed > available {
        return Err(ElfError::Truncated {
            what,
            needed,
            available,
        });
    }
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Whether `bytes` start with the ELF magic (used by the `#!` check before a full parse).
pub fn has_elf_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Reads and checks the file header from the first bytes of a file.
pub fn parse_header(bytes: &[u8]) -> Result<ElfHeader, ElfError> {
    if bytes.len() < 4 || !has_elf_magic(bytes) {
        return Err(ElfError::BadMagic);
    }
    need(bytes, "ELF header", 0, EHDR_SIZE as u64)?;
    match bytes[4] {
        2 => {}
        1 => return Err(ElfError::Not64Bit),
        _ => return Err(ElfError::BadIdent),
    }
    match bytes[5] {
        1 => {}
        2 => return Err(ElfError::BigEndian),
        _ => return Err(ElfError::BadIdent),
    }
    if bytes[6] != 1 {
        return Err(ElfError::BadIdent);
    }
    let kind = match u16_at(bytes, 16) {
        2 => ElfType::Exec,
        3 => ElfType::Dyn,
        other => return Err(ElfError::NotExecutable(other)),
    };
    let machine = u16_at(bytes, 18);
    if machine != EM_X86_64 {
        return Err(ElfError::WrongMachine {
            found: machine_name(machine),
        });
    }
    let entry = u64_at(bytes, 24);
    let phoff = u64_at(bytes, 32);
    let ehsize = u16_at(bytes, 52);
    let phentsize = u16_at(bytes, 54);
    let phnum = u16_at(bytes, 56);
    if usize::from(ehsize) < EHDR_SIZE {
        return Err(ElfError::BadPhdrTable("header size field too small"));
    }
    if phnum == 0 || phoff == 0 {
        return Err(ElfError::BadPhdrTable("no program headers"));
    }
    if phnum > MAX_PHNUM {
        return Err(ElfError::BadPhdrTable("too many program headers"));
    }
    if usize::from(phentsize) != PHDR_SIZE {
        return Err(ElfError::BadPhdrTable("entry size is not 56"));
    }
    if phoff
        .checked_add(u64::from(phnum) * PHDR_SIZE as u64)
        .is_none()
    {
        return Err(ElfError::BadPhdrTable("table offset overflows"));
    }
    Ok(ElfHeader {
        kind,
        entry,
        phoff,
        phnum,
    })
}

/// Reads the program header table from exactly the bytes at [`ElfHeader::phdr_table`].
pub fn parse_program_headers(
    table: &[u8],
    header: &ElfHeader,
) -> Result<Vec<ProgramHeader>, ElfError> {
    let (_, len) = header.phdr_table();
    need(table, "program header table", 0, len as u64)?;
    let mut out = Vec::with_capacity(usize::from(header.phnum));
    for (index, raw) in table[..len].chunks_exact(PHDR_SIZE).enumerate() {
        let ph = ProgramHeader {
            kind: u32_at(raw, 0),
            flags: u32_at(raw, 4),
            offset: u64_at(raw, 8),
            vaddr: u64_at(raw, 16),
            filesz: u64_at(raw, 32),
            memsz: u64_at(raw, 40),
            align: u64_at(raw, 48),
        };
        if ph.kind == PT_LOAD {
            check_load(index, &ph)?;
        }
        if ph.offset.checked_add(ph.filesz).is_none() {
            return Err(ElfError::BadSegment {
                index,
                problem: "file range overflows",
            });
        }
        out.push(ph);
    }
    Ok(out)
}

/// Largest `p_align` accepted (huge-page aligned segments use 2 MiB; nothing real asks more).
const MAX_ALIGN: u64 = 1 << 30;

/// Highest user address on x86-64 with 4-level paging; no segment may reach past it.
const USER_TOP: u64 = 0x7fff_ffff_f000;

fn check_load(index: usize, ph: &ProgramHeader) -> Result<(), ElfError> {
    let bad = |problem| Err(ElfError::BadSegment { index, problem });
    if ph.filesz > ph.memsz {
        return bad("file size larger than memory size");
    }
    if ph.vaddr % PAGE_SIZE != ph.offset % PAGE_SIZE {
        return bad("address and file offset differ modulo the page size");
    }
    match ph.vaddr.checked_add(ph.memsz) {
        Some(end) if end <= USER_TOP => {}
        _ => return bad("segment ends past the user address space"),
    }
    if ph.align != 0 && !ph.align.is_power_of_two() {
        return bad("alignment is not a power of two");
    }
    if ph.align > MAX_ALIGN {
        return bad("alignment is larger than 1 GiB");
    }
    // What ld.so demands of every object it maps: address and offset agree modulo p_align.
    if ph.align > PAGE_SIZE && ph.vaddr.wrapping_sub(ph.offset) % ph.align != 0 {
        return bad("address and file offset differ modulo the segment alignment");
    }
    Ok(())
}

/// A parsed header and program header table, with the questions the loader asks of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// The file header.
    pub header: ElfHeader,
    /// The program headers, in file order.
    pub phdrs: Vec<ProgramHeader>,
}

impl Elf {
    /// Parses a whole file (or a prefix holding the header and the table).
    pub fn parse(bytes: &[u8]) -> Result<Self, ElfError> {
        let header = parse_header(bytes)?;
        let (off, len) = header.phdr_table();
        need(bytes, "program header table", off, len as u64)?;
        let start = usize::try_from(off).map_err(|_| ElfError::BadPhdrTable("offset too big"))?;
        let phdrs = parse_program_headers(&bytes[start..start + len], &header)?;
        Self::from_parts(header, phdrs)
    }

    /// Joins a header and its table, checking the load segments as a whole: at least one, in
    /// ascending address order, not overlapping.
    pub fn from_parts(header: ElfHeader, phdrs: Vec<ProgramHeader>) -> Result<Self, ElfError> {
        let mut prev_end = 0u64;
        let mut any = false;
        for (index, ph) in phdrs.iter().enumerate().filter(|(_, p)| p.kind == PT_LOAD) {
            let start = ph.vaddr - ph.vaddr % PAGE_SIZE;
            if any && start < prev_end - prev_end % PAGE_SIZE {
                return Err(ElfError::BadSegment {
                    index,
                    problem: "load segments overlap or are out of address order",
                });
            }
            prev_end = ph.vaddr.saturating_add(ph.memsz);
            any = true;
        }
        if !any {
            return Err(ElfError::NoLoad);
        }
        Ok(Self { header, phdrs })
    }

    /// The `PT_LOAD` segments in address order.
    pub fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|p| p.kind == PT_LOAD)
    }

    /// Page-aligned `[start, end)` of all load segments (relative to the base for ET_DYN).
    pub fn span(&self) -> (u64, u64) {
        let start = self.loads().map(|p| p.vaddr).min().unwrap_or(0);
        let end = self
            .loads()
            .map(|p| p.vaddr.saturating_add(p.memsz))
            .max()
            .unwrap_or(0);
        (
            start - start % PAGE_SIZE,
            end.div_ceil(PAGE_SIZE) * PAGE_SIZE,
        )
    }

    /// The `PT_INTERP` segment, if any (file range of the path).
    pub fn interp(&self) -> Option<&ProgramHeader> {
        self.phdrs.iter().find(|p| p.kind == PT_INTERP)
    }

    /// Whether the stack must be executable (`PT_GNU_STACK` with `PF_X`, or no `PT_GNU_STACK`).
    pub fn exec_stack(&self) -> bool {
        self.phdrs
            .iter()
            .find(|p| p.kind == PT_GNU_STACK)
            .is_none_or(|p| p.flags & PF_X != 0)
    }

    /// Where the program header table is in memory (relative to the base for ET_DYN): the
    /// `PT_PHDR` address, else the load segment whose file range holds the table, as the
    /// kernel computes `AT_PHDR`.
    pub fn phdr_vaddr(&self) -> Option<u64> {
        if let Some(p) = self.phdrs.iter().find(|p| p.kind == PT_PHDR) {
            return Some(p.vaddr);
        }
        self.table_load()
            .map(|p| p.vaddr.saturating_add(self.header.phoff - p.offset))
    }

    /// The load segment whose file bytes hold the whole program header table.
    fn table_load(&self) -> Option<&ProgramHeader> {
        let (off, len) = self.header.phdr_table();
        let end = off.checked_add(len as u64)?;
        self.loads()
            .find(|p| p.offset <= off && p.offset.checked_add(p.filesz).is_some_and(|e| end <= e))
    }

    /// Checks the headers against a file of `file_len` bytes, as must hold before anything is
    /// mapped: every `PT_LOAD`'s file bytes and the `PT_INTERP` path lie inside the file, and
    /// `PT_PHDR` (if present) describes the program header table where a load segment puts it.
    /// (Parsing already checked each load segment's sizes, alignment and address order.)
    pub fn check_file(&self, file_len: u64) -> Result<(), ElfError> {
        let inside = |index, what, ph: &ProgramHeader| {
            let end = ph.offset.saturating_add(ph.filesz);
            if end > file_len {
                return Err(ElfError::PastEndOfFile {
                    index,
                    what,
                    end,
                    len: file_len,
                });
            }
            Ok(())
        };
        for (index, ph) in self.phdrs.iter().enumerate() {
            match ph.kind {
                PT_LOAD if ph.filesz > 0 => inside(index, "loadable segment", ph)?,
                PT_INTERP => {
                    if ph.filesz < 2 || ph.filesz > MAX_INTERP_LEN {
                        return Err(ElfError::BadInterp("path length out of range"));
                    }
                    inside(index, "interpreter path", ph)?;
                }
                _ => {}
            }
        }
        let Some((index, phdr)) = self
            .phdrs
            .iter()
            .enumerate()
            .find(|(_, p)| p.kind == PT_PHDR)
        else {
            return Ok(());
        };
        let bad = |problem| Err(ElfError::BadSegment { index, problem });
        let (off, len) = self.header.phdr_table();
        if phdr.offset != off || phdr.filesz < len as u64 {
            return bad("PT_PHDR does not describe the program header table");
        }
        match self.table_load() {
            Some(load) if load.vaddr.checked_add(off - load.offset) == Some(phdr.vaddr) => Ok(()),
            Some(_) => bad("PT_PHDR address disagrees with the load segment holding the table"),
            None => bad("program header table is not inside a loaded segment"),
        }
    }
}

/// Reads the interpreter path from the bytes of a `PT_INTERP` segment's file range.
pub fn interp_path(bytes: &[u8]) -> Result<&[u8], ElfError> {
    if bytes.len() as u64 > MAX_INTERP_LEN {
        return Err(ElfError::BadInterp("path longer than 4096 bytes"));
    }
    match bytes.split_last() {
        Some((0, path)) if !path.is_empty() && !path.contains(&0) => Ok(path),
        Some((0, _)) => Err(ElfError::BadInterp("empty or holds a NUL byte")),
        _ => Err(ElfError::BadInterp("not NUL-terminated")),
    }
}

#[cfg(test)]
mod tests;
