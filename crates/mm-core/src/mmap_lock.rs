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
//! writing, and every write section adds 2.
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

use crate::ordering::BarrierPolicy;
use crate::sync::{AtomicU32, ExclusiveToken, Ordering, RawRwLock, SharedToken, UnsafeCell};

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
    /// A new, unlocked lock with `mm_lock_seq` = 0.
    pub fn new(data: T) -> Self {
        MmapLock {
            raw: RawRwLock::new(),
            seq: AtomicU32::new(0),
            wseq: UnsafeCell::new(0),
            data: UnsafeCell::new(data),
            _policy: PhantomData,
        }
    }

    /// `mmap_write_lock`: takes the lock for writing and makes the count odd.
    pub fn write(&self) -> MmapWriteGuard<'_, T, P> {
        let token = self.raw.lock_exclusive();
        P::write_begin(&self.seq, self.bump());
        MmapWriteGuard {
            lock: self,
            token: Some(token),
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

    /// `mmap_write_trylock`: like [`write`](Self::write) if the lock is free;
    /// bumps the count only on success.
    pub fn try_write(&self) -> Option<MmapWriteGuard<'_, T, P>> {
        let token = self.raw.try_lock_exclusive()?;
        P::write_begin(&self.seq, self.bump());
        Some(MmapWriteGuard {
            lock: self,
            token: Some(token),
        })
    }

    /// `mmap_read_lock`.
    pub fn read(&self) -> MmapReadGuard<'_, T, P> {
        let token = self.raw.lock_shared();
        MmapReadGuard {
            lock: self,
            token: Some(token),
        }
    }

    /// `mmap_read_trylock`.
    pub fn try_read(&self) -> Option<MmapReadGuard<'_, T, P>> {
        let token = self.raw.try_lock_shared()?;
        Some(MmapReadGuard {
            lock: self,
            token: Some(token),
        })
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
pub struct MmapWriteGuard<'a, T, P: BarrierPolicy> {
    lock: &'a MmapLock<T, P>,
    token: Option<ExclusiveToken>,
}

impl<'a, T, P: BarrierPolicy> MmapWriteGuard<'a, T, P> {
    /// `mmap_write_downgrade`: ends the write section (count becomes even)
    /// and keeps the lock for reading.
    pub fn downgrade(mut self) -> MmapReadGuard<'a, T, P> {
        let token = self.token.take().expect("guard holds its token until dropped");
        P::write_end(&self.lock.seq, self.lock.bump());
        // SAFETY: `token` is this guard's exclusive acquisition of `raw`.
        let shared = unsafe { self.lock.raw.downgrade(token) };
        MmapReadGuard {
            lock: self.lock,
            token: Some(shared),
        }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a MmapLock<T, P> {
        self.lock
    }
}

impl<T, P: BarrierPolicy> Deref for MmapWriteGuard<'_, T, P> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the exclusive lock is held, so no other reference exists.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T, P: BarrierPolicy> DerefMut for MmapWriteGuard<'_, T, P> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the exclusive lock is held, and `&mut self` makes this the
        // only reference derived from the guard.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T, P: BarrierPolicy> Drop for MmapWriteGuard<'_, T, P> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            P::write_end(&self.lock.seq, self.lock.bump());
            // SAFETY: `token` is this guard's exclusive acquisition of `raw`.
            unsafe { self.lock.raw.unlock_exclusive(token) };
        }
    }
}

/// A read-locked `mmap_lock` (`mmap_read_lock` … `mmap_read_unlock`).
pub struct MmapReadGuard<'a, T, P: BarrierPolicy> {
    lock: &'a MmapLock<T, P>,
    token: Option<SharedToken>,
}

impl<'a, T, P: BarrierPolicy> MmapReadGuard<'a, T, P> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &'a MmapLock<T, P> {
        self.lock
    }
}

impl<T, P: BarrierPolicy> Deref for MmapReadGuard<'_, T, P> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a shared lock is held, so no writer holds `&mut T`.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T, P: BarrierPolicy> Drop for MmapReadGuard<'_, T, P> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            // SAFETY: `token` is this guard's shared acquisition of `raw`.
            unsafe { self.lock.raw.unlock_shared(token) };
        }
    }
}
