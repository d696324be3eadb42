//! perf target: the mprotect toggle alone.
use mm_core::{MmConfig, Upstream};
use mm_ops::task::Task;
use mm_ops::uapi::*;

fn main() {
    let n: u64 = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let what = std::env::var("W").unwrap_or_else(|_| "mprotect".into());
    let mut t: Task<Upstream> = Task::new(MmConfig::default());
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
    let mid = base + (n / 2) * 8192;
    let s = std::time::Instant::now();
    let iters = 3_000_000;
    for _ in 0..iters {
        if what == "mprotect" {
            mm_ops::mprotect::do_mprotect(t.mm(), mid, 4096, PROT_READ | PROT_WRITE).unwrap();
            mm_ops::mprotect::do_mprotect(t.mm(), mid, 4096, PROT_READ).unwrap();
        } else {
            let a = t.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap();
            mm_ops::mmap::vm_munmap(t.mm(), a, 4096).unwrap();
        }
    }
    println!(
        "{what}: {:.1} ns per pair",
        s.elapsed().as_nanos() as f64 / iters as f64
    );
}
