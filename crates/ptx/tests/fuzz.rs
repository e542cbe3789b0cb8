//! Malformed PTX must give a `ParseError` (or parse), never panic or hang.
#![allow(clippy::unwrap_used)]

use crac_ptx::Module;
use proptest::prelude::*;

const REAL: &str = include_str!("data/kernels_sm75.ptx");

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = Module::parse(&s);
    }

    #[test]
    fn random_ptx_like_tokens(toks in proptest::collection::vec(prop::sample::select(vec![
        ".entry", ".func", ".reg", ".b32", "%r<4>", "%r1", ",", ";", "{", "}", "(", ")", "[", "]",
        "+", "-", "4", "0f3F800000", "@%p1", "bra", "L1:", "L1", "ld.global.u32", ".param", ".u64",
        "p0", "call.uni", ".shared", ".align", "8", ".b8", "x[4]", "=", "|", "!", "ret;",
    ]), 0..200)) {
        let _ = Module::parse(&toks.join(" "));
    }

    #[test]
    fn real_ptx_with_deletions(cuts in proptest::collection::vec((0usize..REAL.len(), 1usize..40), 1..6)) {
        let mut s = REAL.as_bytes().to_vec();
        for (at, len) in cuts {
            let at = at.min(s.len());
            let end = (at + len).min(s.len());
            s.drain(at..end);
        }
        let _ = Module::parse(&String::from_utf8_lossy(&s));
    }

    #[test]
    fn real_ptx_with_insertions(ins in proptest::collection::vec((0usize..REAL.len(), "[ -~\n]{1,12}"), 1..6)) {
        let mut s = REAL.to_string();
        for (at, text) in ins {
            let mut at = at.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &text);
        }
        let _ = Module::parse(&s);
    }
}

#[test]
fn truncations_of_real_ptx_never_panic() {
    for end in (0..REAL.len()).step_by(97) {
        let _ = Module::parse(&REAL[..end]);
    }
}
