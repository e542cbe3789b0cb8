//! Tokens of PTX text.
//!
//! A *word* is everything PTX spells with letters and dots in one piece: opcodes with their
//! modifiers (`ld.global.nc.v2.f32`), directives (`.reg`), registers (`%tid.x`), labels
//! (`$L__BB0_1`) and names. Numbers keep their spelling (`0f3F800000`, `0x10`, `17U`) and are
//! interpreted by the parser, which knows whether it wants an integer or a float.

use crate::ParseError;

/// One token and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    /// What the token is.
    pub kind: Tok,
    /// Line it starts on.
    pub line: u32,
}

/// Token kinds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Opcode, directive, register, label or identifier (dots and `::` included).
    Word(String),
    /// A number as written.
    Num(String),
    /// A double-quoted string (contents, escapes kept as written).
    Str(String),
    /// One punctuation character: `, ; : { } [ ] ( ) + - < > = @ ! |`.
    Punct(char),
}

fn word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'$' | b'%' | b'.')
}

fn word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.')
}

/// Splits `src` into tokens, dropping comments and whitespace.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4);
    let mut i = 0usize;
    let mut line = 1u32;
    let err = |line: u32, message: String| ParseError { line, message };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | 0x0c | 0x0b => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = line;
                i += 2;
                loop {
                    match b.get(i) {
                        None => return Err(err(start, "unterminated /* comment".into())),
                        Some(b'*') if b.get(i + 1) == Some(&b'/') => {
                            i += 2;
                            break;
                        }
                        Some(b'\n') => {
                            line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'"' => {
                let start = line;
                i += 1;
                let s = i;
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => {
                            return Err(err(start, "unterminated string literal".into()));
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                let text = src.get(s..i).unwrap_or_default().to_string();
                i += 1;
                out.push(Token {
                    kind: Tok::Str(text),
                    line: start,
                });
            }
            c if c.is_ascii_digit() => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    // A decimal exponent sign (`1.5e-3`) belongs to the number.
                    if matches!(b[i], b'e' | b'E')
                        && !src[s..i].starts_with("0x")
                        && !src[s..i].starts_with("0X")
                        && !src[s..i].starts_with("0f")
                        && !src[s..i].starts_with("0d")
                        && matches!(b.get(i + 1), Some(b'+' | b'-'))
                    {
                        i += 1;
                    }
                    i += 1;
                }
                let text = src.get(s..i).unwrap_or_default().to_string();
                out.push(Token {
                    kind: Tok::Num(text),
                    line,
                });
            }
            c if word_start(c) => {
                let s = i;
                i += 1;
                while i < b.len() {
                    if word_char(b[i]) {
                        i += 1;
                    } else if b[i] == b':' && b.get(i + 1) == Some(&b':') {
                        i += 2;
                    } else {
                        break;
                    }
                }
                let text = src.get(s..i).unwrap_or_default().to_string();
                out.push(Token {
                    kind: Tok::Word(text),
                    line,
                });
            }
            b',' | b';' | b':' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b'+' | b'-' | b'<'
            | b'>' | b'=' | b'@' | b'!' | b'|' => {
                out.push(Token {
                    kind: Tok::Punct(c as char),
                    line,
                });
                i += 1;
            }
            _ => {
                let shown = src.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
                return Err(err(line, format!("unexpected character {shown:?}")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn words_numbers_and_punct() {
        assert_eq!(
            kinds("@!%p1 ld.global.nc.f32 %f1, [%rd2+-4]; // x\n"),
            vec![
                Tok::Punct('@'),
                Tok::Punct('!'),
                Tok::Word("%p1".into()),
                Tok::Word("ld.global.nc.f32".into()),
                Tok::Word("%f1".into()),
                Tok::Punct(','),
                Tok::Punct('['),
                Tok::Word("%rd2".into()),
                Tok::Punct('+'),
                Tok::Punct('-'),
                Tok::Num("4".into()),
                Tok::Punct(']'),
                Tok::Punct(';'),
            ]
        );
        assert_eq!(
            kinds("0f3F800000 1.5e-3"),
            vec![Tok::Num("0f3F800000".into()), Tok::Num("1.5e-3".into())]
        );
        assert_eq!(
            kinds("ld.L1::evict_last"),
            vec![Tok::Word("ld.L1::evict_last".into())]
        );
    }

    #[test]
    fn lines_and_comments() {
        let t = tokenize("a /* x\n y */ b\n\"s\" c").unwrap();
        assert_eq!(
            t.iter().map(|t| t.line).collect::<Vec<_>>(),
            vec![1, 2, 3, 3]
        );
        assert!(tokenize("/* open").is_err());
        assert!(tokenize("\"open").is_err());
        assert!(tokenize("a # b").is_err());
    }
}
