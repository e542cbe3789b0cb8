//! The program's initial stack, laid out as the kernel's `create_elf_tables` does, built as
//! bytes (no raw memory here) and copied into the fresh stack mapping by `enter`.
//!
//! From the top down: an 8-byte zero end marker, the `AT_EXECFN` string, the environment
//! strings, the argument strings, the platform string, the 16 `AT_RANDOM` bytes, padding, then
//! the words `argc, argv[0..n], NULL, envp[0..m], NULL, auxv pairs…, AT_NULL 0`. `rsp` points at
//! `argc` and is 16-byte aligned whatever the counts are.
//!
//! Addresses are `u64` and buffer offsets `usize`; on x86-64, the one target (see `lib.rs`),
//! the two are the same width, so the casts between them cannot truncate.
#![allow(clippy::cast_possible_truncation)]

/// `AT_NULL`: end of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// `AT_PHDR`.
pub const AT_PHDR: u64 = 3;
/// `AT_PHENT`.
pub const AT_PHENT: u64 = 4;
/// `AT_PHNUM`.
pub const AT_PHNUM: u64 = 5;
/// `AT_BASE`.
pub const AT_BASE: u64 = 7;
/// `AT_FLAGS`.
pub const AT_FLAGS: u64 = 8;
/// `AT_ENTRY`.
pub const AT_ENTRY: u64 = 9;
/// `AT_PLATFORM`.
pub const AT_PLATFORM: u64 = 15;
/// `AT_RANDOM`.
pub const AT_RANDOM: u64 = 25;
/// `AT_EXECFN`.
pub const AT_EXECFN: u64 = 31;
/// `AT_EXECFD`.
pub const AT_EXECFD: u64 = 2;
/// `AT_BASE_PLATFORM`.
pub const AT_BASE_PLATFORM: u64 = 24;

/// Where the program's pieces were mapped: the values `enter` puts into the auxv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxPatch {
    /// Address of the program's program header table.
    pub phdr: u64,
    /// Number of program headers.
    pub phnum: u64,
    /// The program's entry point.
    pub entry: u64,
    /// The interpreter's load base (0 for static programs).
    pub base: u64,
}

/// crac's own auxv with the program's values: `AT_PHDR/PHENT/PHNUM/ENTRY/BASE` replaced (added
/// if missing), `AT_FLAGS` 0, `AT_EXECFD` dropped, everything else (`AT_SYSINFO_EHDR`, hwcaps,
/// page size, clock tick, uids, `AT_SECURE`, …) kept. The string entries (`AT_EXECFN`,
/// `AT_RANDOM`, `AT_PLATFORM`) are pointed at fresh copies by [`build`].
pub fn patch_auxv(own: &[(u64, u64)], p: AuxPatch) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(own.len() + 8);
    let mut seen = [false; 5];
    let wanted = [
        (AT_PHDR, p.phdr),
        (AT_PHENT, crac_core::elf::PHDR_SIZE as u64),
        (AT_PHNUM, p.phnum),
        (AT_BASE, p.base),
        (AT_ENTRY, p.entry),
    ];
    for &(key, value) in own.iter().take_while(|(k, _)| *k != AT_NULL) {
        if let Some(i) = wanted.iter().position(|(k, _)| *k == key) {
            seen[i] = true;
            out.push(wanted[i]);
        } else if key == AT_FLAGS {
            out.push((AT_FLAGS, 0));
        } else if key != AT_EXECFD {
            out.push((key, value));
        }
    }
    for (i, w) in wanted.iter().enumerate() {
        if !seen[i] {
            out.push(*w);
        }
    }
    for key in [AT_RANDOM, AT_EXECFN] {
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, 0));
        }
    }
    out
}

/// What goes on the stack.
#[derive(Debug, Clone)]
pub struct StackSpec<'a> {
    /// Arguments (without their NUL).
    pub argv: &'a [Vec<u8>],
    /// Environment `KEY=VALUE` strings.
    pub envp: &'a [Vec<u8>],
    /// The `AT_EXECFN` path.
    pub execfn: &'a [u8],
    /// The `AT_PLATFORM` string, if crac's auxv had one.
    pub platform: Option<&'a [u8]>,
    /// Fresh `AT_RANDOM` bytes.
    pub random: [u8; 16],
    /// The patched auxv (see [`patch_auxv`]), without the final `AT_NULL`.
    pub auxv: &'a [(u64, u64)],
}

/// The built stack: `bytes` go at `[sp, top)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackImage {
    /// Contents from `sp` up to the top.
    pub bytes: Vec<u8>,
    /// The initial stack pointer (address of `argc`), 16-byte aligned.
    pub sp: u64,
    /// `[start, end)` of the argument strings (what `/proc/PID/cmdline` shows).
    pub args: (u64, u64),
    /// `[start, end)` of the environment strings (`/proc/PID/environ`).
    pub env: (u64, u64),
    /// The final auxv, `AT_NULL` pair included (what `/proc/PID/auxv` shows).
    pub auxv: Vec<(u64, u64)>,
}

/// Lays out the stack for a mapping whose highest address is `top` (16-byte aligned).
pub fn build(spec: &StackSpec<'_>, top: u64) -> StackImage {
    // Strings area, growing down from top - 8; positions are offsets below `top`.
    let mut strings: Vec<u8> = Vec::new();
    let mut push = |s: &[u8]| -> u64 {
        // Stored reversed-order: we append and later compute addresses from the low end.
        strings.extend_from_slice(s);
        strings.push(0);
        (strings.len() - s.len() - 1) as u64
    };
    // Low to high: platform, argv strings, envp strings, execfn; random bytes sit below them.
    let platform_off = spec.platform.map(&mut push);
    let argv_offs: Vec<u64> = spec.argv.iter().map(|a| push(a)).collect();
    let envp_offs: Vec<u64> = spec.envp.iter().map(|e| push(e)).collect();
    let execfn_off = push(spec.execfn);
    let args_off = argv_offs
        .first()
        .copied()
        .unwrap_or(envp_offs.first().copied().unwrap_or(execfn_off));
    let env_off = envp_offs.first().copied().unwrap_or(execfn_off);
    let strings_low = top - 8 - strings.len() as u64;
    let random_addr = (strings_low - 16) & !15;
    let auxv: Vec<(u64, u64)> = spec
        .auxv
        .iter()
        .take_while(|(k, _)| *k != AT_NULL)
        .filter_map(|&(k, v)| match k {
            AT_RANDOM => Some((k, random_addr)),
            AT_EXECFN => Some((k, strings_low + execfn_off)),
            AT_PLATFORM => platform_off.map(|o| (k, strings_low + o)),
            AT_BASE_PLATFORM => None,
            _ => Some((k, v)),
        })
        .chain(std::iter::once((AT_NULL, 0)))
        .collect();
    let words = 1 + spec.argv.len() + 1 + spec.envp.len() + 1 + 2 * auxv.len();
    let sp = (random_addr - 8 * words as u64) & !15;
    let mut bytes = vec![0u8; (top - sp) as usize];
    let mut at = 0usize;
    let mut word = |v: u64| {
        bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        at += 8;
    };
    word(spec.argv.len() as u64);
    argv_offs.iter().for_each(|o| word(strings_low + o));
    word(0);
    envp_offs.iter().for_each(|o| word(strings_low + o));
    word(0);
    for (k, v) in &auxv {
        word(*k);
        word(*v);
    }
    let r = (random_addr - sp) as usize;
    bytes[r..r + 16].copy_from_slice(&spec.random);
    let s = (strings_low - sp) as usize;
    bytes[s..s + strings.len()].copy_from_slice(&strings);
    StackImage {
        bytes,
        sp,
        args: (strings_low + args_off, strings_low + env_off),
        env: (strings_low + env_off, strings_low + execfn_off),
        auxv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads back what the program's `_start` would see.
    struct Seen {
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        auxv: Vec<(u64, u64)>,
    }

    fn read(img: &StackImage, top: u64) -> Seen {
        let word = |addr: u64| {
            let o = (addr - img.sp) as usize;
            u64::from_le_bytes(img.bytes[o..o + 8].try_into().expect("8 bytes"))
        };
        let cstr = |addr: u64| {
            assert!(
                addr >= img.sp && addr < top,
                "string pointer {addr:#x} outside the stack"
            );
            let o = (addr - img.sp) as usize;
            let end = img.bytes[o..].iter().position(|b| *b == 0).expect("NUL") + o;
            img.bytes[o..end].to_vec()
        };
        let argc = word(img.sp);
        let mut p = img.sp + 8;
        let mut argv = Vec::new();
        for _ in 0..argc {
            argv.push(cstr(word(p)));
            p += 8;
        }
        assert_eq!(word(p), 0);
        p += 8;
        let mut envp = Vec::new();
        while word(p) != 0 {
            envp.push(cstr(word(p)));
            p += 8;
        }
        p += 8;
        let mut auxv = Vec::new();
        loop {
            let (k, v) = (word(p), word(p + 8));
            p += 16;
            if k == AT_NULL {
                break;
            }
            auxv.push((k, v));
        }
        Seen { argv, envp, auxv }
    }

    #[test]
    fn auxv_is_patched_for_the_program() {
        let own = [
            (33, 0x7fff_f7fc_1000),
            (3, 1),
            (4, 56),
            (5, 2),
            (2, 9),
            (8, 1),
            (9, 5),
            (7, 6),
            (25, 7),
            (31, 8),
            (0, 0),
            (99, 99),
        ];
        let p = AuxPatch {
            phdr: 0x40_0040,
            phnum: 13,
            entry: 0x40_1000,
            base: 0x7fff_0000,
        };
        let out = patch_auxv(&own, p);
        assert_eq!(out[0], (33, 0x7fff_f7fc_1000), "vdso kept");
        assert!(out.contains(&(AT_PHDR, 0x40_0040)));
        assert!(out.contains(&(AT_PHNUM, 13)));
        assert!(out.contains(&(AT_ENTRY, 0x40_1000)));
        assert!(out.contains(&(AT_BASE, 0x7fff_0000)));
        assert!(out.contains(&(AT_FLAGS, 0)));
        assert!(!out.iter().any(|(k, _)| *k == AT_EXECFD || *k == 99));
        let bare = patch_auxv(&[(6, 4096)], p);
        assert!(bare.contains(&(AT_PHDR, 0x40_0040)) && bare.contains(&(AT_RANDOM, 0)));
    }

    proptest! {
        #[test]
        fn stack_reads_back_and_is_aligned(
            argv in prop::collection::vec(prop::collection::vec(1u8..=255, 0..20), 0..9),
            envp in prop::collection::vec(prop::collection::vec(1u8..=255, 0..30), 0..9),
            execfn in prop::collection::vec(1u8..=255, 1..40),
            platform in prop::option::of(prop::collection::vec(1u8..=255, 1..8)),
            random in any::<[u8; 16]>(),
        ) {
            let top = 0x7fff_0000_0000u64;
            let auxv = patch_auxv(&[(6, 4096), (15, 1), (25, 0), (31, 0)], AuxPatch { phdr: 1, phnum: 2, entry: 3, base: 4 });
            let spec = StackSpec { argv: &argv, envp: &envp, execfn: &execfn, platform: platform.as_deref(), random, auxv: &auxv };
            let img = build(&spec, top);
            prop_assert_eq!(img.sp % 16, 0);
            prop_assert_eq!(img.sp + img.bytes.len() as u64, top);
            prop_assert_eq!(&img.bytes[img.bytes.len() - 8..], &[0u8; 8]);
            let seen = read(&img, top);
            prop_assert_eq!(&seen.argv, &argv);
            prop_assert_eq!(&seen.envp, &envp);
            let get = |key| seen.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
            let rnd = get(AT_RANDOM).expect("AT_RANDOM");
            let o = (rnd - img.sp) as usize;
            prop_assert_eq!(&img.bytes[o..o + 16], &random);
            let f = (get(AT_EXECFN).expect("AT_EXECFN") - img.sp) as usize;
            prop_assert_eq!(&img.bytes[f..f + execfn.len()], &execfn[..]);
            prop_assert_eq!(get(AT_PLATFORM).is_some(), platform.is_some());
            prop_assert_eq!(get(AT_PHDR), Some(1));
            prop_assert_eq!(get(6), Some(4096));
            let range = |(a, b): (u64, u64)| img.bytes[(a - img.sp) as usize..(b - img.sp) as usize].to_vec();
            let joined = |v: &[Vec<u8>]| v.iter().flat_map(|s| s.iter().copied().chain([0])).collect::<Vec<u8>>();
            prop_assert_eq!(range(img.args), joined(&argv));
            prop_assert_eq!(range(img.env), joined(&envp));
            prop_assert_eq!(img.auxv.last(), Some(&(AT_NULL, 0)));
        }
    }
}
