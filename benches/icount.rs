//! `mm-icount POLICY VMAS ITERS`: runs each measured operation `ITERS`
//! times on the bench fixture, each loop in its own never-inlined
//! `measure_*` function, so that `cargo xtask bench` can run this program
//! under callgrind (`--cache-sim=yes`) and read each function's inclusive
//! instruction and cache-miss counts: deterministic per-operation costs,
//! which do not depend on the machine's load.
//!
//! Operations (the criterion benches of the same names):
//! * `spec_lookup`: one speculative `vma_lookup` (addresses in a fixed
//!   pseudo-random order);
//! * `mmap_munmap_4k`: mmap 4 KiB next to an `rw-p` neighbour (merges),
//!   munmap it;
//! * `mmap_munmap_4k_own`: mmap 4 KiB `r--p` in a hole (its own VMA: a
//!   tree insert), munmap it (a tree removal);
//! * `mprotect_toggle`: mprotect one page rw (split + merge), back to r;
//! * `brk1`: brk +1 page, brk −1 page;
//! * `maps_render`: `/proc/PID/maps` of the whole address space (divide by
//!   the number of lines for a per-line figure);
//! * `write_lock_unlock`, `try_begin_retry`: the policy's bare cost.

use std::hint::black_box;

use mm_benches::{BenchFiles, ModelFixture, P};
use mm_core::{BarrierPolicy, PolicyKind, PolicyVisitor, VmaView};
use mm_ops::kernel::mmap::{sys_brk, vm_munmap};
use mm_ops::kernel::mprotect::do_mprotect;
use mm_ops::uapi::*;
use mm_spec::lookup::{Spec, vma_lookup_speculative};

#[inline(never)]
fn measure_spec_lookup<Pol: BarrierPolicy>(f: &ModelFixture<Pol>, addrs: &[u64], iters: usize) -> u64 {
    let mm = f.mm();
    let mut found = 0;
    for i in 0..iters {
        if let Spec::Valid { value: Some(v), .. } = vma_lookup_speculative(mm, addrs[i % addrs.len()]) {
            found += v.start & 1 ^ 1;
        }
    }
    found
}

/// `iters` times: mmap one anonymous page at `hint` with `prot`, munmap it
/// (inlined into each measured function, so that callgrind counts it there).
#[inline(always)]
fn mmap_munmap_loop<Pol: BarrierPolicy>(f: &mut ModelFixture<Pol>, hint: u64, prot: u64, iters: usize) {
    for _ in 0..iters {
        let a = f
            .task
            .mmap(hint, P, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            .expect("mmap");
        vm_munmap(f.task.mm(), a, P).expect("munmap");
    }
}

#[inline(never)]
fn measure_mmap_munmap_4k<Pol: BarrierPolicy>(f: &mut ModelFixture<Pol>, iters: usize) {
    mmap_munmap_loop(f, f.spots.merge_hint(), PROT_READ | PROT_WRITE, iters);
}

#[inline(never)]
fn measure_mmap_munmap_4k_own<Pol: BarrierPolicy>(f: &mut ModelFixture<Pol>, iters: usize) {
    mmap_munmap_loop(f, f.spots.own_hint(), PROT_READ, iters);
}

#[inline(never)]
fn measure_mprotect_toggle<Pol: BarrierPolicy>(f: &ModelFixture<Pol>, iters: usize) {
    let t = f.spots.toggle;
    for _ in 0..iters {
        do_mprotect(f.mm(), t, P, PROT_READ | PROT_WRITE).expect("mprotect");
        do_mprotect(f.mm(), t, P, PROT_READ).expect("mprotect");
    }
}

#[inline(never)]
fn measure_brk1<Pol: BarrierPolicy>(f: &ModelFixture<Pol>, cur: u64, iters: usize) {
    for _ in 0..iters {
        assert_eq!(sys_brk(f.mm(), cur + P), cur + P);
        assert_eq!(sys_brk(f.mm(), cur), cur);
    }
}

#[inline(never)]
fn measure_maps_render<Pol: BarrierPolicy>(f: &ModelFixture<Pol>, out: &mut String, iters: usize) {
    let mm = f.mm();
    for _ in 0..iters {
        let r = mm.read();
        let files = r.files();
        out.clear();
        mm_ops::kernel::task_mmu::render_maps_into(out, &r, &files, true);
        black_box(&*out);
    }
}

#[inline(never)]
fn measure_write_lock_unlock<Pol: BarrierPolicy>(f: &ModelFixture<Pol>, iters: usize) {
    let lock = f.mm().mmap_lock();
    for _ in 0..iters {
        drop(black_box(lock.write()));
    }
}

#[inline(never)]
fn measure_try_begin_retry<Pol: BarrierPolicy>(f: &ModelFixture<Pol>, iters: usize) -> usize {
    let mm = f.mm();
    let mut n = 0;
    for _ in 0..iters {
        let seq = mm.speculate_try_begin().expect("no writer");
        n += usize::from(mm.speculate_retry(black_box(seq)));
    }
    n
}

#[inline(never)]
fn warm_up<Pol: BarrierPolicy>(f: &mut ModelFixture<Pol>, addrs: &[u64], cur: u64, out: &mut String) {
    let mm = f.mm().clone();
    for &a in addrs {
        black_box(vma_lookup_speculative(&mm, a));
    }
    for _ in 0..2 {
        let a = f
            .task
            .mmap(
                f.spots.merge_hint(),
                P,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
            .expect("mmap");
        vm_munmap(&mm, a, P).expect("munmap");
        let a = f
            .task
            .mmap(f.spots.own_hint(), P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            .expect("mmap");
        vm_munmap(&mm, a, P).expect("munmap");
        do_mprotect(&mm, f.spots.toggle, P, PROT_READ | PROT_WRITE).expect("mprotect");
        do_mprotect(&mm, f.spots.toggle, P, PROT_READ).expect("mprotect");
        assert_eq!(sys_brk(&mm, cur + P), cur + P);
        assert_eq!(sys_brk(&mm, cur), cur);
    }
    let r = mm.read();
    let files = r.files();
    out.clear();
    mm_ops::kernel::task_mmu::render_maps_into(out, &r, &files, true);
}

fn run<Pol: BarrierPolicy>(vmas: usize, iters: usize, files: &BenchFiles) {
    let mut f: ModelFixture<Pol> = ModelFixture::new(vmas, files);
    let addrs = f.spots.lookup_addrs(4096);
    let lines = f.mm().read().vma_count() + 1;
    let cur = sys_brk(f.mm(), 0);
    let mut out = String::with_capacity(lines * 128);
    // An unmeasured round of each first (in another function, so that
    // its costs are not the measured function's), so that the measured
    // loops start warm, as criterion's warm-up does.
    warm_up(&mut f, &addrs, cur, &mut out);
    black_box(measure_spec_lookup(&f, &addrs, iters));
    measure_mmap_munmap_4k(&mut f, iters);
    measure_mmap_munmap_4k_own(&mut f, iters);
    measure_mprotect_toggle(&f, iters);
    measure_brk1(&f, cur, iters);
    measure_maps_render(&f, &mut out, iters.div_ceil(lines).max(2));
    measure_write_lock_unlock(&f, iters);
    black_box(measure_try_begin_retry(&f, iters));
    // What the driver divides by.
    println!("lines\t{lines}");
    println!("maps_iters\t{}", iters.div_ceil(lines).max(2));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        let names: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
        eprintln!("usage: mm-icount POLICY VMAS ITERS (POLICY: {})", names.join(", "));
        std::process::exit(2)
    };
    if args.len() != 3 {
        usage();
    }
    let (Ok(vmas), Ok(iters)) = (args[1].parse::<usize>(), args[2].parse::<usize>()) else {
        usage()
    };
    let files = BenchFiles::create(&std::env::temp_dir()).expect("bench file in the temp directory");
    let Some(policy) = PolicyKind::from_name(&args[0]) else {
        usage()
    };
    policy.visit(Run {
        vmas,
        iters,
        files: &files,
    });
}

/// [`run`] for the chosen policy.
struct Run<'a> {
    vmas: usize,
    iters: usize,
    files: &'a BenchFiles,
}

impl PolicyVisitor for Run<'_> {
    type Output = ();
    fn visit<P: BarrierPolicy>(self) {
        run::<P>(self.vmas, self.iters, self.files);
    }
}
