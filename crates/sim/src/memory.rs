//! Device memory of the `sim` device: blocks at device addresses inside the device window, their
//! bytes held in ordinary (lower-half) Rust memory.
//!
//! A block is an app allocation (`cudaMalloc`) or a module variable. Blocks sit in a vector
//! sorted by address; the interpreter's accesses hit the same block again and again, so the
//! index of the last block hit is cached and checked first.
//!
//! The rest of the device uses it through `layout::Memory`, which keeps the placement apart
//! from the bytes.

use std::cell::Cell;

use crac_gpu::{ALLOC_ALIGN, Allocation, DevicePtr, GpuError, ModuleId, Window};
use crac_ptx::{DeviceMemory, Fault};

/// What a block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// An app allocation.
    Alloc,
    /// A variable of a module.
    Variable(ModuleId),
}

/// One contiguous piece of device memory.
#[derive(Debug)]
struct Block {
    start: u64,
    /// Bytes the app asked for; accesses past this fault.
    size: u64,
    /// Bytes of the window the block occupies (size rounded up to the alignment).
    reserved: u64,
    kind: BlockKind,
    data: Vec<u8>,
}

impl Block {
    fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.start
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.start + self.size)
    }
}

/// The device's memory: placement inside the window plus contents.
#[derive(Debug)]
pub struct DeviceMem {
    window: Window,
    capacity: u64,
    used: u64,
    blocks: Vec<Block>,
    last_hit: Cell<usize>,
    /// Whether blocks hold their bytes (false for a layout: placement only, every access
    /// faults).
    backed: bool,
}

fn round_up(size: u64) -> Option<u64> {
    size.checked_add(ALLOC_ALIGN - 1)
        .map(|s| s & !(ALLOC_ALIGN - 1))
}

fn host_len(size: u64) -> Result<usize, GpuError> {
    usize::try_from(size).map_err(|_| GpuError::MemoryAllocation {
        size,
        reason: "size does not fit this host's address space".into(),
    })
}

/// Asks the host allocator, fallibly, for `size` bytes and gives them back at once. The bytes
/// of a block come from `vec![0; n]`, which aborts the process when the allocator refuses; the
/// device's capacity need not fit the host (a sim device may report more memory than the
/// machine has), so a size the host cannot hold must be refused here, as
/// `cudaErrorMemoryAllocation`, before the block is placed. The zeroed allocation that follows
/// asks for the same size.
fn host_can_hold(size: u64) -> Result<(), GpuError> {
    let len = host_len(size)?;
    Vec::<u8>::new()
        .try_reserve_exact(len)
        .map_err(|e| GpuError::MemoryAllocation {
            size,
            reason: format!("the host cannot hold the sim device's bytes ({e}); ask for less"),
        })
}

impl DeviceMem {
    /// Empty memory placing blocks in `window`, holding at most `capacity` bytes.
    pub fn new(window: Window, capacity: u64) -> DeviceMem {
        DeviceMem {
            window,
            capacity,
            used: 0,
            blocks: Vec::new(),
            last_hit: Cell::new(0),
            backed: true,
        }
    }

    /// A layout: placement bookkeeping only, no bytes.
    pub fn layout(window: Window, capacity: u64) -> DeviceMem {
        DeviceMem {
            backed: false,
            ..DeviceMem::new(window, capacity)
        }
    }

    /// Bytes still free (by reservation).
    pub fn free_bytes(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }

    /// Places a zeroed block of `size` bytes at the lowest free aligned address (`align`, a
    /// power of two, at least 256).
    pub fn alloc(&mut self, size: u64, align: u64, kind: BlockKind) -> Result<DevicePtr, GpuError> {
        let align = align.max(ALLOC_ALIGN).next_power_of_two();
        let reserved = self.check_capacity(size)?;
        let mut cursor = self.window.base;
        let mut index = 0;
        for (i, b) in self.blocks.iter().enumerate() {
            let aligned = cursor.next_multiple_of(align);
            if aligned
                .checked_add(reserved)
                .is_some_and(|end| end <= b.start)
            {
                break;
            }
            cursor = b.start + b.reserved;
            index = i + 1;
        }
        let start = cursor.next_multiple_of(align);
        if !self.window.contains(start, reserved) {
            return Err(GpuError::MemoryAllocation {
                size,
                reason: "the device address window is full; free memory or enlarge the window"
                    .into(),
            });
        }
        self.insert_at(index, start, size, reserved, kind)?;
        Ok(DevicePtr(start))
    }

    /// Places a zeroed block of `size` bytes exactly at `ptr`.
    pub fn alloc_at(&mut self, ptr: DevicePtr, size: u64, kind: BlockKind) -> Result<(), GpuError> {
        if ptr.0 % ALLOC_ALIGN != 0 {
            return Err(GpuError::InvalidValue(format!(
                "device address {ptr:#x} is not {ALLOC_ALIGN}-byte aligned"
            )));
        }
        let reserved = self.check_capacity(size)?;
        if !self.window.contains(ptr.0, reserved) {
            return Err(GpuError::MemoryAllocation {
                size,
                reason: format!("{ptr:#x} is outside the device address window"),
            });
        }
        let index = self.blocks.partition_point(|b| b.start < ptr.0);
        let end = ptr.0 + reserved;
        let prev_overlaps = index > 0 && {
            let p = &self.blocks[index - 1];
            p.start + p.reserved > ptr.0
        };
        let next_overlaps = self.blocks.get(index).is_some_and(|n| n.start < end);
        if prev_overlaps || next_overlaps {
            return Err(GpuError::MemoryAllocation {
                size,
                reason: format!("device address {ptr:#x} is already in use"),
            });
        }
        self.insert_at(index, ptr.0, size, reserved, kind)
    }

    fn check_capacity(&self, size: u64) -> Result<u64, GpuError> {
        let reserved = round_up(size.max(1)).ok_or(GpuError::MemoryAllocation {
            size,
            reason: "size overflows".into(),
        })?;
        if reserved > self.free_bytes() {
            return Err(GpuError::MemoryAllocation {
                size,
                reason: format!(
                    "out of device memory ({} of {} bytes free)",
                    self.free_bytes(),
                    self.capacity
                ),
            });
        }
        host_can_hold(size)?;
        Ok(reserved)
    }

    fn insert_at(
        &mut self,
        index: usize,
        start: u64,
        size: u64,
        reserved: u64,
        kind: BlockKind,
    ) -> Result<(), GpuError> {
        let len = host_len(size)?;
        // `vec![0; n]` asks the allocator for zeroed memory, which large sizes get as fresh,
        // untouched pages: a big allocation costs host memory only where it is written. Its size
        // is already bounded by the device's capacity and was granted by `host_can_hold`.
        let data = if self.backed {
            vec![0; len]
        } else {
            Vec::new()
        };
        self.blocks.insert(
            index,
            Block {
                start,
                size,
                reserved,
                kind,
                data,
            },
        );
        self.used += reserved;
        self.last_hit.set(index);
        Ok(())
    }

    /// Removes the block that starts at `ptr` and is of `kind`. Any other pointer (unknown,
    /// inside a block, already freed) is `cudaErrorInvalidValue`, as `cudaFree` returns since
    /// CUDA 10.1 deprecated `cudaErrorInvalidDevicePointer`.
    pub fn free(&mut self, ptr: DevicePtr, kind: BlockKind) -> Result<(), GpuError> {
        let index = self
            .blocks
            .binary_search_by_key(&ptr.0, |b| b.start)
            .ok()
            .filter(|&i| self.blocks[i].kind == kind)
            .ok_or_else(|| {
                GpuError::InvalidValue(format!(
                    "{ptr:#x} is not the start of a live allocation; free only what malloc \
                     returned, once"
                ))
            })?;
        let b = self.blocks.remove(index);
        self.used -= b.reserved;
        self.last_hit.set(0);
        Ok(())
    }

    /// Removes every block of `kind` (a module's variables when it unloads).
    pub fn free_all(&mut self, kind: BlockKind) {
        let freed: u64 = self
            .blocks
            .iter()
            .filter(|b| b.kind == kind)
            .map(|b| b.reserved)
            .sum();
        self.blocks.retain(|b| b.kind != kind);
        self.used -= freed;
        self.last_hit.set(0);
    }

    /// Every app allocation, by address.
    pub fn allocations(&self) -> Vec<Allocation> {
        self.blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Alloc)
            .map(|b| Allocation {
                ptr: DevicePtr(b.start),
                size: b.size,
            })
            .collect()
    }

    /// The block (allocation or variable) holding byte `addr`.
    pub fn block_at(&self, addr: u64) -> Option<Allocation> {
        self.find(addr, 1).map(|i| Allocation {
            ptr: DevicePtr(self.blocks[i].start),
            size: self.blocks[i].size,
        })
    }

    /// Index of the block holding all of `[addr, addr + len)`.
    fn find(&self, addr: u64, len: u64) -> Option<usize> {
        let hint = self.last_hit.get();
        if self.blocks.get(hint).is_some_and(|b| b.contains(addr, len)) {
            return Some(hint);
        }
        let index = self
            .blocks
            .partition_point(|b| b.start <= addr)
            .checked_sub(1)?;
        self.blocks[index].contains(addr, len).then(|| {
            self.last_hit.set(index);
            index
        })
    }

    /// Checks that `[addr, addr + len)` lies inside one block.
    pub fn check(&self, addr: u64, len: u64) -> Result<(), GpuError> {
        self.find(addr, len).map(|_| ()).ok_or_else(|| {
            GpuError::InvalidValue(format!(
                "device range {addr:#x}+{len} is not inside one allocation"
            ))
        })
    }

    /// Copies `len` bytes from `src` to `dst` (overlap allowed, blocks may differ).
    pub fn copy_within(&mut self, dst: u64, src: u64, len: u64) -> Result<(), Fault> {
        let mut tmp = vec![0; usize::try_from(len).map_err(|_| Fault { addr: src, len })?];
        self.read(src, &mut tmp)?;
        self.write(dst, &tmp)
    }

    /// Sets `len` bytes at `dst` to `value`.
    pub fn fill(&mut self, dst: u64, value: u8, len: u64) -> Result<(), Fault> {
        let (i, off) = self.locate(dst, len)?;
        let n = usize::try_from(len).map_err(|_| Fault { addr: dst, len })?;
        self.blocks[i].data[off..off + n].fill(value);
        Ok(())
    }

    fn locate(&self, addr: u64, len: u64) -> Result<(usize, usize), Fault> {
        let i = self
            .find(addr, len)
            .filter(|_| self.backed)
            .ok_or(Fault { addr, len })?;
        let off = usize::try_from(addr - self.blocks[i].start).map_err(|_| Fault { addr, len })?;
        Ok((i, off))
    }
}

impl DeviceMemory for DeviceMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let (i, off) = self.locate(addr, buf.len() as u64)?;
        buf.copy_from_slice(&self.blocks[i].data[off..off + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let (i, off) = self.locate(addr, data.len() as u64)?;
        self.blocks[i].data[off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
// Test sizes and offsets are small: narrowing casts cannot lose bits here.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::layout::Memory;

    const W: Window = Window {
        base: 0x10_0000,
        size: 0x10_0000,
    };

    #[test]
    fn allocations_are_aligned_zeroed_and_distinct() {
        let mut m = DeviceMem::new(W, 1 << 20);
        let a = m.alloc(10, 1, BlockKind::Alloc).unwrap();
        let b = m.alloc(300, 1, BlockKind::Alloc).unwrap();
        assert_eq!(a.0, W.base);
        assert_eq!(b.0, W.base + 256);
        assert_eq!(m.free_bytes(), (1 << 20) - 256 - 512);
        let mut buf = [1u8; 10];
        m.read(a.0, &mut buf).unwrap();
        assert_eq!(buf, [0; 10]);
    }

    #[test]
    fn accesses_past_the_requested_size_fault() {
        let mut m = DeviceMem::new(W, 1 << 20);
        let a = m.alloc(10, 1, BlockKind::Alloc).unwrap();
        m.write(a.0 + 6, &[1, 2, 3, 4]).unwrap();
        let err = m.write(a.0 + 7, &[1, 2, 3, 4]).unwrap_err();
        assert_eq!(
            err,
            Fault {
                addr: a.0 + 7,
                len: 4
            }
        );
        assert!(m.read(a.0 - 1, &mut [0; 1]).is_err());
        assert!(m.read(0, &mut [0; 1]).is_err());
        assert!(m.read(u64::MAX, &mut [0; 2]).is_err());
    }

    #[test]
    fn freed_space_is_reused_first_fit() {
        let mut m = DeviceMem::new(W, 1 << 20);
        let a = m.alloc(256, 1, BlockKind::Alloc).unwrap();
        let b = m.alloc(256, 1, BlockKind::Alloc).unwrap();
        m.free(a, BlockKind::Alloc).unwrap();
        assert!(m.read(a.0, &mut [0; 1]).is_err());
        let c = m.alloc(100, 1, BlockKind::Alloc).unwrap();
        assert_eq!(c, a);
        let d = m.alloc(300, 1, BlockKind::Alloc).unwrap();
        assert!(d.0 > b.0);
        assert_eq!(
            m.free(DevicePtr(b.0 + 1), BlockKind::Alloc)
                .map_err(|e| e.code()),
            Err(1)
        );
    }

    #[test]
    fn capacity_and_window_limit_allocations() {
        let mut m = DeviceMem::new(W, 1024);
        assert!(m.alloc(1024, 1, BlockKind::Alloc).is_ok());
        let e = m.alloc(1, 1, BlockKind::Alloc).unwrap_err();
        assert_eq!(e.code(), 2);
        let mut small = DeviceMem::new(Window { base: 0, size: 512 }, 1 << 20);
        small.alloc(512, 1, BlockKind::Alloc).unwrap();
        assert_eq!(small.alloc(1, 1, BlockKind::Alloc).unwrap_err().code(), 2);
        assert_eq!(
            m.alloc(u64::MAX, 1, BlockKind::Alloc).unwrap_err().code(),
            2
        );
    }

    #[test]
    fn a_size_the_host_cannot_hold_is_an_error_not_an_abort() {
        // A device as large as its window, asked for more than any host here has: the host
        // allocator refuses (or, with unlimited overcommit, grants untouched pages), and either
        // way the process lives on.
        let window = crac_gpu::Window::DEFAULT;
        let mut m = DeviceMem::new(window, window.size);
        match m.alloc(window.size / 2, 1, BlockKind::Alloc) {
            Ok(p) => {
                m.write(p.0, &[1]).unwrap();
                m.free(p, BlockKind::Alloc).unwrap();
            }
            Err(e) => assert_eq!(e.code(), 2, "{e}"),
        }
        assert_eq!(m.free_bytes(), window.size);
    }

    #[test]
    fn alloc_at_refuses_overlap_misalignment_and_outside() {
        let mut m = DeviceMem::new(W, 1 << 20);
        m.alloc_at(DevicePtr(W.base + 0x1000), 0x100, BlockKind::Alloc)
            .unwrap();
        for at in [W.base + 0xf01 - 1, W.base + 0x1000] {
            assert_eq!(
                m.alloc_at(DevicePtr(at), 0x101, BlockKind::Alloc)
                    .unwrap_err()
                    .code(),
                2,
                "{at:#x}"
            );
        }
        assert_eq!(
            m.alloc_at(DevicePtr(W.base + 1), 1, BlockKind::Alloc)
                .unwrap_err()
                .code(),
            1
        );
        assert_eq!(
            m.alloc_at(DevicePtr(W.end()), 1, BlockKind::Alloc)
                .unwrap_err()
                .code(),
            2
        );
        m.alloc_at(DevicePtr(W.base + 0xf00), 0x100, BlockKind::Alloc)
            .unwrap();
        let next = m.alloc(1, 1, BlockKind::Alloc).unwrap();
        assert_eq!(next.0, W.base);
        let allocs = m.allocations();
        assert_eq!(allocs.len(), 3);
        assert!(allocs.windows(2).all(|w| w[0].ptr < w[1].ptr));
    }

    #[test]
    fn copies_move_bytes_between_blocks_and_fill_sets_them() {
        let mut m = DeviceMem::new(W, 1 << 20);
        let a = m.alloc(8, 1, BlockKind::Alloc).unwrap();
        let b = m.alloc(8, 1, BlockKind::Variable(ModuleId(3))).unwrap();
        m.write(a.0, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        m.copy_within(b.0, a.0, 8).unwrap();
        m.copy_within(a.0 + 1, a.0, 7).unwrap();
        let mut buf = [0; 8];
        m.read(a.0, &mut buf).unwrap();
        assert_eq!(buf, [1, 1, 2, 3, 4, 5, 6, 7]);
        m.fill(b.0 + 2, 0xee, 3).unwrap();
        m.read(b.0, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 0xee, 0xee, 0xee, 6, 7, 8]);
        assert!(m.fill(b.0, 0, 9).is_err());
        assert_eq!(m.allocations().len(), 1);
        assert_eq!(m.block_at(b.0 + 7).map(|a| a.ptr), Some(b));
        assert_eq!(m.block_at(b.0 + 8), None);
        m.free_all(BlockKind::Variable(ModuleId(3)));
        assert!(m.read(b.0, &mut buf).is_err());
        assert_eq!(m.free_bytes(), (1 << 20) - 256);
    }

    #[test]
    fn variables_honour_larger_alignment() {
        let mut m = DeviceMem::new(W, 1 << 20);
        m.alloc(1, 1, BlockKind::Alloc).unwrap();
        let v = m.alloc(4, 4096, BlockKind::Alloc).unwrap();
        assert_eq!(v.0 % 4096, 0);
    }

    #[derive(Clone, Debug)]
    enum Step {
        Alloc(u64, u64),
        AllocAt(u64, u64),
        Free(usize),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..3000, 0u32..13).prop_map(|(size, a)| Step::Alloc(size, 1 << a)),
            (0u64..(W.size / 256), 1u64..3000).prop_map(|(slot, size)| Step::AllocAt(slot, size)),
            any::<usize>().prop_map(Step::Free),
        ]
    }

    proptest::proptest! {
        #[test]
        fn random_alloc_free_keeps_blocks_disjoint_and_contents_intact(
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let mut m = DeviceMem::new(W, 64 << 10);
            let mut live: Vec<(DevicePtr, u64, u8)> = Vec::new();
            for (i, st) in steps.into_iter().enumerate() {
                let tag = (i % 250) as u8 + 1;
                let placed = match st {
                    Step::Alloc(size, align) => m
                        .alloc(size, align, BlockKind::Alloc)
                        .ok()
                        .map(|p| (p, size)),
                    Step::AllocAt(slot, size) => {
                        let p = DevicePtr(W.base + slot * 256);
                        m.alloc_at(p, size, BlockKind::Alloc).ok().map(|()| (p, size))
                    }
                    Step::Free(k) if !live.is_empty() => {
                        let (p, _, _) = live.swap_remove(k % live.len());
                        m.free(p, BlockKind::Alloc).unwrap();
                        None
                    }
                    Step::Free(_) => None,
                };
                if let Some((p, size)) = placed {
                    proptest::prop_assert!(W.contains(p.0, size.max(1)));
                    m.fill(p.0, tag, size).unwrap();
                    live.push((p, size, tag));
                }
                let reserved: u64 = m.blocks.iter().map(|b| b.reserved).sum();
                proptest::prop_assert_eq!(reserved, m.used);
                proptest::prop_assert!(m.used <= 64 << 10);
                for w in m.blocks.windows(2) {
                    proptest::prop_assert!(w[0].start + w[0].reserved <= w[1].start);
                }
                for &(p, size, tag) in &live {
                    let mut buf = vec![0; usize::try_from(size).unwrap()];
                    m.read(p.0, &mut buf).unwrap();
                    proptest::prop_assert!(buf.iter().all(|&b| b == tag));
                }
            }
        }

        #[test]
        fn layout_and_contents_stay_mirrored(
            steps in proptest::collection::vec(step(), 1..60),
            peek_every in 1usize..6,
        ) {
            let m = Memory::new(W, 64 << 10);
            let mut live: Vec<(DevicePtr, u64, u8)> = Vec::new();
            for (i, st) in steps.into_iter().enumerate() {
                let tag = (i % 250) as u8 + 1;
                let init = |size: u64| vec![tag; size as usize];
                match st {
                    Step::Alloc(size, align) => {
                        if let Ok(p) = m.alloc(size, align, BlockKind::Alloc, &init(size)) {
                            live.push((p, size, tag));
                        }
                    }
                    Step::AllocAt(slot, size) => {
                        let p = DevicePtr(W.base + slot * 256);
                        if m.alloc_at(p, size, BlockKind::Alloc, &init(size)).is_ok() {
                            live.push((p, size, tag));
                        }
                    }
                    Step::Free(k) if !live.is_empty() => {
                        let (p, _, _) = live.swap_remove(k % live.len());
                        m.free(p, BlockKind::Alloc).unwrap();
                    }
                    Step::Free(_) => {}
                }
                // Changes may pile up between looks at the contents, as while a kernel runs.
                if i % peek_every == 0 {
                    let contents = m.contents();
                    proptest::prop_assert_eq!(contents.allocations(), m.layout().allocations());
                    for &(p, size, tag) in &live {
                        let mut buf = vec![0; size as usize];
                        contents.read(p.0, &mut buf).unwrap();
                        proptest::prop_assert!(buf.iter().all(|&b| b == tag));
                    }
                }
            }
        }
    }
}
