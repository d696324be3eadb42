//! proptest strategies for calls (mmap, munmap, mprotect, brk, faults,
//! madvise's flag advice) in a small arena, with the descriptors of
//! the [`World`](super::machine::World) (3: a file read-write, 4: the same
//! file read-only, 5: a dup of 3, 6: a memfd, 7: not open).

use proptest::prelude::*;

use crate::call::{Access, Call};
use crate::uapi::*;

/// Start of the arena the strategies aim at.
pub const ARENA: u64 = 0x2_0000_0000;
/// Pages in the arena.
pub const ARENA_PAGES: u64 = 48;

/// An address: in the arena (mostly), or near `mmap_base`.
pub fn arb_addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0..ARENA_PAGES).prop_map(|p| ARENA + p * PAGE_SIZE),
        1 => (1u64..40).prop_map(|p| super::refmm::MMAP_BASE - p * PAGE_SIZE),
        1 => Just(0u64),
    ]
}

/// A length in bytes: 1–8 pages, sometimes unaligned or zero.
pub fn arb_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        10 => (1u64..=8).prop_map(|p| p * PAGE_SIZE),
        1 => 1u64..=8 * PAGE_SIZE,
        1 => Just(0u64),
    ]
}

/// Protection bits, sometimes with an unknown bit.
pub fn arb_prot() -> impl Strategy<Value = u64> {
    prop_oneof![12 => 0u64..8, 1 => (0u64..8).prop_map(|p| p | 0x10)]
}

/// `mmap` flags.
pub fn arb_mmap_flags() -> impl Strategy<Value = u64> {
    (
        prop_oneof![6 => Just(MAP_PRIVATE), 3 => Just(MAP_SHARED), 1 => Just(MAP_SHARED_VALIDATE), 1 => Just(MAP_DROPPABLE)],
        prop::bool::weighted(0.7),
        prop_oneof![6 => Just(MAP_FIXED), 1 => Just(MAP_FIXED_NOREPLACE), 3 => Just(0)],
        prop::collection::vec(
            prop::sample::select(vec![MAP_NORESERVE, MAP_STACK, MAP_GROWSDOWN, MAP_POPULATE, MAP_LOCKED, MAP_SYNC]),
            0..2,
        ),
    )
        .prop_map(|(t, anon, fixed, extra)| {
            t | if anon { MAP_ANONYMOUS } else { 0 } | fixed | extra.into_iter().fold(0, |a, b| a | b)
        })
}

/// One call.
pub fn arb_call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (arb_addr(), arb_len(), arb_prot(), arb_mmap_flags(), 3i64..8, 0u64..6).prop_map(
            |(addr, len, prot, flags, fd, off)| {
                let fd = if flags & MAP_ANONYMOUS != 0 { -1 } else { fd };
                let off = if fd >= 0 { off * PAGE_SIZE } else { 0 };
                Call::Mmap { addr, len, prot, flags, fd, off }
            }
        ),
        2 => (arb_addr(), arb_len()).prop_map(|(addr, len)| Call::Munmap { addr, len }),
        3 => (arb_addr(), arb_len(), arb_prot(), prop::bool::weighted(0.05)).prop_map(|(addr, len, prot, gd)| {
            Call::Mprotect { addr, len, prot: prot | if gd { PROT_GROWSDOWN } else { 0 } }
        }),
        1 => (0u64..24).prop_map(|p| Call::Brk { addr: if p == 0 { 0 } else { super::refmm::START_BRK + (p - 1) * 3000 } }),
        3 => (arb_addr(), 0u64..PAGE_SIZE, prop::sample::select(vec![Access::Read, Access::Write, Access::Exec]))
            .prop_map(|(a, o, access)| Call::Fault { addr: a + o, access }),
        2 => (arb_addr(), arb_len(), prop::sample::select(vec![0u64, 1, 2, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]))
            .prop_map(|(addr, len, advice)| Call::Madvise { addr, len, advice }),
    ]
}
