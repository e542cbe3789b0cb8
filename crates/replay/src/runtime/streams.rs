//! Streams, events (virtual handles over the backend's) and host callbacks.
//!
//! Host callbacks run program code, which must run with the program's fs on a program-side
//! thread. So the backend's stream work for a callback only *hands it over*: it queues a
//! [`HostCallback`] record and waits; the shim's callback thread takes it with
//! `__crac_host_callback_next` ([`Callbacks::next`]), runs it, and reports
//! `__crac_host_callback_done` ([`Callbacks::done`]), which lets the stream go on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use crac_abi::{CALLBACK_HOST_FUNC, CALLBACK_STREAM, HostCallback};
use crac_gpu::{EventFlags, GpuError, Stream, StreamFlags};

use super::{EventEntry, Runtime, StreamEntry, lock};

/// How long `__crac_host_callback_next` waits before answering "nothing yet" (the shim asks
/// again); bounded so a thread is never stuck in the lower half for good.
const NEXT_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Queue {
    due: VecDeque<(HostCallback, mpsc::Sender<()>)>,
    running: HashMap<u64, mpsc::Sender<()>>,
    next_token: u64,
    /// Bumped by [`Callbacks::interrupt`]: a waiting [`Callbacks::next`] returns at once.
    interrupts: u64,
}

/// Callbacks handed over by the backend, waiting for the shim's callback thread.
#[derive(Default)]
pub struct Callbacks {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Callbacks {
    /// Queues `cb` (its token is assigned here) and blocks until [`Callbacks::done`] names it.
    fn hand_over(&self, mut cb: HostCallback) {
        let (tx, rx) = mpsc::channel();
        {
            let mut q = lock(&self.queue);
            q.next_token += 1;
            cb.token = q.next_token;
            q.due.push_back((cb, tx));
        }
        self.ready.notify_one();
        // A closed channel means the runtime is gone: nothing left to wait for.
        let _ = rx.recv();
    }

    /// The next due callback, waiting up to a second; `None` if none came (or on
    /// [`Callbacks::interrupt`]).
    pub fn next(&self) -> Option<HostCallback> {
        let mut q = lock(&self.queue);
        if q.due.is_empty() {
            let seen = q.interrupts;
            q = self
                .ready
                .wait_timeout_while(q, NEXT_WAIT, |q| q.due.is_empty() && q.interrupts == seen)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let (cb, tx) = q.due.pop_front()?;
        q.running.insert(cb.token, tx);
        Some(cb)
    }

    /// Makes a [`Callbacks::next`] waiting now return at once (a checkpoint pausing the
    /// callback thread needs it out of the lower half).
    pub fn interrupt(&self) {
        lock(&self.queue).interrupts += 1;
        self.ready.notify_all();
    }

    /// Marks the callback `token` as run: its stream goes on.
    pub fn done(&self, token: u64) -> Result<(), GpuError> {
        let tx = lock(&self.queue).running.remove(&token).ok_or_else(|| {
            GpuError::InvalidValue(format!("no host callback {token} is running"))
        })?;
        // The waiting stream work may have been dropped with the device: nothing to wake.
        let _ = tx.send(());
        Ok(())
    }
}

impl Runtime {
    /// `cudaStreamCreateWithPriority` (and the plainer forms): a new virtual handle.
    pub(crate) fn stream_create(&self, flags: u32, priority: i32) -> Result<u64, GpuError> {
        if flags & !1 != 0 {
            return Err(GpuError::InvalidValue(format!(
                "unknown stream flags {flags:#x}"
            )));
        }
        let real = self.backend.stream_create(StreamFlags(flags), priority)?;
        Ok(lock(&self.streams).insert(StreamEntry {
            real,
            flags,
            priority,
        }))
    }

    /// `cudaStreamDestroy`.
    pub(crate) fn stream_destroy(&self, v: u64) -> Result<(), GpuError> {
        let real = lock(&self.streams).get(v).ok_or_else(|| {
            GpuError::InvalidResourceHandle(format!("stream {v:#x} is not a created stream"))
        })?;
        self.backend.stream_destroy(real.real)?;
        lock(&self.streams).remove(v);
        Ok(())
    }

    /// `cudaStreamQuery`: `cudaErrorNotReady` while work is pending.
    pub(crate) fn stream_query(&self, v: u64) -> Result<(), GpuError> {
        match self.backend.stream_query(self.stream(v)?)? {
            true => Ok(()),
            false => Err(GpuError::NotReady),
        }
    }

    /// `cudaStreamGetFlags`/`GetPriority`.
    pub(crate) fn stream_info(&self, v: u64) -> Result<(u32, i32), GpuError> {
        let (flags, priority) = self.backend.stream_info(self.stream(v)?)?;
        Ok((flags.0, priority))
    }

    /// `cudaLaunchHostFunc` (`kind` [`CALLBACK_HOST_FUNC`]) and `cudaStreamAddCallback`
    /// ([`CALLBACK_STREAM`]).
    pub(crate) fn add_callback(
        &self,
        v: u64,
        func: u64,
        user_data: u64,
        kind: u32,
    ) -> Result<(), GpuError> {
        if func == 0 {
            return Err(GpuError::InvalidValue("the host function is null".into()));
        }
        debug_assert!(kind == CALLBACK_HOST_FUNC || kind == CALLBACK_STREAM);
        let stream = self.stream(v)?;
        let callbacks = Arc::clone(&self.callbacks);
        let f = move |status: Result<(), GpuError>| {
            let status = status
                .err()
                .map_or(0, |e| u32::try_from(e.code()).unwrap_or(999));
            callbacks.hand_over(HostCallback {
                func,
                user_data,
                stream: v,
                token: 0,
                kind,
                status,
            });
        };
        self.backend.launch_host_func(stream, Box::new(f))
    }

    /// The callback queue (the shim's callback thread drains it).
    pub fn callbacks(&self) -> &Callbacks {
        &self.callbacks
    }

    /// `cudaEventCreateWithFlags`.
    pub(crate) fn event_create(&self, flags: u32) -> Result<u64, GpuError> {
        let real = self.backend.event_create(EventFlags(flags))?;
        Ok(lock(&self.events).insert(EventEntry {
            real,
            flags,
            recorded: false,
        }))
    }

    /// `cudaEventRecord`; the event is marked as recorded, so a restart records it again.
    pub(crate) fn event_record(&self, v: u64, stream: u64) -> Result<(), GpuError> {
        let real = self.event(v)?;
        self.backend.event_record(real, self.stream(stream)?)?;
        if let Some(e) = lock(&self.events).get_mut(v) {
            e.recorded = true;
        }
        Ok(())
    }

    /// `cudaEventDestroy`.
    pub(crate) fn event_destroy(&self, v: u64) -> Result<(), GpuError> {
        let real = self.event(v)?;
        self.backend.event_destroy(real)?;
        lock(&self.events).remove(v);
        Ok(())
    }

    /// `cudaEventQuery`: `cudaErrorNotReady` until reached.
    pub(crate) fn event_query(&self, v: u64) -> Result<(), GpuError> {
        match self.backend.event_query(self.event(v)?)? {
            true => Ok(()),
            false => Err(GpuError::NotReady),
        }
    }

    /// `cudaEventElapsedTime`.
    pub(crate) fn event_elapsed(&self, start: u64, end: u64) -> Result<f32, GpuError> {
        self.backend
            .event_elapsed_ms(self.event(start)?, self.event(end)?)
    }

    /// `cudaDeviceReset`: the backend frees every allocation and destroys every stream and
    /// event, so their entries go.
    pub(crate) fn device_reset(&self) -> Result<(), GpuError> {
        self.backend.device_reset()?;
        lock(&self.streams).clear();
        lock(&self.events).clear();
        self.allocations.clear();
        Ok(())
    }

    /// Virtual event handles and the backend events behind them (re-bound at restart).
    pub fn event_handles(&self) -> Vec<(u64, crac_gpu::Event)> {
        let mut v: Vec<_> = lock(&self.events)
            .entries()
            .map(|(h, e)| (h, e.real))
            .collect();
        v.sort();
        v
    }

    /// Virtual stream handles and the backend streams behind them (re-bound at restart).
    pub fn stream_handles(&self) -> Vec<(u64, Stream)> {
        let mut v: Vec<_> = lock(&self.streams)
            .entries()
            .map(|(h, s)| (h, s.real))
            .collect();
        v.sort();
        v
    }
}
