//! The instructions each barrier policy emits for the four steps of the
//! protocol, as out-of-line functions to disassemble:
//! `objdump -d --no-show-raw-insn target/release/examples/barrier_asm`
//! (or `cargo xtask asm`).

use std::hint::black_box;

use mm_core::sync::AtomicU32;
use mm_core::{BarrierPolicy, Full, SeedFixed, SeedV1, Upstream};

macro_rules! steps {
    ($p:ty, $wb:ident, $we:ident, $rb:ident, $rr:ident) => {
        /// mmap_write_lock's bump.
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub fn $wb(seq: &AtomicU32, new: u32) {
            <$p>::write_begin(seq, new)
        }
        /// mmap_write_unlock's bump.
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub fn $we(seq: &AtomicU32, new: u32) {
            <$p>::write_end(seq, new)
        }
        /// mmap_lock_speculate_try_begin.
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub fn $rb(seq: &AtomicU32) -> Option<u32> {
            <$p>::read_begin(seq)
        }
        /// mmap_lock_speculate_retry.
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub fn $rr(seq: &AtomicU32, start: u32) -> bool {
            <$p>::read_retry(seq, start)
        }
    };
}

steps!(
    SeedV1,
    seed_v1_write_lock,
    seed_v1_write_unlock,
    seed_v1_try_begin,
    seed_v1_retry
);
steps!(
    SeedFixed,
    seed_fixed_write_lock,
    seed_fixed_write_unlock,
    seed_fixed_try_begin,
    seed_fixed_retry
);
steps!(
    Upstream,
    upstream_write_lock,
    upstream_write_unlock,
    upstream_try_begin,
    upstream_retry
);
steps!(Full, full_write_lock, full_write_unlock, full_try_begin, full_retry);

fn main() {
    let seq = AtomicU32::new(0);
    let s = black_box(&seq);
    seed_v1_write_lock(s, 1);
    seed_v1_write_unlock(s, 2);
    seed_fixed_write_lock(s, 3);
    seed_fixed_write_unlock(s, 4);
    upstream_write_lock(s, 5);
    upstream_write_unlock(s, 6);
    full_write_lock(s, 7);
    full_write_unlock(s, 8);
    let b = [
        seed_v1_try_begin(s),
        seed_fixed_try_begin(s),
        upstream_try_begin(s),
        full_try_begin(s),
    ];
    let r = [
        seed_v1_retry(s, 8),
        seed_fixed_retry(s, 8),
        upstream_retry(s, 8),
        full_retry(s, 8),
    ];
    println!("{b:?} {r:?}");
}
