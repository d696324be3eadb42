//! A small concurrency test for Miri and ThreadSanitizer (`cargo xtask
//! miri`, `cargo xtask tsan`): a writer (with downgrades and file-slot
//! recycling), a file opener and two readers (speculative, uprobe and
//! fallback paths) on real threads, every answer checked. It also runs in
//! the ordinary test suite, where it is a quick smoke test.
#![cfg(not(loom))]

use mm_core::{BarrierPolicy, SeedFixed, Upstream};
use mm_spec::stress::{StressConfig, run};

fn small<P: BarrierPolicy>(seed: u64) {
    let sections = if cfg!(miri) { 24 } else { 2_000 };
    let cfg = StressConfig {
        writers: 1,
        readers: 2,
        openers: 1,
        slots: 4,
        seed,
        initial_seq: u32::MAX - 15,
        sections_per_writer: Some(sections),
        ..StressConfig::default()
    };
    let r = run::<P>(&cfg, &|_| {});
    println!("{}: {r:?}", P::NAME);
    assert_eq!(r.writer_ops, sections, "the writer ran every section: {r:?}");
    assert_eq!(r.wrong, 0, "{}: {:?}", P::NAME, r.first_wrong);
    // Every write section adds 2, across the wrap at 2^32: the initial
    // layout's section plus the writer's.
    let want = r.initial_seq.wrapping_add(2 + 2 * sections as u32);
    assert_eq!(r.final_seq, want, "mm_lock_seq after {sections} sections: {r:?}");
    assert!(r.final_seq < r.initial_seq, "the count wrapped at 2^32: {r:?}");
}

#[test]
fn upstream_threads_small() {
    let seed = std::env::var("MM_THREADS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    small::<Upstream>(seed);
}

#[test]
fn seed_fixed_threads_small() {
    small::<SeedFixed>(2);
}
