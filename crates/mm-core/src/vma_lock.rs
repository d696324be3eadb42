//! Per-VMA locks (`include/linux/mmap_lock.h`, `mm/mmap_lock.c`, Linux
//! 6.15+): `vm_refcnt` and `vm_lock_seq`.
//!
//! A VMA's reference count is 0 while it is detached (not in any tree), 1
//! while attached, and +1 per reader holding its read lock. A writer, who
//! always holds `mmap_lock` for writing, write-locks a VMA by recording the
//! current (odd) `mm_lock_seq` in `vm_lock_seq`, after adding
//! [`VMA_LOCK_OFFSET`] to the count to keep new readers out and waiting for
//! the readers already in to leave. The write lock is never dropped on its
//! own: the end of the write section (`vma_end_write_all`, the policy's
//! `write_end` bump of `mm_lock_seq`) releases every VMA write-locked in it
//! at once, since `vm_lock_seq` then no longer equals `mm_lock_seq`.
//!
//! A reader ([`vma_start_read`], as `lock_vma_under_rcu` uses it):
//! 1. bails out early if `vm_lock_seq == mm_lock_seq` (write-locked now);
//! 2. takes a reference with an acquire increment that fails if the count
//!    is 0 (detached: the caller looks the address up again) or at the
//!    reader limit (a writer is excluding readers);
//! 3. checks `vm_mm`: the slot may hold another address space's VMA now
//!    ([`crate::vma_cache`]);
//! 4. re-reads `mm_lock_seq` with acquire semantics (the policy's
//!    [`BarrierPolicy::vma_read_seq`]), pairing with the release of
//!    `vma_end_write_all`, and fails if `vm_lock_seq` equals it.
//!
//! A false "locked" answer is allowed (a VMA locked in an earlier section
//! whose count wrapped, say); a false "unlocked" answer is impossible. The
//! orderings live in [`crate::ordering`].

use crate::mm::{MmStruct, MmWrite};
use crate::mutation::{self, Mutation};
use crate::ordering::{self, BarrierPolicy, read_once_u32, write_once_u32};
use crate::sync::{Ordering, spin_wait};
use crate::vma::{VmaId, VmaSlot};

/// Added to `vm_refcnt` by a writer that excludes readers.
pub const VMA_LOCK_OFFSET: u32 = 0x4000_0000;
/// The most references readers may hold; an excluding writer's count is
/// above it, so readers' increments fail (`VMA_REF_LIMIT`).
pub const VMA_REF_LIMIT: u32 = VMA_LOCK_OFFSET - 1;

/// Why [`vma_start_read`] did not lock the VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFail {
    /// The VMA is detached (`-EAGAIN`): look the address up again.
    Detached,
    /// The VMA is write-locked, a writer is excluding readers, or the
    /// slot now belongs to another mm (`NULL`): take `mmap_lock`.
    Busy,
}

/// A held per-VMA read lock (`vma_start_read` … `vma_end_read`). While it
/// lives, no writer changes the VMA's fields.
pub struct VmaReadLock<'a> {
    slot: &'a VmaSlot,
    id: VmaId,
}

impl<'a> VmaReadLock<'a> {
    /// The VMA's id.
    pub fn id(&self) -> VmaId {
        self.id
    }

    /// The locked VMA's published fields, stable while the lock is held.
    pub fn slot(&self) -> &'a VmaSlot {
        self.slot.guarded.read();
        self.slot
    }
}

impl Drop for VmaReadLock<'_> {
    /// `vma_end_read`: drops the reference with release semantics (a
    /// writer waiting for readers then sees this reader's accesses done).
    fn drop(&mut self) {
        ordering::refcount_dec_release(&self.slot.refcnt);
    }
}

impl core::fmt::Debug for VmaReadLock<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VmaReadLock").field("id", &self.id).finish()
    }
}

/// `vma_start_read` (`include/linux/mmap_lock.h`): read-locks VMA `id` of
/// `mm` if it is attached to `mm` and not write-locked.
pub fn vma_start_read<P: BarrierPolicy>(mm: &MmStruct<P>, id: VmaId) -> Result<VmaReadLock<'_>, ReadFail> {
    let slot = mm.vma_cache().get(id).ok_or(ReadFail::Busy)?;
    let seq = mm.mmap_lock().seq();
    // 1. The early, unordered check: a race only gives a false "locked".
    if read_once_u32(&slot.lock_seq) == seq {
        return Err(ReadFail::Busy);
    }
    // 2. The reference.
    if let Err(old) = ordering::refcount_inc_not_zero_limited_acquire(&slot.refcnt, VMA_REF_LIMIT) {
        return Err(if old == 0 { ReadFail::Detached } else { ReadFail::Busy });
    }
    let lock = VmaReadLock { slot, id };
    // 3. The slot may have been freed and reused by another address space.
    if read_once_u32(&slot.mm) != mm.id() && !mutation::active(Mutation::NoVmaMmCheck) {
        return Err(ReadFail::Busy);
    }
    // 4. The ordered re-check against mm_lock_seq.
    if !mutation::active(Mutation::NoVmaSeqRecheck)
        && read_once_u32(&slot.lock_seq) == P::vma_read_seq(mm.mmap_lock().seq_atomic())
    {
        return Err(ReadFail::Busy);
    }
    Ok(lock)
}

/// `lock_vma_under_rcu` (`mm/mmap_lock.c`): looks `addr` up without
/// `mmap_lock` and read-locks the VMA containing it. Looks again when the
/// VMA was detached under it; `None` when there is no VMA there, or it
/// could not be locked (the caller then takes `mmap_lock`).
pub fn lock_vma_under_rcu<P: BarrierPolicy>(mm: &MmStruct<P>, addr: u64) -> Option<VmaReadLock<'_>> {
    loop {
        let id = mm.vma_lookup_rcu_id(addr)?;
        match vma_start_read(mm, id) {
            Ok(lock) => {
                let s = lock.slot();
                if !(s.start() <= addr && addr < s.end()) {
                    return None;
                }
                return Some(lock);
            }
            Err(ReadFail::Detached) => spin_wait(),
            Err(ReadFail::Busy) => return None,
        }
    }
}

/// A killable wait was interrupted by a fatal signal (`-EINTR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Killed;

/// How [`lock_next_vma`] found its VMA (for counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextPath {
    /// Without `mmap_lock`.
    Lockless,
    /// Under `mmap_read_lock` (`lock_vma_under_mmap_lock`).
    MmapLock,
}

/// `lock_next_vma` (`mm/mmap_lock.c`, 6.17+): read-locks the first VMA
/// that ends above `from` without `mmap_lock` — the `/proc/PID/maps`
/// iterator's step — or `None` at the end of the address space.
///
/// As the kernel's: the VMA found must not end at or below `from` (else
/// take `mmap_lock`), and when it starts above `from` the gap before it
/// must be real, which the speculation count decides (unchanged: no
/// writer ran; changed: look again, and take `mmap_lock` unless the same
/// VMA comes back). One addition: the model's tree changes nodes in place,
/// so a lockless walk that finds nothing, and the second look, are believed
/// only if no writer ran during them (the kernel's RCU walk of the maple
/// tree sees the tree as it was at one instant).
pub fn lock_next_vma<P: BarrierPolicy>(mm: &MmStruct<P>, from: u64) -> Option<(VmaReadLock<'_>, NextPath)> {
    loop {
        let spec = mm.speculate_try_begin();
        let Some(id) = mm.vma_next_rcu(from) else {
            if spec.is_some_and(|s| !mm.speculate_retry(s)) {
                return None;
            }
            return lock_vma_under_mmap_lock(mm, from);
        };
        let lock = match vma_start_read(mm, id) {
            Ok(l) => l,
            Err(ReadFail::Detached) => {
                spin_wait();
                continue;
            }
            Err(ReadFail::Busy) => return lock_vma_under_mmap_lock(mm, from),
        };
        let s = lock.slot();
        if from >= s.end() {
            drop(lock);
            return lock_vma_under_mmap_lock(mm, from);
        }
        if from < s.start() && !mutation::active(Mutation::NoMapsGapCheck) {
            let changed = match spec {
                Some(seq) => mm.speculate_retry(seq),
                None => true,
            };
            // Look again; the model's walk of a tree a writer is changing
            // in place may be torn, so the second look counts only if no
            // writer ran during it (the kernel's RCU walk is consistent).
            if changed && !same_next_stable(mm, from, id) {
                drop(lock);
                return lock_vma_under_mmap_lock(mm, from);
            }
        }
        return Some((lock, NextPath::Lockless));
    }
}

/// Whether a fresh lockless look from `from` finds VMA `id` again, in a
/// window no writer entered.
fn same_next_stable<P: BarrierPolicy>(mm: &MmStruct<P>, from: u64, id: VmaId) -> bool {
    let Some(seq) = mm.speculate_try_begin() else {
        return false;
    };
    let again = mm.vma_next_rcu(from);
    !mm.speculate_retry(seq) && again == Some(id)
}

/// `lock_vma_under_mmap_lock`: the next VMA from `from`, found under
/// `mmap_read_lock` and read-locked before the lock is dropped
/// (`vma_start_read_locked`: no writer can exclude readers meanwhile).
fn lock_vma_under_mmap_lock<P: BarrierPolicy>(mm: &MmStruct<P>, from: u64) -> Option<(VmaReadLock<'_>, NextPath)> {
    use crate::mm::VmaView;
    let r = mm.read();
    let id = r.find_vma(from)?;
    let slot = mm.vma_cache().get(id)?;
    ordering::refcount_inc_not_zero_limited_acquire(&slot.refcnt, VMA_REF_LIMIT).ok()?;
    drop(r);
    Some((VmaReadLock { slot, id }, NextPath::MmapLock))
}

/// A new VMA, before it is attached: owned by mm `mm_id`, write-locked in
/// the section `seq` (`vma_lock_init` + `vma_start_write` of a detached VMA).
pub(crate) fn prepare_new(slot: &VmaSlot, mm_id: u32, seq: u32) {
    write_once_u32(&slot.mm, mm_id);
    write_once_u32(&slot.lock_seq, seq);
}

/// `vma_mark_attached`: the count goes from 0 to 1 with release semantics,
/// after the VMA's fields are set.
pub(crate) fn mark_attached(slot: &VmaSlot) {
    ordering::refcount_set_release(&slot.refcnt, 1);
}

/// `vma_mark_detached`: drops the tree's reference; if readers still hold
/// references, excludes new ones and waits for them to leave. The VMA
/// must be write-locked (so readers only hold references for a moment).
pub(crate) fn mark_detached(slot: &VmaSlot) {
    if ordering::refcount_dec_release(&slot.refcnt) == 1 {
        return;
    }
    // `__vma_enter_locked(vma, detaching = true)`.
    if ordering::refcount_add_not_zero(&slot.refcnt, VMA_LOCK_OFFSET) {
        wait_for_readers(slot, VMA_LOCK_OFFSET);
        ordering::refcount_sub_release(&slot.refcnt, VMA_LOCK_OFFSET);
    }
}

/// Waits until the count is `target` (the writer alone): the readers that
/// were in have left, and their accesses happen before what follows.
fn wait_for_readers(slot: &VmaSlot, target: u32) {
    if mutation::active(Mutation::NoVmaWaitReaders) {
        return;
    }
    while ordering::refcount_read_acquire(&slot.refcnt) != target {
        spin_wait();
    }
}

/// `vma_start_write` of the VMA in `slot` in the write section whose
/// `mm_lock_seq` is `seq`; a no-op if it already is write-locked in it.
#[inline]
pub(crate) fn start_write_slot(slot: &VmaSlot, seq: u32) {
    if read_once_u32(&slot.lock_seq) != seq {
        start_write_locking(slot, seq);
    }
}

/// `__vma_start_write`: records `seq` in `vm_lock_seq` once the VMA's
/// readers have left.
fn start_write_locking(slot: &VmaSlot, seq: u32) {
    // `__vma_enter_locked(vma, false)`: fails at once for a detached
    // VMA, else excludes new readers and waits for the others.
    let locked = ordering::refcount_add_not_zero(&slot.refcnt, VMA_LOCK_OFFSET);
    if locked {
        wait_for_readers(slot, VMA_LOCK_OFFSET + 1);
    }
    write_once_u32(&slot.lock_seq, seq);
    if locked {
        ordering::refcount_sub_release(&slot.refcnt, VMA_LOCK_OFFSET);
    }
}

impl<P: BarrierPolicy> MmWrite<'_, P> {
    /// `vma_start_write` (`__vma_start_write`): write-locks VMA `id` for
    /// the rest of this write section; a no-op if it already is.
    #[inline]
    pub fn vma_start_write(&mut self, id: VmaId) {
        start_write_slot(self.vma_slot(id), self.lock_seq());
    }

    /// `vma_start_write_killable` (Linux 6.19, used by `dup_mmap`): as
    /// [`vma_start_write`](Self::vma_start_write), but while waiting for
    /// readers it gives up when `fatal_signal` is set, removes its
    /// exclusion (readers may lock the VMA again) and returns `EINTR`
    /// ([`Killed`]); the VMA is then not write-locked.
    pub fn vma_start_write_killable(
        &mut self,
        id: VmaId,
        fatal_signal: &crate::sync::AtomicBool,
    ) -> Result<(), Killed> {
        let seq = self.lock_seq();
        let slot = self.vma_slot(id);
        if read_once_u32(&slot.lock_seq) == seq {
            return Ok(());
        }
        let locked = ordering::refcount_add_not_zero(&slot.refcnt, VMA_LOCK_OFFSET);
        if locked {
            while ordering::refcount_read_acquire(&slot.refcnt) != VMA_LOCK_OFFSET + 1 {
                if fatal_signal.load(Ordering::Relaxed) {
                    if !mutation::active(Mutation::NoKillableUndo) {
                        ordering::refcount_sub_release(&slot.refcnt, VMA_LOCK_OFFSET);
                    }
                    return Err(Killed);
                }
                spin_wait();
            }
        }
        write_once_u32(&slot.lock_seq, seq);
        if locked {
            ordering::refcount_sub_release(&slot.refcnt, VMA_LOCK_OFFSET);
        }
        Ok(())
    }

    /// `__is_vma_write_locked`: VMA `id` is write-locked in this section.
    pub fn vma_is_write_locked(&self, id: VmaId) -> bool {
        read_once_u32(&self.vma_slot(id).lock_seq) == self.lock_seq()
    }
}

/// The count's current value (for tests and reports: a relaxed load).
pub fn refcount(slot: &VmaSlot) -> u32 {
    slot.refcnt.load(Ordering::Relaxed)
}
