//! The checkpoint engine on a live multi-threaded process: each scenario runs in a child copy
//! of this test binary (signal actions and threads are process-wide), whose own threads play the
//! program; the checkpoint runs on the test thread, which the stand-in lower half reports as
//! crac's. The image is read back and checked against what the threads did, and the threads
//! must go on running afterwards; under a device runtime, device memory is in the image and the
//! call table's gate open again. (Restarting needs `crac_restart`: the end-to-end suite does
//! that.)

#![allow(clippy::unwrap_used)]

#[path = "support/engine_sys.rs"]
mod sys;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crac_agent::LowerHalf;
use crac_agent::checkpoint::{self, CheckpointError, CheckpointRequest};
use crac_core::image::{ImageReader, RegionKind};
use crac_core::interval::IntervalSet;

/// Runs test `name` in a fresh process; true in that child.
fn in_child(name: &str) -> bool {
    crac_test_support::in_fresh_process(name)
}

/// The lower half of this test process: the test thread, and the harness's main thread (it
/// inherited the parent's blocked signal mask through exec, and waits for the test); memory as
/// the loader records it, minus the workers' stacks (the loader's `pthread_create` in this
/// binary registers them as crac's; here they play the program's).
struct TestLower {
    tid: i32,
    worker_stacks: Vec<u64>,
    /// With a device runtime installed: the loader's lower threads (the runtime's, the
    /// checkpoint's helpers) are crac's too, all but these workers.
    device_workers: Option<Vec<i32>>,
}

impl LowerHalf for TestLower {
    fn register_current_thread(&self) {}
    fn intervals(&self) -> IntervalSet {
        let mut set = crac_loader::lower::intervals();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for e in crac_core::procfs::parse_maps(&maps).unwrap() {
            if self.worker_stacks.iter().any(|a| e.range.contains(*a)) {
                set.remove(e.range);
            }
        }
        set
    }
    fn tids(&self) -> Vec<i32> {
        let mut tids = vec![self.tid, i32::try_from(std::process::id()).unwrap()];
        if let Some(workers) = &self.device_workers {
            let lower = crac_loader::lower::lower_tids();
            tids.extend(lower.into_iter().filter(|t| !workers.contains(t)));
        }
        tids
    }
    fn protect_fd(&self, fd: OwnedFd) -> io::Result<OwnedFd> {
        crac_loader::fds::move_high(fd)
    }
}

fn gettid() -> i32 {
    // The tid of the calling thread, from /proc (no unsafe in this file).
    std::fs::read_link("/proc/thread-self")
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Worker threads that count and sleep until told to stop.
struct Workers {
    stop: Arc<AtomicBool>,
    stacks: Vec<Arc<AtomicU64>>,
    tids: Vec<Arc<AtomicU64>>,
    counts: Vec<Arc<AtomicU64>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

fn start_workers(n: usize) -> Workers {
    let stop = Arc::new(AtomicBool::new(false));
    let mut counts = Vec::new();
    let mut stacks = Vec::new();
    let mut tids = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n {
        let c = Arc::new(AtomicU64::new(0));
        counts.push(c.clone());
        let stack = Arc::new(AtomicU64::new(0));
        stacks.push(stack.clone());
        let tid = Arc::new(AtomicU64::new(0));
        tids.push(tid.clone());
        let stop = stop.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    // The test harness runs tests on a thread with most signals blocked. Odd
                    // workers block every signal the C library lets them (as libzmq's threads
                    // do): crac's quiesce signal is not among those, so they stop all the same.
                    if i % 2 == 1 {
                        sys::block_all_libc();
                    } else {
                        sys::unblock_all();
                    }
                    tid.store(u64::try_from(gettid()).unwrap(), Ordering::Release);
                    let local = 0u8;
                    stack.store(std::ptr::addr_of!(local) as u64, Ordering::Release);
                    while !stop.load(Ordering::Relaxed) {
                        c.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .unwrap(),
        );
    }
    while stacks.iter().any(|s| s.load(Ordering::Acquire) == 0) {
        std::thread::sleep(Duration::from_millis(1));
    }
    Workers {
        stop,
        stacks,
        tids,
        counts,
        handles,
    }
}

impl Workers {
    fn stacks(&self) -> Vec<u64> {
        self.stacks
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .collect()
    }

    fn tids(&self) -> Vec<i32> {
        self.tids
            .iter()
            .map(|t| i32::try_from(t.load(Ordering::Acquire)).unwrap())
            .collect()
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.join().unwrap();
        }
    }
}

#[test]
fn checkpoint_and_continue_saves_every_thread_and_the_memory() {
    if !in_child("checkpoint_and_continue_saves_every_thread_and_the_memory") {
        return;
    }
    let workers = start_workers(8);
    // Program memory with known contents (the Rust heap of this test binary is crac's arena).
    let data = sys::program_memory(1 << 20);
    for (i, b) in data.iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.crac");
    let lower = TestLower {
        tid: gettid(),
        worker_stacks: workers.stacks(),
        device_workers: None,
    };
    let mut last = 0;
    let request = CheckpointRequest {
        path: path.clone(),
        ..Default::default()
    };
    let outcome = checkpoint::checkpoint(&request, &lower, &mut |p| {
        assert!(p.done >= last && p.done <= p.total);
        last = p.done;
    })
    .unwrap();
    assert!(outcome.memory_bytes >= data.len() as u64);
    assert_eq!(last, outcome.memory_bytes, "progress reached the end");

    // The threads go on.
    let before = workers.total();
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers.total() < before + 50 {
        assert!(Instant::now() < deadline, "the workers stopped");
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut reader = ImageReader::open(std::fs::File::open(&path).unwrap()).unwrap();
    let meta = reader.meta().clone();
    let names: Vec<&str> = meta.threads.iter().map(|t| t.name.as_str()).collect();
    for i in 0..8 {
        assert!(names.contains(&format!("worker-{i}").as_str()), "{names:?}");
    }
    assert!(
        !meta.threads.iter().any(|t| t.tid == lower.tid),
        "crac's own thread"
    );
    assert_eq!(meta.threads.len(), 8);
    assert!(
        meta.threads
            .iter()
            .all(|t| t.ucontext != 0 && t.fs_base != 0)
    );
    // glibc caches the tid in its thread descriptor; the offset was measured.
    assert!(
        meta.process.tid_offset.is_some(),
        "{:?}",
        meta.process.tid_offset
    );
    assert_eq!(meta.signals.actions.len(), 62);
    assert!(!meta.header.build_id.is_empty());
    assert!(!meta.header.fingerprints.kernel_release.is_empty());

    // The buffer's bytes are in the image.
    let addr = data.as_ptr() as u64;
    let page = addr;
    let region = meta
        .regions
        .iter()
        .find(|r| r.start <= page && page < r.end)
        .expect("the buffer's region is saved");
    assert_eq!(region.kind, RegionKind::Private);
    let run = region
        .runs
        .iter()
        .find(|r| r.addr <= page && page + 4096 <= r.addr + r.len)
        .expect("a touched page is in a run");
    let mut bytes = vec![0u8; usize::try_from(run.len).unwrap()];
    reader.read_payload(&run.payload, &mut bytes).unwrap();
    let at = usize::try_from(page - run.addr).unwrap();
    let off = usize::try_from(page - addr).unwrap();
    assert_eq!(&bytes[at..at + 4096], &data[off..off + 4096]);
    workers.finish();
}

#[test]
fn a_thread_that_blocks_the_signal_fails_the_checkpoint_and_the_program_goes_on() {
    if !in_child("a_thread_that_blocks_the_signal_fails_the_checkpoint_and_the_program_goes_on") {
        return;
    }
    let workers = start_workers(2);
    let blocked = std::thread::spawn(|| {
        sys::unblock_all();
        let old = sys::block_quiesce_signal();
        std::thread::sleep(Duration::from_millis(2500));
        // Unblocking delivers the pending signal: the process must survive it.
        sys::restore_mask(old);
        std::thread::sleep(Duration::from_millis(50));
    });
    std::thread::sleep(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.crac");
    let lower = TestLower {
        tid: gettid(),
        worker_stacks: workers.stacks(),
        device_workers: None,
    };
    let request = CheckpointRequest {
        path: path.clone(),
        ..Default::default()
    };
    let err = checkpoint::checkpoint(&request, &lower, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, CheckpointError::ThreadDidNotStop { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("blocks signal 33"), "{err}");
    assert!(!path.exists(), "no image");
    assert!(
        !std::path::Path::new(&format!("{}.tmp", path.display())).exists(),
        "no temporary file left"
    );
    let before = workers.total();
    std::thread::sleep(Duration::from_millis(100));
    assert!(workers.total() > before, "the other threads go on");
    blocked.join().unwrap();
    workers.finish();
}

#[test]
fn a_second_queued_stop_signal_neither_kills_the_program_nor_lands_in_the_image() {
    if !in_child("a_second_queued_stop_signal_neither_kills_the_program_nor_lands_in_the_image") {
        return;
    }
    let workers = start_workers(2);
    let late_stack = Arc::new(AtomicU64::new(0));
    let at = late_stack.clone();
    let late = std::thread::spawn(move || {
        sys::unblock_all();
        let local = 0u8;
        at.store(std::ptr::addr_of!(local) as u64, Ordering::Release);
        let old = sys::block_quiesce_signal();
        // Past the first attempt's timeout, into the second attempt, which sends the signal
        // again: two instances are queued when the thread unblocks it.
        std::thread::sleep(Duration::from_millis(2800));
        sys::restore_mask(old);
        std::thread::sleep(Duration::from_millis(300));
    });
    std::thread::sleep(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    // The late thread plays the program too.
    let mut stacks = workers.stacks();
    stacks.push(late_stack.load(Ordering::Acquire));
    let lower = TestLower {
        tid: gettid(),
        worker_stacks: stacks,
        device_workers: None,
    };
    let first = CheckpointRequest {
        path: dir.path().join("first.crac"),
        ..Default::default()
    };
    let err = checkpoint::checkpoint(&first, &lower, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, CheckpointError::ThreadDidNotStop { .. }),
        "{err}"
    );
    let second = CheckpointRequest {
        path: dir.path().join("second.crac"),
        ..Default::default()
    };
    checkpoint::checkpoint(&second, &lower, &mut |_| {}).unwrap();
    let file = std::fs::File::open(&second.path).unwrap();
    let reader = ImageReader::open(file).unwrap();
    let sigrtmax = 1u64 << 63;
    assert!(
        reader
            .meta()
            .threads
            .iter()
            .all(|t| t.pending & sigrtmax == 0),
        "crac's extra stop signal saved as the program's"
    );
    // The extra instance is delivered once the thread goes on; the process must survive it.
    late.join().unwrap();
    let before = workers.total();
    std::thread::sleep(Duration::from_millis(100));
    assert!(workers.total() > before, "the threads go on");
    workers.finish();
}

/// Calls CUDA operation `op` through the installed table (this test thread is crac's, so no
/// fs switch is needed); returns the `cudaError_t`.
fn cuda_call(table: u64, op: crac_abi::Op, args: &[u64]) -> u32 {
    let mut words = [0u64; crac_abi::MAX_ARGS];
    words[..args.len()].copy_from_slice(args);
    sys::call_table(table, op as u32, &words)
}

#[test]
fn a_gpu_checkpoint_saves_device_memory_and_reopens_the_gate() {
    if !crac_test_support::in_fresh_process_without_aslr(
        "a_gpu_checkpoint_saves_device_memory_and_reopens_the_gate",
    ) {
        return;
    }
    // As a launch does: no mapping of the test's may land where device pointers live.
    crac_loader::table::reserve_device_window(crac_gpu::Window::DEFAULT).unwrap();
    let runtime = crac_replay::Runtime::new(Box::new(crac_sim::Sim::new(64 << 20)));
    let table = crac_loader::table::install(runtime).unwrap();
    let mut ptr = 0u64;
    let len = 3usize << 20;
    assert_eq!(
        cuda_call(
            table,
            crac_abi::Op::Malloc,
            &[std::ptr::addr_of_mut!(ptr) as u64, len as u64]
        ),
        0
    );
    let data = sys::program_memory(len);
    for (i, b) in data.iter_mut().enumerate() {
        *b = u8::try_from(i % 253).unwrap();
    }
    // cudaMemcpyHostToDevice = 1.
    let args = [ptr, data.as_ptr() as u64, len as u64, 1];
    assert_eq!(cuda_call(table, crac_abi::Op::Memcpy, &args), 0);

    let workers = start_workers(2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.crac");
    let lower = TestLower {
        tid: gettid(),
        worker_stacks: workers.stacks(),
        device_workers: Some(workers.tids()),
    };
    let mut last = (0, 0);
    let request = CheckpointRequest {
        path: path.clone(),
        ..Default::default()
    };
    let mut ran_during_device_write = None;
    let outcome = checkpoint::checkpoint(&request, &lower, &mut |p| {
        // The first progress comes from the device memory, written before the threads stop:
        // the program still runs then.
        if ran_during_device_write.is_none() {
            let before = workers.total();
            let deadline = Instant::now() + Duration::from_secs(2);
            while workers.total() == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            ran_during_device_write = Some(workers.total() > before);
        }
        last = (p.done, p.total);
    })
    .unwrap();
    assert_eq!(
        ran_during_device_write,
        Some(true),
        "the program's threads run while device memory is written"
    );
    assert_eq!(outcome.device_bytes, len as u64);
    assert_eq!(last.0, last.1, "progress reached the end");
    assert_eq!(last.1, outcome.memory_bytes + outcome.device_bytes);
    // The gate is open again: it closes (and reopens on drop).
    drop(crac_loader::table::close_gate(Duration::from_secs(1)).unwrap());

    let mut reader = ImageReader::open(std::fs::File::open(&path).unwrap()).unwrap();
    let meta = reader.meta().clone();
    let device = meta.header.fingerprints.device.as_ref().unwrap();
    assert_eq!(device.backend, "sim");
    let cuda = meta.cuda.as_ref().unwrap();
    let summary = crac_replay::describe(&cuda.log).unwrap();
    assert!(
        summary
            .objects
            .iter()
            .any(|o| o.kind == "allocation" && o.id == ptr && o.size == len as u64),
        "{summary:?}"
    );
    let buffer = cuda.buffers.iter().find(|b| b.addr == ptr).unwrap();
    assert_eq!(buffer.len, len as u64);
    let mut bytes = vec![0u8; len];
    reader.read_payload(&buffer.payload, &mut bytes).unwrap();
    assert!(bytes == *data, "device memory in the image differs");
    workers.finish();
}
