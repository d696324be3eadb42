//! Profiling target for the read path (no criterion, no host fixture):
//! builds the model fixture with `N` VMAs and runs `K` speculative lookups
//! over the benches' pseudo-random addresses. Used with
//! `valgrind --tool=cachegrind --cache-sim=yes` (run once with `K=0` and
//! subtract) for the cache-miss counts in docs/benchmarks.md.
use mm_benches::*;
use mm_core::Upstream;
use mm_spec::lookup::{Spec, vma_lookup_speculative};

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (n, k) = (env("N", 1024), env("K", 1_000_000));
    let files = BenchFiles::create(&std::env::temp_dir()).expect("bench file");
    let f: ModelFixture<Upstream> = ModelFixture::new(n, &files);
    let addrs = f.spots.lookup_addrs(4096);
    let mut hits = 0;
    for i in 0..k {
        if let Spec::Valid { value: Some(_), .. } = vma_lookup_speculative(f.mm(), addrs[i & 4095]) {
            hits += 1;
        }
    }
    assert_eq!(hits, k, "every lookup validates and finds its VMA");
    println!("N={n} K={k}: {hits} hits");
}
