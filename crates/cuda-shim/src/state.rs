//! Per-thread state the shim keeps in the program's half: the last error
//! (`cudaGetLastError`/`cudaPeekAtLastError`) and the launch configurations pushed by
//! `__cudaPushCallConfiguration` for the kernel stub to pop.

use std::cell::{Cell, RefCell};

use crac_abi::Dim3;

/// One `<<<grid, block, shared, stream>>>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchConfig {
    /// Grid shape.
    pub grid: Dim3,
    /// Block shape.
    pub block: Dim3,
    /// Dynamic shared memory bytes.
    pub shared: usize,
    /// Stream handle as the program passed it.
    pub stream: u64,
}

thread_local! {
    static LAST_ERROR: Cell<u32> = const { Cell::new(0) };
    static CAPTURE_MODE: Cell<i32> = const { Cell::new(0) };
    static CONFIGS: RefCell<Vec<LaunchConfig>> = const { RefCell::new(Vec::new()) };
}

/// `cudaErrorNotReady`: an answer of the query calls, not a failure, so never a last error.
const NOT_READY: u32 = 600;

/// Records `code` as the thread's last error unless it is success or `cudaErrorNotReady`;
/// returns it.
#[inline]
pub fn record(code: u32) -> u32 {
    if code != 0 && code != NOT_READY {
        LAST_ERROR.with(|c| c.set(code));
    }
    code
}

/// The last error, reset to success (`cudaGetLastError`).
pub fn take_last_error() -> u32 {
    LAST_ERROR.with(|c| c.replace(0))
}

/// The last error, kept (`cudaPeekAtLastError`).
pub fn peek_last_error() -> u32 {
    LAST_ERROR.with(Cell::get)
}

/// `cudaThreadExchangeStreamCaptureMode`: sets the thread's capture mode, returns the old one.
pub fn exchange_capture_mode(mode: i32) -> i32 {
    CAPTURE_MODE.with(|c| c.replace(mode))
}

/// `__cudaPushCallConfiguration`. Runs under `extern "C"`, so it never panics: where the
/// list cannot be reached (a launch from a signal handler that interrupted a push, or from a
/// thread-local destructor after the list's) the configuration is dropped, and the stub's pop
/// reports `cudaErrorMissingConfiguration`.
pub fn push_config(config: LaunchConfig) {
    let _ = CONFIGS.try_with(|c| {
        if let Ok(mut list) = c.try_borrow_mut() {
            list.push(config);
        }
    });
}

/// `__cudaPopCallConfiguration`: the innermost pushed configuration (`None` where the list
/// cannot be reached, as in [`push_config`]).
pub fn pop_config() -> Option<LaunchConfig> {
    CONFIGS
        .try_with(|c| c.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_is_per_thread_and_reset_by_get() {
        assert_eq!(record(0), 0);
        assert_eq!(peek_last_error(), 0);
        record(9);
        record(0);
        record(NOT_READY);
        assert_eq!(peek_last_error(), 9);
        std::thread::spawn(|| assert_eq!(peek_last_error(), 0))
            .join()
            .unwrap();
        assert_eq!(take_last_error(), 9);
        assert_eq!(take_last_error(), 0);
    }

    #[test]
    fn configurations_pop_innermost_first() {
        let c = |x| LaunchConfig {
            grid: Dim3 { x, y: 1, z: 1 },
            block: Dim3 { x: 1, y: 1, z: 1 },
            shared: 0,
            stream: 0,
        };
        push_config(c(1));
        push_config(c(2));
        assert_eq!(pop_config(), Some(c(2)));
        assert_eq!(pop_config(), Some(c(1)));
        assert_eq!(pop_config(), None);
    }

    #[test]
    fn a_push_and_pop_into_a_busy_list_do_not_panic() {
        let c = LaunchConfig {
            grid: Dim3 { x: 1, y: 1, z: 1 },
            block: Dim3 { x: 1, y: 1, z: 1 },
            shared: 0,
            stream: 0,
        };
        // What a launch from a signal handler that interrupted a push sees.
        CONFIGS.with(|list| {
            let _busy = list.borrow_mut();
            push_config(c);
            assert_eq!(pop_config(), None);
        });
        assert_eq!(pop_config(), None, "the dropped configuration is not kept");
    }
}
