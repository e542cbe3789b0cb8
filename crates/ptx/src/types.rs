//! PTX scalar types, state spaces and small functions the parser, decoder and executor share.

/// A PTX scalar type (`.u32`, `.f64`, `.pred`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ty {
    /// `.b8`
    B8,
    /// `.b16`
    B16,
    /// `.b32`
    B32,
    /// `.b64`
    B64,
    /// `.b128`
    B128,
    /// `.u8`
    U8,
    /// `.u16`
    U16,
    /// `.u32`
    U32,
    /// `.u64`
    U64,
    /// `.s8`
    S8,
    /// `.s16`
    S16,
    /// `.s32`
    S32,
    /// `.s64`
    S64,
    /// `.f16`
    F16,
    /// `.f16x2`
    F16x2,
    /// `.bf16`
    Bf16,
    /// `.bf16x2`
    Bf16x2,
    /// `.f32`
    F32,
    /// `.f64`
    F64,
    /// `.pred`
    Pred,
}

impl Ty {
    /// Parses a type modifier without its dot (`"u32"`).
    pub(crate) fn from_name(s: &str) -> Option<Ty> {
        Some(match s {
            "b8" => Ty::B8,
            "b16" => Ty::B16,
            "b32" => Ty::B32,
            "b64" => Ty::B64,
            "b128" => Ty::B128,
            "u8" => Ty::U8,
            "u16" => Ty::U16,
            "u32" => Ty::U32,
            "u64" => Ty::U64,
            "s8" => Ty::S8,
            "s16" => Ty::S16,
            "s32" => Ty::S32,
            "s64" => Ty::S64,
            "f16" => Ty::F16,
            "f16x2" => Ty::F16x2,
            "bf16" => Ty::Bf16,
            "bf16x2" => Ty::Bf16x2,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            "pred" => Ty::Pred,
            _ => return None,
        })
    }

    /// Size in bytes (predicates count as 1).
    pub(crate) fn size(self) -> u32 {
        match self {
            Ty::B8 | Ty::U8 | Ty::S8 | Ty::Pred => 1,
            Ty::B16 | Ty::U16 | Ty::S16 | Ty::F16 | Ty::Bf16 => 2,
            Ty::B32 | Ty::U32 | Ty::S32 | Ty::F32 | Ty::F16x2 | Ty::Bf16x2 => 4,
            Ty::B64 | Ty::U64 | Ty::S64 | Ty::F64 => 8,
            Ty::B128 => 16,
        }
    }

    /// Whether the type is a signed integer.
    pub(crate) fn is_signed(self) -> bool {
        matches!(self, Ty::S8 | Ty::S16 | Ty::S32 | Ty::S64)
    }

    /// Whether the type is a float type (`f16`, `bf16`, `f32`, `f64`, packed too).
    pub(crate) fn is_float(self) -> bool {
        matches!(
            self,
            Ty::F16 | Ty::F16x2 | Ty::Bf16 | Ty::Bf16x2 | Ty::F32 | Ty::F64
        )
    }

    /// Bit width.
    pub(crate) fn bits(self) -> u32 {
        self.size() * 8
    }
}

/// A PTX state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Space {
    /// Generic addressing (no space modifier).
    Generic,
    /// `.global`
    Global,
    /// `.const`
    Const,
    /// `.shared` (incl. `.shared::cta`)
    Shared,
    /// `.local`
    Local,
    /// `.param` of a kernel (read from the launch's parameter buffer).
    Param,
}

impl Space {
    /// Parses a space modifier without its dot.
    pub(crate) fn from_name(s: &str) -> Option<Space> {
        Some(match s {
            "global" => Space::Global,
            "const" => Space::Const,
            "shared" | "shared::cta" => Space::Shared,
            "local" => Space::Local,
            "param" | "param::entry" | "param::func" => Space::Param,
            _ => return None,
        })
    }
}

/// Sign- or zero-extends the low `bits` of `v` to 64 bits.
#[inline(always)]
pub(crate) fn extend(v: u64, bits: u32, signed: bool) -> u64 {
    if bits >= 64 {
        return v;
    }
    let sh = 64 - bits;
    if signed {
        (((v << sh) as i64) >> sh) as u64
    } else {
        (v << sh) >> sh
    }
}

/// Rounds `v` up to a multiple of `a` (a power of two or 1; 0 counts as 1).
pub(crate) fn align_up(v: u64, a: u64) -> u64 {
    let a = a.max(1);
    v.div_ceil(a) * a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_and_sizes() {
        assert_eq!(extend(0xff, 8, true), u64::MAX);
        assert_eq!(extend(0x1ff, 8, false), 0xff);
        assert_eq!(extend(0x8000_0000, 32, true), 0xffff_ffff_8000_0000);
        assert_eq!(Ty::from_name("f16x2").map(Ty::size), Some(4));
        assert_eq!(align_up(5, 4), 8);
        assert_eq!(align_up(5, 0), 5);
        assert!(Ty::S16.is_signed() && !Ty::U16.is_signed() && Ty::F64.is_float());
    }
}
