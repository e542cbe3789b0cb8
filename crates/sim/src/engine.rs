//! The `sim` device's work queues and the worker thread that runs them.
//!
//! Every stream is a FIFO of operations. An operation carries dependencies — "stream K has
//! completed its first N operations" — computed when it is submitted: the legacy default
//! stream's work depends on everything submitted earlier to blocking streams, a blocking stream's
//! work on everything submitted earlier to the legacy stream, and `stream_wait_event` adds the
//! event's recorded point. Dependencies always point at work submitted earlier, so submission
//! order is a valid schedule and nothing can deadlock.
//!
//! One worker runs the work, one operation at a time: of the operations whose dependencies are
//! met, the one on the highest-priority stream, oldest first. Kernels hold the device memory for
//! their whole run, so a second worker would gain nothing; CUDA never promises that streams run
//! concurrently. Allocations and the range checks of asynchronous copies use the memory's layout,
//! not its contents, so they do not wait for a running kernel (see [`crate::memory`]). Host
//! threads wait on a condition variable for the counters they need.
//!
//! Errors of asynchronous work are kept: a sticky one (a kernel fault) poisons the device — later
//! work is skipped and every call reports it — and a non-sticky one is reported once by the next
//! synchronising call.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::ThreadId;
use std::time::Instant;

use crac_gpu::{GpuError, Result, Stream, StreamFlags};
use crac_ptx::DeviceMemory;

use crate::layout::Memory;
use crate::memory::DeviceMem;

/// Internal key of a stream; the legacy default stream is [`LEGACY`].
pub(crate) type Key = u64;
/// Key of the legacy default stream.
pub(crate) const LEGACY: Key = 0;

/// A kernel run, prepared by the caller; it gets the device memory for its whole run.
pub(crate) type KernelJob = Box<dyn FnOnce(&mut DeviceMem) -> Result<()> + Send>;

/// One unit of stream work.
pub(crate) enum Work {
    /// Host-to-device copy of staged bytes.
    Write { dst: u64, data: Vec<u8> },
    /// A point where the worker hands the device to a waiting host thread: it signals `ready`
    /// and waits for `done` (synchronous copies run on the host thread in between, without a
    /// staging buffer, and still in stream order).
    Host {
        ready: mpsc::Sender<()>,
        done: mpsc::Receiver<()>,
    },
    /// Device-to-device copy.
    Copy { dst: u64, src: u64, len: u64 },
    /// Memset.
    Fill { dst: u64, value: u8, len: u64 },
    /// A kernel launch.
    Kernel(KernelJob),
    /// An event record: stamps the event's time when reached.
    Record { event: u64, generation: u64 },
    /// A pure ordering point (`stream_wait_event`).
    Nop,
    /// A host function (`cudaLaunchHostFunc`): runs on the worker, which waits for it. It runs
    /// even when the device is poisoned, with the sticky error, as CUDA calls callbacks.
    Callback(crac_gpu::HostFn),
}

struct Op {
    order: u64,
    deps: Vec<(Key, u64)>,
    work: Work,
}

pub(crate) struct StreamState {
    pub(crate) flags: StreamFlags,
    pub(crate) priority: i32,
    /// Synchronises with the legacy stream (created without `NON_BLOCKING`, or per-thread).
    blocking: bool,
    /// A per-thread default stream: never destroyed, not reachable by its key.
    per_thread: bool,
    destroyed: bool,
    queue: VecDeque<Op>,
    submitted: u64,
    completed: u64,
}

pub(crate) struct EventState {
    pub(crate) timing: bool,
    /// The stream and operation count the last record waits for.
    pub(crate) recorded: Option<(Key, u64)>,
    pub(crate) generation: u64,
    /// When the last record was reached (`None` until then, or if skipped after a fault).
    pub(crate) time: Option<Instant>,
}

pub(crate) struct State {
    pub(crate) streams: HashMap<Key, StreamState>,
    pub(crate) events: HashMap<u64, EventState>,
    per_thread: HashMap<ThreadId, Key>,
    pub(crate) next_key: u64,
    pub(crate) next_event: u64,
    next_order: u64,
    pub(crate) sticky: Option<GpuError>,
    pending: Option<GpuError>,
    shutdown: bool,
}

/// Streams, events and the worker's side of them.
pub(crate) struct Engine {
    state: Mutex<State>,
    /// Signalled when work is submitted (the worker waits on it).
    work_ready: Condvar,
    /// Signalled when work completes (host threads wait on it).
    work_done: Condvar,
    mem: Arc<Memory>,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent, and a
/// panic in a kernel is caught and turned into an error before it can unwind through a lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn reached(&self, (key, count): (Key, u64)) -> bool {
        self.streams.get(&key).is_none_or(|s| s.completed >= count)
    }

    /// The points a host must wait for to see all work on `key` done: its own, and for the
    /// legacy stream also what blocking streams had submitted.
    pub(crate) fn sync_points(&self, key: Key) -> Vec<(Key, u64)> {
        let mut points = Vec::new();
        if let Some(s) = self.streams.get(&key) {
            points.push((key, s.submitted));
        }
        if key == LEGACY {
            points.extend(
                self.streams
                    .iter()
                    .filter(|(k, s)| **k != LEGACY && s.blocking)
                    .map(|(k, s)| (*k, s.submitted)),
            );
        }
        points
    }

    pub(crate) fn all_reached(&self, points: &[(Key, u64)]) -> bool {
        points.iter().all(|p| self.reached(*p))
    }

    /// Every point submitted so far on every stream.
    pub(crate) fn all_points(&self) -> Vec<(Key, u64)> {
        self.streams
            .iter()
            .map(|(k, s)| (*k, s.submitted))
            .collect()
    }

    /// The sticky error, if the device is poisoned.
    pub(crate) fn check_sticky(&self) -> Result<()> {
        self.sticky.clone().map_or(Ok(()), Err)
    }

    /// The sticky error, else the pending asynchronous error (which is then cleared).
    pub(crate) fn take_error(&mut self) -> Result<()> {
        self.check_sticky()?;
        self.pending.take().map_or(Ok(()), Err)
    }

    /// The key of a stream handle as the calling thread means it.
    pub(crate) fn resolve(&mut self, stream: Stream) -> Result<Key> {
        if stream.is_legacy() {
            return Ok(LEGACY);
        }
        if stream.is_per_thread() {
            let thread = std::thread::current().id();
            if let Some(key) = self.per_thread.get(&thread) {
                return Ok(*key);
            }
            let key = self.new_stream(StreamFlags::DEFAULT, 0, true);
            self.per_thread.insert(thread, key);
            return Ok(key);
        }
        match self.streams.get(&stream.0) {
            Some(s) if !s.destroyed && !s.per_thread => Ok(stream.0),
            _ => Err(GpuError::InvalidResourceHandle(format!(
                "stream {:#x} does not exist or was destroyed",
                stream.0
            ))),
        }
    }

    pub(crate) fn new_stream(
        &mut self,
        flags: StreamFlags,
        priority: i32,
        per_thread: bool,
    ) -> Key {
        let key = self.next_key;
        self.next_key += 1;
        self.streams.insert(
            key,
            StreamState {
                flags,
                priority,
                blocking: !flags.non_blocking(),
                per_thread,
                destroyed: false,
                queue: VecDeque::new(),
                submitted: 0,
                completed: 0,
            },
        );
        key
    }

    /// Marks a stream destroyed; it is dropped once its queue drains.
    pub(crate) fn destroy_stream(&mut self, key: Key) {
        if let Some(s) = self.streams.get_mut(&key) {
            s.destroyed = true;
            if s.completed == s.submitted {
                self.streams.remove(&key);
            }
        }
    }

    /// Appends `work` to stream `key`; returns the point at which it is done.
    fn submit(&mut self, key: Key, work: Work, extra: Vec<(Key, u64)>) -> Result<(Key, u64)> {
        let mut deps = extra;
        let blocking = self.streams.get(&key).is_some_and(|s| s.blocking);
        if key == LEGACY {
            deps.extend(
                self.streams
                    .iter()
                    .filter(|(k, s)| **k != LEGACY && s.blocking && s.submitted > s.completed)
                    .map(|(k, s)| (*k, s.submitted)),
            );
        } else if blocking {
            if let Some(l) = self.streams.get(&LEGACY) {
                if l.submitted > l.completed {
                    deps.push((LEGACY, l.submitted));
                }
            }
        }
        deps.retain(|d| !self.reached(*d));
        let order = self.next_order;
        self.next_order += 1;
        let s = self.streams.get_mut(&key).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("stream {key:#x} does not exist"))
        })?;
        s.submitted += 1;
        s.queue.push_back(Op { order, deps, work });
        Ok((key, s.submitted))
    }

    /// Takes the next operation to run: dependencies met, highest stream priority (numerically
    /// lowest), then oldest.
    fn next_runnable(&mut self) -> Option<(Key, Op)> {
        let key = self
            .streams
            .iter()
            .filter_map(|(k, s)| s.queue.front().map(|op| (*k, op)))
            .filter(|(_, op)| op.deps.iter().all(|d| self.reached(*d)))
            .min_by_key(|(k, op)| (self.streams.get(k).map_or(0, |s| s.priority), op.order))
            .map(|(k, _)| k)?;
        let op = self.streams.get_mut(&key)?.queue.pop_front()?;
        Some((key, op))
    }

    fn complete(&mut self, key: Key, result: Result<()>, record: Option<(u64, u64)>) {
        if let Some((event, generation)) = record {
            if let Some(e) = self.events.get_mut(&event) {
                if e.generation == generation && self.sticky.is_none() {
                    e.time = Some(Instant::now());
                }
            }
        }
        if let Err(e) = result {
            if e.is_sticky() {
                self.sticky.get_or_insert(e);
            } else {
                self.pending.get_or_insert(e);
            }
        }
        if let Some(s) = self.streams.get_mut(&key) {
            s.completed += 1;
            if s.destroyed && s.completed == s.submitted {
                self.streams.remove(&key);
            }
        }
    }
}

impl Engine {
    /// An engine over `mem`, with the legacy stream; start [`Engine::run`] on a thread.
    pub(crate) fn new(mem: Arc<Memory>) -> Engine {
        let mut state = State {
            streams: HashMap::new(),
            events: HashMap::new(),
            per_thread: HashMap::new(),
            next_key: Stream::FIRST_CREATED,
            next_event: 0x8000_0000,
            next_order: 0,
            sticky: None,
            pending: None,
            shutdown: false,
        };
        state.streams.insert(
            LEGACY,
            StreamState {
                flags: StreamFlags::DEFAULT,
                priority: 0,
                blocking: false,
                per_thread: false,
                destroyed: false,
                queue: VecDeque::new(),
                submitted: 0,
                completed: 0,
            },
        );
        Engine {
            state: Mutex::new(state),
            work_ready: Condvar::new(),
            work_done: Condvar::new(),
            mem,
        }
    }

    /// The state, locked.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Submits `work` on `stream` after `extra` dependencies; fails at once if the device is
    /// poisoned.
    pub(crate) fn submit(
        &self,
        stream: Stream,
        work: Work,
        extra: Vec<(Key, u64)>,
    ) -> Result<(Key, u64)> {
        let mut st = self.state();
        st.check_sticky()?;
        let key = st.resolve(stream)?;
        let point = st.submit(key, work, extra)?;
        drop(st);
        self.work_ready.notify_one();
        Ok(point)
    }

    /// Waits until every point is reached (or the engine shuts down); returns the state.
    pub(crate) fn wait_for(&self, points: &[(Key, u64)]) -> MutexGuard<'_, State> {
        let mut st = self.state();
        while !st.all_reached(points) && !st.shutdown {
            st = self
                .work_done
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st
    }

    /// Waits for all work submitted so far on every stream.
    pub(crate) fn wait_idle(&self) -> MutexGuard<'_, State> {
        let points = self.state().all_points();
        self.wait_for(&points)
    }

    /// Forgets every created stream and event and any error (`cudaDeviceReset`); the caller
    /// has waited for outstanding work.
    pub(crate) fn reset(&self) {
        let mut st = self.state();
        st.streams.retain(|k, _| *k == LEGACY);
        if let Some(legacy) = st.streams.get_mut(&LEGACY) {
            legacy.queue.clear();
            legacy.completed = legacy.submitted;
        }
        st.events.clear();
        st.per_thread.clear();
        st.sticky = None;
        st.pending = None;
        drop(st);
        self.work_done.notify_all();
    }

    /// Stops the worker after its current operation; queued work is dropped.
    pub(crate) fn shutdown(&self) {
        self.state().shutdown = true;
        self.work_ready.notify_all();
        self.work_done.notify_all();
    }

    /// The worker loop: runs until [`Engine::shutdown`].
    pub(crate) fn run(&self) {
        loop {
            let (key, op, skip) = {
                let mut st = self.state();
                loop {
                    if st.shutdown {
                        return;
                    }
                    if let Some((key, op)) = st.next_runnable() {
                        let skip = st.sticky.is_some();
                        break (key, op, skip);
                    }
                    st = self
                        .work_ready
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let (result, record) = if skip {
                if let Work::Callback(f) = op.work {
                    f(self.state().check_sticky());
                }
                (Ok(()), None)
            } else {
                self.execute(op.work)
            };
            self.state().complete(key, result, record);
            self.work_done.notify_all();
        }
    }

    fn execute(&self, work: Work) -> (Result<()>, Option<(u64, u64)>) {
        let fault = |f: crac_ptx::Fault| GpuError::IllegalAddress(format!("copy touched {f}"));
        let result = match work {
            Work::Write { dst, data } => self.mem.contents().write(dst, &data).map_err(fault),
            Work::Host { ready, done } => {
                // The host may have given up (engine shut down): then there is nothing to wait for.
                if ready.send(()).is_ok() {
                    let _ = done.recv();
                }
                Ok(())
            }
            Work::Copy { dst, src, len } => self
                .mem
                .contents()
                .copy_within(dst, src, len)
                .map_err(fault),
            Work::Fill { dst, value, len } => {
                self.mem.contents().fill(dst, value, len).map_err(fault)
            }
            Work::Kernel(job) => {
                let mut mem = self.mem.contents();
                let mem = &mut *mem;
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job(mem)))
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        Err(GpuError::LaunchFailure(format!(
                            "the PTX interpreter panicked ({what}); please report this bug"
                        )))
                    })
            }
            Work::Record { event, generation } => return (Ok(()), Some((event, generation))),
            Work::Nop => Ok(()),
            Work::Callback(f) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(Ok(()))))
                    .map_err(|_| GpuError::Unknown("a host callback panicked".into()))
            }
        };
        (result, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crac_gpu::Window;

    fn state() -> State {
        let mem = Arc::new(Memory::new(Window::DEFAULT, 1 << 20));
        Engine::new(mem)
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn nop(st: &mut State, key: Key) -> (Key, u64) {
        st.submit(key, Work::Nop, Vec::new()).unwrap()
    }

    fn ready(st: &State, key: Key) -> bool {
        st.streams[&key]
            .queue
            .front()
            .is_some_and(|op| op.deps.iter().all(|d| st.reached(*d)))
    }

    fn finish(st: &mut State, key: Key) {
        st.streams.get_mut(&key).unwrap().queue.pop_front().unwrap();
        st.complete(key, Ok(()), None);
    }

    #[test]
    fn legacy_waits_for_blocking_streams_only() {
        let mut st = state();
        let b = st.new_stream(StreamFlags::DEFAULT, 0, false);
        let n = st.new_stream(StreamFlags::NON_BLOCKING, 0, false);
        nop(&mut st, b);
        nop(&mut st, n);
        nop(&mut st, LEGACY);
        assert!(ready(&st, b) && ready(&st, n));
        assert!(
            !ready(&st, LEGACY),
            "legacy work waits for earlier blocking-stream work"
        );
        finish(&mut st, b);
        assert!(ready(&st, LEGACY), "but not for the non-blocking stream's");
        // Later blocking-stream work waits for the legacy work; non-blocking work does not.
        nop(&mut st, b);
        nop(&mut st, n);
        assert!(!ready(&st, b));
        finish(&mut st, LEGACY);
        assert!(ready(&st, b));
        assert!(ready(&st, n));
    }

    #[test]
    fn sync_points_of_legacy_cover_blocking_streams() {
        let mut st = state();
        let b = st.new_stream(StreamFlags::DEFAULT, 0, false);
        let n = st.new_stream(StreamFlags::NON_BLOCKING, 0, false);
        nop(&mut st, b);
        nop(&mut st, n);
        let mut points = st.sync_points(LEGACY);
        points.sort_unstable();
        assert_eq!(points, vec![(LEGACY, 0), (b, 1)]);
        assert_eq!(st.sync_points(n), vec![(n, 1)]);
        assert!(!st.all_reached(&points));
        finish(&mut st, b);
        assert!(st.all_reached(&points));
    }

    #[test]
    fn per_thread_streams_are_per_thread_and_blocking() {
        let st = Mutex::new(state());
        let here = lock(&st).resolve(Stream::PER_THREAD).unwrap();
        assert_eq!(lock(&st).resolve(Stream::PER_THREAD).unwrap(), here);
        let there = std::thread::scope(|s| {
            s.spawn(|| lock(&st).resolve(Stream::PER_THREAD).unwrap())
                .join()
                .unwrap()
        });
        assert_ne!(here, there);
        let mut st = st.into_inner().unwrap();
        assert!(
            st.resolve(Stream(here)).is_err(),
            "a per-thread stream is not reachable by its key"
        );
        nop(&mut st, here);
        nop(&mut st, LEGACY);
        assert!(
            !ready(&st, LEGACY),
            "per-thread streams synchronise with legacy"
        );
    }

    #[test]
    fn runnable_work_goes_by_priority_then_age() {
        let mut st = state();
        let low = st.new_stream(StreamFlags::NON_BLOCKING, 0, false);
        let high = st.new_stream(StreamFlags::NON_BLOCKING, -5, false);
        nop(&mut st, low);
        nop(&mut st, low);
        nop(&mut st, high);
        let mut order = Vec::new();
        while let Some((key, _)) = st.next_runnable() {
            st.complete(key, Ok(()), None);
            order.push(key);
        }
        assert_eq!(order, vec![high, low, low]);
    }

    #[test]
    fn destroyed_streams_drain_then_vanish() {
        let mut st = state();
        let s = st.new_stream(StreamFlags::DEFAULT, 0, false);
        let point = nop(&mut st, s);
        st.destroy_stream(s);
        assert!(st.resolve(Stream(s)).is_err());
        assert!(!st.all_reached(&[point]));
        finish(&mut st, s);
        assert!(!st.streams.contains_key(&s));
        assert!(
            st.all_reached(&[point]),
            "a vanished stream's points count as reached"
        );
    }

    #[test]
    fn sticky_errors_stay_and_others_are_reported_once() {
        let mut st = state();
        st.complete(LEGACY, Err(GpuError::InvalidValue("late".into())), None);
        assert_eq!(st.take_error().unwrap_err().code(), 1);
        assert!(st.take_error().is_ok());
        st.complete(LEGACY, Err(GpuError::IllegalAddress("boom".into())), None);
        st.complete(LEGACY, Err(GpuError::LaunchFailure("later".into())), None);
        for _ in 0..2 {
            assert_eq!(st.take_error().unwrap_err().code(), 700);
        }
        assert_eq!(st.check_sticky().unwrap_err().code(), 700);
    }
}
