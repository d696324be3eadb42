//! `mmap_lock` and `mm_lock_seq` (`include/linux/mmap_lock.h`,
//! `mm/mmap_lock.c`).
//!
//! As in lock_api, the raw lock ([`crate::sync::RawRwLock`]) is separate from
//! the typed guards here. The lock protects the writer-side state `T`; the
//! sequence count lives beside it so that speculative readers can validate
//! against it without taking the lock.
//!
//! The count is bumped exactly where the kernel bumps it:
//! 1. [`MmapLock::write`] (`mmap_write_lock`): `down_write`, then the policy's
//!    `write_begin` (count becomes odd);
//! 2. dropping a [`MmapWriteGuard`] (`mmap_write_unlock` →
//!    `vma_end_write_all`): `write_end` (count becomes even), then `up_write`;
//! 3. [`MmapWriteGuard::downgrade`] (`mmap_write_downgrade`): `write_end`,
//!    then `downgrade_write`.
//!
//! Read locks never touch it, so it is odd exactly while the lock is held for
//! writing, and every write section adds 2. Debug builds check that
//! invariant at every acquisition and release;
//! the count wraps at 2^32, which keeps its parity.
//!
//! ```
//! use mm_core::mmap_lock::MmapLock;
//! use mm_core::ordering::Upstream;
//!
//! let lock: MmapLock<u32, Upstream> = MmapLock::new(0);
//! let start = lock.speculate_try_begin().expect("unlocked: count is even");
//! {
//!     let mut w = lock.write();          // count odd
//!     *w += 1;
//!     assert!(lock.speculate_try_begin().is_none());
//! }                                      // count even again
//! assert!(lock.speculate_retry(start));  // a writer ran: retry
//! let r = lock.read();
//! assert_eq!(*r, 1);
//! assert_eq!(lock.seq(), start.wrapping_add(2));
//! ```

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use crate::mutation::{self, Mutation};
use crate::ordering::BarrierPolicy;
use crate::sync::{AtomicU32, ConstPtr, ExclusiveToken, MutPtr, Ordering, RawRwLock, SharedToken, UnsafeCell};

/// `mm->mmap_lock` plus `mm->mm_lock_seq`, protecting a `T`.
pub struct MmapLock<T, P: BarrierPolicy> {
    raw: RawRwLock,
    seq: AtomicU32,
    /// The writer's own copy of `seq`, touched only under the write lock:
    /// `seq++` by the only writer needs no atomic load.
    wseq: UnsafeCell<u32>,
    data: UnsafeCell<T>,
    _policy: PhantomData<P>,
}

// SAFETY: the data is only reached through guards, which give `&mut T` to one
// writer or `&T` to readers, as a reader-writer lock does; so `T: Send + Sync`
// is what sharing the lock between threads requires, as for `std::sync::RwLock`.
unsafe impl<T: Send + Sync, P: BarrierPolicy> Sync for MmapLock<T, P> {}
// SAFETY: moving the lock moves the `T` it owns.
unsafe impl<T: Send, P: BarrierPolicy> Send for MmapLock<T, P> {}

impl<T, P: BarrierPolicy> MmapLock<T, P> {
    /// A new, unlocked lock with `mm_lock_seq` = 0 (`mm_lock_seqcount_init`).
    pub fn new(data: T) -> Self {
        Self::with_seq(data, 0)
    }

    /// A new, unlocked lock whose count starts at `seq` (even), for tests
    /// of the count's wraparound at 2^32.
    ///
    /// # Panics
    /// If `seq` is odd: an unlocked count is even.
    pub fn with_seq(data: T, seq: u32) -> Self {
        assert!(seq & 1 == 0, "mm_lock_seq {seq} is odd, but the lock is free");
        MmapLock {
            raw: RawRwLock::new(),
            seq: AtomicU32::new(seq),
            wseq: UnsafeCell::new(seq),
            data: UnsafeCell::new(data),
            _policy: PhantomData,
        }
    }

    /// `mmap_write_lock`: takes the lock for writing and makes the count odd.
    pub fn write(&self) -> MmapWriteGuard<'_, T, P> {
        let token = self.raw.lock_exclusive();
        self.begin_write(Mutation::NoBumpLock);
        MmapWriteGuard::new(self, token)
    }

    /// `mmap_write_trylock`: like [`write`](Self::write) if the lock is free;
    /// bumps the count only on success.
    pub fn try_write(&self) -> Option<MmapWriteGuard<'_, T, P>> {
        let token = self.raw.try_lock_exclusive()?;
        self.begin_write(Mutation::NoBumpTrylock);
        Some(MmapWriteGuard::new(self, token))
    }

    /// The bump that opens a write section (`mm_lock_seqcount_begin`).
    /// Only called with the lock held for writing.
    fn begin_write(&self, skip: Mutation) {
        self.check_parity(false, "mmap_write_lock");
        if !mutation::active(skip) {
            P::write_begin(&self.seq, self.bump());
        }
    }

    /// The bump that closes a write section (`mm_lock_seqcount_end`, from
    /// `vma_end_write_all`). Only called with the lock held for writing.
    fn end_write(&self, skip: Mutation) {
        self.check_parity(true, "the end of a write section");
        if !mutation::active(skip) {
            P::write_end(&self.seq, self.bump());
        }
    }

    /// Increments the writer's copy of the count and returns it. Only
    /// called with the lock held for writing.
    fn bump(&self) -> u32 {
        self.wseq.with_mut(|p| {
            // SAFETY: the caller holds the lock exclusively, so no other
            // reference to `wseq` exists; successive writers are ordered by
            // the lock's acquire/release.
            unsafe {
                *p = (*p).wrapping_add(1);
                *p
            }
        })
    }

    /// The debug-build invariant: `mm_lock_seq` is odd exactly while the
    /// lock is held for writing. `odd` is what the caller's lock state
    /// requires. Panics naming `at` if the count disagrees.
    #[inline]
    fn check_parity(&self, odd: bool, at: &str) {
        if cfg!(debug_assertions) {
            // With the lock held (either way), no store to `seq` races
            // with this load, so relaxed sees the last one.
            let s = self.seq.load(Ordering::Relaxed);
            assert!(
                (s & 1 == 1) == odd,
                "mm_lock_seq invariant broken at {at}: count {s} is {} but the write lock is {}",
                if s & 1 == 1 { "odd" } else { "even" },
                if odd { "held" } else { "not held" }
            );
        }
    }

    /// `mmap_read_lock`.
    pub fn read(&self) -> MmapReadGuard<'_, T, P> {
        let token = self.raw.lock_shared();
        self.check_parity(false, "mmap_read_lock");
        MmapReadGuard::new(self, token)
    }

    /// `mmap_read_trylock`.
    pub fn try_read(&self) -> Option<MmapReadGuard<'_, T, P>> {
        let token = self.raw.try_lock_shared()?;
        self.check_parity(false, "mmap_read_trylock");
        Some(MmapReadGuard::new(self, token))
    }

    /// `mmap_lock_speculate_try_begin`: `Some(seq)` if no writer holds the
    /// lock. Always succeeds while the caller holds the read lock.
    #[inline]
    pub fn speculate_try_begin(&self) -> Option<u32> {
        P::read_begin(&self.seq)
    }

    /// `mmap_lock_speculate_retry`: `true` if a writer may have changed
    /// anything read since `speculate_try_begin` returned `seq`.
    #[inline]
    pub fn speculate_retry(&self, seq: u32) -> bool {
        P::read_retry(&self.seq, seq)
    }

    /// The current value of `mm_lock_seq`, for reports and tests (a relaxed
    /// load: not a validation primitive).
    pub fn seq(&self) -> u32 {
        self.seq.load(Ordering::Relaxed)
    }

    /// `mm_lock_seq` itself, for the per-VMA lock readers, which load it
    /// through their policy ([`BarrierPolicy::vma_read_seq`]).
    pub(crate) fn seq_atomic(&self) -> &AtomicU32 {
        &self.seq
    }
}

impl<T: Default, P: BarrierPolicy> Default for MmapLock<T, P> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T, P: BarrierPolicy> core::fmt::Debug for MmapLock<T, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MmapLock")
            .field("policy", &P::NAME)
            .field("mm_lock_seq", &self.seq())
            .finish_non_exhaustive()
    }
}

/// A write-locked `mmap_lock` (`mmap_write_lock` … `mmap_write_unlock`).
///
/// The guard holds a tracked pointer to the data for as long as it lives,
/// so that under loom every access through it is checked against the
/// other threads' accesses.
pub struct MmapWriteGuard<'a, T, P: BarrierPolicy> {
    lock: &'a MmapLock<T, P>,
    token: Option<ExclusiveToken>,
    data: Held<MutPtr<T>>,
}

/// A write guard's pointer to the data. Under loom it is a tracked
/// pointer, dropped (ending the tracked access) when the guard releases the
/// lock, and checked on each use; elsewhere it is a plain pointer that
/// needs no check: the guard releases the lock only when it is dropped or
/// consumed by `downgrade`, or by `downgrade_in_place`, whose one caller
/// (`MmWrite::downgrade`) never uses the guard again.
struct Held<T> {
    #[cfg(loom)]
    p: Option<T>,
    #[cfg(not(loom))]
    p: T,
}

impl<T> Held<T> {
    fn new(p: T) -> Self {
        #[cfg(loom)]
        let p = Some(p);
        Held { p }
    }

    #[inline]
    fn get(&self) -> &T {
        #[cfg(loom)]
        let p = self.p.as_ref().expect("guard holds its pointer until dropped");
        #[cfg(not(loom))]
        let p = &self.p;
        p
    }

    /// Ends the access (under loom, before the lock is released).
    #[inline]
    fn release(&mut self) {
        #[cfg(loom)]
        {
            self.p = None;
        }
    }
}

impl<'a, T, P: BarrierPolicy> MmapWriteGuard<'a, T, P> {
    fn new(lock: &'a MmapLock<T, P>, token: ExclusiveToken) -> Self {
        MmapWriteGuard {
            lock,
            token: Some(token),
            data: Held::new(lock.data.get_mut()),
        }
    }

    /// `mmap_write_downgrade`: ends the write section (count becomes even)
    /// and keeps the lock for reading.
    pub fn downgrade(mut self) -> MmapReadGuard<'a, T, P> {
        self.downgrade_in_place()
    }

    /// [`downgrade`](Self::downgrade) without consuming the guard, for an
    /// owner that cannot move it out (`MmWrite`, which has its own `Drop`):
    /// the guard is left released, gives no access any more, and its drop
    /// does nothing.
    pub(crate) fn downgrade_in_place(&mut self) -> MmapReadGuard<'a, T, P> {
        self.data.release();
        let token = self.token.take().expect("guard holds its token until dropped");
        self.lock.end_write(Mutation::NoBumpDowngrade);
        // SAFETY: `token` is this guard's exclusive acquisition of `raw`.
        let shared = unsafe { self.lock.raw.downgrade(token) };
        MmapReadGuard::new(self.lock, shared)
    }

    /// Whether the guard still holds the lock for writing (not downgraded
    /// in place).
    #[inline]
    pub(crate) fn is_held(&self) -> bool {
        self.token.is_some()
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a MmapLock<T, P> {
        self.lock
    }
}

impl<T, P: BarrierPolicy> Deref for MmapWriteGuard<'_, T, P> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        debug_assert!(self.token.is_some(), "write guard used after downgrade");
        let p = self.data.get();
        // SAFETY: the exclusive lock is held (see `Held`), and the result borrows `self`,
        // so no `&mut T` from `deref_mut` can coexist with it. The shared
        // reference is made from the raw pointer, not from a `&mut T`, so
        // it does not invalidate other shared references to the data.
        p.with(|ptr| unsafe { &*ptr })
    }
}

impl<T, P: BarrierPolicy> DerefMut for MmapWriteGuard<'_, T, P> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        debug_assert!(self.token.is_some(), "write guard used after downgrade");
        let p = self.data.get();
        // SAFETY: the exclusive lock is held (see `Held`), and `&mut self` makes this the
        // only reference derived from the guard.
        p.with(|ptr| unsafe { &mut *ptr })
    }
}

impl<T, P: BarrierPolicy> Drop for MmapWriteGuard<'_, T, P> {
    fn drop(&mut self) {
        // The tracked access ends before the lock is released.
        self.data.release();
        if let Some(token) = self.token.take() {
            self.lock.end_write(Mutation::NoBumpUnlock);
            // SAFETY: `token` is this guard's exclusive acquisition of `raw`.
            unsafe { self.lock.raw.unlock_exclusive(token) };
        }
    }
}

/// A read-locked `mmap_lock` (`mmap_read_lock` … `mmap_read_unlock`).
pub struct MmapReadGuard<'a, T, P: BarrierPolicy> {
    lock: &'a MmapLock<T, P>,
    token: Option<SharedToken>,
    data: Option<ConstPtr<T>>,
}

impl<'a, T, P: BarrierPolicy> MmapReadGuard<'a, T, P> {
    fn new(lock: &'a MmapLock<T, P>, token: SharedToken) -> Self {
        MmapReadGuard {
            lock,
            token: Some(token),
            data: Some(lock.data.get()),
        }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a MmapLock<T, P> {
        self.lock
    }
}

impl<T, P: BarrierPolicy> Deref for MmapReadGuard<'_, T, P> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        let p = self.data.as_ref().expect("guard holds its pointer until dropped");
        // SAFETY: a shared lock is held, so no writer holds `&mut T`.
        p.with(|ptr| unsafe { &*ptr })
    }
}

impl<T, P: BarrierPolicy> Drop for MmapReadGuard<'_, T, P> {
    fn drop(&mut self) {
        self.data = None;
        if let Some(token) = self.token.take() {
            // SAFETY: `token` is this guard's shared acquisition of `raw`.
            unsafe { self.lock.raw.unlock_shared(token) };
        }
    }
}
