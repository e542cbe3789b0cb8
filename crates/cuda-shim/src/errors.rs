//! `cudaError_t` values the shim itself returns, and the name/description table behind
//! `cudaGetErrorName` and `cudaGetErrorString` (answered without crossing).

use std::ffi::CStr;

/// `cudaSuccess`.
pub const SUCCESS: u32 = 0;
/// `cudaErrorInvalidValue`.
pub const INVALID_VALUE: u32 = 1;
/// `cudaErrorMemoryAllocation`.
pub const MEMORY_ALLOCATION: u32 = 2;
/// `cudaErrorInitializationError`.
pub const INITIALIZATION_ERROR: u32 = 3;
/// `cudaErrorMissingConfiguration`: a kernel stub ran without a launch configuration.
pub const MISSING_CONFIGURATION: u32 = 52;
/// `cudaErrorNoDevice`.
pub const NO_DEVICE: u32 = 100;
/// `cudaErrorNotSupported`.
pub const NOT_SUPPORTED: u32 = 801;

/// The name of `code` (`cudaGetErrorName`), or `None` for a code no header defines.
pub fn name(code: u32) -> Option<&'static CStr> {
    entry(code).map(|e| e.1)
}

/// A short description of `code` (`cudaGetErrorString`).
pub fn description(code: u32) -> &'static CStr {
    entry(code).map_or(c"unrecognized error code", |e| e.2)
}

fn entry(code: u32) -> Option<&'static (u32, &'static CStr, &'static CStr)> {
    crate::exports::generated::ERRORS
        .binary_search_by_key(&code, |e| e.0)
        .ok()
        .map(|i| &crate::exports::generated::ERRORS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions_match_the_headers() {
        assert_eq!(name(0), Some(c"cudaSuccess"));
        assert_eq!(name(1), Some(c"cudaErrorInvalidValue"));
        assert_eq!(description(1), c"invalid value");
        assert_eq!(name(801), Some(c"cudaErrorNotSupported"));
        assert_eq!(name(9), Some(c"cudaErrorInvalidConfiguration"));
        assert_eq!(description(218), c"invalid ptx");
        assert_eq!(name(123_456), None);
        assert_eq!(description(123_456), c"unrecognized error code");
    }

    #[test]
    fn the_table_is_sorted_by_code() {
        let t = crate::exports::generated::ERRORS;
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(t.len() > 100);
    }
}
