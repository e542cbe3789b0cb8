//! C `printf` formatting of a device `vprintf` argument buffer.
//!
//! nvcc packs the arguments like a struct: each at the next multiple of its own size, after
//! C varargs promotion (`char`/`short`/`int` → 4 bytes, `long`/`long long`/pointers → 8,
//! `float` → `double`, 8).
// Arguments are read as raw 64-bit words and narrowed per conversion, as C does.
#![allow(clippy::cast_possible_truncation)]

/// Reads the packed argument buffer.
pub(crate) trait Args {
    /// The next argument of `size` bytes (4 or 8), aligned to its size.
    fn next(&mut self, size: u64) -> u64;
    /// The NUL-terminated string at a device address.
    fn string(&mut self, addr: u64) -> Vec<u8>;
}

struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    prec: Option<usize>,
}

fn pad(out: &mut Vec<u8>, s: &[u8], spec: &Spec, numeric: bool) {
    let fill = spec.width.saturating_sub(s.len());
    if spec.left {
        out.extend_from_slice(s);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if spec.zero && numeric && spec.prec.is_none() {
        // Zeros go after the sign / 0x prefix.
        let sign = usize::from(matches!(s.first(), Some(b'-' | b'+' | b' ')));
        let pre = if s[sign..].starts_with(b"0x") || s[sign..].starts_with(b"0X") {
            sign + 2
        } else {
            sign
        };
        out.extend_from_slice(&s[..pre]);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(&s[pre..]);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(s);
    }
}

fn exp_form(v: f64, prec: usize, upper: bool) -> String {
    let s = format!("{v:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    let out = format!("{m}e{sign}{:02}", e.abs());
    if upper { out.to_uppercase() } else { out }
}

fn strip_zeros(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    let (m, e) = match s.find(['e', 'E']) {
        Some(p) => (s[..p].to_string(), s[p..].to_string()),
        None => (s.clone(), String::new()),
    };
    let m = m.trim_end_matches('0').trim_end_matches('.').to_string();
    m + &e
}

fn float(v: f64, conv: u8, spec: &Spec) -> String {
    let upper = conv.is_ascii_uppercase();
    let body = if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        "inf".to_string()
    } else {
        let a = v.abs();
        let prec = spec.prec.unwrap_or(6);
        match conv.to_ascii_lowercase() {
            b'f' => format!("{a:.prec$}"),
            b'e' => exp_form(a, prec, false),
            _ => {
                let p = prec.max(1);
                let x = if a == 0.0 {
                    0
                } else {
                    exp_form(a, p - 1, false)
                        .split_once('e')
                        .and_then(|(_, e)| e.parse::<i64>().ok())
                        .unwrap_or(0)
                };
                let s = if (p as i64) > x && x >= -4 {
                    let digits = usize::try_from(p as i64 - 1 - x).unwrap_or(0);
                    format!("{a:.digits$}")
                } else {
                    exp_form(a, p - 1, false)
                };
                if spec.alt { s } else { strip_zeros(s) }
            }
        }
    };
    let sign = if v.is_sign_negative() && !v.is_nan() {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let s = format!("{sign}{body}");
    if upper { s.to_uppercase() } else { s }
}

/// Formats `fmt` with arguments from `args`.
pub(crate) fn format(fmt: &[u8], args: &mut dyn Args) -> Vec<u8> {
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: 0,
            prec: None,
        };
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => spec.left = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        // A width or precision, written or taken from an `int` argument (`*`), which may be
        // negative; capped so a kernel cannot make the host allocate without bound.
        let mut num = |i: &mut usize| -> i64 {
            if fmt.get(*i) == Some(&b'*') {
                *i += 1;
                return i64::from(args.next(4) as i32).clamp(-4096, 4096);
            }
            let mut n = 0i64;
            while let Some(d) = fmt.get(*i).filter(|d| d.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
                *i += 1;
            }
            n.min(4096)
        };
        // As in C, a negative `*` width means `-` and its magnitude.
        let width = num(&mut i);
        spec.left |= width < 0;
        spec.width = usize::try_from(width.unsigned_abs()).unwrap_or(0);
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            // A negative `*` precision counts as none given.
            spec.prec = usize::try_from(num(&mut i)).ok();
        }
        let mut long = 0;
        while let Some(&l) = fmt.get(i) {
            match l {
                b'l' | b'j' | b'z' | b't' | b'q' => long += 1,
                b'h' | b'L' => {}
                _ => break,
            }
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else { break };
        i += 1;
        let isize = if long > 0 { 8 } else { 4 };
        let s: Vec<u8> = match conv {
            b'%' => {
                out.push(b'%');
                continue;
            }
            b'd' | b'i' => {
                let raw = args.next(isize);
                let v = if isize == 4 {
                    i64::from(raw as u32 as i32)
                } else {
                    raw as i64
                };
                let mut digits = v.unsigned_abs().to_string();
                if let Some(p) = spec.prec {
                    digits = format!("{digits:0>p$}");
                }
                let sign = if v < 0 {
                    "-"
                } else if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    ""
                };
                format!("{sign}{digits}").into_bytes()
            }
            b'u' | b'x' | b'X' | b'o' => {
                let raw = args.next(isize);
                let v = if isize == 4 { raw & 0xffff_ffff } else { raw };
                let mut digits = match conv {
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                };
                if let Some(p) = spec.prec {
                    digits = format!("{digits:0>p$}");
                }
                let pre = match (spec.alt && v != 0, conv) {
                    (true, b'x') => "0x",
                    (true, b'X') => "0X",
                    (true, b'o') => "0",
                    _ => "",
                };
                format!("{pre}{digits}").into_bytes()
            }
            b'c' => vec![args.next(4) as u8],
            b's' => {
                let addr = args.next(8);
                let mut s = if addr == 0 {
                    b"(null)".to_vec()
                } else {
                    args.string(addr)
                };
                if let Some(p) = spec.prec {
                    s.truncate(p);
                }
                pad(&mut out, &s, &spec, false);
                continue;
            }
            b'p' => format!("0x{:x}", args.next(8)).into_bytes(),
            b'f' | b'F' | b'e' | b'E' | b'g' | b'G' => {
                float(f64::from_bits(args.next(8)), conv, &spec).into_bytes()
            }
            b'a' | b'A' => format!("{}", f64::from_bits(args.next(8))).into_bytes(),
            other => {
                out.push(b'%');
                out.push(other);
                continue;
            }
        };
        let numeric = !matches!(conv, b'c');
        pad(&mut out, &s, &spec, numeric);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf(Vec<u64>, usize);
    impl Args for Buf {
        fn next(&mut self, _: u64) -> u64 {
            self.1 += 1;
            self.0.get(self.1 - 1).copied().unwrap_or(0)
        }
        fn string(&mut self, _: u64) -> Vec<u8> {
            b"ok".to_vec()
        }
    }

    fn f(fmt: &str, args: Vec<u64>) -> String {
        String::from_utf8(format(fmt.as_bytes(), &mut Buf(args, 0))).unwrap()
    }

    #[test]
    fn formats_like_c() {
        assert_eq!(
            f("%d|%5d|%-5d|%05d", vec![(-3i32) as u32 as u64, 42, 7, 9]),
            "-3|   42|7    |00009"
        );
        assert_eq!(
            f("%x %X %#x %o %u", vec![255, 255, 255, 8, 0xffff_ffff]),
            "ff FF 0xff 10 4294967295"
        );
        assert_eq!(
            f("%lld %llu", vec![(-5i64) as u64, u64::MAX]),
            "-5 18446744073709551615"
        );
        assert_eq!(
            f(
                "%.3f %e %g %g",
                vec![
                    3.14259f64.to_bits(),
                    1234.5f64.to_bits(),
                    0.0001f64.to_bits(),
                    1e10f64.to_bits()
                ]
            ),
            "3.143 1.234500e+03 0.0001 1e+10"
        );
        assert_eq!(
            f(
                "%g %g %8.2f",
                vec![100000f64.to_bits(), 1.5f64.to_bits(), (-2.5f64).to_bits()]
            ),
            "100000 1.5    -2.50"
        );
        assert_eq!(
            f("%s %c %% %p", vec![1, u64::from(b'Z'), 0x10]),
            "ok Z % 0x10"
        );
        assert_eq!(f("%f", vec![f64::INFINITY.to_bits()]), "inf");
    }

    #[test]
    fn star_width_and_precision_follow_c_and_stay_bounded() {
        let neg = |v: i32| u64::from(v as u32);
        assert_eq!(f("[%*d]", vec![4, 7]), "[   7]");
        assert_eq!(f("[%*d]", vec![neg(-4), 7]), "[7   ]");
        assert_eq!(f("[%.*f]", vec![neg(-1), 1.5f64.to_bits()]), "[1.500000]");
        assert_eq!(f("[%.*s]", vec![1, 1]), "[o]");
        // Huge values are capped instead of asking the host for gigabytes.
        assert_eq!(f("%*d", vec![neg(i32::MIN), 1]).len(), 4096);
        assert_eq!(f("%*d", vec![neg(i32::MAX), 1]).len(), 4096);
        assert_eq!(f("%.*d", vec![neg(i32::MAX), 1]).len(), 4096);
    }
}
