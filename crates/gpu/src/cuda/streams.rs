//! [`CudaBackend`]: streams, events and host functions (the driver's own objects, checked
//! against the set this backend handed out).
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint};

use super::context::{handle, run_host_fn, stream};
use super::driver::Handle;
use super::{CudaBackend, lock};
use crate::{Event, EventFlags, GpuError, HostFn, Result, Stream, StreamFlags};

impl CudaBackend {
    pub(super) fn stream_create(&self, flags: StreamFlags, priority: i32) -> Result<Stream> {
        let api = self.current()?;
        let mut s: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: out-pointer to a live local.
            unsafe { (api.stream_create)(&mut s, flags.0, priority) },
            "cuStreamCreateWithPriority",
        )?;
        lock(&self.live).streams.insert(s as u64);
        Ok(Stream(s as u64))
    }

    pub(super) fn stream_destroy(&self, s: Stream) -> Result<()> {
        if !lock(&self.live).streams.remove(&s.0) {
            return Err(GpuError::InvalidResourceHandle(format!(
                "stream {:#x}",
                s.0
            )));
        }
        let api = self.current()?;
        Self::check(
            // SAFETY: a stream this backend created, removed from the live set above.
            unsafe { (api.stream_destroy)(handle(s.0)) },
            "cuStreamDestroy",
        )
    }

    pub(super) fn stream_query(&self, s: Stream) -> Result<bool> {
        self.stream_known(s)?;
        let api = self.current()?;
        // SAFETY: a known stream.
        match Self::check(unsafe { (api.stream_query)(stream(s)) }, "cuStreamQuery") {
            Ok(()) => Ok(true),
            Err(GpuError::NotReady) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) fn stream_synchronize(&self, s: Stream) -> Result<()> {
        self.stream_known(s)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known stream.
            unsafe { (api.stream_synchronize)(stream(s)) },
            "cuStreamSynchronize",
        )
    }

    pub(super) fn stream_info(&self, s: Stream) -> Result<(StreamFlags, i32)> {
        self.stream_known(s)?;
        let api = self.current()?;
        let (mut flags, mut prio): (c_uint, c_int) = (0, 0);
        // SAFETY: a known stream, out-pointers to live locals.
        unsafe {
            Self::check(
                (api.stream_get_flags)(stream(s), &mut flags),
                "cuStreamGetFlags",
            )?;
            Self::check(
                (api.stream_get_priority)(stream(s), &mut prio),
                "cuStreamGetPriority",
            )?;
        }
        Ok((StreamFlags(flags), prio))
    }

    pub(super) fn stream_wait_event(&self, s: Stream, e: Event) -> Result<()> {
        self.stream_known(s)?;
        self.event_known(e)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known stream and event.
            unsafe { (api.stream_wait_event)(stream(s), handle(e.0), 0) },
            "cuStreamWaitEvent",
        )
    }

    pub(super) fn launch_host_func(&self, s: Stream, f: HostFn) -> Result<()> {
        self.stream_known(s)?;
        let api = self.current()?;
        let data = Box::into_raw(Box::new(f));
        // SAFETY: `run_host_fn` takes back the box exactly once when the driver calls it.
        let rc = unsafe { (api.launch_host_func)(stream(s), run_host_fn, data.cast()) };
        if rc != 0 {
            // SAFETY: the driver refused it, so the box is still ours.
            drop(unsafe { Box::from_raw(data) });
        }
        Self::check(rc, "cuLaunchHostFunc")
    }

    pub(super) fn event_create(&self, flags: EventFlags) -> Result<Event> {
        if flags.0 & !EventFlags::ALL != 0 {
            return Err(GpuError::InvalidValue(format!(
                "event flags {:#x}",
                flags.0
            )));
        }
        let api = self.current()?;
        let mut e: Handle = std::ptr::null_mut();
        Self::check(
            // SAFETY: out-pointer to a live local; the flag bits are the driver's CU_EVENT_*.
            unsafe { (api.event_create)(&mut e, flags.0) },
            "cuEventCreate",
        )?;
        lock(&self.live).events.insert(e as u64);
        Ok(Event(e as u64))
    }

    pub(super) fn event_destroy(&self, e: Event) -> Result<()> {
        if !lock(&self.live).events.remove(&e.0) {
            return Err(GpuError::InvalidResourceHandle(format!("event {:#x}", e.0)));
        }
        let api = self.current()?;
        Self::check(
            // SAFETY: an event this backend created.
            unsafe { (api.event_destroy)(handle(e.0)) },
            "cuEventDestroy",
        )
    }

    pub(super) fn event_record(&self, e: Event, s: Stream) -> Result<()> {
        self.stream_known(s)?;
        self.event_known(e)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known event and stream.
            unsafe { (api.event_record)(handle(e.0), stream(s)) },
            "cuEventRecord",
        )
    }

    pub(super) fn event_query(&self, e: Event) -> Result<bool> {
        self.event_known(e)?;
        let api = self.current()?;
        // SAFETY: a known event.
        match Self::check(unsafe { (api.event_query)(handle(e.0)) }, "cuEventQuery") {
            Ok(()) => Ok(true),
            Err(GpuError::NotReady) => Ok(false),
            Err(err) => Err(err),
        }
    }

    pub(super) fn event_synchronize(&self, e: Event) -> Result<()> {
        self.event_known(e)?;
        let api = self.current()?;
        Self::check(
            // SAFETY: a known event.
            unsafe { (api.event_synchronize)(handle(e.0)) },
            "cuEventSynchronize",
        )
    }

    pub(super) fn event_elapsed_ms(&self, start: Event, end: Event) -> Result<f32> {
        self.event_known(start)?;
        self.event_known(end)?;
        let api = self.current()?;
        let mut ms = 0f32;
        Self::check(
            // SAFETY: known events, out-pointer to a live local.
            unsafe { (api.event_elapsed)(&mut ms, handle(start.0), handle(end.0)) },
            "cuEventElapsedTime",
        )?;
        Ok(ms)
    }
}
