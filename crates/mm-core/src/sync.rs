//! The concurrency facade: every atomic, fence, lock and cell the crate uses
//! comes from here, so that `RUSTFLAGS="--cfg loom"` swaps the whole crate
//! onto [loom](https://docs.rs/loom)'s model checker (the tokio/crossbeam
//! pattern).
//!
//! Nothing in this module chooses a memory ordering: that is the job of
//! [`crate::ordering`], the one place where orderings are decided.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(loom)]
pub use loom::sync::Arc;
#[cfg(not(loom))]
pub use std::sync::Arc;

#[cfg(loom)]
pub use loom::thread;
#[cfg(not(loom))]
pub use std::thread;

/// A cell for data protected by a lock. Under loom, every access is checked
/// for data races, including accesses through the tracked pointers
/// [`ConstPtr`] and [`MutPtr`] that guards hold for as long as they live.
#[cfg(loom)]
pub use loom::cell::{ConstPtr, MutPtr, UnsafeCell};

/// A cell for data protected by a lock, with loom's API: closure-based
/// accesses, or tracked pointers that guards keep while they live.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared raw pointer to the contents.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a mutable raw pointer to the contents.
    #[inline]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// A shared pointer to the contents, for an access that lasts as long
    /// as the pointer (loom tracks it for that long).
    #[inline]
    pub fn get(&self) -> ConstPtr<T> {
        ConstPtr(self.0.get())
    }

    /// A mutable pointer to the contents, for an access that lasts as long
    /// as the pointer (loom tracks it for that long).
    #[inline]
    pub fn get_mut(&self) -> MutPtr<T> {
        MutPtr(self.0.get())
    }
}

/// A shared pointer into an [`UnsafeCell`] (loom's `ConstPtr`).
#[cfg(not(loom))]
#[derive(Debug)]
pub struct ConstPtr<T>(*const T);

// SAFETY: a `ConstPtr` is used as a `&T` is (shared access under a lock),
// so it may cross threads exactly when `&T` may.
#[cfg(not(loom))]
unsafe impl<T: Sync> Send for ConstPtr<T> {}
// SAFETY: as for `Send`.
#[cfg(not(loom))]
unsafe impl<T: Sync> Sync for ConstPtr<T> {}

#[cfg(not(loom))]
impl<T> ConstPtr<T> {
    /// Calls `f` with the raw pointer.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0)
    }

    /// Dereferences the pointer.
    ///
    /// # Safety
    /// No mutable access to the cell may exist while the result lives.
    #[inline]
    pub unsafe fn deref(&self) -> &T {
        // SAFETY: forwarded contract of the caller; the pointer came from a
        // live cell.
        unsafe { &*self.0 }
    }
}

/// A mutable pointer into an [`UnsafeCell`] (loom's `MutPtr`).
#[cfg(not(loom))]
#[derive(Debug)]
pub struct MutPtr<T>(*mut T);

// SAFETY: a `MutPtr` is used as a `&mut T` is (exclusive access under a
// lock), so it may cross threads exactly when `&mut T` may.
#[cfg(not(loom))]
unsafe impl<T: Send> Send for MutPtr<T> {}
// SAFETY: as for `&mut T`, sharing it only gives shared access.
#[cfg(not(loom))]
unsafe impl<T: Sync> Sync for MutPtr<T> {}

#[cfg(not(loom))]
impl<T> MutPtr<T> {
    /// Calls `f` with the raw pointer (no reference is created, so
    /// references derived earlier stay valid).
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0)
    }

    /// Dereferences the pointer.
    ///
    /// # Safety
    /// No other access to the cell may exist while the result lives.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn deref(&self) -> &mut T {
        // SAFETY: forwarded contract of the caller; the pointer came from a
        // live cell.
        unsafe { &mut *self.0 }
    }
}

/// A mutual-exclusion lock for data that lockless readers never touch
/// (`mm->page_table_lock`, the file table): parking_lot's, or loom's under
/// `cfg(loom)`, so that the model checker sees the ordering it gives.
pub struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

/// The guard of a [`Mutex`].
#[cfg(not(loom))]
pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// The guard of a [`Mutex`].
#[cfg(loom)]
pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// Takes the lock (`spin_lock`, `mutex_lock`).
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            // A panic while the lock was held is a failed model run anyway.
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Mutex")
    }
}

/// A data-free cell whose accesses loom checks for races: what a lock
/// protects, for data the model keeps in atomics anyway (a VMA's fields,
/// which speculative readers load with `READ_ONCE`, are protected for
/// per-VMA lock holders by the VMA lock). Writers holding the lock call
/// [`RaceCheck::write`], readers holding it [`RaceCheck::read`]; under loom
/// a missing exclusion or ordering between them is reported as a data
/// race. Outside loom it is empty and free.
#[derive(Debug, Default)]
pub struct RaceCheck {
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<()>,
}

// SAFETY: the cell holds no data (`()`); it exists only for loom's access
// tracking, which is itself thread-safe.
#[cfg(loom)]
unsafe impl Sync for RaceCheck {}
// SAFETY: as above.
#[cfg(loom)]
unsafe impl Send for RaceCheck {}

impl RaceCheck {
    /// Marks a write access (the protected data changes).
    #[inline(always)]
    pub fn write(&self) {
        #[cfg(loom)]
        self.cell.with_mut(|_| ());
    }

    /// Marks a read access.
    #[inline(always)]
    pub fn read(&self) {
        #[cfg(loom)]
        self.cell.with(|_| ());
    }
}

/// Yields in a spin loop. Under loom this lets the scheduler run another
/// thread, which loom requires of every spin loop.
pub fn spin_wait() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

pub use raw_rwlock::RawRwLock;

#[cfg(not(loom))]
mod raw_rwlock {
    use lock_api::{RawRwLock as _, RawRwLockDowngrade as _};

    /// The reader-writer semaphore under `mmap_lock` (`struct rw_semaphore`):
    /// parking_lot's raw lock, without guards or data.
    pub struct RawRwLock(parking_lot::RawRwLock);

    impl core::fmt::Debug for RawRwLock {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("RawRwLock")
        }
    }

    /// Proof of a shared acquisition, returned to the lock on release.
    pub type SharedToken = <parking_lot::RawRwLock as lock_api::RawRwLock>::SharedGuard;
    /// Proof of an exclusive acquisition, returned to the lock on release.
    pub type ExclusiveToken = <parking_lot::RawRwLock as lock_api::RawRwLock>::ExclusiveGuard;

    impl RawRwLock {
        /// An unlocked lock.
        pub fn new() -> Self {
            RawRwLock(parking_lot::RawRwLock::INIT)
        }
        /// `down_read`.
        pub fn lock_shared(&self) -> SharedToken {
            self.0.lock_shared()
        }
        /// `down_read_trylock`.
        pub fn try_lock_shared(&self) -> Option<SharedToken> {
            self.0.try_lock_shared()
        }
        /// `up_read`.
        ///
        /// # Safety
        /// `token` must come from a shared acquisition of this lock.
        pub unsafe fn unlock_shared(&self, token: SharedToken) {
            // SAFETY: forwarded contract of the caller.
            unsafe { self.0.unlock_shared(token) }
        }
        /// `down_write`.
        pub fn lock_exclusive(&self) -> ExclusiveToken {
            self.0.lock_exclusive()
        }
        /// `down_write_trylock`.
        pub fn try_lock_exclusive(&self) -> Option<ExclusiveToken> {
            self.0.try_lock_exclusive()
        }
        /// `up_write`.
        ///
        /// # Safety
        /// `token` must come from an exclusive acquisition of this lock.
        pub unsafe fn unlock_exclusive(&self, token: ExclusiveToken) {
            // SAFETY: forwarded contract of the caller.
            unsafe { self.0.unlock_exclusive(token) }
        }
        /// `downgrade_write`.
        ///
        /// # Safety
        /// `token` must come from an exclusive acquisition of this lock.
        pub unsafe fn downgrade(&self, token: ExclusiveToken) -> SharedToken {
            // SAFETY: forwarded contract of the caller.
            unsafe { self.0.downgrade(token) }
        }
    }

    impl Default for RawRwLock {
        fn default() -> Self {
            Self::new()
        }
    }
}

#[cfg(loom)]
mod raw_rwlock {
    use super::{AtomicUsize, Ordering, spin_wait};

    const WRITER: usize = usize::MAX;

    /// The reader-writer semaphore under `mmap_lock`, as a loom-visible
    /// spin lock: `state` counts readers, or is `WRITER`.
    #[derive(Debug)]
    pub struct RawRwLock {
        state: AtomicUsize,
    }

    /// Proof of a shared acquisition.
    #[derive(Debug)]
    pub struct SharedToken(());
    /// Proof of an exclusive acquisition.
    #[derive(Debug)]
    pub struct ExclusiveToken(());

    impl RawRwLock {
        /// An unlocked lock.
        pub fn new() -> Self {
            RawRwLock {
                state: AtomicUsize::new(0),
            }
        }
        /// `down_read`.
        pub fn lock_shared(&self) -> SharedToken {
            loop {
                if let Some(t) = self.try_lock_shared() {
                    return t;
                }
                spin_wait();
            }
        }
        /// `down_read_trylock`.
        pub fn try_lock_shared(&self) -> Option<SharedToken> {
            let s = self.state.load(Ordering::Relaxed);
            (s != WRITER
                && self
                    .state
                    .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok())
            .then_some(SharedToken(()))
        }
        /// `up_read`.
        ///
        /// # Safety
        /// `token` must come from a shared acquisition of this lock.
        pub unsafe fn unlock_shared(&self, _token: SharedToken) {
            self.state.fetch_sub(1, Ordering::Release);
        }
        /// `down_write`.
        pub fn lock_exclusive(&self) -> ExclusiveToken {
            loop {
                if let Some(t) = self.try_lock_exclusive() {
                    return t;
                }
                spin_wait();
            }
        }
        /// `down_write_trylock`.
        pub fn try_lock_exclusive(&self) -> Option<ExclusiveToken> {
            self.state
                .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                .then_some(ExclusiveToken(()))
        }
        /// `up_write`.
        ///
        /// # Safety
        /// `token` must come from an exclusive acquisition of this lock.
        pub unsafe fn unlock_exclusive(&self, _token: ExclusiveToken) {
            self.state.store(0, Ordering::Release);
        }
        /// `downgrade_write`.
        ///
        /// # Safety
        /// `token` must come from an exclusive acquisition of this lock.
        pub unsafe fn downgrade(&self, _token: ExclusiveToken) -> SharedToken {
            self.state.store(1, Ordering::Release);
            SharedToken(())
        }
    }

    impl Default for RawRwLock {
        fn default() -> Self {
            Self::new()
        }
    }
}

pub use raw_rwlock::{ExclusiveToken, SharedToken};
