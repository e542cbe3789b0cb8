//! The CUDA runtime operations crac implements, each with its C signature: the one list from
//! which the shim's exports and the lower half's decoder are both written.

/// Declares the operation list: `Variant = c_name(param: CType, …);`.
#[macro_export]
macro_rules! cuda_ops {
    ($callback:ident) => {
        $callback! {
            GetDeviceCount = cudaGetDeviceCount(count: *mut i32);
            Malloc = cudaMalloc(dev_ptr: *mut *mut core::ffi::c_void, size: usize);
            Free = cudaFree(dev_ptr: *mut core::ffi::c_void);
        }
    };
}

macro_rules! define_op_enum {
    ($($variant:ident = $name:ident($($param:ident: $ty:ty),* $(,)?);)*) => {
        /// One CUDA runtime operation.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $variant,
            )*
        }

        impl Op {
            /// Every operation, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The C function's name.
            pub fn c_name(self) -> &'static str {
                match self {
                    $(Op::$variant => stringify!($name),)*
                }
            }

            /// The operation with this number.
            pub fn from_u32(n: u32) -> Option<Op> {
                Self::ALL.get(usize::try_from(n).ok()?).copied()
            }
        }
    };
}

cuda_ops!(define_op_enum);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_round_trips() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(Op::from_u32(u32::try_from(i).unwrap()), Some(*op));
            assert!(op.c_name().starts_with("cuda") || op.c_name().starts_with("__cuda"));
        }
        assert_eq!(Op::from_u32(u32::try_from(Op::ALL.len()).unwrap()), None);
    }
}
