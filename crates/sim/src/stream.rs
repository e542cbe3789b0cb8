//! Stream and event operations of the `sim` device, on top of the [`Engine`] queues.
//!
//! Event timing comes from the host clock when the worker reaches the record, so elapsed
//! times measure the sim's own work (interpreting a kernel is far slower than a GPU runs it).

use std::sync::mpsc;

use crac_gpu::{Event, EventFlags, GpuError, Result, Stream, StreamFlags};

use crate::engine::{Engine, EventState, Key, Work};

fn no_event(event: Event) -> GpuError {
    GpuError::InvalidResourceHandle(format!(
        "event {:#x} does not exist or was destroyed",
        event.0
    ))
}

impl Engine {
    /// `cudaStreamCreateWithPriority`; `range` is (least, greatest) priority.
    pub(crate) fn stream_create(
        &self,
        flags: StreamFlags,
        priority: i32,
        range: (i32, i32),
    ) -> Result<Stream> {
        if flags.0 & !StreamFlags::NON_BLOCKING.0 != 0 {
            return Err(GpuError::InvalidValue(format!(
                "unknown stream flags {:#x}",
                flags.0
            )));
        }
        let mut st = self.state();
        st.check_sticky()?;
        // `range` comes from the device's properties, which callers may fill in either order;
        // `clamp` would panic on a reversed one.
        let priority = priority.clamp(range.0.min(range.1), range.0.max(range.1));
        Ok(Stream(st.new_stream(flags, priority, false)))
    }

    /// `cudaStreamDestroy`: the handle dies now, its queued work still runs.
    pub(crate) fn stream_destroy(&self, stream: Stream) -> Result<()> {
        let mut st = self.state();
        st.check_sticky()?;
        if stream.is_legacy() || stream.is_per_thread() {
            return Err(GpuError::InvalidResourceHandle(
                "the default streams cannot be destroyed".into(),
            ));
        }
        let key = st.resolve(stream)?;
        st.destroy_stream(key);
        Ok(())
    }

    /// `cudaStreamQuery`.
    pub(crate) fn stream_query(&self, stream: Stream) -> Result<bool> {
        let mut st = self.state();
        st.check_sticky()?;
        let key = st.resolve(stream)?;
        let points = st.sync_points(key);
        Ok(st.all_reached(&points))
    }

    /// `cudaStreamSynchronize`.
    pub(crate) fn stream_synchronize(&self, stream: Stream) -> Result<()> {
        let points = {
            let mut st = self.state();
            let key = st.resolve(stream)?;
            st.sync_points(key)
        };
        self.wait_for(&points).take_error()
    }

    /// `cudaStreamGetFlags` and `cudaStreamGetPriority`.
    pub(crate) fn stream_info(&self, stream: Stream) -> Result<(StreamFlags, i32)> {
        let mut st = self.state();
        let key = st.resolve(stream)?;
        let s = st
            .streams
            .get(&key)
            .ok_or_else(|| GpuError::InvalidResourceHandle("stream is gone".into()))?;
        Ok((s.flags, s.priority))
    }

    /// `cudaStreamWaitEvent`.
    pub(crate) fn stream_wait_event(&self, stream: Stream, event: Event) -> Result<()> {
        let recorded = {
            let st = self.state();
            st.events
                .get(&event.0)
                .ok_or_else(|| no_event(event))?
                .recorded
        };
        self.submit(stream, Work::Nop, recorded.into_iter().collect())
            .map(|_| ())
    }

    /// Runs `f` on the calling thread at the current end of `stream`, in stream order, while
    /// the worker waits (synchronous copies: `cudaMemcpy`). Reports the sticky error instead
    /// of running `f` if the device is poisoned, and a pending asynchronous error after it.
    pub(crate) fn at_point<R>(&self, stream: Stream, f: impl FnOnce() -> Result<R>) -> Result<R> {
        let (ready_tx, ready) = mpsc::channel();
        let (done, done_rx) = mpsc::channel();
        let work = Work::Host {
            ready: ready_tx,
            done: done_rx,
        };
        let point = self.submit(stream, work, Vec::new())?;
        if ready.recv().is_err() {
            // The worker dropped the point unrun: the device is poisoned or shutting down.
            self.state().take_error()?;
            return Err(GpuError::Unknown(
                "the sim device stopped before the copy ran".into(),
            ));
        }
        let result = f();
        // The worker is waiting for this; if it is gone there is nobody left to tell.
        let _ = done.send(());
        // Return only once the point counts as done, so queries after a copy see it finished.
        let mut st = self.wait_for(&[point]);
        let value = result?;
        st.take_error()?;
        Ok(value)
    }

    /// `cudaEventCreateWithFlags`.
    pub(crate) fn event_create(&self, flags: EventFlags) -> Result<Event> {
        if flags.0 & !EventFlags::ALL != 0 {
            return Err(GpuError::InvalidValue(format!(
                "unknown event flags {:#x}",
                flags.0
            )));
        }
        if flags.0 & EventFlags::INTERPROCESS.0 != 0 && !flags.timing_disabled() {
            return Err(GpuError::InvalidValue(
                "an interprocess event needs cudaEventDisableTiming".into(),
            ));
        }
        let mut st = self.state();
        st.check_sticky()?;
        let id = st.next_event;
        st.next_event += 1;
        st.events.insert(
            id,
            EventState {
                timing: !flags.timing_disabled(),
                recorded: None,
                generation: 0,
                time: None,
            },
        );
        Ok(Event(id))
    }

    /// `cudaEventDestroy`.
    pub(crate) fn event_destroy(&self, event: Event) -> Result<()> {
        let mut st = self.state();
        st.check_sticky()?;
        st.events
            .remove(&event.0)
            .map(|_| ())
            .ok_or_else(|| no_event(event))
    }

    /// `cudaEventRecord`. A record that fails (bad stream, poisoned device) leaves the event
    /// as it was.
    pub(crate) fn event_record(&self, event: Event, stream: Stream) -> Result<()> {
        let generation = {
            let mut st = self.state();
            st.check_sticky()?;
            st.resolve(stream)?;
            let e = st.events.get_mut(&event.0).ok_or_else(|| no_event(event))?;
            e.generation += 1;
            e.time = None;
            e.generation
        };
        let point = self.submit(
            stream,
            Work::Record {
                event: event.0,
                generation,
            },
            Vec::new(),
        )?;
        let mut st = self.state();
        if let Some(e) = st.events.get_mut(&event.0) {
            if e.generation == generation {
                e.recorded = Some(point);
            }
        }
        Ok(())
    }

    fn event_point(&self, event: Event) -> Result<Option<(Key, u64)>> {
        let st = self.state();
        st.check_sticky()?;
        Ok(st
            .events
            .get(&event.0)
            .ok_or_else(|| no_event(event))?
            .recorded)
    }

    /// `cudaEventQuery`.
    pub(crate) fn event_query(&self, event: Event) -> Result<bool> {
        let point = self.event_point(event)?;
        Ok(point.is_none_or(|p| self.state().all_reached(&[p])))
    }

    /// `cudaEventSynchronize`.
    pub(crate) fn event_synchronize(&self, event: Event) -> Result<()> {
        let point = self.event_point(event)?;
        let points: Vec<_> = point.into_iter().collect();
        self.wait_for(&points).take_error()
    }

    /// `cudaEventElapsedTime`, in milliseconds.
    pub(crate) fn event_elapsed_ms(&self, start: Event, end: Event) -> Result<f32> {
        let st = self.state();
        st.check_sticky()?;
        let mut times = [None; 2];
        for (slot, event) in times.iter_mut().zip([start, end]) {
            let e = st.events.get(&event.0).ok_or_else(|| no_event(event))?;
            if !e.timing {
                return Err(GpuError::InvalidResourceHandle(format!(
                    "event {:#x} was created with cudaEventDisableTiming",
                    event.0
                )));
            }
            let point = e.recorded.ok_or_else(|| {
                GpuError::InvalidResourceHandle(format!("event {:#x} was never recorded", event.0))
            })?;
            if !st.all_reached(&[point]) {
                return Err(GpuError::NotReady);
            }
            *slot = e.time;
        }
        match times {
            [Some(a), Some(b)] => Ok(if b >= a {
                b.duration_since(a).as_secs_f32() * 1e3
            } else {
                -(a.duration_since(b).as_secs_f32() * 1e3)
            }),
            _ => Err(GpuError::NotReady),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, mpsc};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use crac_gpu::{ALLOC_ALIGN, Window};
    use crac_ptx::DeviceMemory;

    use super::*;
    use crate::engine::lock;
    use crate::layout::Memory;
    use crate::memory::{BlockKind, DeviceMem};

    /// An engine with its worker and one 256-byte allocation at `base`.
    struct Harness {
        engine: Arc<Engine>,
        worker: Option<JoinHandle<()>>,
        mem: Arc<Memory>,
        base: u64,
        log: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Harness {
        fn new() -> Harness {
            let mem = Arc::new(Memory::new(Window::DEFAULT, 1 << 20));
            let base = mem.alloc(ALLOC_ALIGN, 1, BlockKind::Alloc, &[]).unwrap().0;
            let engine = Arc::new(Engine::new(mem.clone()));
            let runner = engine.clone();
            let worker = Some(std::thread::spawn(move || runner.run()));
            Harness {
                engine,
                worker,
                mem,
                base,
                log: Arc::default(),
            }
        }

        /// A fake kernel: sleeps, then applies `f` to the byte at `base` and logs `name`.
        fn kernel(&self, name: &'static str, ms: u64, f: fn(u8) -> u8) -> Work {
            let (base, log) = (self.base, self.log.clone());
            Work::Kernel(Box::new(move |mem: &mut DeviceMem| {
                std::thread::sleep(Duration::from_millis(ms));
                let mut b = [0];
                mem.read(base, &mut b)
                    .map_err(|e| GpuError::IllegalAddress(e.to_string()))?;
                mem.write(base, &[f(b[0])])
                    .map_err(|e| GpuError::IllegalAddress(e.to_string()))?;
                lock(&log).push(name);
                Ok(())
            }))
        }

        /// Holds the worker until the returned sender is dropped or sent to (or 10 s pass).
        fn gate(&self, stream: Stream) -> mpsc::Sender<()> {
            let (open, wait) = mpsc::channel::<()>();
            let job = move |_: &mut DeviceMem| {
                let _ = wait.recv_timeout(Duration::from_secs(10));
                Ok(())
            };
            self.engine
                .submit(stream, Work::Kernel(Box::new(job)), Vec::new())
                .unwrap();
            open
        }

        fn byte(&self, stream: Stream) -> u8 {
            let mem = self.mem.clone();
            let mut b = [0];
            self.engine
                .at_point(stream, || {
                    mem.contents()
                        .read(self.base, &mut b)
                        .map_err(|e| GpuError::Unknown(e.to_string()))
                })
                .unwrap();
            b[0]
        }

        fn log(&self) -> Vec<&'static str> {
            lock(&self.log).clone()
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.engine.shutdown();
            if let Some(w) = self.worker.take() {
                w.join().unwrap();
            }
        }
    }

    #[test]
    fn work_on_one_stream_runs_in_order_asynchronously() {
        let h = Harness::new();
        let s = h
            .engine
            .stream_create(StreamFlags::NON_BLOCKING, 0, (0, -5))
            .unwrap();
        let fill = Work::Fill {
            dst: h.base,
            value: 10,
            len: 1,
        };
        h.engine.submit(s, fill, Vec::new()).unwrap();
        h.engine
            .submit(s, h.kernel("inc", 30, |b| b + 1), Vec::new())
            .unwrap();
        h.engine
            .submit(s, h.kernel("double", 0, |b| b * 2), Vec::new())
            .unwrap();
        assert!(
            !h.engine.stream_query(s).unwrap(),
            "the host did not wait for the kernels"
        );
        assert_eq!(h.byte(s), 22);
        assert!(h.engine.stream_query(s).unwrap());
        assert_eq!(h.log(), ["inc", "double"]);
    }

    #[test]
    fn legacy_stream_sees_blocking_stream_results() {
        let h = Harness::new();
        let b = h
            .engine
            .stream_create(StreamFlags::DEFAULT, 0, (0, -5))
            .unwrap();
        h.engine
            .submit(b, h.kernel("seven", 40, |_| 7), Vec::new())
            .unwrap();
        assert_eq!(h.byte(Stream::NULL), 7);
        h.engine.stream_synchronize(Stream::LEGACY).unwrap();
    }

    #[test]
    fn blocking_streams_wait_for_legacy_and_non_blocking_do_not() {
        let h = Harness::new();
        let hb = h
            .engine
            .stream_create(StreamFlags::DEFAULT, -5, (0, -5))
            .unwrap();
        let hn = h
            .engine
            .stream_create(StreamFlags::NON_BLOCKING, -5, (0, -5))
            .unwrap();
        let gate = h.gate(Stream::NULL);
        h.engine
            .submit(Stream::NULL, h.kernel("legacy", 0, |b| b), Vec::new())
            .unwrap();
        h.engine
            .submit(hb, h.kernel("blocking", 0, |b| b), Vec::new())
            .unwrap();
        h.engine
            .submit(hn, h.kernel("non-blocking", 0, |b| b), Vec::new())
            .unwrap();
        drop(gate);
        h.engine.stream_synchronize(hb).unwrap();
        h.engine.stream_synchronize(hn).unwrap();
        // High-priority work goes first unless it must wait: the blocking stream waits for the
        // earlier legacy work, the non-blocking one does not.
        assert_eq!(h.log(), ["non-blocking", "legacy", "blocking"]);
    }

    #[test]
    fn stream_wait_event_orders_across_streams() {
        let h = Harness::new();
        let low = h
            .engine
            .stream_create(StreamFlags::NON_BLOCKING, 0, (0, -5))
            .unwrap();
        let high = h
            .engine
            .stream_create(StreamFlags::NON_BLOCKING, -5, (0, -5))
            .unwrap();
        let e = h.engine.event_create(EventFlags::DISABLE_TIMING).unwrap();
        let gate = h.gate(low);
        h.engine
            .submit(low, h.kernel("producer", 0, |_| 3), Vec::new())
            .unwrap();
        h.engine.event_record(e, low).unwrap();
        h.engine.stream_wait_event(high, e).unwrap();
        h.engine
            .submit(high, h.kernel("consumer", 0, |b| b * 5), Vec::new())
            .unwrap();
        assert!(!h.engine.event_query(e).unwrap());
        drop(gate);
        h.engine.event_synchronize(e).unwrap();
        assert!(h.engine.event_query(e).unwrap());
        assert_eq!(h.byte(high), 15);
        assert_eq!(h.log(), ["producer", "consumer"]);
    }

    #[test]
    fn events_time_the_work_between_them() {
        let h = Harness::new();
        let s = h
            .engine
            .stream_create(StreamFlags::DEFAULT, 0, (0, -5))
            .unwrap();
        let (a, b) = (
            h.engine.event_create(EventFlags::DEFAULT).unwrap(),
            h.engine.event_create(EventFlags::BLOCKING_SYNC).unwrap(),
        );
        let never = h.engine.event_create(EventFlags::DEFAULT).unwrap();
        assert!(
            h.engine.event_query(never).unwrap(),
            "never recorded counts as done"
        );
        let gate = h.gate(s);
        h.engine.event_record(a, s).unwrap();
        h.engine
            .submit(s, h.kernel("slow", 30, |b| b), Vec::new())
            .unwrap();
        h.engine.event_record(b, s).unwrap();
        assert_eq!(h.engine.event_elapsed_ms(a, b), Err(GpuError::NotReady));
        drop(gate);
        h.engine.event_synchronize(b).unwrap();
        let ms = h.engine.event_elapsed_ms(a, b).unwrap();
        assert!((25.0..5000.0).contains(&ms), "{ms} ms");
        assert!(h.engine.event_elapsed_ms(b, a).unwrap() < 0.0);
        // Recording on a stream that is gone fails and keeps the earlier record.
        let gone = h
            .engine
            .stream_create(StreamFlags::DEFAULT, 0, (0, -5))
            .unwrap();
        h.engine.stream_destroy(gone).unwrap();
        assert_eq!(h.engine.event_record(b, gone).unwrap_err().code(), 400);
        assert_eq!(h.engine.event_elapsed_ms(a, b).unwrap(), ms);
        assert_eq!(h.engine.event_elapsed_ms(a, never).unwrap_err().code(), 400);
        let untimed = h.engine.event_create(EventFlags::DISABLE_TIMING).unwrap();
        h.engine.event_record(untimed, s).unwrap();
        h.engine.event_synchronize(untimed).unwrap();
        assert_eq!(
            h.engine.event_elapsed_ms(a, untimed).unwrap_err().code(),
            400
        );
        h.engine.event_destroy(a).unwrap();
        assert_eq!(h.engine.event_query(a).unwrap_err().code(), 400);
        assert_eq!(h.engine.event_create(EventFlags(8)).unwrap_err().code(), 1);
        assert_eq!(
            h.engine
                .event_create(EventFlags::INTERPROCESS)
                .unwrap_err()
                .code(),
            1
        );
    }

    #[test]
    fn a_fault_is_sticky_and_skips_later_work() {
        let h = Harness::new();
        let s = h
            .engine
            .stream_create(StreamFlags::DEFAULT, 0, (0, -5))
            .unwrap();
        let fault = |_: &mut DeviceMem| Err(GpuError::IllegalAddress("test fault".into()));
        let gate = h.gate(s);
        h.engine
            .submit(s, Work::Kernel(Box::new(fault)), Vec::new())
            .unwrap();
        h.engine
            .submit(s, h.kernel("after", 0, |_| 99), Vec::new())
            .unwrap();
        drop(gate);
        assert_eq!(h.engine.stream_synchronize(s).unwrap_err().code(), 700);
        assert_eq!(h.engine.stream_synchronize(s).unwrap_err().code(), 700);
        assert!(
            h.log().is_empty(),
            "work queued behind the fault did not run"
        );
        let e = h.engine.submit(s, Work::Nop, Vec::new()).unwrap_err();
        assert_eq!(e.code(), 700);
        assert_eq!(
            h.engine
                .stream_create(StreamFlags::DEFAULT, 0, (0, -5))
                .unwrap_err()
                .code(),
            700
        );
    }

    #[test]
    fn a_panicking_kernel_is_a_launch_failure_not_a_hang() {
        let h = Harness::new();
        let boom = |_: &mut DeviceMem| -> crac_gpu::Result<()> { panic!("interpreter bug") };
        h.engine
            .submit(Stream::NULL, Work::Kernel(Box::new(boom)), Vec::new())
            .unwrap();
        let e = h.engine.stream_synchronize(Stream::NULL).unwrap_err();
        assert_eq!(e.code(), 719);
        assert!(e.to_string().contains("interpreter bug"), "{e}");
    }

    #[test]
    fn non_sticky_async_errors_are_reported_once() {
        let h = Harness::new();
        let late = |_: &mut DeviceMem| Err(GpuError::InvalidConfiguration("late".into()));
        h.engine
            .submit(Stream::NULL, Work::Kernel(Box::new(late)), Vec::new())
            .unwrap();
        assert_eq!(
            h.engine
                .stream_synchronize(Stream::NULL)
                .unwrap_err()
                .code(),
            9
        );
        h.engine.stream_synchronize(Stream::NULL).unwrap();
        assert_eq!(h.byte(Stream::NULL), 0);
    }

    #[test]
    fn stream_handles_are_checked() {
        let h = Harness::new();
        let s = h
            .engine
            .stream_create(StreamFlags::NON_BLOCKING, 7, (0, -5))
            .unwrap();
        assert_eq!(
            h.engine.stream_info(s).unwrap(),
            (StreamFlags::NON_BLOCKING, 0)
        );
        let reversed = h
            .engine
            .stream_create(StreamFlags::DEFAULT, 7, (-5, 0))
            .unwrap();
        assert_eq!(h.engine.stream_info(reversed).unwrap().1, 0);
        let s2 = h
            .engine
            .stream_create(StreamFlags::DEFAULT, -9, (0, -5))
            .unwrap();
        assert_eq!(
            h.engine.stream_info(s2).unwrap(),
            (StreamFlags::DEFAULT, -5)
        );
        assert_eq!(
            h.engine
                .stream_create(StreamFlags(4), 0, (0, -5))
                .unwrap_err()
                .code(),
            1
        );
        let gate = h.gate(s);
        h.engine
            .submit(s, h.kernel("queued", 0, |_| 5), Vec::new())
            .unwrap();
        h.engine.stream_destroy(s).unwrap();
        assert_eq!(h.engine.stream_query(s).unwrap_err().code(), 400);
        assert_eq!(h.engine.stream_destroy(s).unwrap_err().code(), 400);
        assert_eq!(
            h.engine.stream_destroy(Stream::NULL).unwrap_err().code(),
            400
        );
        assert_eq!(
            h.engine.stream_query(Stream(0x4242)).unwrap_err().code(),
            400
        );
        drop(gate);
        assert_eq!(
            h.byte(Stream::NULL),
            5,
            "a destroyed stream's work still runs"
        );
        assert!(h.engine.stream_query(Stream::PER_THREAD).unwrap());
    }

    #[test]
    fn allocating_does_not_wait_for_a_running_kernel() {
        let h = Harness::new();
        let s = h
            .engine
            .stream_create(StreamFlags::NON_BLOCKING, 0, (0, -5))
            .unwrap();
        let gate = h.gate(s);
        // Give the worker time to enter the gate, which holds the contents.
        std::thread::sleep(Duration::from_millis(20));
        let started = std::time::Instant::now();
        let p = h.mem.alloc(100, 1, BlockKind::Alloc, &[7; 100]).unwrap();
        h.mem.layout().check(p.0, 100).unwrap();
        h.engine
            .submit(
                s,
                Work::Fill {
                    dst: p.0 + 99,
                    value: 8,
                    len: 1,
                },
                Vec::new(),
            )
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "allocation waited for the kernel"
        );
        drop(gate);
        let mut got = [0; 100];
        let mem = h.mem.clone();
        h.engine
            .at_point(s, || {
                mem.contents()
                    .read(p.0, &mut got)
                    .map_err(|e| GpuError::Unknown(e.to_string()))
            })
            .unwrap();
        assert_eq!(got[..99], [7; 99]);
        assert_eq!(got[99], 8);
        h.mem.free(p, BlockKind::Alloc).unwrap();
        assert!(h.mem.contents().read(p.0, &mut got).is_err());
    }
}
