//! The device-address window: where every device allocation and module variable lives.
//!
//! Device pointers must be identical after restart, and must never collide with the program's own
//! memory. So every backend places device memory inside one fixed window of the address space:
//! the `sim` device hands out addresses there (its bytes live elsewhere, in lower-half memory),
//! and the real CUDA backend reserves its virtual ranges there with the driver's VMM API. crac's
//! loader reserves the whole window `PROT_NONE` (`MAP_NORESERVE`) in the lower half before the
//! program starts, so no program mapping can land in it, and at restart it is reserved again
//! before anything else is mapped.
//!
//! The default is 1 TiB starting at `0x7e00_0000_0000`: with ASLR off (as crac runs programs)
//! x86-64 places `mmap` areas top-down from just under `0x7fff_f7ff_f000`, the program text and
//! `brk` near `0x5555_5555_4000`, so the window sits 2 TiB under the top of the user address
//! space — far from both — and still in 47-bit space that every x86-64 kernel gives users.

/// First byte of the default device-address window.
pub const DEVICE_WINDOW_BASE: u64 = 0x7e00_0000_0000;

/// Size in bytes of the default device-address window (1 TiB).
pub const DEVICE_WINDOW_SIZE: u64 = 1 << 40;

/// Alignment of every allocation, as `cudaMalloc` guarantees (256 bytes; real devices give
/// 512, and programs may rely only on 256).
pub const ALLOC_ALIGN: u64 = 256;

/// A device-address window `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First byte.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Window {
    /// The default window ([`DEVICE_WINDOW_BASE`], [`DEVICE_WINDOW_SIZE`]).
    pub const DEFAULT: Window = Window {
        base: DEVICE_WINDOW_BASE,
        size: DEVICE_WINDOW_SIZE,
    };

    /// One past the last byte, saturating.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `[addr, addr + len)` lies inside the window.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && addr.checked_add(len).is_some_and(|end| end <= self.end())
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_window_is_aligned_and_in_user_space() {
        assert_eq!(DEVICE_WINDOW_BASE % (1 << 30), 0);
        assert!(Window::DEFAULT.end() <= 0x7fff_0000_0000);
        assert_eq!(DEVICE_WINDOW_BASE % ALLOC_ALIGN, 0);
    }

    #[test]
    fn contains_checks_both_ends() {
        let w = Window {
            base: 0x1000,
            size: 0x1000,
        };
        assert!(w.contains(0x1000, 0x1000));
        assert!(!w.contains(0x1000, 0x1001));
        assert!(!w.contains(0xfff, 1));
        assert!(!w.contains(u64::MAX, 2));
        assert!(w.contains(0x1fff, 0));
    }
}
