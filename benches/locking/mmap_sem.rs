//! The proc-mmap_sem-test analogue of [`super`]: one thread maps and
//! unmaps 4 KiB in a loop and times each pair while reader threads read
//! `/proc/pid/maps`, on the kernel ([`mmap_sem_kernel`]) and on the model
//! ([`mmap_sem_model`], readers as [`MapsRead`]); the pairs' latencies in
//! [`WriterLatency`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mm_core::BarrierPolicy;
use mm_ops::kernel::mmap::vm_munmap;
use mm_ops::uapi::*;

use super::{ANON, host_unmap};
use crate::{BenchFiles, HostFixture, ModelFixture, P};

/// Latencies of the writer's mmap+munmap pairs, and the readers' work.
#[derive(Clone, Debug, Default)]
pub struct WriterLatency {
    /// Pairs timed.
    pub count: usize,
    /// Median, in ns.
    pub p50: u64,
    /// 99th percentile, in ns.
    pub p99: u64,
    /// Maximum, in ns.
    pub max: u64,
    /// Complete `/proc/pid/maps` reads by all readers.
    pub reads: u64,
}

impl WriterLatency {
    fn of(mut ns: Vec<u64>, reads: u64) -> WriterLatency {
        ns.sort_unstable();
        let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize];
        WriterLatency {
            count: ns.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: *ns.last().expect("at least one pair"),
            reads,
        }
    }
}

/// How the model's maps readers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapsRead {
    /// `lock_next_vma` per VMA (6.17+: no `mmap_lock`).
    VmaLocked,
    /// The whole file under `mmap_read_lock` (before 6.17).
    MmapLock,
}

/// The writer loop with `readers` reader threads running `read` until it
/// stops; times each `pair` for `dur`.
fn writer_with_readers(readers: usize, dur: Duration, read: impl Fn() + Sync, mut pair: impl FnMut()) -> WriterLatency {
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let mut ns = Vec::with_capacity(1 << 20);
    std::thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    read();
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let started = Instant::now();
        // At least `dur`, and until the readers have read once (a loaded
        // machine may not have run them yet), within a minute.
        while started.elapsed() < dur
            || (readers > 0 && reads.load(Ordering::Relaxed) == 0 && started.elapsed() < Duration::from_secs(60))
        {
            let t = Instant::now();
            pair();
            ns.push(t.elapsed().as_nanos() as u64);
        }
        stop.store(true, Ordering::Relaxed);
    });
    WriterLatency::of(ns, reads.into_inner())
}

/// proc-mmap_sem-test on the kernel: 1,024 VMAs, `readers` threads
/// reading `/proc/self/maps`, this thread mapping and unmapping 4 KiB.
pub fn mmap_sem_kernel(readers: usize, dur: Duration, files: &BenchFiles) -> WriterLatency {
    let h = HostFixture::new(1024, files);
    let hint = h.spots.own_hint();
    let r = writer_with_readers(
        readers,
        dur,
        || {
            let maps = std::fs::read("/proc/self/maps").expect("read /proc/self/maps");
            std::hint::black_box(maps);
        },
        || {
            // SAFETY: a hint (no MAP_FIXED) into the fixture's free arena.
            let a = unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    P as usize,
                    libc::PROT_READ,
                    (ANON) as i32,
                    -1,
                    0,
                )
            };
            assert_eq!(a as u64, hint, "host mmap placement");
            host_unmap(a as u64, P);
        },
    );
    drop(h);
    r
}

/// proc-mmap_sem-test on the model, with readers reading as `how`.
pub fn mmap_sem_model<Pol: BarrierPolicy>(
    readers: usize,
    dur: Duration,
    files: &BenchFiles,
    how: MapsRead,
) -> WriterLatency {
    let mut f: ModelFixture<Pol> = ModelFixture::new(1024, files);
    let hint = f.spots.own_hint();
    let mm = f.mm().clone();
    writer_with_readers(
        readers,
        dur,
        || {
            let mut out = String::with_capacity(1024 * 128);
            match how {
                MapsRead::VmaLocked => {
                    mm_ops::kernel::task_mmu::render_maps_vma_locked(&mut out, &mm, true);
                }
                MapsRead::MmapLock => {
                    let r = mm.read();
                    let files = r.files();
                    mm_ops::kernel::task_mmu::render_maps_into(&mut out, &r, &files, true);
                }
            }
            std::hint::black_box(out);
        },
        || {
            let a = f.task.mmap(hint, P, PROT_READ, ANON, -1, 0).expect("model mmap");
            assert_eq!(a, hint, "model mmap placement");
            vm_munmap(f.task.mm(), a, P).expect("model munmap");
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mm_core::Upstream;

    const SHORT: Duration = Duration::from_millis(20);

    #[test]
    fn latency_percentiles() {
        let l = WriterLatency::of((1..=1000).rev().collect(), 7);
        assert_eq!((l.count, l.p50, l.p99, l.max, l.reads), (1000, 501, 990, 1000, 7));
    }

    #[test]
    fn mmap_sem_model_readers_read() {
        let files = BenchFiles::create(&std::env::temp_dir()).expect("file");
        for how in [MapsRead::VmaLocked, MapsRead::MmapLock] {
            let l = mmap_sem_model::<Upstream>(1, SHORT, &files, how);
            assert!(l.count > 0 && l.reads > 0, "{how:?}: {l:?}");
            assert!(l.p50 <= l.p99 && l.p99 <= l.max);
        }
    }
}
