//! The stress oracle with real threads: zero wrong validated reads for the
//! sound policies (and, on x86-64, for all of them: TSO hides v1's bugs).
#![cfg(not(loom))]

use std::time::Duration;

use mm_core::{BarrierPolicy, Full, SeedFixed, SeedV1, Upstream};
use mm_spec::stress::{StressConfig, run};

fn check<P: BarrierPolicy>() {
    let cfg = StressConfig {
        writers: 2,
        readers: 2,
        duration: Duration::from_millis(700),
        slots: 256,
        seed: 7,
    };
    let r = run::<P>(&cfg, &|_| {});
    println!("{}: {r:?}", P::NAME);
    assert!(r.writer_ops > 100, "writers made progress: {r:?}");
    assert!(r.checked > 1000, "readers validated reads: {r:?}");
    assert!(
        r.reads.retries + r.reads.busy > 0,
        "some reads raced with writers: {r:?}"
    );
    assert_eq!(r.wrong, 0, "{}: {:?}", P::NAME, r.first_wrong);
}

#[test]
fn upstream_has_no_wrong_reads() {
    check::<Upstream>();
}

#[test]
fn seed_fixed_has_no_wrong_reads() {
    check::<SeedFixed>();
}

#[test]
fn full_has_no_wrong_reads() {
    check::<Full>();
}

#[test]
fn seed_v1_has_no_wrong_reads_on_tso() {
    check::<SeedV1>();
}
