//! Allocation-failure injection: the model's `failslab` with `fail-nth`
//! (`Documentation/fault-injection/fault-injection.rst`).
//!
//! Every place where the kernel can fail an allocation inside an
//! address-space operation calls [`FailNth::should_fail`] once, before it
//! changes anything, and fails as the kernel does when it returns true:
//!
//! | point | kernel | model |
//! |---|---|---|
//! | [`AllocSite::VmAreaAlloc`] | `vm_area_alloc` / `vm_area_dup` | `mm_ops` before each `vma_link`: `mmap_region`, `do_brk_flags`, `split_vma`, `copy_vma` |
//! | [`AllocSite::TreePrealloc`] | maple-tree nodes: `vma_iter_prealloc` in `__split_vma`, `commit_merge` and `vma_expand`; `mas_store_gfp` of each VMA `vms_gather_munmap_vmas` detaches; `vma_iter_clear_gfp` in `do_vmi_align_munmap` | `mm_ops::kernel::vma` (splits, merges), `mm_ops::kernel::vma_region` (munmap) |
//! | [`AllocSite::AnonVmaClone`] | `anon_vma_clone` in `dup_anon_vma` | `mm_ops::kernel::vma` merges that give the target the source's `anon_vma` |
//! | [`AllocSite::File`] | `alloc_empty_file` (open, `memfd_create`, `shmem_zero_setup`) | `mm_ops::task`, `mm_ops::kernel::vma_region::shmem_zero_setup` |
//!
//! Off by default: a point is then one relaxed load and a branch. Setting
//! `n` makes the `n`-th point from then on fail, once, as writing `n` to
//! `/proc/self/fail-nth` does; with counting on, [`FailNth::passed`]
//! counts the points reached, so that a test can learn how many points a
//! call has and walk `n` over each of them.

// Plain std atomics, not the loom facade: injection is test control, not
// part of the concurrency the checkers explore.
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Which allocation a point stands for (for reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocSite {
    /// `vm_area_alloc` / `vm_area_dup`.
    VmAreaAlloc,
    /// Maple-tree nodes (`vma_iter_prealloc`, `mas_store_gfp`,
    /// `vma_iter_clear_gfp`).
    TreePrealloc,
    /// `anon_vma_clone` when a merge target takes its source's `anon_vma`.
    AnonVmaClone,
    /// A `struct file` (`alloc_empty_file`).
    File,
}

/// The injection state of one address space.
#[derive(Debug, Default)]
pub struct FailNth {
    /// Whether points do anything: an injection is pending or points are
    /// counted. Off, each point is one relaxed load and a branch.
    armed: AtomicBool,
    /// Count the points reached ([`passed`](Self::passed)).
    counting: AtomicBool,
    /// 0: no injection; `n`: the `n`-th point from now fails.
    countdown: AtomicU64,
    /// Points reached while counting.
    passed: AtomicU64,
    /// The site of the last injected failure.
    last: Mutex<Option<AllocSite>>,
}

impl FailNth {
    fn rearm(&self) {
        let armed = self.counting.load(Ordering::Relaxed) || self.countdown.load(Ordering::Relaxed) != 0;
        self.armed.store(armed, Ordering::Relaxed);
    }

    /// Makes the `n`-th allocation point from now fail (0: none).
    pub fn set(&self, n: u64) {
        self.countdown.store(n, Ordering::Relaxed);
        self.rearm();
    }

    /// Counts the points reached from now on (see [`passed`](Self::passed)).
    pub fn set_counting(&self, on: bool) {
        self.counting.store(on, Ordering::Relaxed);
        self.rearm();
    }

    /// Whether an injection is still pending.
    #[inline]
    pub fn pending(&self) -> bool {
        self.armed.load(Ordering::Relaxed) && self.countdown.load(Ordering::Relaxed) != 0
    }

    /// Whether points count or fail at all (a caller may skip the work of
    /// deciding which points it passes when not).
    #[inline]
    pub fn armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Points reached while counting was on.
    pub fn passed(&self) -> u64 {
        self.passed.load(Ordering::Relaxed)
    }

    /// The site of the last failure injected, if any.
    pub fn last_failed(&self) -> Option<AllocSite> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `n` points a shortcut passes without failing them: a path
    /// that reaches the kernel's result without its allocations, taken
    /// only while no injection is [`pending`](Self::pending), so that
    /// [`passed`](Self::passed) counts the kernel's points either way.
    #[inline]
    pub fn pass(&self, n: u64) {
        debug_assert!(!self.pending());
        if self.armed() {
            self.add_passed(n);
        }
    }

    // A load and a store, not a read-modify-write: the count is exact for
    // calls that do not run concurrently, which is how tests use it.
    fn add_passed(&self, n: u64) {
        self.passed
            .store(self.passed.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// One allocation point: true if this allocation is to fail.
    #[inline]
    pub fn should_fail(&self, site: AllocSite) -> bool {
        self.armed() && self.point(site)
    }

    #[cold]
    fn point(&self, site: AllocSite) -> bool {
        if self.counting.load(Ordering::Relaxed) {
            self.add_passed(1);
        }
        let n = self.countdown.load(Ordering::Relaxed);
        if n == 0 {
            return false;
        }
        self.countdown.store(n - 1, Ordering::Relaxed);
        if n == 1 {
            self.rearm();
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(site);
            return true;
        }
        false
    }
}
