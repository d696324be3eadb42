//! Rough timing probe (exploration only; real numbers come from criterion).
use std::time::Instant;

use mm_core::{MmConfig, Upstream, VmaView};
use mm_ops::task::Task;
use mm_ops::uapi::*;

fn main() {
    let only: Option<u64> = std::env::var("N").ok().and_then(|v| v.parse().ok());
    for n in [64u64, 1024, 65000]
        .into_iter()
        .filter(|n| only.is_none_or(|o| o == *n))
    {
        let mut t: Task<Upstream> = Task::new(MmConfig::default());
        // n VMAs of alternating protection, 2 pages each, below an arena.
        let base = 0x7f00_0000_0000u64;
        for i in 0..n {
            let prot = if i % 2 == 0 { PROT_READ } else { PROT_READ | PROT_WRITE };
            t.mmap(
                base + i * 8192,
                8192,
                prot,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                -1,
                0,
            )
            .unwrap();
        }
        assert_eq!(t.mm().read().vma_count() as u64, n);
        let iters = 200_000;
        let s = Instant::now();
        for _ in 0..iters {
            let a = t.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
            t.apply(&mm_ops::call::Call::Munmap { addr: a, len: 4096 }, None);
        }
        let per = s.elapsed().as_nanos() as f64 / iters as f64;
        let s = Instant::now();
        let mid = base + (n / 2) * 8192;
        for _ in 0..iters {
            mm_ops::mprotect::do_mprotect(t.mm(), mid, 4096, PROT_READ | PROT_WRITE).unwrap();
            mm_ops::mprotect::do_mprotect(t.mm(), mid, 4096, PROT_READ).unwrap();
        }
        let mp = s.elapsed().as_nanos() as f64 / iters as f64 / 2.0;
        let s = Instant::now();
        let mut hits = 0;
        for i in 0..iters {
            let a = base + (i % n) * 8192 + 100;
            if let mm_spec::lookup::Spec::Valid { value: Some(_), .. } =
                mm_spec::lookup::vma_lookup_speculative(t.mm(), a)
            {
                hits += 1;
            }
        }
        let sl = s.elapsed().as_nanos() as f64 / iters as f64;
        let s = Instant::now();
        for i in 0..iters {
            let a = base + (i % n) * 8192 + 100;
            std::hint::black_box(mm_spec::lookup::vma_lookup_locked(t.mm(), a));
        }
        let ll = s.elapsed().as_nanos() as f64 / iters as f64;
        let s = Instant::now();
        let r = t.mm().read();
        let f = r.files();
        let text = mm_ops::task_mmu::render_maps(&r, &f, true);
        let rm = s.elapsed().as_nanos() as f64 / n as f64;
        drop(f);
        drop(r);
        println!(
            "n={n}: mmap+munmap {per:.0} ns, mprotect {mp:.0} ns, spec lookup {sl:.1} ns ({hits} hits), locked lookup {ll:.1} ns, render {rm:.1} ns/line ({} bytes), mem {} B/VMA",
            text.len(),
            t.mm().allocated_bytes() as u64 / n
        );
    }
}
