//! The dot-separated modifiers of an opcode (`.rn`, `.s32`, `.global`, …).

use crate::ops::{AtomOp, BoolOp, Cmp, Rnd};
use crate::types::{Space, Ty};

/// The dot-separated modifiers of an opcode.
pub(crate) struct Mods<'s> {
    pub parts: Vec<&'s str>,
}

impl<'s> Mods<'s> {
    pub(crate) fn has(&self, m: &str) -> bool {
        self.parts.contains(&m)
    }
    /// The value of the first of `choices` whose modifier is present (in `choices`' order).
    pub(crate) fn pick<T: Copy>(&self, choices: &[(&str, T)]) -> Option<T> {
        choices.iter().find(|(m, _)| self.has(m)).map(|&(_, v)| v)
    }
    pub(crate) fn types(&self) -> Vec<Ty> {
        self.parts.iter().filter_map(|p| Ty::from_name(p)).collect()
    }
    pub(crate) fn space(&self) -> Space {
        self.parts
            .iter()
            .find_map(|p| Space::from_name(p))
            .unwrap_or(Space::Generic)
    }
    pub(crate) fn rnd(&self) -> Rnd {
        for p in &self.parts {
            let r = match *p {
                "rn" => Rnd::Rn,
                "rz" => Rnd::Rz,
                "rm" => Rnd::Rm,
                "rp" => Rnd::Rp,
                "rni" => Rnd::Rni,
                "rzi" => Rnd::Rzi,
                "rmi" => Rnd::Rmi,
                "rpi" => Rnd::Rpi,
                "rna" => Rnd::Rna,
                _ => continue,
            };
            return r;
        }
        Rnd::Default
    }
    pub(crate) fn cmp(&self) -> Option<Cmp> {
        self.parts.iter().find_map(|p| Cmp::from_name(p))
    }
    pub(crate) fn boolop(&self) -> BoolOp {
        self.pick(&[
            ("and", BoolOp::And),
            ("or", BoolOp::Or),
            ("xor", BoolOp::Xor),
        ])
        .unwrap_or(BoolOp::None)
    }
    pub(crate) fn vec(&self) -> u8 {
        self.pick(&[("v4", 4), ("v2", 2)]).unwrap_or(1)
    }
    pub(crate) fn atom_op(&self) -> Option<AtomOp> {
        self.parts.iter().find_map(|p| {
            Some(match *p {
                "add" => AtomOp::Add,
                "min" => AtomOp::Min,
                "max" => AtomOp::Max,
                "inc" => AtomOp::Inc,
                "dec" => AtomOp::Dec,
                "and" => AtomOp::And,
                "or" => AtomOp::Or,
                "xor" => AtomOp::Xor,
                "exch" => AtomOp::Exch,
                "cas" => AtomOp::Cas,
                _ => return None,
            })
        })
    }
}
