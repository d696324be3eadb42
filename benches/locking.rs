//! The locking-protocol workloads mm developers run, each with a kernel
//! side (the real calls, in this process) and a model side (the same
//! loop through mm-ops), for `benches/locking.rs`:
//!
//! * [`pft_kernel`], [`pft_model`]: a pft-threads analogue. `T` threads fault disjoint parts of
//!   one anonymous mapping, one write per page; faults per second. The
//!   model runs it twice: faults under the VMA lock first
//!   (`lock_vma_under_rcu`, as 6.18), and every fault under `mmap_lock`
//!   (a kernel without `CONFIG_PER_VMA_LOCK`).
//! * [`page_fault_kernel`], [`page_fault_model`]: will-it-scale `page_fault1/2/3` in threads mode. Each
//!   thread maps 128 MiB (anonymous private / its own file private / its
//!   own file shared), writes every page, unmaps, in a loop; pages per
//!   second over all threads.
//! * [`mmap_sem_kernel`], [`mmap_sem_model`] (in `locking/mmap_sem.rs`): a
//!   proc-mmap_sem-test analogue. One thread maps and
//!   unmaps 4 KiB in a loop and times each pair while other threads read
//!   `/proc/pid/maps` (1,024 VMAs); the model's readers either walk the
//!   VMAs under per-VMA locks (6.17+) or render under `mmap_read_lock`.
//! * [`vma_start_write_cost`]: write sections that write-lock `k` VMAs,
//!   per barrier policy, to get the cost per write-locked VMA.
//!
//! Anonymous mappings are `MADV_NOHUGEPAGE` on both sides: with THP on,
//! the kernel would take one fault per 2 MiB and the figure would measure
//! something else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mm_core::{BarrierPolicy, MmConfig, MmStruct, VmaView};
use mm_ops::kernel::memory::{FaultPath, handle_user_fault_mmap_lock, handle_user_fault_path};
use mm_ops::kernel::mmap::{MapFile, vm_mmap_pgoff, vm_munmap};
use mm_ops::uapi::*;
use mm_ops::{Access, Task};

use crate::{BenchFiles, P};

mod mmap_sem;

pub use mmap_sem::{MapsRead, WriterLatency, mmap_sem_kernel, mmap_sem_model};

/// Pages each pft thread faults per round (16 MiB).
pub const PFT_PAGES: u64 = 4096;
/// will-it-scale's `MEMSIZE` for page_fault1/2/3.
pub const PF_MEMSIZE: u64 = 128 << 20;
/// How often (in pages) a page_fault thread looks at the stop flag.
const STOP_EVERY: u64 = 1024;

/// A barrier that spins (yielding): the rounds are short, and a futex
/// wake-up would be a large part of them.
pub struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    /// A barrier for `n` threads.
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Waits until all `n` threads have called `wait`.
    pub fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            while self.generation.load(Ordering::Acquire) == generation {
                std::thread::yield_now();
            }
        }
    }
}

/// Which fault entry the model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEntry {
    /// `lock_vma_under_rcu` first, `mmap_lock` on fallback (6.4+).
    VmaLock,
    /// Every fault under `mmap_read_lock` (no per-VMA locks).
    MmapLock,
}

/// Faults counted by a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultRate {
    /// Pages faulted.
    pub faults: u64,
    /// Seconds the faulting took (wall time of the fault phases).
    pub secs: f64,
    /// Faults handled under the VMA lock (model only).
    pub vma_lock: u64,
    /// Faults that fell back to `mmap_lock` (model, [`FaultEntry::VmaLock`]).
    pub fallback: u64,
}

impl FaultRate {
    /// Faults per second.
    pub fn per_sec(&self) -> f64 {
        self.faults as f64 / self.secs
    }

    fn add(&mut self, o: &FaultRate) {
        self.faults += o.faults;
        self.vma_lock += o.vma_lock;
        self.fallback += o.fallback;
    }

    fn count(&mut self, path: FaultPath) {
        self.faults += 1;
        match path {
            FaultPath::VmaLock => self.vma_lock += 1,
            _ => self.fallback += 1,
        }
    }
}

/// One model fault; panics on a signal (every page is mapped writable).
fn model_fault<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, a: u64, entry: FaultEntry, r: &mut FaultRate) {
    match entry {
        FaultEntry::VmaLock => {
            let (out, path) = handle_user_fault_path(mm, a, Access::Write);
            out.expect("model write fault");
            r.count(path);
        }
        FaultEntry::MmapLock => {
            handle_user_fault_mmap_lock(mm, a, Access::Write).expect("model write fault");
            r.faults += 1;
        }
    }
}

fn host_map(len: u64, prot: u64, flags: u64, fd: i32) -> u64 {
    // SAFETY: no MAP_FIXED: the kernel picks a free range.
    let a = unsafe { libc::mmap(std::ptr::null_mut(), len as usize, prot as i32, flags as i32, fd, 0) };
    assert!(a != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    if flags & MAP_ANONYMOUS != 0 {
        // SAFETY: advice on the range just mapped.
        unsafe { libc::madvise(a, len as usize, libc::MADV_NOHUGEPAGE) };
    }
    a as u64
}

fn host_unmap(a: u64, len: u64) {
    // SAFETY: a range this module mapped and nothing else uses.
    let r = unsafe { libc::munmap(a as *mut libc::c_void, len as usize) };
    assert_eq!(r, 0, "munmap: {}", std::io::Error::last_os_error());
}

/// One write to each of `pages` pages from `base`: a real page fault each.
fn host_touch(base: u64, pages: u64) {
    for i in 0..pages {
        // SAFETY: the page is mapped writable by the caller and private to
        // this thread for the round.
        unsafe { std::ptr::write_volatile((base + i * P) as *mut u8, 1) };
    }
}

fn model_map<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, file: Option<&MapFile>, len: u64, flags: u64) -> u64 {
    let a = vm_mmap_pgoff(mm, file, 0, len, PROT_READ | PROT_WRITE, flags, 0).expect("model mmap");
    if file.is_none() {
        mm_ops::kernel::madvise::do_madvise(mm, a, len, madv::NOHUGEPAGE).expect("model madvise");
    }
    a
}

/// pft-threads on the kernel: `threads` threads, [`PFT_PAGES`] pages
/// each per round, rounds until `dur` of fault time.
pub fn pft_kernel(threads: usize, dur: Duration) -> FaultRate {
    pft_rounds(
        threads,
        dur,
        |len| host_map(len, RW, ANON, -1),
        host_unmap,
        |_, base, pages| {
            host_touch(base, pages);
            FaultRate {
                faults: pages,
                ..FaultRate::default()
            }
        },
    )
}

/// pft-threads on the model, through `entry`.
pub fn pft_model<Pol: BarrierPolicy>(threads: usize, dur: Duration, entry: FaultEntry) -> FaultRate {
    let mm: Arc<MmStruct<Pol>> = Arc::new(MmStruct::new(MmConfig::default()));
    let m = &mm;
    pft_rounds(
        threads,
        dur,
        |len| model_map(m, None, len, ANON),
        |a, len| vm_munmap(m, a, len).expect("model munmap"),
        |_, base, pages| {
            let mut r = FaultRate::default();
            for i in 0..pages {
                model_fault(m, base + i * P, entry, &mut r);
            }
            r
        },
    )
}

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

/// The pft round structure: thread 0 maps the region, all threads fault
/// their part between two barriers (timed by thread 0), thread 0 unmaps.
fn pft_rounds(
    threads: usize,
    dur: Duration,
    map: impl Fn(u64) -> u64 + Sync,
    unmap: impl Fn(u64, u64) + Sync,
    touch: impl Fn(usize, u64, u64) -> FaultRate + Sync,
) -> FaultRate {
    let len = threads as u64 * PFT_PAGES * P;
    let barrier = SpinBarrier::new(threads);
    let base = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let worker = |t: usize| -> FaultRate {
        let mut total = FaultRate::default();
        loop {
            if t == 0 {
                let done = total.secs >= dur.as_secs_f64();
                stop.store(done, Ordering::Relaxed);
                if !done {
                    base.store(map(len), Ordering::Relaxed);
                }
            }
            barrier.wait();
            if stop.load(Ordering::Relaxed) {
                return total;
            }
            let b = base.load(Ordering::Relaxed) + t as u64 * PFT_PAGES * P;
            let started = Instant::now();
            total.add(&touch(t, b, PFT_PAGES));
            barrier.wait();
            total.secs += started.elapsed().as_secs_f64();
            if t == 0 {
                unmap(base.load(Ordering::Relaxed), len);
            }
        }
    };
    let (rates, secs) = std::thread::scope(|s| {
        let hs: Vec<_> = (1..threads).map(|t| s.spawn(move || worker(t))).collect();
        let first = worker(0);
        let secs = first.secs;
        let mut all = vec![first];
        all.extend(hs.into_iter().map(|h| h.join().expect("pft thread")));
        (all, secs)
    });
    let mut sum = FaultRate::default();
    for r in &rates {
        sum.add(r);
    }
    sum.secs = secs;
    sum
}

/// The three will-it-scale page_fault tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFault {
    /// page_fault1: anonymous private memory.
    Anon,
    /// page_fault2: a private mapping of the thread's own file (COW).
    FilePrivate,
    /// page_fault3: a shared mapping of the thread's own file.
    FileShared,
}

impl PageFault {
    /// Every test, in will-it-scale's order.
    pub const ALL: [PageFault; 3] = [PageFault::Anon, PageFault::FilePrivate, PageFault::FileShared];

    /// will-it-scale's number (1, 2, 3).
    pub fn number(self) -> u32 {
        self as u32 + 1
    }

    fn flags(self) -> u64 {
        match self {
            PageFault::Anon => ANON,
            PageFault::FilePrivate => MAP_PRIVATE,
            PageFault::FileShared => MAP_SHARED,
        }
    }
}

/// Per-thread files of [`PF_MEMSIZE`] for page_fault2/3 (sparse).
pub struct PfFiles {
    files: Vec<BenchFiles>,
}

impl PfFiles {
    /// `n` files under the temporary directory.
    pub fn create(n: usize) -> std::io::Result<PfFiles> {
        let mut files = Vec::new();
        for i in 0..n {
            let f = BenchFiles::create_sized(&std::env::temp_dir(), &format!("pf{i}"), PF_MEMSIZE)?;
            files.push(f);
        }
        let f = PfFiles { files };
        f.warm();
        Ok(f)
    }

    /// Reads every page of every file once through a shared mapping, so
    /// that the page cache holds them before the first timed round (else
    /// the first round of page_fault2/3 also fills the page cache).
    fn warm(&self) {
        for f in &self.files {
            let a = host_map(PF_MEMSIZE, PROT_READ, MAP_SHARED, f.fd());
            for i in 0..PF_MEMSIZE / P {
                // SAFETY: a page of the read-only mapping just made.
                std::hint::black_box(unsafe { std::ptr::read_volatile((a + i * P) as *const u8) });
            }
            host_unmap(a, PF_MEMSIZE);
        }
    }
}

/// The page_fault loop of one thread: map, write each page, unmap, until
/// `stop`; returns the pages written.
fn pf_loop(stop: &AtomicBool, map: impl Fn() -> u64, mut touch: impl FnMut(u64, u64), unmap: impl Fn(u64)) -> u64 {
    let mut pages = 0;
    let per_map = PF_MEMSIZE / P;
    while !stop.load(Ordering::Relaxed) {
        let a = map();
        let mut i = 0;
        while i < per_map && !stop.load(Ordering::Relaxed) {
            touch(a + i * P, STOP_EVERY);
            i += STOP_EVERY;
        }
        pages += i;
        unmap(a);
    }
    pages
}

/// Runs `body(t)` on `threads` threads for `dur`, then stops them.
fn run_for(threads: usize, dur: Duration, body: impl Fn(usize, &AtomicBool) -> u64 + Sync) -> FaultRate {
    let stop = &AtomicBool::new(false);
    let body = &body;
    let started = Instant::now();
    let faults = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads).map(|t| s.spawn(move || body(t, stop))).collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        hs.into_iter().map(|h| h.join().expect("page_fault thread")).sum()
    });
    FaultRate {
        faults,
        secs: started.elapsed().as_secs_f64(),
        ..FaultRate::default()
    }
}

/// will-it-scale page_fault`N` on the kernel, threads mode.
pub fn page_fault_kernel(test: PageFault, threads: usize, dur: Duration, files: &PfFiles) -> FaultRate {
    run_for(threads, dur, |t, stop| {
        let fd = if test == PageFault::Anon {
            -1
        } else {
            files.files[t].fd()
        };
        pf_loop(
            stop,
            || host_map(PF_MEMSIZE, RW, test.flags(), fd),
            host_touch,
            |a| host_unmap(a, PF_MEMSIZE),
        )
    })
}

/// will-it-scale page_fault`N` on the model, threads mode, faults through
/// `entry`.
pub fn page_fault_model<Pol: BarrierPolicy>(
    test: PageFault,
    threads: usize,
    dur: Duration,
    files: &PfFiles,
    entry: FaultEntry,
) -> FaultRate {
    let mut task: Task<Pol> = Task::new(MmConfig::default());
    task.set_probe(mm_ops::hostfs::host_probe());
    let descs: Vec<MapFile> = files.files[..threads]
        .iter()
        .map(|f| {
            let fd = task
                .open(f.path.to_str().expect("utf-8 temp path"), oflags::O_RDWR, None)
                .expect("model open");
            let id = task.fget(fd).expect("model fget");
            let d = MapFile::describe(task.mm(), id);
            task.mm().files().put(id);
            d
        })
        .collect();
    let mm = task.mm().clone();
    let (vma_lock, fallback) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut sum = run_for(threads, dur, |t, stop| {
        let file = (test != PageFault::Anon).then_some(&descs[t]);
        let mut rate = FaultRate::default();
        let pages = pf_loop(
            stop,
            || model_map(&mm, file, PF_MEMSIZE, test.flags()),
            |a, n| {
                for i in 0..n {
                    model_fault(&mm, a + i * P, entry, &mut rate);
                }
            },
            |a| vm_munmap(&mm, a, PF_MEMSIZE).expect("model munmap"),
        );
        vma_lock.fetch_add(rate.vma_lock, Ordering::Relaxed);
        fallback.fetch_add(rate.fallback, Ordering::Relaxed);
        pages
    });
    sum.vma_lock = vma_lock.into_inner();
    sum.fallback = fallback.into_inner();
    drop(task);
    sum
}

/// VMAs the `vma_start_write` fixture holds.
pub const VSW_VMAS: usize = 64;

/// Nanoseconds per write section that write-locks `k` of [`VSW_VMAS`]
/// VMAs (`mmap_write_lock`, `vma_start_write` × `k`, `mmap_write_unlock`
/// = `vma_end_write_all`), over `iters` sections.
pub fn vma_start_write_cost<Pol: BarrierPolicy>(k: usize, iters: u32) -> f64 {
    let mm: MmStruct<Pol> = MmStruct::new(MmConfig::default());
    let base = 0x7f00_0000_0000u64;
    let ids: Vec<_> = (0..VSW_VMAS as u64)
        .map(|i| {
            let prot = if i % 2 == 0 { PROT_READ } else { RW };
            let a = vm_mmap_pgoff(&mm, None, base + i * P, P, prot, ANON | MAP_FIXED, 0).expect("model mmap");
            mm.read().find_vma(a).expect("just mapped")
        })
        .collect();
    assert_eq!(mm.read().vma_count(), VSW_VMAS, "no merges");
    let ids = &ids[..k];
    let started = Instant::now();
    for _ in 0..iters {
        let mut w = mm.write();
        for &id in ids {
            w.vma_start_write(id);
        }
        drop(std::hint::black_box(w));
    }
    started.elapsed().as_nanos() as f64 / iters as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use mm_core::Upstream;

    const SHORT: Duration = Duration::from_millis(20);

    fn minor_faults() -> u64 {
        // SAFETY: getrusage fills the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
        u.ru_minflt as u64
    }

    #[test]
    fn pft_kernel_takes_one_real_fault_per_page() {
        let before = minor_faults();
        let r = pft_kernel(1, SHORT);
        let taken = minor_faults() - before;
        assert!(r.faults >= PFT_PAGES && r.faults.is_multiple_of(PFT_PAGES), "{r:?}");
        // THP off for the region: one fault per 4 KiB page (plus a few of
        // the thread's own).
        assert!(taken >= r.faults, "{taken} minor faults for {} pages", r.faults);
        assert!(r.secs > 0.0);
    }

    #[test]
    fn pft_model_counts_the_paths() {
        let r = pft_model::<Upstream>(2, SHORT, FaultEntry::VmaLock);
        assert!(
            r.faults >= 2 * PFT_PAGES && r.faults.is_multiple_of(2 * PFT_PAGES),
            "{r:?}"
        );
        assert_eq!(r.vma_lock + r.fallback, r.faults);
        assert!(r.vma_lock > r.faults / 2, "most faults under the VMA lock: {r:?}");
        let r = pft_model::<Upstream>(1, SHORT, FaultEntry::MmapLock);
        assert_eq!(r.vma_lock, 0, "{r:?}");
        assert!(r.faults >= PFT_PAGES);
    }

    #[test]
    fn page_fault_model_and_kernel_run_every_test() {
        let files = PfFiles::create(1).expect("files");
        for t in PageFault::ALL {
            let m = page_fault_model::<Upstream>(t, 1, SHORT, &files, FaultEntry::VmaLock);
            assert!(
                m.faults > 0 && m.vma_lock == m.faults,
                "page_fault{}: {m:?}",
                t.number()
            );
            let k = page_fault_kernel(t, 1, SHORT, &files);
            assert!(k.faults > 0, "page_fault{}: {k:?}", t.number());
        }
    }

    #[test]
    fn vma_start_write_cost_runs_every_k() {
        for k in [0, 1, VSW_VMAS] {
            let ns = vma_start_write_cost::<Upstream>(k, 100);
            assert!(ns.is_finite() && ns > 0.0, "k = {k}: {ns}");
        }
    }

    #[test]
    fn spin_barrier_holds_everyone() {
        let b = SpinBarrier::new(3);
        let n = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for round in 1..=50 {
                        n.fetch_add(1, Ordering::SeqCst);
                        b.wait();
                        assert!(n.load(Ordering::SeqCst) >= 3 * round);
                        b.wait();
                    }
                });
            }
        });
        assert_eq!(n.into_inner(), 150);
    }
}
