//! The device memory's layout, kept apart from its contents.
//!
//! A running kernel holds the contents ([`DeviceMem`]) for its whole run. So that allocations,
//! frees, module loads and the range checks of asynchronous copies need not wait for it,
//! [`Memory`] keeps the placement in a second, unbacked [`DeviceMem`] (the *layout*) and queues
//! each change of placement; the changes reach the contents the next time anyone takes them —
//! before any work that could use the new blocks — or sooner when the contents are free.

use std::sync::{Mutex, MutexGuard, TryLockError};

use crac_gpu::{DevicePtr, GpuError, Window};
use crac_ptx::{DeviceMemory, Fault};

use crate::engine::lock;
use crate::memory::{BlockKind, DeviceMem};

/// A change of placement on its way from the layout to the contents.
enum Change {
    Add {
        ptr: DevicePtr,
        size: u64,
        kind: BlockKind,
        init: Vec<u8>,
    },
    Remove(DevicePtr, BlockKind),
    RemoveAll(BlockKind),
}

/// The device's memory as the rest of the device uses it: layout, contents and the changes
/// between them. Lock order: layout, then pending; contents, then pending.
pub(crate) struct Memory {
    layout: Mutex<DeviceMem>,
    contents: Mutex<DeviceMem>,
    pending: Mutex<Vec<Change>>,
}

impl Memory {
    /// Empty memory placing blocks in `window`, holding at most `capacity` bytes.
    pub(crate) fn new(window: Window, capacity: u64) -> Memory {
        Memory {
            layout: Mutex::new(DeviceMem::layout(window, capacity)),
            // The layout enforces the capacity; the contents only mirror it.
            contents: Mutex::new(DeviceMem::new(window, u64::MAX)),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The placement (never held by a kernel).
    pub(crate) fn layout(&self) -> MutexGuard<'_, DeviceMem> {
        lock(&self.layout)
    }

    /// The bytes, with every queued placement change applied.
    pub(crate) fn contents(&self) -> MutexGuard<'_, DeviceMem> {
        let mut contents = lock(&self.contents);
        self.apply_pending(&mut contents);
        contents
    }

    /// Applies the queued changes now if no kernel holds the contents, so that a program that
    /// allocates and frees without touching device memory does not pile them up.
    fn settle(&self) {
        let contents = match self.contents.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(mut contents) = contents {
            self.apply_pending(&mut contents);
        }
    }

    fn apply_pending(&self, contents: &mut DeviceMem) {
        for change in lock(&self.pending).drain(..) {
            // The layout accepted each change, and the contents mirror the layout, so none
            // can fail.
            let applied = match change {
                Change::Add {
                    ptr,
                    size,
                    kind,
                    init,
                } => contents
                    .alloc_at(ptr, size, kind)
                    .and_then(|()| contents.write(ptr.0, &init).map_err(fault_error)),
                Change::Remove(ptr, kind) => contents.free(ptr, kind),
                Change::RemoveAll(kind) => {
                    contents.free_all(kind);
                    Ok(())
                }
            };
            debug_assert!(
                applied.is_ok(),
                "contents diverged from layout: {applied:?}"
            );
        }
    }

    /// Places a block of `size` bytes holding `init` (then zeros), anywhere aligned to `align`.
    pub(crate) fn alloc(
        &self,
        size: u64,
        align: u64,
        kind: BlockKind,
        init: &[u8],
    ) -> Result<DevicePtr, GpuError> {
        let mut layout = self.layout();
        let ptr = layout.alloc(size, align, kind)?;
        self.queue_add(ptr, size, kind, init);
        Ok(ptr)
    }

    /// Places a block of `size` bytes holding `init` (then zeros) exactly at `ptr`.
    pub(crate) fn alloc_at(
        &self,
        ptr: DevicePtr,
        size: u64,
        kind: BlockKind,
        init: &[u8],
    ) -> Result<(), GpuError> {
        let mut layout = self.layout();
        layout.alloc_at(ptr, size, kind)?;
        self.queue_add(ptr, size, kind, init);
        Ok(())
    }

    /// Queues the contents of a block already placed in the layout.
    pub(crate) fn queue_add(&self, ptr: DevicePtr, size: u64, kind: BlockKind, init: &[u8]) {
        let init = init[..init.len().min(usize::try_from(size).unwrap_or(usize::MAX))].to_vec();
        let backlog = {
            let mut pending = lock(&self.pending);
            pending.push(Change::Add {
                ptr,
                size,
                kind,
                init,
            });
            pending.len()
        };
        if backlog >= 64 {
            self.settle();
        }
    }

    /// Frees the block of `kind` starting at `ptr`.
    pub(crate) fn free(&self, ptr: DevicePtr, kind: BlockKind) -> Result<(), GpuError> {
        let mut layout = self.layout();
        layout.free(ptr, kind)?;
        lock(&self.pending).push(Change::Remove(ptr, kind));
        drop(layout);
        self.settle();
        Ok(())
    }

    /// Frees every block of `kind`.
    pub(crate) fn free_all(&self, kind: BlockKind) {
        let mut layout = self.layout();
        layout.free_all(kind);
        lock(&self.pending).push(Change::RemoveAll(kind));
        drop(layout);
        self.settle();
    }
}

fn fault_error(f: Fault) -> GpuError {
    GpuError::InvalidValue(format!("{f} is not inside one allocation"))
}
