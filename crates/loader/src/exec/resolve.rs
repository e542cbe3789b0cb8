//! Finding the program as a shell and the kernel would: `PATH` lookup, `#!` scripts, and the
//! ELF checks `execve` makes, so a launch fails here, with a shell's message and exit status,
//! before anything is mapped.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crac_core::elf::{self, Elf, ElfError};

use super::{Loadable, Target};
use crate::ResolveError;

/// The kernel reads this many bytes of a file to find `#!` (`BINPRM_BUF_SIZE`).
const SHEBANG_BUF: usize = 256;
/// Nested `#!` levels allowed (the kernel gives up after 4 rewrites).
const MAX_SHEBANG_DEPTH: usize = 4;
/// Search path when `PATH` is unset (glibc's `execvp` default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// A parsed `#!` line: the interpreter and its optional single argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    /// The interpreter path, as written.
    pub interp: Vec<u8>,
    /// Everything after it on the line (trimmed), as one argument.
    pub arg: Option<Vec<u8>>,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses the first bytes of a file the way the kernel's `binfmt_script` does. `Ok(None)`: no
/// `#!`; `Err(())`: a `#!` line the kernel rejects (no interpreter, or its name truncated).
#[allow(clippy::result_unit_err)]
pub fn parse_shebang(buf: &[u8]) -> Result<Option<Shebang>, ()> {
    let Some(rest) = buf.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let buf = &buf[..buf.len().min(SHEBANG_BUF)];
    let rest = &rest[..buf.len().saturating_sub(2)];
    let has_newline = rest.contains(&b'\n');
    let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
    let start = line
        .iter()
        .position(|b| !is_blank(*b))
        .unwrap_or(line.len());
    let raw = &line[start..];
    if !has_newline && !raw.iter().any(|b| is_blank(*b) || *b == 0) {
        // The line ran past the buffer without ending the interpreter's name.
        return Err(());
    }
    let end = raw.iter().rposition(|b| !is_blank(*b)).map_or(0, |i| i + 1);
    let line = &raw[..end];
    let name_end = line
        .iter()
        .position(|b| is_blank(*b) || *b == 0)
        .unwrap_or(line.len());
    if name_end == 0 {
        return Err(());
    }
    let interp = line[..name_end].to_vec();
    let after = &line[name_end..];
    let arg_start = after
        .iter()
        .position(|b| !is_blank(*b))
        .unwrap_or(after.len());
    let arg = &after[arg_start..];
    let arg = &arg[..arg.iter().position(|b| *b == 0).unwrap_or(arg.len())];
    let arg = (!arg.is_empty() && after.first().is_none_or(|b| *b != 0)).then(|| arg.to_vec());
    Ok(Some(Shebang { interp, arg }))
}

/// What a `PATH` candidate turned out to be.
enum Probe {
    Runnable,
    NotExecutable,
    Missing,
}

fn probe(path: &Path) -> Probe {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Probe::Runnable,
        Ok(m) if m.is_file() => Probe::NotExecutable,
        _ => Probe::Missing,
    }
}

/// Looks `name` up like a shell: names with '/' are used as given; otherwise each `PATH`
/// directory in order (an empty entry is the current directory).
pub fn lookup(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, ResolveError> {
    let shown = name.to_string_lossy().into_owned();
    if name.is_empty() {
        return Err(ResolveError::NotFound { name: shown });
    }
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut denied = false;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(name);
        match probe(&candidate) {
            Probe::Runnable => return Ok(candidate),
            Probe::NotExecutable => denied = true,
            Probe::Missing => {}
        }
    }
    if denied {
        Err(ResolveError::NotExecutable { name: shown })
    } else {
        Err(ResolveError::CommandNotFound { name: shown })
    }
}

fn io_err(name: &str, e: io::Error) -> ResolveError {
    match e.kind() {
        io::ErrorKind::NotFound => ResolveError::NotFound {
            name: name.to_owned(),
        },
        io::ErrorKind::PermissionDenied => ResolveError::NotExecutable {
            name: name.to_owned(),
        },
        _ => ResolveError::Io {
            name: name.to_owned(),
            source: e,
        },
    }
}

/// Opens `path` for running: must exist, be a regular file and have an execute bit.
fn open_runnable(path: &Path, name: &str) -> Result<(File, Vec<u8>), ResolveError> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(name, e))?;
    if meta.is_dir() {
        return Err(ResolveError::IsDirectory {
            name: name.to_owned(),
        });
    }
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ResolveError::NotExecutable {
            name: name.to_owned(),
        });
    }
    let file = File::open(path).map_err(|e| io_err(name, e))?;
    let mut head = vec![0u8; SHEBANG_BUF];
    let n = read_full_at(&file, &mut head, 0).map_err(|e| io_err(name, e))?;
    head.truncate(n);
    Ok((file, head))
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads the header and program header table of an opened ELF file.
pub(crate) fn read_elf(file: &File, head: &[u8]) -> Result<Elf, ElfError> {
    let header = elf::parse_header(head)?;
    let (off, len) = header.phdr_table();
    let mut table = vec![0u8; len];
    let n =
        read_full_at(file, &mut table, off).map_err(|_| ElfError::BadPhdrTable("unreadable"))?;
    let available = off.saturating_add(n as u64);
    if n < len {
        return Err(ElfError::Truncated {
            what: "program header table",
            needed: off.saturating_add(len as u64),
            available,
        });
    }
    let elf = Elf::from_parts(header, elf::parse_program_headers(&table, &header)?)?;
    // Every byte mapped from the file must exist: a segment past the end would be mapped
    // anyway and the program would die of SIGBUS on first touch, far from the cause.
    let len = file
        .metadata()
        .map_err(|_| ElfError::BadPhdrTable("unreadable"))?
        .len();
    elf.check_file(len)?;
    Ok(elf)
}

/// Reads the `PT_INTERP` path of `elf`, if it has one.
fn interp_of(file: &File, elf: &Elf) -> Result<Option<PathBuf>, ElfError> {
    let Some(ph) = elf.interp() else {
        return Ok(None);
    };
    if ph.filesz > elf::MAX_INTERP_LEN || ph.filesz < 2 {
        return Err(ElfError::BadInterp("path length out of range"));
    }
    let mut buf = vec![0u8; usize::try_from(ph.filesz).unwrap_or(0)];
    let n =
        read_full_at(file, &mut buf, ph.offset).map_err(|_| ElfError::BadInterp("unreadable"))?;
    if n < buf.len() {
        return Err(ElfError::BadInterp("past the end of the file"));
    }
    let path = elf::interp_path(&buf)?;
    Ok(Some(PathBuf::from(OsStr::from_bytes(path))))
}

/// Checks the interpreter named by `PT_INTERP` and opens it.
fn load_interp(path: PathBuf, name: &str) -> Result<Loadable, ResolveError> {
    let bad = |problem: String| ResolveError::BadInterpreter {
        name: name.to_owned(),
        interp: path.display().to_string(),
        problem,
    };
    let file = File::open(&path).map_err(|e| bad(e.to_string().to_lowercase()))?;
    let mut head = vec![0u8; elf::EHDR_SIZE];
    let n = read_full_at(&file, &mut head, 0).map_err(|e| bad(e.to_string()))?;
    head.truncate(n);
    let elf = read_elf(&file, &head).map_err(|e| bad(e.to_string()))?;
    if elf.interp().is_some() {
        return Err(bad("the interpreter itself asks for an interpreter".into()));
    }
    Ok(Loadable { path, file, elf })
}

/// `PATH` lookup like a shell (names with '/' are used as given), `#!` handled as the kernel
/// does (interpreter + optional single arg + script path, recursion limit), ELF checks
/// (64-bit little-endian x86-64 ET_EXEC/ET_DYN, PT_INTERP present and loadable).
/// `argv[0]` stays what the user typed; `args` are the arguments after it.
pub fn resolve(program: &OsStr, args: &[OsString]) -> Result<Target, ResolveError> {
    let path_var = std::env::var_os("PATH");
    let path = lookup(program, path_var.as_deref())?;
    let name = program.to_string_lossy().into_owned();
    let mut argv: Vec<OsString> = std::iter::once(program.to_owned())
        .chain(args.iter().cloned())
        .collect();
    let execfn = path.clone().into_os_string();
    let comm = Path::new(&execfn)
        .file_name()
        .map(OsStr::to_owned)
        .unwrap_or_default();
    let mut current = path;
    let mut shown = name.clone();
    for _ in 0..=MAX_SHEBANG_DEPTH {
        let (file, head) = open_runnable(&current, &shown)?;
        if let Some(sb) = parse_shebang(&head).map_err(|()| ResolveError::BadShebangLine {
            name: shown.clone(),
        })? {
            let interp = PathBuf::from(OsString::from_vec(sb.interp));
            // The kernel replaces argv[0] with the interpreter, its argument, and the script path.
            let mut next = vec![interp.clone().into_os_string()];
            next.extend(sb.arg.map(OsString::from_vec));
            next.push(current.into_os_string());
            next.extend(argv.into_iter().skip(1));
            argv = next;
            if let Probe::Missing = probe(&interp) {
                let problem = if interp.exists() {
                    "not a regular file"
                } else {
                    "no such file or directory"
                };
                return Err(ResolveError::BadShebang {
                    name: shown,
                    interp: interp.display().to_string(),
                    problem: problem.into(),
                });
            }
            shown = interp.display().to_string();
            current = interp;
            continue;
        }
        if !elf::has_elf_magic(&head) {
            return Err(ResolveError::ExecFormat { name: shown });
        }
        let elf = read_elf(&file, &head).map_err(|source| ResolveError::BadElf {
            name: shown.clone(),
            source,
        })?;
        if elf.phdr_vaddr().is_none() {
            return Err(ResolveError::BadElf {
                name: shown,
                source: ElfError::BadPhdrTable("not inside a loaded segment"),
            });
        }
        let interp = interp_of(&file, &elf)
            .map_err(|source| ResolveError::BadElf {
                name: shown.clone(),
                source,
            })?
            .map(|p| load_interp(p, &shown))
            .transpose()?;
        return Ok(Target {
            program: Loadable {
                path: current,
                file,
                elf,
            },
            interp,
            argv,
            execfn,
            comm,
        });
    }
    Err(ResolveError::ShebangLoop { name })
}

#[cfg(test)]
mod tests;
