//! The stress oracle with real threads: zero wrong answers for the sound
//! policies (and, on x86-64, for all of them: TSO hides v1's bugs), with
//! speculative and fallback readers, downgrades and file-slot recycling,
//! also across the wrap of `mm_lock_seq` at 2^32.
#![cfg(not(loom))]

use std::time::Duration;

use mm_core::{BarrierPolicy, Full, SeedFixed, SeedV1, Upstream};
use mm_spec::stress::{StressConfig, StressReport, run};

fn config() -> StressConfig {
    StressConfig {
        writers: 2,
        readers: 2,
        openers: 1,
        maps_readers: 1,
        duration: Duration::from_millis(700),
        slots: 256,
        seed: 7,
        initial_seq: 0,
        sections_per_writer: None,
    }
}

fn check<P: BarrierPolicy>(cfg: &StressConfig) -> StressReport {
    let r = run::<P>(cfg, &|_| {});
    println!("{}: {r:?}", P::NAME);
    assert!(r.writer_ops > 100, "writers made progress: {r:?}");
    // The counts below only show that each kind of reader ran; the machine
    // may be loaded (CI runs tests in parallel), so they are kept low.
    assert!(r.downgrades > 0, "some sections ended with a downgrade: {r:?}");
    assert!(r.opens > 0, "the opener recycled file slots: {r:?}");
    assert!(r.checked > 50, "readers validated reads: {r:?}");
    assert!(r.uprobes.successes > 5, "uprobe reads validated: {r:?}");
    assert!(r.fallback_checked > 5, "fallback answers checked: {r:?}");
    assert!(r.faults.vma_lock > 5, "faults handled under the VMA lock: {r:?}");
    assert!(r.faults.mmap_lock > 0, "faults that fell back to mmap_lock: {r:?}");
    assert!(
        r.maps.reads > 0 && r.maps.lines > 10,
        "maps read under per-VMA locks: {r:?}"
    );
    assert!(r.writer_latency.samples == r.writer_ops, "every section timed: {r:?}");
    assert!(
        r.lookups.retries + r.lookups.busy + r.uprobes.retries + r.uprobes.busy > 0,
        "some reads raced with writers: {r:?}"
    );
    assert_eq!(r.wrong, 0, "{}: {:?}", P::NAME, r.first_wrong);
    r
}

#[test]
fn upstream_has_no_wrong_reads() {
    check::<Upstream>(&config());
}

#[test]
fn seed_fixed_has_no_wrong_reads() {
    check::<SeedFixed>(&config());
}

#[test]
fn full_has_no_wrong_reads() {
    check::<Full>(&config());
}

#[test]
fn seed_v1_has_no_wrong_reads_on_tso() {
    check::<SeedV1>(&config());
}

/// The count starts 200 below 2^32 and wraps to small values: validation
/// and the records keep working across the wrap.
#[test]
fn upstream_across_the_wrap() {
    let start = u32::MAX - 199;
    let cfg = StressConfig {
        initial_seq: start,
        ..config()
    };
    let r = check::<Upstream>(&cfg);
    assert!(
        r.final_seq < start && r.writer_ops > 200,
        "the count wrapped: {} -> {}",
        r.initial_seq,
        r.final_seq
    );
}

/// With `MM_MUTATION` set (feature `mutations`), this run is one of the
/// detectors of `cargo xtask loom`: it fails if any answer is wrong, or if
/// the debug-build `mm_lock_seq` invariant breaks.
#[test]
fn mutation_run() {
    if std::env::var("MM_MUTATION").is_err() {
        return;
    }
    // A thread that panics (a broken invariant) may leave the others
    // waiting on a lock it held: end the process then, after the message,
    // rather than wait for xtask's time limit.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
    let cfg = StressConfig {
        duration: Duration::from_millis(1500),
        ..config()
    };
    let r = run::<Upstream>(&cfg, &|_| {});
    println!("{r:?}");
    assert_eq!(r.wrong, 0, "wrong answers: {:?}", r.first_wrong);
}
