//! `mm_lock_seq`: its parity invariant (odd exactly while the write lock is
//! held, checked in debug builds) and its wraparound at 2^32.
#![cfg(not(loom))]

use mm_core::mmap_lock::MmapLock;
use mm_core::{BarrierPolicy, Full, SeedFixed, Upstream};

fn wraps<P: BarrierPolicy>() {
    let start = u32::MAX - 1;
    let lock: MmapLock<u32, P> = MmapLock::with_seq(0, start);
    let s = lock.speculate_try_begin().expect("even count, no writer");
    assert_eq!(s, start);
    {
        let mut w = lock.write();
        *w += 1;
        assert_eq!(lock.seq(), u32::MAX, "odd while write-locked");
        assert!(lock.speculate_try_begin().is_none());
    }
    assert_eq!(lock.seq(), 0, "the unlock wraps to 0, even");
    assert!(lock.speculate_retry(s), "a reader from before the wrap retries");
    let s2 = lock.speculate_try_begin().expect("even after the wrap");
    assert!(!lock.speculate_retry(s2));
    // A downgrade ends the section too.
    let r = lock.write().downgrade();
    assert_eq!(lock.seq(), 2);
    assert_eq!(
        lock.speculate_try_begin(),
        Some(2),
        "try_begin succeeds under the read lock"
    );
    drop(r);
    assert!(lock.speculate_retry(s2));
    // A trylock section.
    drop(lock.try_write().expect("free"));
    assert_eq!(lock.seq(), 4);
}

#[test]
fn the_count_wraps_at_2_pow_32() {
    wraps::<Upstream>();
    wraps::<SeedFixed>();
    wraps::<Full>();
}

#[test]
#[should_panic(expected = "is odd, but the lock is free")]
fn an_unlocked_count_is_even() {
    let _ = MmapLock::<(), Upstream>::with_seq((), 3);
}

/// Runs this test binary's `helper` with `MM_MUTATION=name` and returns
/// whether it failed, and its output.
#[cfg(all(feature = "mutations", debug_assertions))]
fn helper_with(mutation: &str) -> (bool, String) {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["helper", "--exact", "--ignored", "--nocapture"])
        .env("MM_MUTATION", mutation)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the helper");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (!out.status.success(), text)
}

/// Two write sections, a downgrade, a read lock and a trylock: what the
/// invariant is checked on.
#[test]
#[ignore = "run by the invariant tests with a mutation"]
fn helper() {
    let lock: MmapLock<u32, Upstream> = MmapLock::new(0);
    drop(lock.write());
    drop(lock.write().downgrade());
    drop(lock.read());
    drop(lock.try_write());
    drop(lock.write());
}

/// Each forgotten bump breaks the parity invariant, and debug builds say
/// where.
#[cfg(all(feature = "mutations", debug_assertions))]
#[test]
fn the_invariant_catches_every_forgotten_bump() {
    let (failed, out) = helper_with("");
    assert!(!failed, "the unmutated helper passes: {out}");
    for (m, at) in [
        ("no-bump-lock", "the end of a write section"),
        ("no-bump-unlock", "mmap_write_lock"),
        ("no-bump-downgrade", "mmap_read_lock"),
        ("no-bump-trylock", "the end of a write section"),
    ] {
        let (failed, out) = helper_with(m);
        assert!(failed && out.contains("mm_lock_seq invariant broken"), "{m}: {out}");
        assert!(out.contains(&format!("at {at}")), "{m} is caught at {at}: {out}");
    }
}
