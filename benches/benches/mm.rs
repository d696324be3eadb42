//! The mm-sim criterion suite: will-it-scale analogues on the write path,
//! speculative vs locked lookups on the read path, the pure lock cost and
//! `/proc/pid/maps` rendering, each per barrier policy and per VMA count,
//! with the host kernel running the same loops in this same process.
//!
//! Group = benchmark name; function = policy (or `kernel`); parameter =
//! VMA count. `cargo xtask bench` turns the results into
//! `docs/benchmarks.md` and `target/mm-bench/summary.json`.

use std::hint::black_box;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use mm_benches::*;
use mm_core::{BarrierPolicy, MmStruct, PolicyKind, PolicyVisitor, VmaView};
use mm_ops::kernel::mmap::{sys_brk, vm_mmap_pgoff, vm_munmap};
use mm_ops::kernel::mprotect::do_mprotect;
use mm_ops::uapi::*;
use mm_spec::lookup::{Spec, vma_lookup_locked, vma_lookup_speculative};
use mm_spec::uprobe::{find_active_uprobe_locked, find_active_uprobe_speculative};

const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;
/// Lookup addresses cycled through (a power of two).
const ADDRS: usize = 4096;
/// The VMA count of the threads-mode groups with two readers.
const THREADS_VMAS: usize = 1024;

fn kernel(n: usize) -> BenchmarkId {
    BenchmarkId::new("kernel", n)
}

fn model<Pol: BarrierPolicy>(n: usize) -> BenchmarkId {
    BenchmarkId::new(Pol::NAME, n)
}

/// `mmap(2)` in this process; panics if it does not return `want`.
fn host_mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i32, want: Option<u64>) -> u64 {
    // SAFETY: the hints and NULL never replace a mapping (no MAP_FIXED).
    let r = unsafe { libc::mmap(addr as *mut _, len as usize, prot as i32, flags as i32, fd, 0) } as u64;
    assert!(r != u64::MAX, "host mmap: {}", std::io::Error::last_os_error());
    if let Some(w) = want {
        assert_eq!(r, w, "host mmap placement");
    }
    r
}

fn host_munmap(addr: u64, len: u64) {
    // SAFETY: only ever called on a range the same iteration just mapped.
    let r = unsafe { libc::munmap(addr as *mut _, len as usize) };
    assert_eq!(r, 0, "host munmap: {}", std::io::Error::last_os_error());
}

fn host_mprotect(addr: u64, prot: u64) {
    // SAFETY: the page belongs to the fixture, which nothing else uses.
    let r = unsafe { libc::mprotect(addr as *mut _, P as usize, prot as i32) };
    assert_eq!(r, 0, "host mprotect: {}", std::io::Error::last_os_error());
}

fn host_brk(addr: u64) -> u64 {
    // SAFETY: brk(2) moves the break and back by one page between two
    // calls of the same loop; nothing allocates in between.
    (unsafe { libc::syscall(libc::SYS_brk, addr) }) as u64
}

/// The kernel's lookup loop: `mincore(2)` of one page at each of `addrs`
/// in turn.
fn host_lookups(b: &mut criterion::Bencher<'_>, addrs: &[u64]) {
    let mut i = 0;
    let mut vec = [0u8; 1];
    b.iter(|| {
        i = (i + 1) & (ADDRS - 1);
        let a = addrs[i] & !(P - 1);
        // SAFETY: one page, one byte of output, which `vec` holds.
        let r = unsafe { libc::mincore(a as *mut _, P as usize, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
    })
}

/// The kernel's loops for one VMA count.
fn kernel_suite(c: &mut Criterion, n: usize, files: &BenchFiles, extra: &mut Extra) {
    let slab_before = kernel_vma_slab_bytes();
    let h = HostFixture::new(n, files);
    let s = h.spots;
    if let (Some(b), Some(a)) = (slab_before, kernel_vma_slab_bytes()) {
        extra.record(&[&"kmem", &n, &(a.saturating_sub(b) / (s.fill as u64 + 1))]);
    }
    c.benchmark_group("mmap_munmap_4k").bench_function(kernel(n), |b| {
        b.iter(|| {
            let a = host_mmap(s.merge_hint(), P, RW, ANON, -1, Some(s.merge_hint()));
            host_munmap(a, P);
        })
    });
    c.benchmark_group("mmap_munmap_4k_own").bench_function(kernel(n), |b| {
        b.iter(|| {
            let a = host_mmap(s.own_hint(), P, PROT_READ, ANON, -1, Some(s.own_hint()));
            host_munmap(a, P);
        })
    });
    c.benchmark_group("mmap1").bench_function(kernel(n), |b| {
        b.iter(|| {
            let a = host_mmap(0, MMAP_BIG, RW, ANON, -1, None);
            host_munmap(a, MMAP_BIG);
        })
    });
    c.benchmark_group("mmap2").bench_function(kernel(n), |b| {
        b.iter(|| {
            let a = host_mmap(0, MMAP_BIG, RW, MAP_PRIVATE, files.fd(), None);
            host_munmap(a, MMAP_BIG);
        })
    });
    let cur = host_brk(0);
    c.benchmark_group("brk1").bench_function(kernel(n), |b| {
        b.iter(|| {
            assert_eq!(host_brk(cur + P), cur + P);
            assert_eq!(host_brk(cur), cur);
        })
    });
    c.benchmark_group("mprotect_toggle").bench_function(kernel(n), |b| {
        b.iter(|| {
            host_mprotect(s.toggle, RW);
            host_mprotect(s.toggle, PROT_READ);
        })
    });
    // The cheapest system call that takes mmap_read_lock and does a
    // vma_lookup: mincore(2) of one page.
    let addrs = s.lookup_addrs(ADDRS);
    c.benchmark_group("locked_lookup")
        .bench_function(kernel(n), |b| host_lookups(b, &addrs));
    // The same lookup while another thread maps and unmaps 4 KiB in a
    // loop (will-it-scale's threads mode), through the real calls.
    c.benchmark_group("locked_lookup_with_writer")
        .bench_function(kernel(n), |b| {
            let stop = AtomicBool::new(false);
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let a = host_mmap(s.writer_hint(), P, PROT_READ, ANON, -1, Some(s.writer_hint()));
                        host_munmap(a, P);
                    }
                });
                host_lookups(b, &addrs);
                stop.store(true, Ordering::Relaxed);
            });
        });
    // mmap_write_lock + unlock as the kernel pays them: brk(NULL) takes the
    // write lock, finds nothing to do and unlocks (plus the syscall).
    c.benchmark_group("write_lock_unlock")
        .bench_function(kernel(n), |b| b.iter(|| black_box(host_brk(0))));
    let lines = host_vma_count() + 1;
    let mut buf = Vec::with_capacity(lines * 128);
    c.benchmark_group("maps_render_per_vma").bench_function(kernel(n), |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                buf.clear();
                let mut f = std::fs::File::open("/proc/self/maps").expect("open /proc/self/maps");
                f.read_to_end(&mut buf).expect("read /proc/self/maps");
                black_box(&buf);
            }
            t.elapsed() / lines as u32
        })
    });
    drop(h);
}

/// Counts of speculative outcomes (kept per thread, summed after).
#[derive(Default, Clone, Copy)]
struct Rates {
    attempts: u64,
    valid: u64,
    retry: u64,
    busy: u64,
    fallback: u64,
}

impl Rates {
    fn add(&mut self, o: &Rates) {
        self.attempts += o.attempts;
        self.valid += o.valid;
        self.retry += o.retry;
        self.busy += o.busy;
        self.fallback += o.fallback;
    }
}

/// `vma_lookup` as a speculative reader does it (one attempt, then the
/// locked path), counting outcomes in `r`.
#[inline]
fn spec_lookup<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, a: u64, r: &mut Rates) -> Option<u64> {
    r.attempts += 1;
    match vma_lookup_speculative(mm, a) {
        Spec::Valid { value, .. } => {
            r.valid += 1;
            value.map(|v| v.start)
        }
        other => {
            if matches!(other, Spec::Busy) {
                r.busy += 1;
            } else {
                r.retry += 1;
            }
            r.fallback += 1;
            vma_lookup_locked(mm, a).map(|v| v.start)
        }
    }
}

#[inline]
fn locked_lookup<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, a: u64, _: &mut Rates) -> Option<u64> {
    vma_lookup_locked(mm, a).map(|v| v.start)
}

/// A will-it-scale threads-mode writer: maps and unmaps 4 KiB in a loop
/// until stopped. Before each call it makes one real, empty system call
/// (`getppid`): a real writer pays the kernel's entry and exit outside
/// `mmap_lock` on every call, and without that the model's writer would
/// hold the lock almost all the time, which no real writer does.
struct Writer {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    started: Instant,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start<Pol: BarrierPolicy>(mm: Arc<MmStruct<Pol>>, hint: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let (st, op) = (stop.clone(), ops.clone());
        let handle = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                syscall_entry_exit();
                let a = vm_mmap_pgoff(&mm, None, hint, P, PROT_READ, ANON, 0).expect("writer mmap");
                assert_eq!(a, hint, "writer placement");
                syscall_entry_exit();
                vm_munmap(&mm, a, P).expect("writer munmap");
                op.fetch_add(1, Ordering::Relaxed);
            }
        });
        Writer {
            stop,
            ops,
            started: Instant::now(),
            handle: Some(handle),
        }
    }

    /// Stops the writer; returns its operations per second.
    fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("writer thread");
        self.ops.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }
}

/// The cost of entering and leaving the kernel: one `getppid(2)`.
#[inline]
fn syscall_entry_exit() {
    // SAFETY: getppid has no arguments and no effect.
    black_box(unsafe { libc::syscall(libc::SYS_getppid) });
}

/// Runs `lookup` over the fixture's addresses on `readers` threads at once
/// and reports the time per lookup per thread.
fn bench_readers<Pol: BarrierPolicy>(
    c: &mut Criterion,
    name: &str,
    f: &ModelFixture<Pol>,
    readers: usize,
    with_writer: bool,
    lookup: fn(&MmStruct<Pol>, u64, &mut Rates) -> Option<u64>,
    extra: &mut Extra,
) {
    let n = total_vmas_param(f);
    let addrs = f.spots.lookup_addrs(ADDRS);
    let mm = f.mm().clone();
    let writer = with_writer.then(|| Writer::start(mm.clone(), f.spots.writer_hint()));
    let mut total = Rates::default();
    let run = |iters: u64, addrs: &[u64]| -> Rates {
        let mut r = Rates::default();
        let mut hits = 0u64;
        for i in 0..iters as usize {
            hits += lookup(&mm, addrs[i & (ADDRS - 1)], &mut r).is_some() as u64;
        }
        assert_eq!(hits, iters, "every address is mapped");
        r
    };
    c.benchmark_group(name).bench_function(model::<Pol>(n), |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            if readers == 1 {
                total.add(&run(iters, &addrs));
            } else {
                std::thread::scope(|sc| {
                    let hs: Vec<_> = (0..readers).map(|_| sc.spawn(|| run(iters, &addrs))).collect();
                    for h in hs {
                        total.add(&h.join().expect("reader thread"));
                    }
                });
            }
            t.elapsed()
        })
    });
    let wops = writer.map_or(0.0, Writer::finish);
    extra.record(&[
        &"rates",
        &name,
        &Pol::NAME,
        &n,
        &total.attempts,
        &total.valid,
        &total.retry,
        &total.busy,
        &total.fallback,
        &format!("{wops:.0}"),
    ]);
}

/// The VMA-count parameter a fixture was built for.
fn total_vmas_param<Pol: BarrierPolicy>(f: &ModelFixture<Pol>) -> usize {
    let have = f.mm().read().vma_count();
    VMAS.into_iter().find(|&n| total_vmas(n) == have).expect("fixture size")
}

/// The model's loops for one policy and VMA count.
fn model_suite<Pol: BarrierPolicy>(c: &mut Criterion, n: usize, files: &BenchFiles, extra: &mut Extra) {
    let mut f: ModelFixture<Pol> = ModelFixture::new(n, files);
    let s = f.spots;
    let count = f.mm().read().vma_count();
    extra.record(&[&"mem", &Pol::NAME, &n, &(f.mm().allocated_bytes() / count)]);
    let id = model::<Pol>(n);
    c.benchmark_group("mmap_munmap_4k").bench_function(id.clone(), |b| {
        b.iter(|| {
            let a = f.task.mmap(s.merge_hint(), P, RW, ANON, -1, 0).expect("mmap");
            assert_eq!(a, s.merge_hint());
            vm_munmap(f.task.mm(), a, P).expect("munmap");
        })
    });
    c.benchmark_group("mmap_munmap_4k_own").bench_function(id.clone(), |b| {
        b.iter(|| {
            let a = f.task.mmap(s.own_hint(), P, PROT_READ, ANON, -1, 0).expect("mmap");
            assert_eq!(a, s.own_hint());
            vm_munmap(f.task.mm(), a, P).expect("munmap");
        })
    });
    c.benchmark_group("mmap1").bench_function(id.clone(), |b| {
        b.iter(|| {
            let a = f.task.mmap(0, MMAP_BIG, RW, ANON, -1, 0).expect("mmap");
            vm_munmap(f.task.mm(), a, MMAP_BIG).expect("munmap");
        })
    });
    let fd = f.fd;
    c.benchmark_group("mmap2").bench_function(id.clone(), |b| {
        b.iter(|| {
            let a = f.task.mmap(0, MMAP_BIG, RW, MAP_PRIVATE, fd, 0).expect("mmap");
            vm_munmap(f.task.mm(), a, MMAP_BIG).expect("munmap");
        })
    });
    let cur = sys_brk(f.mm(), 0);
    c.benchmark_group("brk1").bench_function(id.clone(), |b| {
        b.iter(|| {
            assert_eq!(sys_brk(f.task.mm(), cur + P), cur + P);
            assert_eq!(sys_brk(f.task.mm(), cur), cur);
        })
    });
    c.benchmark_group("mprotect_toggle").bench_function(id.clone(), |b| {
        b.iter(|| {
            do_mprotect(f.task.mm(), s.toggle, P, RW).expect("mprotect");
            do_mprotect(f.task.mm(), s.toggle, P, PROT_READ).expect("mprotect");
        })
    });
    assert_eq!(f.mm().read().vma_count(), count, "the write loops restore the layout");

    c.benchmark_group("write_lock_unlock").bench_function(id.clone(), |b| {
        let lock = f.mm().mmap_lock();
        b.iter(|| drop(black_box(lock.write())))
    });
    c.benchmark_group("try_begin_retry").bench_function(id.clone(), |b| {
        let mm = f.mm();
        b.iter(|| {
            let seq = mm.speculate_try_begin().expect("no writer");
            mm.speculate_retry(black_box(seq))
        })
    });
    let lines = count as u32 + 1;
    let mut out = String::with_capacity(count * 100 + 200);
    c.benchmark_group("maps_render_per_vma")
        .bench_function(id.clone(), |b| {
            let mm = f.task.mm();
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let r = mm.read();
                    let files = r.files();
                    out.clear();
                    mm_ops::kernel::task_mmu::render_maps_into(&mut out, &r, &files, true);
                    black_box(&out);
                }
                t.elapsed() / lines
            })
        });

    bench_readers(c, "spec_lookup", &f, 1, false, spec_lookup::<Pol>, extra);
    bench_readers(c, "locked_lookup", &f, 1, false, locked_lookup::<Pol>, extra);
    let addrs = s.lookup_addrs(ADDRS);
    c.benchmark_group("uprobe_spec").bench_function(id.clone(), |b| {
        let mm = f.task.mm();
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & (ADDRS - 1);
            let a = addrs[i];
            find_active_uprobe_speculative(mm, a)
                .or_else(|| find_active_uprobe_locked(mm, a))
                .expect("file-backed")
        })
    });
    c.benchmark_group("uprobe_locked").bench_function(id.clone(), |b| {
        let mm = f.task.mm();
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & (ADDRS - 1);
            find_active_uprobe_locked(mm, addrs[i]).expect("file-backed")
        })
    });
    bench_readers(c, "spec_lookup_with_writer", &f, 1, true, spec_lookup::<Pol>, extra);
    bench_readers(c, "locked_lookup_with_writer", &f, 1, true, locked_lookup::<Pol>, extra);
    if n == THREADS_VMAS {
        bench_readers(c, "spec_lookup_2r", &f, 2, false, spec_lookup::<Pol>, extra);
        bench_readers(c, "locked_lookup_2r", &f, 2, false, locked_lookup::<Pol>, extra);
        bench_readers(c, "spec_lookup_2r_with_writer", &f, 2, true, spec_lookup::<Pol>, extra);
        bench_readers(
            c,
            "locked_lookup_2r_with_writer",
            &f,
            2,
            true,
            locked_lookup::<Pol>,
            extra,
        );
    }
}

/// [`model_suite`] for each registered policy.
struct Suite<'a> {
    c: &'a mut Criterion,
    n: usize,
    files: &'a BenchFiles,
    extra: &'a mut Extra,
}

impl PolicyVisitor for Suite<'_> {
    type Output = ();
    fn visit<P: BarrierPolicy>(self) {
        model_suite::<P>(self.c, self.n, self.files, self.extra);
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let files = BenchFiles::create(&std::env::temp_dir()).expect("bench file in the temp directory");
    let mut extra = Extra::create();
    extra.record(&[&"host_vmas_at_start", &host_vma_count()]);
    for &p in PolicyKind::ALL {
        extra.record(&[&"policy", &p.name(), &p.expected_sound()]);
    }
    c.benchmark_group("syscall_floor").bench_function(kernel(0), |b| {
        // SAFETY: getppid has no arguments and no effect.
        b.iter(|| unsafe { libc::syscall(libc::SYS_getppid) })
    });
    for (k, n) in VMAS.into_iter().enumerate() {
        kernel_suite(&mut c, n, &files, &mut extra);
        // The policies take turns going first, so that whatever the first
        // suite of a size pays (cold memory, clock ramp-up) is not always
        // charged to the same policy.
        let all = PolicyKind::ALL;
        for &p in all.iter().cycle().skip(k % all.len()).take(all.len()) {
            p.visit(Suite {
                c: &mut c,
                n,
                files: &files,
                extra: &mut extra,
            });
        }
    }
    c.final_summary();
}
