//! Parsers for `/proc` text (`maps`, `comm`): pure functions over the text.
//!
//! Nothing here opens a file: callers read `/proc/<pid>/maps` themselves and hand the text in, so
//! every parser is unit-tested on fixed text and fuzzed on random text.

use serde::{Deserialize, Serialize};

use crate::interval::Interval;

/// Why a `/proc` text could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcfsError {
    /// A `maps` line lacks a field or has one that is not what the kernel writes.
    #[error("line {line} of a maps file is malformed ({what}): {text:?}")]
    MapsLine {
        /// 1-based line number.
        line: usize,
        /// Which field was wrong.
        what: &'static str,
        /// The offending line.
        text: String,
    },
}

/// The four permission characters of a `maps` line (`r-xp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Shared (`s`) rather than private (`p`).
    pub shared: bool,
}

impl Perms {
    /// Parses the four-character field (`rw-p`, `r-xs`, `---p`).
    pub fn parse(field: &str) -> Option<Self> {
        let b = field.as_bytes();
        if b.len() != 4 {
            return None;
        }
        let flag = |c: u8, set: u8| match c {
            x if x == set => Some(true),
            b'-' => Some(false),
            _ => None,
        };
        Some(Self {
            read: flag(b[0], b'r')?,
            write: flag(b[1], b'w')?,
            exec: flag(b[2], b'x')?,
            shared: match b[3] {
                b's' => true,
                b'p' => false,
                _ => return None,
            },
        })
    }
}

impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

/// One line of `/proc/<pid>/maps`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapsEntry {
    /// The addresses the line covers.
    pub range: Interval,
    /// Permissions.
    pub perms: Perms,
    /// Offset into the mapped file (0 for anonymous memory).
    pub offset: u64,
    /// Device as `major:minor`, in hex as the kernel writes it.
    pub dev: (u32, u32),
    /// Inode of the mapped file (0 for anonymous memory).
    pub inode: u64,
    /// The path or pseudo-name (`[heap]`, `[stack]`, `/usr/lib/… (deleted)`); empty if anonymous.
    pub path: String,
}

impl MapsEntry {
    /// Whether this is a kernel-provided region that belongs to neither half and is never saved:
    /// `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]`.
    pub fn is_kernel(&self) -> bool {
        is_kernel_region(&self.path)
    }
}

/// Whether a maps path names a kernel-provided region (`[vdso]`, `[vvar]`, `[vvar_vclock]`,
/// `[vsyscall]`).
pub fn is_kernel_region(path: &str) -> bool {
    matches!(path, "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]")
}

/// Parses the whole text of a `maps` file. Empty lines are skipped.
pub fn parse_maps(text: &str) -> Result<Vec<MapsEntry>, ProcfsError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_maps_line(l, i + 1))
        .collect()
}

/// Parses one `maps` line; `line` is its 1-based number, used in errors.
///
/// The format is `start-end perms offset major:minor inode [path]`; the path starts after the
/// run of spaces that follows the inode and may itself contain spaces.
pub fn parse_maps_line(text: &str, line: usize) -> Result<MapsEntry, ProcfsError> {
    let bad = |what| ProcfsError::MapsLine {
        line,
        what,
        text: text.to_owned(),
    };
    let mut rest = text;
    let mut field = |what| -> Result<&str, ProcfsError> {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        if f.is_empty() { Err(bad(what)) } else { Ok(f) }
    };
    let range = field("address range")?;
    let perms = field("permissions")?;
    let offset = field("offset")?;
    let dev = field("device")?;
    let inode = field("inode")?;
    let path = rest.trim_start_matches(' ');

    let (start, end) = range.split_once('-').ok_or_else(|| bad("address range"))?;
    let start = hex(start).ok_or_else(|| bad("start address"))?;
    let end = hex(end).ok_or_else(|| bad("end address"))?;
    if end < start {
        return Err(bad("address range ends before it starts"));
    }
    let perms = Perms::parse(perms).ok_or_else(|| bad("permissions"))?;
    let offset = hex(offset).ok_or_else(|| bad("offset"))?;
    let (major, minor) = dev.split_once(':').ok_or_else(|| bad("device"))?;
    let major = hex(major)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| bad("device"))?;
    let minor = hex(minor)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| bad("device"))?;
    let inode = inode.parse::<u64>().map_err(|_| bad("inode"))?;
    Ok(MapsEntry {
        range: Interval::new(start, end),
        perms,
        offset,
        dev: (major, minor),
        inode,
        path: path.to_owned(),
    })
}

/// The text of a `comm` file (a thread or process name) without its trailing newline.
pub fn parse_comm(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

fn hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "\
00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon
00e03000-00e24000 rw-p 00000000 00:00 0           [heap]
7ffff7d80000-7ffff7da8000 r-xp 00028000 fe:01 1835041                    /usr/lib/x86_64-linux-gnu/libc.so.6
7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0                          [vvar]
7ffff7fc5000-7ffff7fc7000 r-xp 00000000 00:00 0                          [vdso]
7ffff7fc9000-7ffff7fca000 rw-s 00000000 00:05 42                         /memfd:my file (deleted)
7ffff7fcb000-7ffff7fcc000 ---p 00000000 00:00 0 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn parses_kernel_sample() {
        let m = parse_maps(SAMPLE).unwrap();
        assert_eq!(m.len(), 8);
        assert_eq!(m[0].range, Interval::new(0x400000, 0x452000));
        assert_eq!(m[0].path, "/usr/bin/dbus-daemon");
        assert_eq!(m[0].dev, (8, 2));
        assert_eq!(m[0].inode, 173521);
        assert_eq!(m[2].offset, 0x28000);
        assert_eq!(m[2].perms.to_string(), "r-xp");
        assert_eq!(m[5].path, "/memfd:my file (deleted)");
        assert!(m[5].perms.shared && m[5].perms.write && !m[5].perms.exec);
        assert_eq!(m[6].path, "");
        assert_eq!(m[6].perms.to_string(), "---p");
        assert_eq!(m[7].range.end, 0xffff_ffff_ff60_1000);
        let kernel: Vec<_> = m
            .iter()
            .filter(|e| e.is_kernel())
            .map(|e| &e.path)
            .collect();
        assert_eq!(kernel, ["[vvar]", "[vdso]", "[vsyscall]"]);
        assert!(is_kernel_region("[vvar_vclock]"));
        assert!(!is_kernel_region("[heap]"));
    }

    #[test]
    fn parses_our_own_maps() {
        let text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let m = parse_maps(&text).unwrap();
        assert!(m.iter().any(|e| e.path == "[stack]"));
        assert!(m.windows(2).all(|w| w[0].range.end <= w[1].range.start));
    }

    #[test]
    fn rejects_malformed_lines() {
        for (line, what) in [
            ("", "address range"),
            ("00400000 r-xp 0 08:02 1 /x", "address range"),
            ("zz-00452000 r-xp 0 08:02 1 /x", "start address"),
            (
                "00500000-00400000 r-xp 0 08:02 1",
                "address range ends before it starts",
            ),
            ("00400000-00452000 rwxq 0 08:02 1", "permissions"),
            ("00400000-00452000 r-xp 0g 08:02 1", "offset"),
            ("00400000-00452000 r-xp 0 0802 1", "device"),
            ("00400000-00452000 r-xp 0 08:02 x", "inode"),
            ("00400000-00452000 r-xp 0 08:02", "inode"),
            ("00400000-00452000 r-xp 0 08:02 1", "ok"),
        ] {
            match parse_maps_line(line, 3) {
                Ok(_) => assert_eq!(what, "ok", "{line}"),
                Err(ProcfsError::MapsLine {
                    line: 3, what: w, ..
                }) => assert_eq!(w, what, "{line}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn comm_drops_newline_only() {
        assert_eq!(parse_comm("python3\n"), "python3");
        assert_eq!(parse_comm("a b"), "a b");
    }

    proptest! {
        #[test]
        fn random_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse_maps(&s);
        }

        #[test]
        fn formatted_lines_round_trip(
            start in 0u64..(1 << 47), len in 0u64..(1 << 30), bits in 0u8..16,
            offset in any::<u32>(), major in 0u32..256, minor in 0u32..256,
            inode in any::<u64>(), path in "[a-z/ .\\[\\]()]{0,30}",
        ) {
            let perms = Perms {
                read: bits & 1 != 0, write: bits & 2 != 0, exec: bits & 4 != 0, shared: bits & 8 != 0,
            };
            let path = path.trim().to_owned();
            let line = format!(
                "{start:x}-{:x} {perms} {offset:08x} {major:02x}:{minor:02x} {inode}   {path}",
                start + len
            );
            let e = parse_maps_line(&line, 1).unwrap();
            prop_assert_eq!(e.range, Interval::new(start, start + len));
            prop_assert_eq!(e.perms, perms);
            prop_assert_eq!(e.offset, u64::from(offset));
            prop_assert_eq!(e.dev, (major, minor));
            prop_assert_eq!(e.inode, inode);
            prop_assert_eq!(e.path, path);
        }
    }
}
