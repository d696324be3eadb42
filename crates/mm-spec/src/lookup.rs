//! Speculative `vma_lookup`: try_begin, walk the published tree and VMA
//! without any lock, validate with retry; fall back to `mmap_read_lock`.

use mm_core::file::FileId;
use mm_core::mutation::{self, Mutation};
use mm_core::sync::{AtomicU64, Ordering};
use mm_core::{BarrierPolicy, MmStruct, VmFlags, VmaView};

/// What a lookup returns about the VMA containing an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    /// `vm_start`.
    pub start: u64,
    /// `vm_end`.
    pub end: u64,
    /// `vm_pgoff`.
    pub pgoff: u64,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// `vm_file`'s inode number (its identity), if file-backed.
    pub ino: Option<u64>,
}

/// The outcome of one speculative attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec<T> {
    /// Validated: `value` is what the locked lookup gives at `seq`.
    Valid {
        /// The result.
        value: T,
        /// The (even) `mm_lock_seq` the section started from.
        seq: u32,
    },
    /// `mmap_lock_speculate_try_begin` failed: a writer holds the lock.
    Busy,
    /// `mmap_lock_speculate_retry` failed: a writer ran meanwhile.
    Retry,
}

/// Reads the VMA containing `addr` from the published copy, without any
/// lock and without validation.
#[inline]
pub fn read_vma<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Option<VmaInfo> {
    let slot = mm.vma_lookup_rcu(addr)?;
    let start = slot.start();
    let end = slot.end();
    if !in_range(start, addr, end) {
        return None;
    }
    let pgoff = slot.pgoff();
    let flags = slot.flags();
    let ino = slot.file().and_then(|f: FileId| mm.file_ino_rcu(f));
    Some(VmaInfo {
        start,
        end,
        pgoff,
        flags,
        ino,
    })
}

/// The reader's range check: the tree walk only finds the entry with the
/// greatest start `<= addr`, so the VMA must also end above `addr`
/// (`vma_lookup`'s `addr < vma->vm_end`).
#[inline(always)]
pub(crate) fn in_range(start: u64, addr: u64, end: u64) -> bool {
    mutation::active(Mutation::NoRangeCheck) || (start <= addr && addr < end)
}

/// One speculative `vma_lookup`: `mmap_lock_speculate_try_begin`, the
/// lockless walk, `mmap_lock_speculate_retry`.
#[inline(always)]
pub fn vma_lookup_speculative<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Spec<Option<VmaInfo>> {
    let Some(seq) = mm.speculate_try_begin() else {
        return Spec::Busy;
    };
    let value = read_vma(mm, addr);
    if mm.speculate_retry(seq) {
        return Spec::Retry;
    }
    Spec::Valid { value, seq }
}

/// `vma_lookup` under `mmap_read_lock`.
pub fn vma_lookup_locked<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Option<VmaInfo> {
    let r = mm.read();
    let v = r.vma(r.vma_lookup(addr)?);
    let ino = v.file.map(|f| r.files().file_inode(f).ino);
    Some(VmaInfo {
        start: v.start,
        end: v.end,
        pgoff: v.pgoff,
        flags: v.flags,
        ino,
    })
}

/// Counters of speculative readers.
#[derive(Debug, Default)]
pub struct SpecStats {
    attempts: AtomicU64,
    successes: AtomicU64,
    retries: AtomicU64,
    busy: AtomicU64,
    fallbacks: AtomicU64,
}

/// A copy of [`SpecStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpecCounts {
    /// Speculative attempts.
    pub attempts: u64,
    /// Attempts that validated.
    pub successes: u64,
    /// Attempts that failed `retry`.
    pub retries: u64,
    /// Attempts that failed `try_begin`.
    pub busy: u64,
    /// Lookups answered by the locked path.
    pub fallbacks: u64,
}

impl SpecStats {
    /// Counts one attempt with its outcome.
    pub fn count<T>(&self, s: &Spec<T>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let c = match s {
            Spec::Valid { .. } => &self.successes,
            Spec::Retry => &self.retries,
            Spec::Busy => &self.busy,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one fallback to the locked path.
    pub fn fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a batch of counts (per-thread counters flushed at once).
    pub fn add(&self, c: &SpecCounts) {
        self.attempts.fetch_add(c.attempts, Ordering::Relaxed);
        self.successes.fetch_add(c.successes, Ordering::Relaxed);
        self.retries.fetch_add(c.retries, Ordering::Relaxed);
        self.busy.fetch_add(c.busy, Ordering::Relaxed);
        self.fallbacks.fetch_add(c.fallbacks, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn snapshot(&self) -> SpecCounts {
        SpecCounts {
            attempts: self.attempts.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }
}

/// `vma_lookup` the way a speculative reader does it: one speculative
/// attempt, then the locked path if it did not validate.
pub fn vma_lookup<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64, stats: &SpecStats) -> Option<VmaInfo> {
    let s = vma_lookup_speculative(mm, addr);
    stats.count(&s);
    match s {
        Spec::Valid { value, .. } => value,
        _ => {
            stats.fallback();
            vma_lookup_locked(mm, addr)
        }
    }
}
