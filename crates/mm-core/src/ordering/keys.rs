//! The lockless walk's key search: `READ_ONCE` of a published node's keys,
//! counting those at or below an address (the step of `mas_walk` a reader
//! takes under RCU, `lib/maple_tree.c` `mtree_range_walk`).
//!
//! A reader walks nodes that a writer may be changing. Every key is an
//! aligned 64-bit atomic; a reader loads each one as `READ_ONCE` does
//! (relaxed, untorn), so it may see any mix of old and new keys, and the
//! search must then give *some* index in range, never more. Validation
//! against `mm_lock_seq` rejects whatever that mix leads to.
//!
//! Two searches give the same index for the same loaded keys:
//!
//! 1. [`ScalarSearch`]: a branch-free binary search, one load and one
//!    conditional add per halving. Portable; the only one under loom and
//!    Miri.
//! 2. [`Avx2Search`] (x86-64 with AVX2 and POPCNT, detected at run time):
//!    all sixteen keys in four 32-byte loads and four compares, the results
//!    packed into one bit mask and counted. The binary search is a chain of
//!    four dependent loads per level; this is one round of independent
//!    loads, which is what a lookup's latency is made of (measured by
//!    `cargo xtask bench`, `spec_lookup`).
//!
//! # Why the vector loads are sound
//!
//! Rust has no vector atomic load, and a plain (non-atomic) load racing
//! with the writer's atomic stores would be a data race, which is undefined
//! behaviour. The vector search is therefore inline assembly, whose loads
//! are the hardware's, and what it needs of them is that no aligned 8-byte
//! key is torn: then the assembly reads what sixteen relaxed atomic loads in
//! some order could read, which is what the scalar search does, and nothing
//! in the search depends on their order.
//!
//! What the manuals say, and what is assumed beyond it: aligned loads of up
//! to 8 bytes are single-copy atomic (Intel SDM vol. 3A, "Guaranteed Atomic
//! Operations"; AMD APM vol. 2, "Access Atomicity"), and on CPUs with AVX
//! so are aligned 16-byte `(V)MOVDQA`-class moves. For a wider load the
//! manuals say only that it may be made of several accesses; they do not
//! say where those accesses split. Each of the four loads here is 32-byte
//! aligned inside one 64-byte cache line (a node is cache-line aligned and
//! its keys start it), and the assumption is that such a load never splits
//! inside an aligned 8-byte element. No x86-64 implementation is known to
//! do so, but it is an assumption, not a documented guarantee; where it is
//! not wanted, `MM_KEY_SEARCH=portable` turns the vector search off.
//!
//! # Padding
//!
//! Keys past a node's length are [`PAD_KEY`], above every user address. It
//! is `i64::MAX` rather than `u64::MAX` because x86's vector compare is
//! signed; user addresses (below 2^57) compare the same either way, and the
//! address searched for is clamped below the padding first.

use crate::sync::AtomicU64;

use super::read_once;

/// The key published past a node's length: above every user address, and
/// the largest value that a signed compare orders last.
pub const PAD_KEY: u64 = i64::MAX as u64;

/// A way to search a published node's keys.
pub trait KeySearch: Copy {
    /// The number of `keys[1..]` at or below `addr` (`0..N`), from one
    /// `READ_ONCE` of each key. With sorted keys that is the index of the
    /// entry whose range would hold `addr`; the first key is not looked at,
    /// so below it the walk goes to entry 0, as a walk down the leftmost
    /// edge must. With torn keys, some index in `0..N`.
    fn count_le<const N: usize>(self, keys: &[AtomicU64; N], addr: u64) -> usize;
}

/// The portable search: a branch-free binary search over `keys[1..]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScalarSearch;

impl KeySearch for ScalarSearch {
    #[inline(always)]
    fn count_le<const N: usize>(self, keys: &[AtomicU64; N], addr: u64) -> usize {
        debug_assert!(N.is_power_of_two());
        let addr = addr.min(PAD_KEY - 1);
        let mut i = 0usize;
        let mut step = N / 2;
        while step > 0 {
            let k = read_once(&keys[(i + step) & (N - 1)]);
            i += usize::from(k <= addr) * step;
            step /= 2;
        }
        i
    }
}

/// The AVX2 search of sixteen keys. Only [`Avx2Search::detect`] makes one,
/// so holding one proves the CPU has AVX2 and POPCNT.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[derive(Clone, Copy, Debug)]
pub struct Avx2Search(());

/// Whether this CPU has AVX2 and POPCNT: [`UNKNOWN`] until the first
/// walk asks. A plain std atomic: only its own value is ever read from it.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
static HAVE_AVX2: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(UNKNOWN);
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const UNKNOWN: u8 = 0;
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const NO: u8 = 1;
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const YES: u8 = 2;

#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
impl Avx2Search {
    /// The search, if this CPU has AVX2 and POPCNT and the environment
    /// variable `MM_KEY_SEARCH` is not `portable` (which CI sets to run the
    /// tree and stress tests through [`ScalarSearch`] too). The answer is
    /// cached: one load and one compare per call after the first.
    #[inline(always)]
    pub fn detect() -> Option<Avx2Search> {
        match HAVE_AVX2.load(std::sync::atomic::Ordering::Relaxed) {
            YES => Some(Avx2Search(())),
            NO => None,
            _ => Self::detect_slow(),
        }
    }

    #[cold]
    fn detect_slow() -> Option<Avx2Search> {
        let portable = std::env::var_os("MM_KEY_SEARCH").is_some_and(|v| v == "portable");
        let yes = !portable && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt");
        HAVE_AVX2.store(if yes { YES } else { NO }, std::sync::atomic::Ordering::Relaxed);
        yes.then_some(Avx2Search(()))
    }

    /// [`KeySearch::count_le`] for sixteen published keys.
    #[inline(always)]
    pub fn count_le16(self, keys: &[AtomicU64; 16], addr: u64) -> usize {
        // SAFETY: a live reference to sixteen keys (module documentation:
        // why vector loads of atomics are sound).
        let m = unsafe { self.le_mask(keys.as_ptr().cast(), addr) };
        (self.popcnt(m & !KEY_BITS[0]) >> 1) as usize
    }

    /// The number of `keys[..len]` at or below `addr`, for the writer's
    /// copy of a node (plain memory that nothing writes during the search:
    /// `mmap_lock` is held), whose keys past `len` are left over, not
    /// padding. `len` must be at most 16.
    #[inline(always)]
    pub fn count_le_prefix(self, keys: &[u64; 16], len: usize, addr: u64) -> usize {
        // SAFETY: a live reference to sixteen keys.
        let m = unsafe { self.le_mask(keys.as_ptr(), addr) };
        (self.popcnt(m & PREFIX_BITS[len]) >> 1) as usize
    }

    /// Two bits per key ([`KEY_BITS`]) set where the key is at or below
    /// `addr` (clamped below [`PAD_KEY`]). The compare is signed: a key at
    /// or above 2^63 would count as below, and no node holds one (keys are
    /// user addresses, [`PAD_KEY`], or zero in a node never published).
    ///
    /// # Safety
    ///
    /// `keys` must be valid for reads of 128 bytes, and each of its
    /// sixteen 8-byte words either unchanged during the call or an atomic
    /// that others change only by atomic stores.
    #[inline(always)]
    unsafe fn le_mask(self, keys: *const u64, addr: u64) -> u32 {
        // The compare is "a > key", signed, for every key: a = addr + 1,
        // with addr clamped below PAD_KEY so that a > key means key <= addr
        // for every key up to the padding, which is never counted.
        let a = addr.min(PAD_KEY - 1) + 1;
        let mask: u32;
        // SAFETY: `self` exists only where AVX2 was detected; the caller
        // guarantees the 128 bytes. VEX loads need no alignment. The
        // hardware's loads race with the writer's atomic stores outside
        // Rust's memory model; that no aligned 8-byte key comes back torn
        // is the assumption the module documentation states and bounds,
        // under which racing stores give what sixteen relaxed loads could.
        // xmm0-xmm4 are declared clobbered;
        // `vzeroupper` clears the upper halves, which code compiled without
        // AVX never holds.
        unsafe {
            core::arch::asm!(
                "vmovq xmm0, {a}",
                "vpbroadcastq ymm0, xmm0",
                "vpcmpgtq ymm1, ymm0, [{k}]",
                "vpcmpgtq ymm2, ymm0, [{k} + 32]",
                "vpcmpgtq ymm3, ymm0, [{k} + 64]",
                "vpcmpgtq ymm4, ymm0, [{k} + 96]",
                "vpackssdw ymm1, ymm1, ymm2",
                "vpackssdw ymm3, ymm3, ymm4",
                "vpacksswb ymm1, ymm1, ymm3",
                "vpmovmskb {m:e}, ymm1",
                "vzeroupper",
                a = in(reg) a,
                k = in(reg) keys,
                m = lateout(reg) mask,
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _,
                options(readonly, nostack, preserves_flags),
            );
        }
        mask
    }

    /// POPCNT (detected with AVX2; without the target feature, `count_ones`
    /// would be a dozen instructions).
    #[inline(always)]
    fn popcnt(self, m: u32) -> u32 {
        let n: u32;
        // SAFETY: POPCNT was detected; a register-only instruction.
        unsafe {
            core::arch::asm!("popcnt {n:e}, {m:e}", m = in(reg) m, n = lateout(reg) n, options(pure, nomem, nostack));
        }
        n
    }
}

/// Where key `j`'s two bits land in [`Avx2Search::le_mask`]: the packs
/// work within each 128-bit half, so the low half of the mask holds keys
/// 0, 1, 4, 5, 8, 9, 12, 13 and the high half the others.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const KEY_BITS: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut j = 0;
    while j < 16 {
        // Key j is qword j % 2 of 128-bit lane (j / 2) % 2 of compare j / 4.
        let half = (j / 2) % 2;
        let byte = (j / 4) * 4 + (j % 2) * 2;
        t[j] = 0b11 << (half * 16 + byte);
        j += 1;
    }
    t
};

/// The bits of keys `0..len`, for each `len` in `0..=16`.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const PREFIX_BITS: [u32; 17] = {
    let mut t = [0u32; 17];
    let mut len = 1;
    while len <= 16 {
        t[len] = t[len - 1] | KEY_BITS[len - 1];
        len += 1;
    }
    t
};

#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
impl KeySearch for Avx2Search {
    #[inline(always)]
    fn count_le<const N: usize>(self, keys: &[AtomicU64; N], addr: u64) -> usize {
        match <&[AtomicU64; 16]>::try_from(keys.as_slice()) {
            Ok(k16) => self.count_le16(k16, addr),
            Err(_) => ScalarSearch.count_le(keys, addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys16(v: &[u64; 16]) -> [AtomicU64; 16] {
        core::array::from_fn(|i| AtomicU64::new(v[i]))
    }

    /// The count by definition, for comparison.
    fn by_definition(v: &[u64; 16], addr: u64) -> usize {
        v[1..].iter().filter(|&&k| k <= addr.min(PAD_KEY - 1)).count()
    }

    /// Sorted nodes of every length, padded, searched for addresses at,
    /// around and between the keys and at the extremes of the address
    /// range: the binary search gives the count by definition.
    #[test]
    fn scalar_search_counts_keys_at_or_below() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 1..=16 {
            for _ in 0..200 {
                let mut v = [PAD_KEY; 16];
                let mut k = 0;
                for slot in v.iter_mut().take(len) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    k += (x % 64 + 1) << 12;
                    *slot = k;
                }
                let keys = keys16(&v);
                let around = v.iter().take(len).flat_map(|&k| [k - 1, k, k + 1]);
                for a in around.chain([0, 1, PAD_KEY - 1, PAD_KEY, u64::MAX]) {
                    assert_eq!(
                        ScalarSearch.count_le(&keys, a),
                        by_definition(&v, a),
                        "{v:x?} at {a:#x}"
                    );
                }
            }
        }
    }

    /// The vector search gives the scalar search's index for sorted keys,
    /// and an index in range for any keys at all (torn, recycled, zero).
    #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
    #[test]
    fn avx2_search_matches_scalar_search() {
        let Some(s) = Avx2Search::detect() else {
            eprintln!("no AVX2 on this CPU: nothing to compare");
            return;
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let len = (round % 16) + 1;
            let mut v = [PAD_KEY; 16];
            let mut k = (next() % (1 << 20)) << 12;
            for slot in v.iter_mut().take(len) {
                k += (next() % 64 + 1) << 12;
                *slot = k;
            }
            let keys = keys16(&v);
            let probes = [
                0,
                1,
                v[0],
                v[len - 1],
                v[len / 2] - 1,
                k + 1,
                PAD_KEY - 1,
                PAD_KEY,
                u64::MAX,
                next(),
            ];
            for a in probes {
                assert_eq!(
                    s.count_le16(&keys, a),
                    ScalarSearch.count_le(&keys, a),
                    "{v:x?} at {a:#x}"
                );
                assert_eq!(s.count_le16(&keys, a), by_definition(&v, a), "{v:x?} at {a:#x}");
            }
            // The writer's copy: keys past the length are left-overs.
            let mut w = v;
            for (j, slot) in w.iter_mut().enumerate().skip(len) {
                *slot = next() % (1 << 47) + j as u64;
            }
            for a in probes {
                let want = v[..len].partition_point(|&k| k <= a);
                assert_eq!(s.count_le_prefix(&w, len, a), want, "{w:x?} len {len} at {a:#x}");
            }
            // Unsorted garbage, as a reader racing with a writer may load.
            let junk: [u64; 16] = core::array::from_fn(|_| next());
            let i = s.count_le16(&keys16(&junk), next());
            assert!(i < 16, "index {i} out of range for {junk:x?}");
        }
    }
}
