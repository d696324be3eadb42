//! Mutations for the checkers: each one removes a single ordering-relevant
//! store, load, barrier, bump or check of the read or write path, so that
//! `cargo xtask loom` can show that some check (loom, the real-thread
//! stress test, the reference state machine) notices its absence.
//!
//! A mutation is chosen at run time with the environment variable
//! `MM_MUTATION=<name>` and only when mm-core is built with the feature
//! `mutations`; without the feature [`active`] is a constant `false` and
//! compiles away. An unknown name panics, so that a typo cannot pass as an
//! undetected mutation.

/// One mutation of the read or write path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// `upstream`'s `smp_wmb` after the bump at `mmap_write_lock`.
    NoWmbBegin,
    /// `upstream`'s `smp_wmb` before the bump at unlock and downgrade.
    NoWmbEnd,
    /// `upstream`'s acquire on the load in `mmap_lock_speculate_try_begin`.
    RelaxedTryBegin,
    /// `upstream`'s `smp_rmb` in `mmap_lock_speculate_retry`.
    NoRmbRetry,
    /// The bump (count and store) at `mmap_write_lock`.
    NoBumpLock,
    /// The bump at `mmap_write_unlock`.
    NoBumpUnlock,
    /// The bump at `mmap_write_downgrade`.
    NoBumpDowngrade,
    /// The bump at a successful `mmap_write_trylock`.
    NoBumpTrylock,
    /// The publication of an in-place `vm_start` change.
    NoPublishStart,
    /// The publication of an in-place `vm_end` change.
    NoPublishEnd,
    /// The publication of an in-place `vm_pgoff` change.
    NoPublishPgoff,
    /// The publication of an in-place `vm_flags` change.
    NoPublishFlags,
    /// The publication of a tree key moved in place (boundary moves,
    /// `vma_set_range` of a VMA's start).
    NoPublishKey,
    /// The publication of a new tree root (root growth and collapse).
    NoPublishRoot,
    /// The release ordering of a recycled file slot's new identity
    /// (`FileTable::open` outside `mmap_lock`).
    RelaxedFileReinit,
    /// The reader's `vm_start <= addr < vm_end` check.
    NoRangeCheck,
    /// The uprobe reader loads the inode after its retry check.
    InoAfterRetry,
    /// The acquire of a VMA reader's reference increment.
    RelaxedVmaRefInc,
    /// The release of a VMA reader's reference drop (`vma_end_read`).
    RelaxedVmaEndRead,
    /// The acquire of `vma_start_read`'s re-read of `mm_lock_seq`.
    RelaxedVmaSeqReread,
    /// `vma_start_read`'s re-check of `vm_lock_seq` against `mm_lock_seq`.
    NoVmaSeqRecheck,
    /// `vma_start_read`'s `vm_mm` check.
    NoVmaMmCheck,
    /// The writer's wait for a VMA's readers to leave.
    NoVmaWaitReaders,
    /// The release fence before a recycled VMA slot's first stores.
    RelaxedVmaReinit,
    /// `lock_next_vma`'s check that a gap before the VMA it found is real.
    NoMapsGapCheck,
    /// A killed `vma_start_write_killable` forgets to remove its exclusion.
    NoKillableUndo,
}

impl Mutation {
    /// Every mutation, in report order.
    pub const ALL: [Mutation; 26] = [
        Mutation::NoWmbBegin,
        Mutation::NoWmbEnd,
        Mutation::RelaxedTryBegin,
        Mutation::NoRmbRetry,
        Mutation::NoBumpLock,
        Mutation::NoBumpUnlock,
        Mutation::NoBumpDowngrade,
        Mutation::NoBumpTrylock,
        Mutation::NoPublishStart,
        Mutation::NoPublishEnd,
        Mutation::NoPublishPgoff,
        Mutation::NoPublishFlags,
        Mutation::NoPublishKey,
        Mutation::NoPublishRoot,
        Mutation::RelaxedFileReinit,
        Mutation::NoRangeCheck,
        Mutation::InoAfterRetry,
        Mutation::RelaxedVmaRefInc,
        Mutation::RelaxedVmaEndRead,
        Mutation::RelaxedVmaSeqReread,
        Mutation::NoVmaSeqRecheck,
        Mutation::NoVmaMmCheck,
        Mutation::NoVmaWaitReaders,
        Mutation::RelaxedVmaReinit,
        Mutation::NoMapsGapCheck,
        Mutation::NoKillableUndo,
    ];

    /// The name `MM_MUTATION` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mutation::NoWmbBegin => "no-wmb-begin",
            Mutation::NoWmbEnd => "no-wmb-end",
            Mutation::RelaxedTryBegin => "relaxed-try-begin",
            Mutation::NoRmbRetry => "no-rmb-retry",
            Mutation::NoBumpLock => "no-bump-lock",
            Mutation::NoBumpUnlock => "no-bump-unlock",
            Mutation::NoBumpDowngrade => "no-bump-downgrade",
            Mutation::NoBumpTrylock => "no-bump-trylock",
            Mutation::NoPublishStart => "no-publish-start",
            Mutation::NoPublishEnd => "no-publish-end",
            Mutation::NoPublishPgoff => "no-publish-pgoff",
            Mutation::NoPublishFlags => "no-publish-flags",
            Mutation::NoPublishKey => "no-publish-key",
            Mutation::NoPublishRoot => "no-publish-root",
            Mutation::RelaxedFileReinit => "relaxed-file-reinit",
            Mutation::NoRangeCheck => "no-range-check",
            Mutation::InoAfterRetry => "ino-after-retry",
            Mutation::RelaxedVmaRefInc => "relaxed-vma-ref-inc",
            Mutation::RelaxedVmaEndRead => "relaxed-vma-end-read",
            Mutation::RelaxedVmaSeqReread => "relaxed-vma-seq-reread",
            Mutation::NoVmaSeqRecheck => "no-vma-seq-recheck",
            Mutation::NoVmaMmCheck => "no-vma-mm-check",
            Mutation::NoVmaWaitReaders => "no-vma-wait-readers",
            Mutation::RelaxedVmaReinit => "relaxed-vma-reinit",
            Mutation::NoMapsGapCheck => "no-maps-gap-check",
            Mutation::NoKillableUndo => "no-killable-undo",
        }
    }

    /// Where the mutation applies (file and function).
    pub fn site(self) -> &'static str {
        match self {
            Mutation::NoWmbBegin => "ordering.rs Upstream::write_begin",
            Mutation::NoWmbEnd => "ordering.rs Upstream::write_end",
            Mutation::RelaxedTryBegin => "ordering.rs Upstream::read_begin",
            Mutation::NoRmbRetry => "ordering.rs Upstream::read_retry",
            Mutation::NoBumpLock => "mmap_lock.rs MmapLock::write",
            Mutation::NoBumpUnlock => "mmap_lock.rs MmapWriteGuard::drop",
            Mutation::NoBumpDowngrade => "mmap_lock.rs MmapWriteGuard::downgrade",
            Mutation::NoBumpTrylock => "mmap_lock.rs MmapLock::try_write",
            Mutation::NoPublishStart => "vma.rs VmaSlot::publish_changed_range",
            Mutation::NoPublishEnd => "vma.rs VmaSlot::publish_changed_range",
            Mutation::NoPublishPgoff => "vma.rs VmaSlot::publish_changed_range",
            Mutation::NoPublishFlags => "vma.rs VmaSlot::publish_flags",
            Mutation::NoPublishKey => "tree/update.rs publish_key",
            Mutation::NoPublishRoot => "tree/update.rs Tree::publish_root",
            Mutation::RelaxedFileReinit => "ordering.rs publish_recycled (file.rs FileTable::open)",
            Mutation::NoRangeCheck => "mm-spec lookup.rs read_vma, uprobe.rs",
            Mutation::InoAfterRetry => "mm-spec uprobe.rs find_active_uprobe_speculative",
            Mutation::RelaxedVmaRefInc => "ordering.rs refcount_inc_not_zero_limited_acquire",
            Mutation::RelaxedVmaEndRead => "ordering.rs refcount_dec_release",
            Mutation::RelaxedVmaSeqReread => "ordering.rs BarrierPolicy::vma_read_seq",
            Mutation::NoVmaSeqRecheck => "vma_lock.rs vma_start_read",
            Mutation::NoVmaMmCheck => "vma_lock.rs vma_start_read",
            Mutation::NoVmaWaitReaders => "vma_lock.rs wait_for_readers",
            Mutation::RelaxedVmaReinit => "ordering.rs recycle_fence (mm.rs vma_link)",
            Mutation::NoMapsGapCheck => "vma_lock.rs lock_next_vma",
            Mutation::NoKillableUndo => "vma_lock.rs MmWrite::vma_start_write_killable",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Mutation> {
        Mutation::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// True if mutation `m` is the one selected (`MM_MUTATION`, feature
/// `mutations`).
#[inline(always)]
pub fn active(m: Mutation) -> bool {
    #[cfg(feature = "mutations")]
    {
        selected() == Some(m)
    }
    #[cfg(not(feature = "mutations"))]
    {
        let _ = m;
        false
    }
}

/// The selected mutation, if any.
#[cfg(feature = "mutations")]
pub fn selected() -> Option<Mutation> {
    static SELECTED: std::sync::OnceLock<Option<Mutation>> = std::sync::OnceLock::new();
    *SELECTED.get_or_init(|| match std::env::var("MM_MUTATION") {
        Ok(name) if !name.is_empty() => {
            Some(Mutation::from_name(&name).unwrap_or_else(|| panic!("MM_MUTATION={name}: no such mutation")))
        }
        _ => None,
    })
}

/// The selected mutation, if any (always `None` without the feature
/// `mutations`).
#[cfg(not(feature = "mutations"))]
pub fn selected() -> Option<Mutation> {
    None
}
