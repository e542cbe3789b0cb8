//! Streams and events with kernels: a producer on one stream and a consumer on another ordered
//! by an event, asynchronous copies whose host source may be reused at once, and queries.
#![allow(
    clippy::cast_possible_truncation,
    reason = "sizes are small test constants, and the references truncate on purpose as the kernels do"
)]

mod common;

use common::{Gpu, blocks_for, from_bytes, to_bytes};
use crac_gpu::{EventFlags, LaunchConfig, Stream, StreamFlags};

fn on(stream: Stream, n: usize) -> LaunchConfig {
    LaunchConfig {
        grid: [blocks_for(n, 128), 1, 1],
        block: [128, 1, 1],
        dynamic_shared: 0,
        stream,
    }
}

#[test]
fn event_orders_producer_and_consumer_on_two_streams() {
    let gpu = Gpu::new();
    let dev = gpu.dev();
    let module = gpu.load("streams");
    let produce = gpu.func(module, "produce");
    let consume = gpu.func(module, "consume");
    let s1 = dev
        .stream_create(StreamFlags::NON_BLOCKING, 0)
        .expect("stream 1");
    let s2 = dev
        .stream_create(StreamFlags::NON_BLOCKING, 0)
        .expect("stream 2");
    assert_ne!(s1, s2);
    let ready = dev.event_create(EventFlags::DISABLE_TIMING).expect("event");
    let n = 1000;
    let (buf, out) = (gpu.zeroed::<i32>(n), gpu.zeroed::<i32>(n));
    for round in 1..=3 {
        gpu.launch(
            produce,
            &on(s1, n),
            &[buf.into(), (n as i32).into(), (round * 7).into()],
        )
        .expect("launch producer");
        dev.event_record(ready, s1).expect("record");
        dev.stream_wait_event(s2, ready).expect("wait event");
        gpu.launch(
            consume,
            &on(s2, n),
            &[buf.into(), out.into(), (n as i32).into()],
        )
        .expect("launch consumer");
        let mut bytes = vec![0u8; n * 4];
        dev.memcpy_dtoh(&mut bytes, out, s2)
            .expect("copy back on the consumer stream");
        let got: Vec<i32> = from_bytes(&bytes);
        let want: Vec<i32> = (0..n as i32).map(|i| round * 7 * (i + 1) * 2 + 1).collect();
        assert_eq!(got, want, "round {round}");
    }
    dev.stream_synchronize(s1).expect("sync 1");
    assert!(dev.stream_query(s1).expect("query 1"));
    assert!(dev.stream_query(s2).expect("query 2"));
    assert!(dev.event_query(ready).expect("event query"));
    dev.event_destroy(ready).expect("destroy event");
    dev.stream_destroy(s1).expect("destroy 1");
    dev.stream_destroy(s2).expect("destroy 2");
    let e = dev.stream_query(s1).expect_err("destroyed stream");
    assert_eq!(e.code(), 400, "{e}");
}

#[test]
fn async_copies_stage_the_host_source() {
    let gpu = Gpu::new();
    let dev = gpu.dev();
    let consume = gpu.kernel("streams", "consume");
    let s = dev.stream_create(StreamFlags::DEFAULT, 0).expect("stream");
    let n = 512;
    let (din, dout) = (gpu.alloc_bytes(n * 4), gpu.alloc_bytes(n * 4));
    let mut host: Vec<u8> = to_bytes(&(0..n as i32).collect::<Vec<_>>());
    dev.memcpy_htod(din, &host, s).expect("async copy");
    // The source was consumed before the call returned: overwriting it changes nothing.
    host.fill(0xee);
    gpu.launch(
        consume,
        &on(s, n),
        &[din.into(), dout.into(), (n as i32).into()],
    )
    .expect("launch");
    // A device-to-device copy and a memset, both in stream order after the kernel.
    dev.memcpy_dtod(din, dout, (n * 4) as u64, s).expect("dtod");
    dev.memset(dout, 0, 16, s).expect("memset");
    let mut back = vec![0u8; n * 4];
    dev.memcpy_dtoh(&mut back, din, s).expect("copy back");
    let got: Vec<i32> = from_bytes(&back);
    assert_eq!(got, (0..n as i32).map(|i| 2 * i + 1).collect::<Vec<_>>());
    dev.stream_synchronize(s).expect("sync");
    let zeroed: Vec<i32> = gpu.download(dout, 4);
    assert_eq!(zeroed, [0, 0, 0, 0]);
    dev.stream_destroy(s).expect("destroy");
}

#[test]
fn legacy_stream_waits_for_blocking_streams() {
    let gpu = Gpu::new();
    let dev = gpu.dev();
    let module = gpu.load("streams");
    let produce = gpu.func(module, "produce");
    let consume = gpu.func(module, "consume");
    let blocking = dev.stream_create(StreamFlags::DEFAULT, 0).expect("stream");
    let n = 640;
    let (buf, out) = (gpu.zeroed::<i32>(n), gpu.zeroed::<i32>(n));
    gpu.launch(
        produce,
        &on(blocking, n),
        &[buf.into(), (n as i32).into(), 5i32.into()],
    )
    .expect("producer");
    // The legacy default stream waits for earlier work on blocking streams: no event needed.
    gpu.launch(
        consume,
        &on(Stream::NULL, n),
        &[buf.into(), out.into(), (n as i32).into()],
    )
    .expect("consumer");
    let got: Vec<i32> = gpu.download(out, n);
    assert_eq!(
        got,
        (0..n as i32)
            .map(|i| 5 * (i + 1) * 2 + 1)
            .collect::<Vec<_>>()
    );
}

#[test]
fn timing_events_measure_kernels() {
    let gpu = Gpu::new();
    let dev = gpu.dev();
    let produce = gpu.kernel("streams", "produce");
    let s = dev.stream_create(StreamFlags::DEFAULT, 0).expect("stream");
    let (start, end) = (
        dev.event_create(EventFlags::DEFAULT).expect("start"),
        dev.event_create(EventFlags::DEFAULT).expect("end"),
    );
    let n = 4096;
    let buf = gpu.zeroed::<i32>(n);
    dev.event_record(start, s).expect("record start");
    gpu.launch(
        produce,
        &on(s, n),
        &[buf.into(), (n as i32).into(), 1i32.into()],
    )
    .expect("launch");
    dev.event_record(end, s).expect("record end");
    dev.event_synchronize(end).expect("sync end");
    let ms = dev.event_elapsed_ms(start, end).expect("elapsed");
    assert!(ms >= 0.0 && ms.is_finite(), "elapsed {ms} ms");
    let untimed = dev
        .event_create(EventFlags::DISABLE_TIMING)
        .expect("untimed");
    dev.event_record(untimed, s).expect("record");
    dev.event_synchronize(untimed).expect("sync");
    let e = dev
        .event_elapsed_ms(start, untimed)
        .expect_err("timing disabled");
    assert_eq!(e.code(), 400, "{e}");
}

#[test]
fn many_host_threads_launch_at_once() {
    // The shim calls the device from every application thread; each thread here uses its own
    // stream (and one the per-thread default stream) and checks its own results.
    let gpu = Gpu::new();
    let module = gpu.load("streams");
    let produce = gpu.func(module, "produce");
    let consume = gpu.func(module, "consume");
    std::thread::scope(|scope| {
        for t in 0..4i32 {
            let gpu = &gpu;
            scope.spawn(move || {
                let dev = gpu.dev();
                let stream = if t == 0 {
                    Stream::PER_THREAD
                } else {
                    dev.stream_create(StreamFlags::NON_BLOCKING, 0)
                        .expect("stream")
                };
                let n = 300 + 50 * t as usize;
                let (buf, out) = (gpu.zeroed::<i32>(n), gpu.zeroed::<i32>(n));
                for round in 0..5 {
                    let seed = 100 * t + round;
                    gpu.launch(
                        produce,
                        &on(stream, n),
                        &[buf.into(), (n as i32).into(), seed.into()],
                    )
                    .expect("producer");
                    gpu.launch(
                        consume,
                        &on(stream, n),
                        &[buf.into(), out.into(), (n as i32).into()],
                    )
                    .expect("consumer");
                    let mut bytes = vec![0u8; n * 4];
                    dev.memcpy_dtoh(&mut bytes, out, stream).expect("copy back");
                    let got: Vec<i32> = from_bytes(&bytes);
                    let want: Vec<i32> = (0..n as i32).map(|i| seed * (i + 1) * 2 + 1).collect();
                    assert_eq!(got, want, "thread {t} round {round}");
                }
            });
        }
    });
    gpu.dev()
        .device_synchronize()
        .expect("all threads' work done");
}

#[test]
fn event_wait_holds_back_a_higher_priority_stream() {
    // The consumer's stream has the higher priority, so a scheduler that ignored the event
    // would run the consumer as soon as the device is free, before the producer.
    let gpu = Gpu::new();
    let dev = gpu.dev();
    let module = gpu.load("streams");
    let produce = gpu.func(module, "produce");
    let consume = gpu.func(module, "consume");
    let (least, greatest) = dev.device_props(0).expect("props").stream_priority_range;
    let low = dev
        .stream_create(StreamFlags::NON_BLOCKING, least)
        .expect("low");
    let high = dev
        .stream_create(StreamFlags::NON_BLOCKING, greatest)
        .expect("high");
    assert_eq!(dev.stream_info(high).expect("info").1, greatest);
    let ready = dev.event_create(EventFlags::DISABLE_TIMING).expect("event");
    let big = 100_000;
    let n = 512;
    let (slow, buf, out) = (
        gpu.zeroed::<i32>(big),
        gpu.zeroed::<i32>(n),
        gpu.zeroed::<i32>(n),
    );
    // Keeps the device busy while the rest is queued behind it.
    gpu.launch(
        produce,
        &on(low, big),
        &[slow.into(), (big as i32).into(), 1i32.into()],
    )
    .expect("slow kernel");
    gpu.launch(
        produce,
        &on(low, n),
        &[buf.into(), (n as i32).into(), 9i32.into()],
    )
    .expect("producer");
    dev.event_record(ready, low).expect("record");
    dev.stream_wait_event(high, ready).expect("wait");
    gpu.launch(
        consume,
        &on(high, n),
        &[buf.into(), out.into(), (n as i32).into()],
    )
    .expect("consumer");
    let mut bytes = vec![0u8; n * 4];
    dev.memcpy_dtoh(&mut bytes, out, high).expect("copy back");
    let got: Vec<i32> = from_bytes(&bytes);
    assert_eq!(
        got,
        (0..n as i32)
            .map(|i| 9 * (i + 1) * 2 + 1)
            .collect::<Vec<_>>()
    );
}
