//! Every memory-ordering decision of the project, in one place.
//!
//! # Linux primitives and their Rust counterparts
//!
//! | Linux | here | why |
//! |---|---|---|
//! | `READ_ONCE(x)` | [`read_once`]: `load(Relaxed)` | a single, untorn access the compiler may not elide or repeat; no ordering |
//! | `WRITE_ONCE(x, v)` | [`write_once`]: `store(Relaxed)` | likewise for stores |
//! | `smp_load_acquire(p)` | `load(Acquire)` | later accesses cannot move before it |
//! | `smp_store_release(p, v)` | `store(Release)` | earlier accesses cannot move after it |
//! | `smp_wmb()` | `fence(Release)` | orders earlier stores before later stores; a release fence is the weakest C++ fence that does, and it pairs with the reader's acquire fence through the relaxed accesses in between |
//! | `smp_rmb()` | `fence(Acquire)` | orders earlier loads before later loads; the acquire fence pairs with the writer's release fence |
//! | `smp_mb()` | `fence(SeqCst)` | full barrier, including store→load |
//! | `i_size_read`/`i_size_write` (64-bit) | [`i_size_read`], [`i_size_write`]: `std` `Relaxed` | an inode's size shared by fork relatives; no reader of the lockless protocol reaches it |
//! | first store to recycled memory outside a write section | [`publish_recycled`]: `store(Release)` | see its documentation |
//!
//! A lockless walk's search of a node's keys is `READ_ONCE` of each key;
//! [`keys`] holds it, with a vector form whose loads are inline assembly
//! (and why that is sound).
//!
//! `READ_ONCE` also gives address-dependency ordering in the LKMM; nothing here
//! relies on it, so `Relaxed` is exact for our uses. See `docs/ordering.md`
//! for the scenarios of the seed thread and what each policy emits.
//!
//! # Policies
//!
//! A [`BarrierPolicy`] says how `mm_lock_seq` is bumped at
//! `mmap_write_lock`/`mmap_write_unlock` and how a speculative reader opens
//! and validates its section. It is a type parameter of
//! [`crate::MmStruct`], so each policy is monomorphized and costs only its own
//! instructions.

pub mod keys;

use crate::mutation::{self, Mutation};
use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

/// `READ_ONCE` of a 64-bit field that lockless readers may load.
#[inline(always)]
pub fn read_once(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// `WRITE_ONCE` of a 64-bit field that lockless readers may load.
#[inline(always)]
pub fn write_once(a: &AtomicU64, v: u64) {
    a.store(v, Ordering::Relaxed)
}

/// `READ_ONCE` of a 32-bit field that lockless readers may load.
#[inline(always)]
pub fn read_once_u32(a: &AtomicU32) -> u32 {
    a.load(Ordering::Relaxed)
}

/// `WRITE_ONCE` of a 32-bit field that lockless readers may load.
#[inline(always)]
pub fn write_once_u32(a: &AtomicU32, v: u32) {
    a.store(v, Ordering::Relaxed)
}

/// `i_size_read` of an inode's size ([`crate::file::Inode::size`]), which
/// an address space shares with its fork relatives, each under its own
/// file-table lock. On 64-bit the kernel's `i_size_read` is a plain load
/// that orders nothing (the inode lock and the page cache do); so is this.
/// No lockless reader of this crate reaches it, so it is a `std` atomic
/// (loom does not explore it), there to make the shared state `Sync`.
#[inline(always)]
pub fn i_size_read(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(std::sync::atomic::Ordering::Relaxed)
}

/// `i_size_write`: see [`i_size_read`]. Also the inode's unlinked flag
/// (`d_delete`), stored alike.
#[inline(always)]
pub fn i_size_write(a: &std::sync::atomic::AtomicU64, v: u64) {
    a.store(v, std::sync::atomic::Ordering::Relaxed)
}

/// How `mm_lock_seq` is bumped and checked: one of [`SeedV1`], [`SeedFixed`],
/// [`Upstream`] or [`Full`].
///
/// Semantics every implementation must provide (the seqcount contract):
/// 1. `write_begin` makes the count odd; no store of the write section may
///    become visible to a reader that still sees the old even count;
/// 2. `write_end` makes the count even again; every store of the section is
///    visible to a reader that sees the new even count;
/// 3. `read_begin` returns the count if it is even;
/// 4. `read_retry` returns `false` only if no store of any write section that
///    overlapped the reader's loads is visible to them.
///
/// [`SeedV1`] deliberately breaks 1 and 4, as the patch posted in the seed
/// thread did.
pub trait BarrierPolicy: Send + Sync + 'static {
    /// The name used by the CLI and every report.
    const NAME: &'static str;
    /// The bump at `mmap_write_lock`: stores `new` (odd) into `seq`. The
    /// writer computes `new` from its own copy of the count (the kernel's
    /// `seq++` by the only writer), so no load of `seq` is needed.
    fn write_begin(seq: &AtomicU32, new: u32);
    /// The bump at `mmap_write_unlock`/`mmap_write_downgrade`
    /// (`vma_end_write_all`): stores `new` (even).
    fn write_end(seq: &AtomicU32, new: u32);
    /// `mmap_lock_speculate_try_begin`: the count if it is even.
    fn read_begin(seq: &AtomicU32) -> Option<u32>;
    /// `mmap_lock_speculate_retry`: `true` if the section must be retried.
    fn read_retry(seq: &AtomicU32, start: u32) -> bool;
    /// `raw_read_seqcount(&mm->mm_lock_seq)` in `vma_start_read`: a load
    /// that later loads cannot pass (acquire semantics), pairing with the
    /// release of the `write_end` bump (`vma_end_write_all`). The default
    /// is `READ_ONCE` + `smp_rmb()`, as the kernel's.
    #[inline(always)]
    fn vma_read_seq(seq: &AtomicU32) -> u32 {
        let s = seq.load(Ordering::Relaxed);
        if !mutation::active(Mutation::RelaxedVmaSeqReread) {
            fence(Ordering::Acquire);
        }
        s
    }
}

/// `seed-v1`: the patch as posted. `inc_mm_lock_seq` is
/// `smp_store_release(seq + 1)` at lock and unlock; `start` is
/// `smp_load_acquire` plus an even check; `end` compares with a second
/// `smp_load_acquire`. Broken on both sides (Jann Horn's two scenarios).
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedV1;

impl BarrierPolicy for SeedV1 {
    const NAME: &'static str = "seed-v1";
    #[inline(always)]
    fn vma_read_seq(seq: &AtomicU32) -> u32 {
        seq.load(Ordering::Acquire)
    }
    #[inline(always)]
    fn write_begin(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Release);
    }
    #[inline(always)]
    fn write_end(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Release);
    }
    #[inline(always)]
    fn read_begin(seq: &AtomicU32) -> Option<u32> {
        let s = seq.load(Ordering::Acquire);
        (s & 1 == 0).then_some(s)
    }
    #[inline(always)]
    fn read_retry(seq: &AtomicU32, start: u32) -> bool {
        seq.load(Ordering::Acquire) != start
    }
}

/// `seed-fixed`: the v3 fix from the thread. Lock: `WRITE_ONCE(seq + 1)`
/// then `smp_wmb()`; unlock: `smp_store_release`; begin: `smp_load_acquire`;
/// end: `smp_rmb()` then a `READ_ONCE` compare.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedFixed;

impl BarrierPolicy for SeedFixed {
    const NAME: &'static str = "seed-fixed";
    #[inline(always)]
    fn write_begin(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Relaxed);
        fence(Ordering::Release);
    }
    #[inline(always)]
    fn write_end(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Release);
    }
    #[inline(always)]
    fn read_begin(seq: &AtomicU32) -> Option<u32> {
        let s = seq.load(Ordering::Acquire);
        (s & 1 == 0).then_some(s)
    }
    #[inline(always)]
    fn read_retry(seq: &AtomicU32, start: u32) -> bool {
        fence(Ordering::Acquire);
        seq.load(Ordering::Relaxed) != start
    }
}

/// `upstream`: Linux v6.14+, `mm_lock_seq` as a `seqcount_t`
/// (`include/linux/mmap_lock.h`, `include/linux/seqlock.h`).
/// Write begin `seq++; smp_wmb()`; write end `smp_wmb(); seq++`;
/// `mmap_lock_speculate_try_begin` = `smp_load_acquire` + even check;
/// `mmap_lock_speculate_retry` = `smp_rmb()` then `READ_ONCE(seq) != start`.
///
/// With the feature `mutations`, `MM_MUTATION=no-wmb-begin`, `no-wmb-end`,
/// `relaxed-try-begin` or `no-rmb-retry` removes exactly that barrier
/// ([`crate::mutation`]), so that `cargo xtask loom` can show each one is
/// needed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Upstream;

impl BarrierPolicy for Upstream {
    const NAME: &'static str = "upstream";
    #[inline(always)]
    fn write_begin(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Relaxed);
        if !mutation::active(Mutation::NoWmbBegin) {
            fence(Ordering::Release);
        }
    }
    #[inline(always)]
    fn write_end(seq: &AtomicU32, new: u32) {
        if !mutation::active(Mutation::NoWmbEnd) {
            fence(Ordering::Release);
        }
        seq.store(new, Ordering::Relaxed);
    }
    #[inline(always)]
    fn read_begin(seq: &AtomicU32) -> Option<u32> {
        let s = if mutation::active(Mutation::RelaxedTryBegin) {
            seq.load(Ordering::Relaxed)
        } else {
            seq.load(Ordering::Acquire)
        };
        (s & 1 == 0).then_some(s)
    }
    #[inline(always)]
    fn read_retry(seq: &AtomicU32, start: u32) -> bool {
        if !mutation::active(Mutation::NoRmbRetry) {
            fence(Ordering::Acquire);
        }
        seq.load(Ordering::Relaxed) != start
    }
}

/// Stores the first value of a field of *recycled* reader-reachable memory
/// (a file slot reused by an `open` outside `mmap_lock`): a release store.
///
/// The rule for recycled memory (`docs/ordering.md`, "Recycled memory"): a
/// store that a speculative reader in flight can observe must either lie
/// inside a write section (after the policy's `write_begin`), or be
/// release-ordered after an event that happens after the `write_begin` of
/// the section that made the old contents unreachable. Here that event is
/// the file table lock, taken after the `fput` that freed the slot; the
/// release store carries it to a reader that loads the new value, whose
/// `read_retry` (an acquire fence or stronger in every sound policy) then
/// sees the odd or later count and fails. In the kernel, the fully ordered
/// `atomic_long_dec_and_test` in `fput` and the lock-based handoff of the
/// slab give this ordering (LKMM's `po-unlock-lock-po` is stronger than a
/// C11 mutex's release/acquire, which is why the model needs the release).
#[inline(always)]
pub fn publish_recycled(a: &AtomicU64, v: u64) {
    if mutation::active(Mutation::RelaxedFileReinit) {
        a.store(v, Ordering::Relaxed);
    } else {
        a.store(v, Ordering::Release);
    }
}

/// `full`: `smp_mb()` at every step, the "heavier barriers" baseline.
#[derive(Clone, Copy, Debug, Default)]
pub struct Full;

impl BarrierPolicy for Full {
    const NAME: &'static str = "full";
    #[inline(always)]
    fn vma_read_seq(seq: &AtomicU32) -> u32 {
        let s = seq.load(Ordering::Relaxed);
        fence(Ordering::SeqCst);
        s
    }
    #[inline(always)]
    fn write_begin(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }
    #[inline(always)]
    fn write_end(seq: &AtomicU32, new: u32) {
        fence(Ordering::SeqCst);
        seq.store(new, Ordering::Relaxed);
    }
    #[inline(always)]
    fn read_begin(seq: &AtomicU32) -> Option<u32> {
        let s = seq.load(Ordering::Relaxed);
        fence(Ordering::SeqCst);
        (s & 1 == 0).then_some(s)
    }
    #[inline(always)]
    fn read_retry(seq: &AtomicU32, start: u32) -> bool {
        fence(Ordering::SeqCst);
        seq.load(Ordering::Relaxed) != start
    }
}

/// Before the first stores to a VMA slot taken from the VMA cache: a
/// release fence. The slot may have been another address space's VMA until
/// that address space's write section freed it; those sections' count is
/// not this one's, so the rule for recycled memory needs the release (see
/// [`publish_recycled`]): a reader of the old address space that loads a
/// new value then sees its own count changed.
#[inline(always)]
pub fn recycle_fence() {
    if !mutation::active(Mutation::RelaxedVmaReinit) {
        fence(Ordering::Release);
    }
}

/// `__refcount_inc_not_zero_limited_acquire(&vma->vm_refcnt, …, limit)`:
/// takes a reference unless the count is 0 or at `limit`; acquire on
/// success, so the reader's later loads (its `vm_lock_seq` and `vm_mm`
/// checks, the VMA's fields) cannot pass it. `Err(old)` on failure.
#[inline(always)]
pub fn refcount_inc_not_zero_limited_acquire(a: &AtomicU32, limit: u32) -> Result<(), u32> {
    let ok = if mutation::active(Mutation::RelaxedVmaRefInc) {
        Ordering::Relaxed
    } else {
        Ordering::Acquire
    };
    let mut old = a.load(Ordering::Relaxed);
    loop {
        if old == 0 || old >= limit {
            return Err(old);
        }
        match a.compare_exchange_weak(old, old + 1, ok, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(now) => old = now,
        }
    }
}

/// `refcount_dec` / `vma_refcount_put`: drops a reference with release
/// semantics (what the holder did happens before a waiter that sees the
/// count drop); returns the old count.
#[inline(always)]
pub fn refcount_dec_release(a: &AtomicU32) -> u32 {
    if mutation::active(Mutation::RelaxedVmaEndRead) {
        a.fetch_sub(1, Ordering::Relaxed)
    } else {
        a.fetch_sub(1, Ordering::Release)
    }
}

/// `refcount_set_release`: `vma_mark_attached`.
#[inline(always)]
pub fn refcount_set_release(a: &AtomicU32, v: u32) {
    a.store(v, Ordering::Release);
}

/// `refcount_add_not_zero`: adds `v` unless the count is 0. No ordering of
/// its own (the caller holds `mmap_lock` for writing, and waits with
/// [`refcount_read_acquire`]).
#[inline(always)]
pub fn refcount_add_not_zero(a: &AtomicU32, v: u32) -> bool {
    let mut old = a.load(Ordering::Relaxed);
    loop {
        if old == 0 {
            return false;
        }
        match a.compare_exchange_weak(old, old + v, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => old = now,
        }
    }
}

/// `refcount_sub_and_test`: removes the writer's exclusion with release
/// semantics (a reader whose increment then succeeds sees `vm_lock_seq`).
#[inline(always)]
pub fn refcount_sub_release(a: &AtomicU32, v: u32) -> u32 {
    a.fetch_sub(v, Ordering::Release)
}

/// The writer's wait for readers (`rcuwait_wait_event` on `vm_refcnt`):
/// acquire, pairing with each reader's release in
/// [`refcount_dec_release`].
#[inline(always)]
pub fn refcount_read_acquire(a: &AtomicU32) -> u32 {
    a.load(Ordering::Acquire)
}

/// `mb-begin`: `upstream` with a full barrier (`smp_mb()`) instead of
/// `smp_wmb()` after the bump at `mmap_write_lock`, and nothing else
/// changed. The worked example of adding a policy (`docs/ordering.md`,
/// "Adding a policy"): stronger than `upstream` on one side, so sound; it
/// shows what one full barrier per write section costs.
#[derive(Clone, Copy, Debug, Default)]
pub struct MbBegin;

impl BarrierPolicy for MbBegin {
    const NAME: &'static str = "mb-begin";
    #[inline(always)]
    fn write_begin(seq: &AtomicU32, new: u32) {
        seq.store(new, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }
    #[inline(always)]
    fn write_end(seq: &AtomicU32, new: u32) {
        fence(Ordering::Release);
        seq.store(new, Ordering::Relaxed);
    }
    #[inline(always)]
    fn read_begin(seq: &AtomicU32) -> Option<u32> {
        let s = seq.load(Ordering::Acquire);
        (s & 1 == 0).then_some(s)
    }
    #[inline(always)]
    fn read_retry(seq: &AtomicU32, start: u32) -> bool {
        fence(Ordering::Acquire);
        seq.load(Ordering::Relaxed) != start
    }
}

/// Code generic over a policy chosen at run time: [`PolicyKind::visit`]
/// calls [`visit`](Self::visit) with the policy's type, so one generic
/// function serves every registered policy.
///
/// ```
/// use mm_core::ordering::{BarrierPolicy, PolicyKind, PolicyVisitor};
///
/// struct Name;
/// impl PolicyVisitor for Name {
///     type Output = &'static str;
///     fn visit<P: BarrierPolicy>(self) -> &'static str {
///         P::NAME
///     }
/// }
/// assert_eq!(PolicyKind::from_name("upstream").unwrap().visit(Name), "upstream");
/// ```
pub trait PolicyVisitor {
    /// What the visit returns.
    type Output;
    /// Runs with `P`, the chosen policy.
    fn visit<P: BarrierPolicy>(self) -> Self::Output;
}

/// The policy registry: one line per policy, `Type, expected sound;`. It
/// defines [`PolicyKind`], and through [`PolicyKind::visit`] every tool
/// that runs policies by name takes them from here: `mmsim simulate
/// --policy`, the loom checks (`cargo xtask loom`), the criterion benches
/// and the instruction counts (`cargo xtask bench`). A policy expected to
/// be sound fails `cargo xtask loom` if loom finds a violation; one
/// expected unsound is reported, and must fail somewhere.
macro_rules! policy_registry {
    ($($ty:ident, $sound:literal;)*) => {
        /// A registered policy, by name, for command lines and reports.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PolicyKind {
            $(
                #[doc = concat!("[`", stringify!($ty), "`].")]
                $ty,
            )*
        }

        impl PolicyKind {
            /// All registered policies, in report order.
            pub const ALL: &'static [PolicyKind] = &[$(PolicyKind::$ty),*];

            /// The policy's name (`"seed-v1"`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $(PolicyKind::$ty => <$ty as BarrierPolicy>::NAME,)*
                }
            }

            /// Whether the policy is expected to keep the seqcount
            /// contract (`seed-v1` is not).
            pub fn expected_sound(self) -> bool {
                match self {
                    $(PolicyKind::$ty => $sound,)*
                }
            }

            /// Calls `v` with the policy's type.
            pub fn visit<V: PolicyVisitor>(self, v: V) -> V::Output {
                match self {
                    $(PolicyKind::$ty => v.visit::<$ty>(),)*
                }
            }
        }
    };
}

policy_registry! {
    SeedV1, false;
    SeedFixed, true;
    Upstream, true;
    Full, true;
    MbBegin, true;
}

impl PolicyKind {
    /// Parses a policy name.
    pub fn from_name(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.iter().copied().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
